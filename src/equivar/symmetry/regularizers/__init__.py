"""Soft-equivariance regularizers.

- :func:`equivariant_projection` / :class:`EquivariantProjector` - the exact
  projection of a linear map ``rep_in -> rep_out`` onto the equivariant
  subspace of a rotation group (finite, SO(2), SO(3), O(3));
- :func:`linear_penalty` - relative squared distance of an ``nn.Linear`` from
  that subspace;
- :func:`orbit_consistency` - model-agnostic penalty from sampled group
  elements (rotations, translations, permutations);
- :class:`AdaptiveSymmetry` - several candidate groups at once with
  strengths tuned during training (validation rule), revealing which
  symmetries the data obeys and how well.

Sources: Kim, Lee, Yang, Lee, "Regularizing Towards Soft Equivariance Under
Mixed Symmetries" (ICML 2023); Finzi, Benton, Wilson, "Residual Pathway
Priors for Soft Equivariance Constraints" (NeurIPS 2021).
Worked example: ``examples/soft_equivariance.py``.
"""

from ._adaptive import AdaptiveSymmetry, log_strengths
from ._orbit import orbit_consistency, sample_elements
from ._projection import EquivariantProjector, equivariant_projection, linear_penalty

__all__ = [
    "AdaptiveSymmetry",
    "EquivariantProjector",
    "equivariant_projection",
    "linear_penalty",
    "log_strengths",
    "orbit_consistency",
    "sample_elements",
]
