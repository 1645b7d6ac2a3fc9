"""Equivariance audits of any PyTorch callable: errors per group, orbit sweeps, plots.

Sources: Zhao, Matsuzawa, Irvine, Maire, Kindlmann, "Evaluating Machine
Learning Models with NERO: Non-Equivariance Revealed on Orbits" (2023) for
orbit sweeps, polar / disc plots and consensus scoring.

Workflow::

    from equivar.symmetry import audit
    s = audit.Subject.batched(model, [pos], [Typed("positions", nodes=True, node_axis=1)], "0e")
    errs = audit.equivariance_errors(s, ["SO3", "O3", "Oh", "D4(z)", "translations", "permutations"])
    sweep = audit.axis_sweep(s)                     # NERO: metric vs angle about x, y, z
    report = audit.run_audit(s, "out/")              # everything, PNGs + audit.json

For an ``equivar`` potential: ``audit.potential_subject(model, batch)``.
Types are those of :mod:`equivar.symmetry._types` (a superset of
:mod:`equivar.testing`'s).
"""

from ._errors import GroupErrors, equivariance_errors, errors_for_elements, group_elements
from ._plots import plot_axis_sweep, plot_axis_sweeps, plot_disc_sweep, plot_group_bars
from ._report import DEFAULT_GROUPS, AuditReport, run_audit
from ._subject import Subject, potential_subject
from ._sweeps import AxisSweep, DiscSweep, axis_sweep, disc_axes, disc_sweep

__all__ = [
    "AuditReport",
    "AxisSweep",
    "DEFAULT_GROUPS",
    "DiscSweep",
    "GroupErrors",
    "Subject",
    "axis_sweep",
    "disc_axes",
    "disc_sweep",
    "equivariance_errors",
    "errors_for_elements",
    "group_elements",
    "plot_axis_sweep",
    "plot_axis_sweeps",
    "plot_disc_sweep",
    "plot_group_bars",
    "potential_subject",
    "run_audit",
]
