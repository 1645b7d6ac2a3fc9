"""Groups acting on images and sequences: translations, rotations, scalings, GL+(2) / SL(2), affine maps, flows.

Every group has the same interface (:class:`PlanarGroup`): ``identity()``,
``compose(a, b)``, ``inverse(a)``, ``act(g, image)``, ``sample(n,
generator)``, ``elements()`` for finite groups and ``exp(xi)`` where a flow can
be generated. Images are ``[..., H, W]``; points of the plane are ``(row,
col)`` pixel coordinates about the image centre (:mod:`._resample`).

Exact on the pixel grid: :class:`CircularShifts` (``Z_H x Z_W``),
:class:`IntegerShifts` (``Z^2``, zero fill), :class:`CyclicRotations` with
``n`` in (1, 2, 4). Approximate (bilinear resampling, :func:`warp`):
:class:`SO2`, other ``C_n``, :class:`Scalings`, :class:`GLPlus2`,
:class:`SL2` and the semidirect products :class:`Affine` (``R^2 x| G``).
``GLPlus2`` / ``SL2`` use the Lie group decomposition of Mironenco & Forre
(ICLR 2024): ``g = P R`` with ``P`` SPD and ``R`` a rotation, with Haar
Monte-Carlo sampling (:meth:`GLPlus2.sample_haar`). :class:`Flow`: a velocity
generating a one-parameter subgroup acting on sequences over time (Keller,
FERNN 2025); :func:`velocity_grid` / :func:`flow_roll`: the
velocity set and the flow step of a velocity-lifted hidden state. Polyphase sampling: :func:`anchor`, :func:`aps_downsample`
(Chaman & Dokmanic 2021; Ding et al. 2023), exactly equivariant to circular
shifts. Group convolutions on ``p4 = Z^2 x| C4``: :class:`LiftingConvP4`,
:class:`GroupConvP4`, :func:`group_pool` (Cohen & Welling 2016), exact;
:func:`spatial_max_pool` and :func:`global_pool` for their down-sampling and read-out.
Monte-Carlo lifting to ``R^2 x| G`` with a kernel MLP on transformed grids:
:class:`AffineLiftingConv` and the group convolution between sampled elements
:class:`AffineGroupConv` (Mironenco & Forre 2024).

Layer: imports only :mod:`torch` (and nothing above ``o3`` in ``equivar``).

Example
-------
>>> import torch
>>> from equivar.planar import CircularShifts
>>> G = CircularShifts(4, 4)
>>> g, h = torch.tensor([1, 3]), torch.tensor([3, 2])
>>> G.compose(g, h).tolist()
[0, 1]
>>> x = torch.arange(16.0).reshape(4, 4)
>>> torch.equal(G.act(g, G.act(h, x)), G.act(G.compose(g, h), x))
True
"""

from ._affine import Affine, AffineElement
from ._base import PlanarGroup
from ._flows import Flow, flow_roll, velocity_grid
from ._gconv import GroupConvP4, LiftingConvP4, group_pool, rotate_p4
from ._lifting import AffineGroupConv, AffineLiftingConv, KernelMLP
from ._linear import SL2, GLPlus2, HaarSample, Scalings, log_jacobian
from ._matrix import MatrixGroup
from ._polyphase import (
    PolyphaseDownsample,
    anchor,
    aps_downsample,
    polyphase_anchor,
    polyphase_components,
    polyphase_norms,
    polyphase_tie_counts,
    roll_per_sample,
)
from ._pooling import check_pooling, global_pool, spatial_max_pool
from ._resample import pixel_coordinates, warp
from ._rotations import SO2, CyclicRotations, rotation_matrix
from ._spd import polar, spd_logm, spd_sqrtm, sym_expm
from ._translations import CircularShifts, IntegerShifts

__all__ = [
    "Affine",
    "AffineGroupConv",
    "AffineLiftingConv",
    "AffineElement",
    "CircularShifts",
    "CyclicRotations",
    "Flow",
    "GLPlus2",
    "GroupConvP4",
    "LiftingConvP4",
    "HaarSample",
    "IntegerShifts",
    "KernelMLP",
    "MatrixGroup",
    "PlanarGroup",
    "PolyphaseDownsample",
    "SL2",
    "SO2",
    "Scalings",
    "anchor",
    "check_pooling",
    "flow_roll",
    "aps_downsample",
    "log_jacobian",
    "global_pool",
    "group_pool",
    "pixel_coordinates",
    "polar",
    "polyphase_anchor",
    "polyphase_components",
    "polyphase_norms",
    "polyphase_tie_counts",
    "rotation_matrix",
    "roll_per_sample",
    "rotate_p4",
    "spatial_max_pool",
    "spd_logm",
    "spd_sqrtm",
    "sym_expm",
    "velocity_grid",
    "warp",
]
