"""Model-agnostic symmetry tools: audits on orbits, frame averaging, soft-equivariance regularizers.

- :mod:`equivar.symmetry.audit` - relative equivariance errors of any
  callable with typed inputs/outputs per group, sample and output; NERO orbit
  sweeps (polar and SO(3) disc plots), consensus scoring, JSON reports
  (CLI: ``equivar audit``).
- :class:`FrameAveraging` - makes any backbone exactly O(3) / SO(3) / E(3) /
  SE(3) equivariant with PCA frames, including degenerate point clouds.
- :mod:`equivar.symmetry.regularizers` - distance of linear layers from the
  equivariant subspace, orbit consistency, and automatically tuned strengths
  for several candidate groups.

Types (how tensors transform) and groups (SO3, O3, SO2(axis), Cn, Dn, T, Td,
O, Oh, I, Ih, Ci, translations, permutations) are shared by all three.
"""

from . import _planar, audit, regularizers  # noqa: F401  (_planar registers the planar: groups)
from ._frame_averaging import FrameAveraging
from ._frames import FrameSet, frame_set
from ._groups import O3, SO2, SO3, FiniteGroup, Group, Permutations, RotationGroup, Translations, get_group
from ._types import GroupElement, Typed, act, act_all, blocks, norm_type

__all__ = [
    "FiniteGroup",
    "FrameAveraging",
    "FrameSet",
    "Group",
    "GroupElement",
    "O3",
    "Permutations",
    "RotationGroup",
    "SO2",
    "SO3",
    "Translations",
    "Typed",
    "act",
    "act_all",
    "blocks",
    "audit",
    "frame_set",
    "get_group",
    "norm_type",
    "regularizers",
]
