"""A full audit: group errors + orbit sweeps + plots + JSON report."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from collections.abc import Sequence

from . import _plots
from ._errors import GroupErrors, _leaf_types, equivariance_errors
from ._subject import Subject
from ._sweeps import AxisSweep, DiscSweep, axis_sweep, disc_sweep

DEFAULT_GROUPS = ("SO3", "O3", "translations", "permutations", "SO2(z)", "Oh", "D4(z)")


@dataclasses.dataclass
class AuditReport:
    """Result of :func:`run_audit`.

    ``errors`` ``{group: GroupErrors}``; ``sweep`` / ``improper_sweep``
    (:class:`AxisSweep` or None); ``disc`` (:class:`DiscSweep` or None);
    ``files`` (paths written); ``meta`` (free-form, JSON-able).
    """

    errors: dict
    sweep: AxisSweep | None
    improper_sweep: AxisSweep | None
    disc: DiscSweep | None
    files: list
    meta: dict

    def to_dict(self) -> dict:
        return {
            "meta": self.meta,
            "groups": {g: e.to_dict() for g, e in self.errors.items()},
            "sweep": self.sweep.to_dict() if self.sweep else None,
            "improper_sweep": self.improper_sweep.to_dict() if self.improper_sweep else None,
            "disc": self.disc.to_dict() if self.disc else None,
            "files": [os.path.basename(f) for f in self.files],
        }

    def summary(self) -> str:
        """A short table: aggregate / max relative error per group and output."""
        lines = [f"{'group':<14} {'output':<10} {'relative':>10} {'max rel.':>10} {'rms abs.':>10}  worst element"]
        for g, e in self.errors.items():
            d = e.to_dict()["outputs"]
            for k, v in d.items():
                lines.append(
                    f"{g:<14} {k:<10} {v['aggregate']:>10.2e} {v['max']:>10.2e} {v['rms']:>10.2e}  {v['worst_element']}"
                )
        if self.sweep is not None:
            for k in self.sweep.error:
                m = self.sweep.mean("error", k)
                if float(m.max()) == 0.0:
                    lines.append(f"sweep {k}: no error at any angle")
                    continue
                worst = [
                    f"{ax}: {math.degrees(float(self.sweep.angles[int(m[i].argmax())])):.0f} deg "
                    f"({float(m[i].max()):.2g})"
                    for i, ax in enumerate(self.sweep.axes)
                ]
                lines.append(f"sweep {k}: largest mean relative error at " + ", ".join(worst))
        return "\n".join(lines)


def run_audit(
    subject: Subject,
    out_dir: str | None = None,
    *,
    groups: Sequence = DEFAULT_GROUPS,
    n_elements: int = 8,
    n_angles: int = 72,
    sweep_axes: Sequence = ("x", "y", "z"),
    improper_sweep: bool = True,
    disc_angles: Sequence[float] | None = (45, 90, 135, 180),
    disc_resolution: int = 15,
    seed: int = 0,
    prefix: str = "",
    meta: dict | None = None,
) -> AuditReport:
    """Audit ``subject``: errors per group, NERO orbit sweeps, SO(3) discs; plots and JSON.

    Parameters
    ----------
    subject : Subject
    out_dir : str, optional
        When given, writes ``{prefix}groups.png`` (aggregate error per group),
        ``{prefix}sweep_{output}.png`` (polar NERO plots; rows: error,
        consensus, task when labels exist, error under improper rotations),
        ``{prefix}disc_{output}.png`` (SO(3) discs; rows: error, consensus)
        and ``{prefix}audit.json``.
    groups : group names (see :func:`equivar.symmetry.get_group`); groups that
        do not apply (permutations without node-typed inputs, translations
        without a ``positions`` input) are skipped and listed in
        ``meta['skipped_groups']``.
    n_elements, seed : sampled elements per continuous group, and the seed.
    n_angles : angles per sweep axis (a multiple of 4 keeps 90 degrees on the grid).
    disc_angles : rotation angles (degrees) for the SO(3) discs; ``None`` skips them.
    disc_resolution : disc grid size (about ``0.785 * disc_resolution**2`` axes).

    Returns
    -------
    AuditReport
    """
    t0 = time.time()
    meta = dict(meta or {})
    usable, skipped = [], []
    from ._groups import get_group
    from ._types import norm_type

    types = _leaf_types(subject.in_types)
    has_pos = any(norm_type(t).kind == "positions" for t in types)
    for g in groups:
        G = get_group(g)
        if G.acts_on == "permutation" and not subject.node_context.get("num_nodes"):
            skipped.append(G.name)
        elif G.acts_on == "translation" and not has_pos:
            skipped.append(G.name)
        else:
            usable.append(G)
    errors = equivariance_errors(subject, usable, n_elements=n_elements, seed=seed)
    sweep = axis_sweep(subject, sweep_axes, n_angles) if n_angles else None
    isweep = axis_sweep(subject, sweep_axes, n_angles, improper=True) if (n_angles and improper_sweep) else None
    disc = disc_sweep(subject, disc_angles, disc_resolution) if disc_angles else None
    meta.update(
        {
            "skipped_groups": skipped,
            "num_samples": subject.num_samples,
            "dtype": str(subject.dtype),
            "seconds": round(time.time() - t0, 3),
            "has_labels": bool(subject.labels),
        }
    )
    report = AuditReport(errors, sweep, isweep, disc, [], meta)
    if out_dir is not None:
        os.makedirs(out_dir, exist_ok=True)
        p = lambda name: os.path.join(out_dir, prefix + name)  # noqa: E731
        files = [_plots.plot_group_bars(errors, p("groups.png"))] if errors else []
        metrics = ["error", "consensus"] + (["task"] if subject.labels else [])
        for k in subject.out_types:
            if sweep is not None:
                rows = [(sweep, m) for m in metrics if k in getattr(sweep, m)]
                rows += [(isweep, "error")] if isweep is not None else []
                files.append(_plots.plot_axis_sweeps(rows, k, p(f"sweep_{k}.png")))
            if disc is not None:
                files.append(_plots.plot_disc_sweep(disc, k, ["error", "consensus"], p(f"disc_{k}.png")))
        report.files = files
        path = p("audit.json")
        report.files.append(path)
        from .._paths import atomic_output

        with atomic_output(path, "w") as f:  # no half-written report; a symlink's target replaced
            json.dump(report.to_dict(), f, indent=1)
    return report


__all__ = ["AuditReport", "DEFAULT_GROUPS", "GroupErrors", "run_audit"]
