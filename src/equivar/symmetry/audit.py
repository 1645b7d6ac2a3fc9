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

For an ``equivar`` potential: ``audit.potential_subject(model, batch)``;
non-equivariant baselines to compare with: :class:`FlatMLPPotential`
(fitted by :func:`fit_flat_mlp`) and :class:`PositionsPotential`.
For an image model: ``s = audit.Subject.batched(model, [images], ["image"], "invariant")``, then
``audit.equivariance_errors(s, ["planar:shifts", "planar:C4", "planar:SL2"])``,
``audit.shift_sweep(s)`` (every circular shift) and ``audit.flow_sweep(s, "rotation")``.
Types are those of :func:`equivar.symmetry.norm_type` (the same as
:mod:`equivar.testing`'s).
"""

from ._baselines import FlatMLPPotential, PositionsPotential, fit_flat_mlp
from ._errors import GroupErrors, equivariance_errors, errors_for_elements, group_elements
from ._image_sweeps import FlowSweep, ShiftSweep, flow_sweep, plot_flow_sweeps, plot_shift_sweep, shift_sweep
from ._plots import plot_axis_sweep, plot_axis_sweeps, plot_disc_sweep, plot_group_bars
from ._report import DEFAULT_GROUPS, AuditReport, run_audit
from ._subject import Subject, potential_subject
from ._sweeps import AxisSweep, DiscSweep, axis_sweep, disc_axes, disc_sweep

__all__ = [
    "AuditReport",
    "AxisSweep",
    "DEFAULT_GROUPS",
    "DiscSweep",
    "FlatMLPPotential",
    "FlowSweep",
    "ShiftSweep",
    "GroupErrors",
    "PositionsPotential",
    "Subject",
    "axis_sweep",
    "disc_axes",
    "disc_sweep",
    "equivariance_errors",
    "errors_for_elements",
    "fit_flat_mlp",
    "flow_sweep",
    "group_elements",
    "plot_axis_sweep",
    "plot_axis_sweeps",
    "plot_disc_sweep",
    "plot_flow_sweeps",
    "plot_group_bars",
    "potential_subject",
    "run_audit",
    "shift_sweep",
    "plot_shift_sweep",
]
