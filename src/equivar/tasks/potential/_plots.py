"""Parity plots of a potential's predictions (matplotlib, Agg backend)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from ..._plotting import pyplot, save_figure


def plot_parity(sets: Mapping[str, tuple[Sequence, Sequence[Mapping]]], path: str) -> None:
    """Predicted vs reference energy per atom and force components (eV/Å), one colour per set.

    ``sets`` maps a name to ``(configs, predictions)`` as in :func:`equivar.train.error_rows`.
    Energies are shown in meV/atom relative to the mean reference energy per
    atom (given in the axis label): absolute values such as -467.674 eV/atom
    would need tick labels too long to stay apart.
    """
    plt = pyplot()
    fig = parity_figure(sets)
    save_figure(fig, path)
    plt.close(fig)


def parity_figure(sets: Mapping[str, tuple[Sequence, Sequence[Mapping]]]):
    """The matplotlib figure of :func:`plot_parity` (the caller closes it)."""
    from matplotlib.ticker import MaxNLocator

    plt = pyplot()
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
