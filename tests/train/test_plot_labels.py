"""The parity plot's tick labels stay apart for molecular energies (e.g. -467.67 eV/atom, spread of 0.1)."""

import numpy as np
import pytest

from equivar.data import Configuration
from equivar.train import plot_parity


def _sets(e_mean, spread, n=200, seed=0):
    rng = np.random.default_rng(seed)
    configs, preds = [], []
    for _ in range(n):
        e = e_mean * 9 + rng.normal() * spread * 9
        forces = rng.normal(size=(9, 3))
        configs.append(
            Configuration([6, 6, 8, 1, 1, 1, 1, 1, 1], np.arange(27.0).reshape(9, 3), energy=e, forces=forces)
        )
        preds.append({"energy": e + 0.01 * rng.normal(), "forces": forces + 0.01 * rng.normal(size=(9, 3))})
    return {"test": (configs, preds)}


def _overlaps(labels, renderer):
    boxes = [t.get_window_extent(renderer) for t in labels if t.get_visible() and t.get_text()]
    return [(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1 :] if a.overlaps(b)]


@pytest.mark.parametrize("e_mean, spread", [(-467.674, 0.03), (-3.5123, 0.0004), (-1000.0, 5.0)])
def test_parity_tick_labels_do_not_overlap(tmp_path, monkeypatch, e_mean, spread):
    import matplotlib.pyplot as plt

    figures = []
    monkeypatch.setattr(plt, "close", lambda fig=None: figures.append(fig))  # keep the figure to inspect it
    plot_parity(_sets(e_mean, spread), str(tmp_path / "parity.png"))
    (fig,) = figures
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    for ax in fig.axes:
        for labels in (ax.get_xticklabels(), ax.get_yticklabels()):
            assert len([t for t in labels if t.get_text()]) >= 3
            assert not _overlaps(labels, renderer), [t.get_text() for t in labels]
    # everything drawn stays inside the figure (axis labels and the offset text are not cut off)
    width, height = fig.canvas.get_width_height()
    for ax in fig.axes:
        for artist in (ax.xaxis.label, ax.yaxis.label, ax.title):
            if artist.get_text():
                box = artist.get_window_extent(renderer)
                assert box.x0 >= -1 and box.x1 <= width + 1 and box.y0 >= -1 and box.y1 <= height + 1, artist.get_text()
    plt.close("all")
