"""PNG plots of audits: polar orbit sweeps, SO(3) discs, per-group bars (matplotlib, Agg backend)."""
from __future__ import annotations

import math

from ._sweeps import AxisSweep, DiscSweep

_METRIC_LABEL = {
    "error": "relative equivariance error",
    "consensus": "distance to orbit consensus",
    "task": "MAE vs transformed label",
}


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def plot_axis_sweep(sweep: AxisSweep, output: str, metric: str, path: str, title: str = "") -> str:
    """Polar plots (one per axis): metric against rotation angle; thin lines per sample, bold mean.

    Returns ``path``. Raises ``KeyError`` for an unknown output / metric.
    """
    plt = _plt()
    data = getattr(sweep, metric)[output].numpy()  # [A, K, S]
    ang = sweep.angles.numpy()
    ang = list(ang) + [ang[0] + 2 * math.pi]
    n = len(sweep.axes)
    fig, axs = plt.subplots(1, n, subplot_kw={"projection": "polar"}, figsize=(3.3 * n, 3.6))
    axs = [axs] if n == 1 else list(axs)
    top = max(float(data.max()), 1e-300)
    for a, (name, ax) in enumerate(zip(sweep.axes, axs)):
        for s in range(data.shape[2]):
            v = list(data[a, :, s]) + [data[a, 0, s]]
            ax.plot(ang, v, lw=0.6, alpha=0.35, color="tab:blue")
        m = data[a].mean(-1)
        ax.plot(ang, list(m) + [m[0]], lw=2.0, color="tab:red", label="mean")
        ax.set_ylim(0, top * 1.05)
        ax.set_title(f"{'-' if sweep.improper else ''}R about {name}", fontsize=9)
        ax.tick_params(labelsize=7)
    axs[-1].legend(loc="lower right", fontsize=7, bbox_to_anchor=(1.25, -0.12))
    fig.suptitle(title or f"{output}: {_METRIC_LABEL.get(metric, metric)} on rotation orbits", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def plot_disc_sweep(disc: DiscSweep, output: str, metric: str, path: str, title: str = "") -> str:
    """One disc per rotation angle: colour = sample-mean metric for the rotation about each axis.

    Discs use Lambert's azimuthal equal-area projection of the axis sphere
    about +z (centre +z, rim -z; +x to the right, +y up). Returns ``path``.
    """
    plt = _plt()
    import numpy as np

    vals = disc.mean(metric, output).numpy()  # [A, P]
    res = disc.resolution
    c = (np.arange(res) + 0.5) / res * 2 - 1
    ij = {(round(float(u), 9), round(float(v), 9)): p for p, (u, v) in enumerate(disc.uv.tolist())}
    n = len(disc.angles)
    fig, axs = plt.subplots(1, n, figsize=(2.8 * n + 0.8, 3.1))
    axs = [axs] if n == 1 else list(axs)
    vmax = max(float(vals.max()), 1e-300)
    im = None
    for a, ax in enumerate(axs):
        img = np.full((res, res), np.nan)
        for yi, v in enumerate(c):
            for xi, u in enumerate(c):
                p = ij.get((round(float(u), 9), round(float(v), 9)))
                if p is not None:
                    img[yi, xi] = vals[a, p]
        im = ax.imshow(img, origin="lower", extent=(-1, 1, -1, 1), vmin=0, vmax=vmax, cmap="viridis")
        t = np.linspace(0, 2 * np.pi, 200)
        ax.plot(np.cos(t), np.sin(t), color="k", lw=0.8)
        r_eq = math.sin(math.pi / 4)
        ax.plot(r_eq * np.cos(t), r_eq * np.sin(t), color="w", lw=0.5, ls="--")
        ax.text(r_eq, 0, "+x", color="w", fontsize=7, ha="left", va="center")
        ax.text(0, r_eq, "+y", color="w", fontsize=7, ha="center", va="bottom")
        ax.text(0, 0, "+z", color="w", fontsize=7, ha="center", va="center")
        ax.set_title(f"angle {math.degrees(float(disc.angles[a])):g} deg", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_aspect("equal")
    fig.colorbar(im, ax=axs, shrink=0.8, label=_METRIC_LABEL.get(metric, metric))
    fig.suptitle(title or f"{output}: {_METRIC_LABEL.get(metric, metric)} over SO(3) (axis on disc, -z at rim)",
                 fontsize=10)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def plot_group_bars(errors: dict, path: str, title: str = "") -> str:
    """Bar chart (log scale) of the aggregate relative error per group and output."""
    plt = _plt()
    groups = list(errors)
    outputs = sorted({k for e in errors.values() for k in e.aggregate})
    fig, ax = plt.subplots(figsize=(max(4.0, 1.1 * len(groups) + 1.5), 3.2))
    w = 0.8 / max(len(outputs), 1)
    floor = 1e-17
    for j, k in enumerate(outputs):
        vals = [max(errors[g].aggregate.get(k, 0.0), floor) for g in groups]
        ax.bar([i + j * w for i in range(len(groups))], vals, width=w, label=k)
    ax.set_yscale("log")
    ax.set_xticks([i + w * (len(outputs) - 1) / 2 for i in range(len(groups))])
    ax.set_xticklabels(groups, fontsize=8)
    ax.set_ylabel("relative error")
    ax.legend(fontsize=7)
    ax.set_title(title or "aggregate relative equivariance error per group", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
