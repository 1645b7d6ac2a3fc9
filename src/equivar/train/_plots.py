"""PNG learning curves (matplotlib, Agg backend), for every task."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .._plotting import pyplot, save_figure


def plot_learning_curves(history: Sequence[Mapping], path: str) -> None:
    """Loss, energy MAE (meV/atom) and force MAE (meV/Å) per epoch, train and valid, log scale."""
    plt = pyplot()
    panels = [("loss", "loss"), ("mae_e_per_atom", "E MAE (meV/atom)"), ("mae_f", "F MAE (meV/Å)")]
    panels = [p for p in panels if any(f"train_{p[0]}" in r or f"valid_{p[0]}" in r for r in history)]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.4), squeeze=False)
    for ax, (key, label) in zip(axes[0], panels):
        for split in ("train", "valid"):
            pts = [(r["epoch"], r[f"{split}_{key}"]) for r in history if f"{split}_{key}" in r]
            if pts:
                x, y = zip(*pts)
                ax.plot(x, y, marker="o" if len(pts) < 30 else None, ms=3, label=split)
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)
