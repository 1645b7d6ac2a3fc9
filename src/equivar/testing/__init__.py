"""The test kit any model uses.

- Equivariance of any callable with typed inputs and outputs
  (:func:`assert_equivariant`, :func:`equivariance_error`), over
  :mod:`equivar.symmetry`'s typed group actions; a module declaring
  ``irreps_in``/``irreps_out`` needs no types or inputs (e3nn's convention).
- Interatomic potentials (``docs/contracts.md``): :func:`check_potential`
  and the ``check_*`` functions (symmetry, forces and stress against finite
  differences, batching, isolated atoms, smoothness at the cutoff, hparams
  and checkpoint round trips, native kernels vs PyTorch on the training
  gradient), and :class:`PotentialTestKit`, the same as pytest tests for a
  model factory (after NequIP's test mixins; needs pytest).
- Image classifiers: :func:`check_image_model` checks the planar groups a
  model claims (``model.symmetry_groups``) in float32 and float64.
- Next-frame sequence models: :func:`check_sequence_model` checks static
  circular shifts and flows (:func:`flow_equivariance_error`,
  :func:`shift_equivariance_error`) in float32 and float64.
- World models on a partially observed world: :func:`check_world_model`
  checks that a flow of the whole scene (objects and self-motion) leaves the
  imagined frames unchanged (:func:`scene_flow_error`).
"""

from ._equivariance import (
    EquivarianceReport,
    Typed,
    assert_equivariant,
    default_tolerance,
    equivariance_error,
    random_inputs,
)
from ._images import check_image_model, claimed_groups
from ._potential import (
    CHECKS,
    PotentialReport,
    check_batch_consistency,
    check_checkpoint_roundtrip,
    check_cutoff_smoothness,
    check_forces_finite_differences,
    check_hparams_roundtrip,
    check_isolated_atoms,
    check_native_training_gradient,
    check_potential,
    check_stress_finite_strain,
    check_symmetry,
    isolated_atom_energy,
    potential_batch,
    potential_structures,
    relative_error,
)
from ._sequences import check_sequence_model, flow_equivariance_error, shift_equivariance_error
from ._world_models import check_world_model, scene_flow_error

__all__ = [
    "CHECKS",
    "EquivarianceReport",
    "PotentialReport",
    "PotentialTestKit",
    "Typed",
    "assert_equivariant",
    "check_batch_consistency",
    "check_checkpoint_roundtrip",
    "check_cutoff_smoothness",
    "check_forces_finite_differences",
    "check_hparams_roundtrip",
    "check_image_model",
    "check_isolated_atoms",
    "check_native_training_gradient",
    "check_potential",
    "check_sequence_model",
    "check_stress_finite_strain",
    "check_symmetry",
    "check_world_model",
    "claimed_groups",
    "default_tolerance",
    "equivariance_error",
    "flow_equivariance_error",
    "isolated_atom_energy",
    "potential_batch",
    "potential_structures",
    "random_inputs",
    "relative_error",
    "scene_flow_error",
    "shift_equivariance_error",
]


def __getattr__(name):
    if name == "PotentialTestKit":  # imports pytest: only when asked for
        from ._potential_kit import PotentialTestKit

        return PotentialTestKit
    raise AttributeError(f"module 'equivar.testing' has no attribute {name!r}")
