"""pytest mixin: every potential check of :mod:`equivar.testing._potential` as tests of one model factory.

Needs pytest (imported here only; ``import equivar.testing`` does not need it).
"""

from __future__ import annotations

import pytest
import torch

from . import _potential as kit

_BOTH = pytest.mark.parametrize("kit_dtype", [torch.float32, torch.float64], ids=["float32", "float64"])


class PotentialTestKit:
    """Subclass in a test module and provide :meth:`make_model`; pytest collects the checks.

    After NequIP's model test mixins::

        from equivar.testing import PotentialTestKit

        class TestMyPotential(PotentialTestKit):
            def make_model(self, dtype):
                return MyPotential(atomic_numbers=[1, 6, 8], r_max=4.0, dtype=dtype)

    gives: O(3) (with parity), translation and permutation equivariance of
    energy, forces, node energies and stress (float32 and float64); forces
    against finite differences and stress/virials against finite strain
    (float64); batch consistency; the isolated-atom energy; continuity at the
    cutoff (float64); hparams and checkpoint round trips; native kernels vs
    PyTorch on the training gradient. Override a ``test_kit_*`` method to
    skip or adapt one check (e.g. a looser ``tolerance`` for an approximate
    tensor-product backend, with the reason in its docstring).
    """

    #: relative tolerance of the equivariance, batching, isolated-atom and round-trip checks per dtype
    #: (None: 1e-4 float32, 1e-9 float64)
    kit_tolerance: dict = {}

    def make_model(self, dtype: torch.dtype) -> torch.nn.Module:
        raise NotImplementedError("PotentialTestKit: define make_model(self, dtype) returning the model")

    def _tol(self, dtype):
        return self.kit_tolerance.get(dtype)

    @_BOTH
    def test_kit_symmetry(self, kit_dtype):
        kit.check_symmetry(self.make_model(kit_dtype), tolerance=self._tol(kit_dtype))

    def test_kit_forces_finite_differences(self):
        kit.check_forces_finite_differences(self.make_model(torch.float64))

    def test_kit_stress_finite_strain(self):
        kit.check_stress_finite_strain(self.make_model(torch.float64))

    @_BOTH
    def test_kit_batch_consistency(self, kit_dtype):
        kit.check_batch_consistency(self.make_model(kit_dtype), tolerance=self._tol(kit_dtype))

    @_BOTH
    def test_kit_isolated_atoms(self, kit_dtype):
        kit.check_isolated_atoms(self.make_model(kit_dtype), tolerance=self._tol(kit_dtype))

    def test_kit_cutoff_smoothness(self):
        kit.check_cutoff_smoothness(self.make_model(torch.float64))

    @_BOTH
    def test_kit_hparams_roundtrip(self, kit_dtype):
        kit.check_hparams_roundtrip(self.make_model(kit_dtype), tolerance=self._tol(kit_dtype))

    @_BOTH
    def test_kit_checkpoint_roundtrip(self, kit_dtype, tmp_path):
        kit.check_checkpoint_roundtrip(
            self.make_model(kit_dtype), directory=str(tmp_path), tolerance=self._tol(kit_dtype)
        )

    @_BOTH
    def test_kit_native_training_gradient(self, kit_dtype):
        kit.check_native_training_gradient(self.make_model(kit_dtype), tolerance=self._tol(kit_dtype))
