"""Audit plots of an exactly equivariant output (all errors 0) say 0, not a radius of "1e-300" or "3e-308"."""

import math

import pytest
import torch

from equivar.symmetry._plots import plot_axis_sweeps, plot_disc_sweep
from equivar.symmetry._sweeps import AxisSweep, DiscSweep, disc_axes


@pytest.fixture
def figures(monkeypatch):
    import matplotlib.pyplot as plt

    kept = []
    monkeypatch.setattr(plt, "close", lambda fig=None: kept.append(fig))  # keep each figure to read its labels
    yield kept
    monkeypatch.undo()
    plt.close("all")


def _texts(fig):
    fig.canvas.draw()
    out = []
    for ax in fig.axes:
        out += [t.get_text() for t in ax.get_yticklabels() + ax.get_xticklabels()]
        out += [t.get_text() for t in ax.texts] + [ax.get_ylabel()]
    return [t for t in out if t]


@pytest.mark.parametrize("value", [0.0, 1e-320])  # 0 and a subnormal residue
def test_zero_errors_are_labelled_zero(tmp_path, figures, value):
    angles = torch.arange(8, dtype=torch.float64) * (2 * math.pi / 8)
    err = {"energy": torch.full((3, 8, 2), value, dtype=torch.float64)}
    sweep = AxisSweep({"x": (1, 0, 0), "y": (0, 1, 0), "z": (0, 0, 1)}, angles, err, err, err)
    plot_axis_sweeps([(sweep, "error")], "energy", str(tmp_path / "s.png"))
    uv, axes = disc_axes(6)
    derr = {"energy": torch.full((2, uv.shape[0], 2), value, dtype=torch.float64)}
    disc = DiscSweep(angles[:2], uv, axes, 6, derr, derr, derr)
    plot_disc_sweep(disc, "energy", "error", str(tmp_path / "d.png"))
    texts = [t for fig in figures for t in _texts(fig)]
    assert not [t for t in texts if "e-3" in t or "e−3" in t], texts  # no 1e-300, 3e-308, ...
    assert "0 at every angle" in texts and "0" in texts
    assert (tmp_path / "s.png").stat().st_size > 0 and (tmp_path / "d.png").stat().st_size > 0


def test_nonzero_errors_keep_their_scale(tmp_path, figures):
    angles = torch.arange(8, dtype=torch.float64) * (2 * math.pi / 8)
    err = {"energy": 1e-7 * (1 + torch.rand(1, 8, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0)))}
    sweep = AxisSweep({"z": (0, 0, 1)}, angles, err, err, err)
    plot_axis_sweeps([(sweep, "error")], "energy", str(tmp_path / "s.png"))
    top = float(err["energy"].max())
    assert f"{top:.2g}" in _texts(figures[0])
