"""An ``e3nn.o3`` made of equivar: e3nn 0.6's own o3 tests run against it (see ``conftest.py`` in ``upstream/``).

``install()`` imports the real e3nn package (its test helpers, ``e3nn.util.test``, are the harness), then
replaces ``e3nn.o3`` everywhere the tests and the helpers look it up by a module whose names are equivar's
objects. Nothing of e3nn's o3 implementation is used once installed. Adaptations, all interface-level:

- ``TensorProduct`` / ``FullyConnectedTensorProduct`` re-raise equivar's ``ValueError`` for an invalid
  path as ``AssertionError``: e3nn signals it that way and its tests use it to discard random cases;
- ``wigner_D(l, alpha, beta, gamma)`` is equivar's ``wigner_D_from_angles`` (equivar's ``wigner_D`` takes a
  matrix);
- ``spherical_harmonics`` / ``SphericalHarmonics`` default to e3nn's ``normalization='integral'`` (equivar's
  default is ``'component'``, MACE's and NequIP's choice);
- the ``irrep`` namespace (``irrep.l1o``, ...) is built from equivar's ``Irrep``;
- equivar's ``Irreps`` class gets e3nn's ``_e3nn_irreps_marker`` attribute, by which e3nn's test helpers
  recognise an irreps object.
"""

from __future__ import annotations

import sys
import types

import equivar.o3 as eo3
import equivar.tp as etp

#: e3nn.o3 names taken from equivar.o3 when equivar defines them (missing ones stay missing: the tests
#: needing them fail and are listed in conftest.EXCLUDED with that reason)
O3_NAMES = [
    "Irrep",
    "Irreps",
    "wigner_3j",
    "wigner_D",
    "spherical_harmonics",
    "SphericalHarmonics",
    "su2_generators",
    "so3_generators",
    "change_basis_real_to_complex",
    "rand_matrix",
    "rand_angles",
    "rand_quaternion",
    "rand_axis_angle",
    "identity_angles",
    "compose_angles",
    "compose_quaternion",
    "compose_axis_angle",
    "inverse_angles",
    "matrix_x",
    "matrix_y",
    "matrix_z",
    "angles_to_matrix",
    "matrix_to_angles",
    "angles_to_xyz",
    "xyz_to_angles",
    "angles_to_quaternion",
    "angles_to_axis_angle",
    "axis_angle_to_angles",
    "axis_angle_to_matrix",
    "axis_angle_to_quaternion",
    "matrix_to_axis_angle",
    "matrix_to_quaternion",
    "quaternion_to_angles",
    "quaternion_to_axis_angle",
    "quaternion_to_matrix",
]


def _invalid_as_assertion(cls):
    class Adapted(cls):
        def __init__(self, *args, **kwargs):
            try:
                super().__init__(*args, **kwargs)
            except ValueError as e:
                raise AssertionError(str(e)) from e

    Adapted.__name__ = Adapted.__qualname__ = cls.__name__
    return Adapted


def build() -> tuple[types.ModuleType, types.ModuleType]:
    """The ``e3nn.o3`` and ``e3nn.o3.irrep`` replacement modules."""
    o3 = types.ModuleType("e3nn.o3", "equivar re-exported under e3nn.o3's names (test shim)")
    for name in O3_NAMES:
        if hasattr(eo3, name):
            setattr(o3, name, getattr(eo3, name))
    o3.wigner_D = eo3.wigner_D_from_angles

    def spherical_harmonics(l, x, normalize, normalization="integral"):
        return eo3.spherical_harmonics(l, x, normalize, normalization)

    class SphericalHarmonics(eo3.SphericalHarmonics):
        def __init__(self, irreps_out, normalize, normalization="integral", irreps_in=None):
            super().__init__(irreps_out, normalize, normalization, irreps_in)

    o3.spherical_harmonics, o3.SphericalHarmonics = spherical_harmonics, SphericalHarmonics
    o3.TensorProduct = _invalid_as_assertion(etp.TensorProduct)
    o3.FullyConnectedTensorProduct = _invalid_as_assertion(etp.FullyConnectedTensorProduct)
    irrep = types.ModuleType("e3nn.o3.irrep", "l0e, l0o, l1y, ... as equivar Irrep objects")
    for l in range(12):
        for p, s in ((1, "e"), (-1, "o")):
            setattr(irrep, f"l{l}{s}", eo3.Irrep(l, p))
        setattr(irrep, f"l{l}y", eo3.Irrep(l, (-1) ** l))
    o3.irrep = irrep
    return o3, irrep


def install() -> types.ModuleType:
    """Make ``e3nn.o3`` resolve to the equivar shim for the tests and e3nn's test helpers; returns it."""
    import e3nn
    import e3nn.util._argtools as argtools
    import e3nn.util.test as e3nn_test

    o3, irrep = build()
    eo3.Irreps._e3nn_irreps_marker = True
    sys.modules["e3nn.o3"] = o3
    sys.modules["e3nn.o3.irrep"] = irrep
    e3nn.o3 = o3
    e3nn_test.o3 = o3
    argtools.Irreps = o3.Irreps
    return o3
