"""PNG plots of audits: polar orbit sweeps, SO(3) discs, per-group bars (matplotlib, Agg backend)."""

from __future__ import annotations

import math

from ._sweeps import AxisSweep, DiscSweep

_METRIC_LABEL = {
    "error": "relative equivariance error",
    "consensus": "distance to orbit consensus",
    "task": "MAE vs transformed label",
}


def _save(fig, path: str, **kwargs) -> None:
    """``fig.savefig`` through :func:`equivar._paths.atomic_output` (format from the extension, default PNG)."""
    import os

    from .._paths import atomic_output

    fmt = os.path.splitext(path)[1].lstrip(".").lower() or "png"
    with atomic_output(path, "wb") as f:
        fig.savefig(f, format=fmt, **kwargs)


def _scale_top(values) -> float:
    """The largest value, or 0 when every value is 0 or a subnormal float64 (below 2.2e-308: rounding residue).

    The plots then say "0" instead of scaling a radius or colour bar to a
    placeholder such as 1e-300, whose tick labels read like a measured error.
    """
    import numpy as np

    top = float(np.nanmax(values)) if np.size(values) else 0.0
    return top if np.isfinite(top) and top >= np.finfo(np.float64).tiny else 0.0


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def plot_axis_sweep(sweep: AxisSweep, output: str, metric: str, path: str, title: str = "") -> str:
    """Polar plots (one per axis) of one metric against rotation angle; thin lines per sample, bold mean.

    Returns ``path``. Raises ``KeyError`` for an unknown output / metric.
    """
    return plot_axis_sweeps([(sweep, metric)], output, path, title)


def plot_axis_sweeps(rows: list, output: str, path: str, title: str = "") -> str:
    """NERO polar plots: one row per ``(AxisSweep, metric)``, one column per axis.

    Angle = rotation angle about the axis, radius = the metric (per sample:
    thin blue lines; sample mean: bold red). Returns ``path``.
    """
    plt = _plt()
    n_ax = len(rows[0][0].axes)
    fig, axs = plt.subplots(
        len(rows), n_ax, subplot_kw={"projection": "polar"}, figsize=(2.6 * n_ax, 2.55 * len(rows) + 0.5), squeeze=False
    )
    for r, (sweep, metric) in enumerate(rows):
        data = getattr(sweep, metric)[output].numpy()  # [A, K, S]
        ang = list(sweep.angles.numpy())
        ang = ang + [ang[0] + 2 * math.pi]
        top = _scale_top(data)
        for a, name in enumerate(sweep.axes):
            ax = axs[r][a]
            for s in range(data.shape[2]):
                ax.plot(ang, list(data[a, :, s]) + [data[a, 0, s]], lw=0.5, alpha=0.35, color="tab:blue")
            m = data[a].mean(-1)
            ax.plot(ang, list(m) + [m[0]], lw=1.8, color="tab:red")
            if top > 0:
                ax.set_ylim(0, top * 1.05)
                ax.set_rticks([top / 2, top])
                ax.set_yticklabels([f"{top / 2:.2g}", f"{top:.2g}"], fontsize=6)
            else:  # exactly 0 everywhere: say so instead of scaling the radius to a meaningless tiny number
                ax.set_ylim(0, 1)
                ax.set_rticks([])
                ax.text(0.5, 0.5, "0 at every angle", transform=ax.transAxes, ha="center", va="center", fontsize=6)
            ax.set_thetagrids([0, 90, 180, 270], fontsize=6)
            ax.set_title(f"{'-' if sweep.improper else ''}R about {name}", fontsize=8, pad=2)
        axs[r][0].text(
            -0.35,
            0.5,
            _METRIC_LABEL.get(metric, metric).replace(" ", "\n", 1) + ("\n(improper)" if sweep.improper else ""),
            transform=axs[r][0].transAxes,
            rotation=90,
            va="center",
            ha="center",
            fontsize=7,
        )
    fig.suptitle(
        title or f"{output}: orbit sweeps (blue: samples, red: mean)", fontsize=9, y=1 - 0.1 / fig.get_figheight()
    )
    fig.subplots_adjust(left=0.1, right=0.97, top=1 - 0.65 / fig.get_figheight(), bottom=0.03, hspace=0.35, wspace=0.35)
    _save(fig, path, dpi=70)
    plt.close(fig)
    return path


def plot_disc_sweep(disc: DiscSweep, output: str, metric, path: str, title: str = "") -> str:
    """Discs, one per rotation angle (columns) and metric (rows, ``metric`` a name or a list):
    colour = sample-mean metric for the rotation about each axis.

    Discs use Lambert's azimuthal equal-area projection of the axis sphere
    about +z (centre +z, rim -z; +x right, +y up; dashed: the equator).
    Returns ``path``.
    """
    plt = _plt()
    import numpy as np
    from matplotlib.patches import Circle

    metrics = [metric] if isinstance(metric, str) else list(metric)
    res = disc.resolution
    c = (np.arange(res) + 0.5) / res * 2 - 1
    ij = {(round(float(u), 9), round(float(v), 9)): p for p, (u, v) in enumerate(disc.uv.tolist())}
    n = len(disc.angles)
    fig, axs = plt.subplots(len(metrics), n, figsize=(2.2 * n + 1.0, 2.3 * len(metrics) + 0.4), squeeze=False)
    t = np.linspace(0, 2 * np.pi, 120)
    r_eq = math.sin(math.pi / 4)
    for r, m in enumerate(metrics):
        vals = disc.mean(m, output).numpy()  # [A, P]
        vmax = _scale_top(vals)
        all_zero = vmax == 0
        vmax = vmax if not all_zero else 1.0
        im = None
        for a in range(n):
            ax = axs[r][a]
            img = np.full((res, res), np.nan)
            for yi, v in enumerate(c):
                for xi, u in enumerate(c):
                    p = ij.get((round(float(u), 9), round(float(v), 9)))
                    if p is not None:
                        img[yi, xi] = vals[a, p]
            im = ax.imshow(img, origin="lower", extent=(-1, 1, -1, 1), vmin=0, vmax=vmax, cmap="viridis")
            im.set_clip_path(Circle((0, 0), 1.0, transform=ax.transData))
            ax.plot(np.cos(t), np.sin(t), color="k", lw=0.6)
            ax.plot(r_eq * np.cos(t), r_eq * np.sin(t), color="w", lw=0.4, ls="--")
            ax.text(r_eq, 0, "+x", color="w", fontsize=6, ha="left", va="center")
            ax.text(0, r_eq, "+y", color="w", fontsize=6, ha="center", va="bottom")
            ax.text(0, 0, "+z", color="w", fontsize=6, ha="center", va="center")
            ax.set_title(f"{math.degrees(float(disc.angles[a])):g} deg", fontsize=8, pad=2)
            ax.set_xticks([])
            ax.set_yticks([])
        cb = fig.colorbar(im, ax=list(axs[r]), shrink=0.85, pad=0.02)
        cb.ax.tick_params(labelsize=6)
        if all_zero:
            cb.set_ticks([0.0])
            cb.set_ticklabels(["0"])
        cb.set_label(_METRIC_LABEL.get(m, m) + (" (0 everywhere)" if all_zero else ""), fontsize=7)
    fig.suptitle(title or f"{output}: rotations of SO(3) (axis on disc, -z at rim)", fontsize=9)
    _save(fig, path, dpi=70)
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
    fig.subplots_adjust(left=0.15, right=0.98, top=0.88, bottom=0.12)
    _save(fig, path, dpi=70)
    plt.close(fig)
    return path
