"""O(3): irreps, rotations, Wigner-D, spherical harmonics, Clebsch-Gordan and Gaunt coefficients, sphere quadrature.

Conventions are e3nn's (basis, signs, normalizations, Euler angles), so
tensors and weights are interchangeable with e3nn, MACE and NequIP.
"""

from ._irreps import MAX_L, Irrep, Irreps
from ._quadrature import SphereGrid, sphere_grid
from ._rotation import (
    angles_to_matrix,
    axis_angle_to_matrix,
    check_rotation,
    matrix_to_angles,
    matrix_to_axis_angle,
    matrix_x,
    matrix_y,
    matrix_z,
    quaternion_to_matrix,
    rand_matrix,
    xyz_to_angles,
)
from ._spherical_harmonics import spherical_harmonics
from ._wigner import (
    change_basis_real_to_complex,
    gaunt,
    so3_generators,
    wigner_3j,
    wigner_3j_np,
    wigner_D,
    wigner_D_from_angles,
)

__all__ = [
    "MAX_L",
    "Irrep",
    "Irreps",
    "angles_to_matrix",
    "axis_angle_to_matrix",
    "check_rotation",
    "matrix_to_angles",
    "matrix_to_axis_angle",
    "matrix_x",
    "matrix_y",
    "matrix_z",
    "quaternion_to_matrix",
    "rand_matrix",
    "xyz_to_angles",
    "spherical_harmonics",
    "change_basis_real_to_complex",
    "gaunt",
    "so3_generators",
    "wigner_3j",
    "wigner_3j_np",
    "wigner_D",
    "wigner_D_from_angles",
    "SphereGrid",
    "sphere_grid",
]
