"""PNG learning curves and parity plots (matplotlib, Agg backend)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str) -> None:
    """``fig.savefig`` through :func:`equivar._paths.atomic_output` (format from the extension, default PNG)."""
    import os

    from .._paths import atomic_output

    fmt = os.path.splitext(path)[1].lstrip(".").lower() or "png"
    with atomic_output(path, "wb") as f:
        fig.savefig(f, dpi=120, format=fmt)


def plot_learning_curves(history: Sequence[Mapping], path: str) -> None:
    """Loss, energy MAE (meV/atom) and force MAE (meV/Å) per epoch, train and valid, log scale."""
    plt = _plt()
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
    _save(fig, path)
    plt.close(fig)


def plot_parity(sets: Mapping[str, tuple[Sequence, Sequence[Mapping]]], path: str) -> None:
    """Predicted vs reference energy per atom and force components (eV/Å), one colour per set.

    ``sets`` maps a name to ``(configs, predictions)`` as in :func:`equivar.train.error_rows`.
    Energies are shown in meV/atom relative to the mean reference energy per
    atom (given in the axis label): absolute values such as -467.674 eV/atom
    would need tick labels too long to stay apart.
    """
    plt = _plt()
    fig = parity_figure(sets)
    _save(fig, path)
    plt.close(fig)


def parity_figure(sets: Mapping[str, tuple[Sequence, Sequence[Mapping]]]):
    """The matplotlib figure of :func:`plot_parity` (the caller closes it)."""
    from matplotlib.ticker import MaxNLocator

    plt = _plt()
    fig, (ax_e, ax_f) = plt.subplots(1, 2, figsize=(9, 4.2))
    energies = {}
    for name, (configs, preds) in sets.items():
        e = [
            (c.energy / c.num_atoms, p["energy"] / c.num_atoms)
            for c, p in zip(configs, preds)
            if c.energy is not None and p.get("energy") is not None
        ]
        if e:
            energies[name] = np.array(e)
    offset = float(np.mean(np.concatenate([e[:, 0] for e in energies.values()]))) if energies else 0.0
    for name, (configs, preds) in sets.items():
        if name in energies:
            ref, pr = (energies[name] - offset).T * 1e3
            ax_e.scatter(ref, pr, s=6, alpha=0.6, label=name)
        f = [
            (c.forces.reshape(-1), np.asarray(p["forces"]).reshape(-1))
            for c, p in zip(configs, preds)
            if c.forces is not None and p.get("forces") is not None
        ]
        if f:
            ref = np.concatenate([a for a, _ in f])
            pr = np.concatenate([b for _, b in f])
            ax_f.scatter(ref, pr, s=2, alpha=0.3, label=name)
    if energies:
        ax_e.set_title(f"energy per atom minus the mean reference ({offset:.6g} eV/atom)", fontsize=9)
    for ax, title in ((ax_e, "energy (meV/atom)"), (ax_f, "forces (eV/Å)")):
        lo, hi = ax.get_xlim()
        lo2, hi2 = ax.get_ylim()
        lim = (min(lo, lo2), max(hi, hi2))
        ax.plot(lim, lim, "k--", lw=0.8)
        ax.set_xlim(lim)
        ax.set_ylim(lim)
        for axis in (ax.xaxis, ax.yaxis):
            axis.set_major_locator(MaxNLocator(nbins=5))
        ax.set_xlabel(f"reference {title}")
        ax.set_ylabel(f"predicted {title}")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(markerscale=3)
    fig.tight_layout()
    return fig
