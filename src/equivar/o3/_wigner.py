"""Wigner-D matrices, Clebsch-Gordan (Wigner 3j) and Gaunt coefficients in e3nn's real basis.

The real basis is fixed by e3nn's change of basis from the complex
spherical harmonics (``change_basis_real_to_complex``, including its
``(-i)^l`` phase that makes the coupling coefficients real) and the polar
axis y. ``wigner_3j(l1, l2, l3)`` equals ``e3nn.o3.wigner_3j``: the
SU(2) Clebsch-Gordan coefficients (Racah's formula, exact rational
arithmetic) rotated into the real basis and scaled to unit Frobenius norm.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch

from ._limits import check_degree as _check_l
from ._quadrature import sphere_grid
from ._rotation import angles_to_matrix, check_rotation
from ._sh_kernel import harmonics


def _triangle(l1: int, l2: int, l3: int) -> bool:
    return abs(l1 - l2) <= l3 <= l1 + l2


@functools.cache
def change_basis_real_to_complex_np(l: int) -> np.ndarray:
    q = np.zeros((2 * l + 1, 2 * l + 1), dtype=np.complex128)
    s = 1 / math.sqrt(2)
    for m in range(-l, 0):
        q[l + m, l + abs(m)] = s
        q[l + m, l - abs(m)] = -1j * s
    q[l, l] = 1
    for m in range(1, l + 1):
        q[l + m, l + abs(m)] = (-1) ** m * s
        q[l + m, l - abs(m)] = 1j * (-1) ** m * s
    return (-1j) ** l * q


def change_basis_real_to_complex(l: int, dtype=torch.complex128, device=None) -> torch.Tensor:
    """Unitary ``Q [2l+1, 2l+1]`` with ``Y_complex = Q @ Y_real`` (e3nn's, with its ``(-i)^l`` phase)."""
    _check_l(l)
    return torch.tensor(change_basis_real_to_complex_np(l), dtype=dtype, device=device)


def _su2_cg_coeff(j1, m1, j2, m2, j3, m3) -> float:
    """<j1 m1 j2 m2 | j3 m3> by Racah's formula, in exact integer arithmetic.

    The alternating sum is accumulated over a common integer denominator,
    so the only rounding is the final (correctly rounded) division and the
    square root.
    """
    if m3 != m1 + m2:
        return 0.0
    f = math.factorial
    vmin = int(max(-j1 + j2 + m3, -j1 + m1, 0))
    vmax = int(min(j2 + j3 + m1, j3 - j1 + j2, j3 + m3))
    if vmax < vmin:
        return 0.0
    c_num = (2 * j3 + 1) * f(j3 + j1 - j2) * f(j3 - j1 + j2) * f(j1 + j2 - j3) * f(j3 + m3) * f(j3 - m3)
    c_den = f(j1 + j2 + j3 + 1) * f(j1 - m1) * f(j1 + m1) * f(j2 - m2) * f(j2 + m2)
    nums, dens = [], []
    for v in range(vmin, vmax + 1):
        nums.append((-1) ** int(v + j2 + m2) * f(j2 + j3 + m1 - v) * f(j1 - m1 + v))
        dens.append(f(v) * f(j3 - j1 + j2 - v) * f(j3 + m3 - v) * f(v + j1 - j2 - m3))
    lcm = math.lcm(*dens)
    s_num = sum(n * (lcm // d) for n, d in zip(nums, dens))
    if s_num == 0:
        return 0.0
    value = math.sqrt((c_num * s_num * s_num) / (c_den * lcm * lcm))
    return value if s_num > 0 else -value


@functools.cache
def _su2_cg_np(l1: int, l2: int, l3: int) -> np.ndarray:
    C = np.zeros((2 * l1 + 1, 2 * l2 + 1, 2 * l3 + 1))
    for m1 in range(-l1, l1 + 1):
        for m2 in range(-l2, l2 + 1):
            m3 = m1 + m2
            if abs(m3) <= l3:
                C[l1 + m1, l2 + m2, l3 + m3] = _su2_cg_coeff(l1, m1, l2, m2, l3, m3)
    return C


@functools.cache
def wigner_3j_np(l1: int, l2: int, l3: int) -> np.ndarray:
    """:func:`wigner_3j` as a cached, read-only float64 NumPy array, all zeros off the triangle rule.

    ``[2l1+1, 2l2+1, 2l3+1]``; no range check (callers building tensor
    products validate their irreps first). The form the tensor-product
    backends and the symmetric-contraction basis build their constants from.
    """
    if not _triangle(l1, l2, l3):
        return np.zeros((2 * l1 + 1, 2 * l2 + 1, 2 * l3 + 1))
    Q1 = change_basis_real_to_complex_np(l1)
    Q2 = change_basis_real_to_complex_np(l2)
    Q3 = change_basis_real_to_complex_np(l3)
    C = _su2_cg_np(l1, l2, l3).astype(np.complex128)
    C = np.einsum("ij,kl,mn,ikn->jlm", Q1, Q2, np.conj(Q3.T), C, optimize=True)
    assert np.abs(C.imag).max() < 1e-8
    C = C.real
    C = C / np.linalg.norm(C)
    C[np.abs(C) < 1e-14] = 0.0  # exact zeros where the selection rules say so
    C.setflags(write=False)
    return C


def wigner_3j(l1: int, l2: int, l3: int, dtype=None, device=None) -> torch.Tensor:
    r"""Real Clebsch-Gordan coefficients ``C [2l1+1, 2l2+1, 2l3+1]`` (e3nn's ``wigner_3j``).

    Invariant: ``einsum('ijk,ia,jb,kc->abc', C, D1, D2, D3) == C`` for all
    rotations; unit Frobenius norm. Cached.

    Raises ``ValueError`` if a degree is negative or above ``MAX_L``, or if
    the triple violates the triangle rule ``|l1-l2| <= l3 <= l1+l2`` (no
    coupling exists; e3nn raises too).
    """
    _check_l(l1, l2, l3)
    if not _triangle(l1, l2, l3):
        raise ValueError(
            f"wigner_3j({l1}, {l2}, {l3}): the degrees violate the triangle rule "
            f"|l1-l2| <= l3 <= l1+l2 (no coupling exists)"
        )
    return torch.tensor(wigner_3j_np(l1, l2, l3), dtype=dtype or torch.get_default_dtype(), device=device)


@functools.cache
def _gaunt_np(l1: int, l2: int, l3: int) -> np.ndarray:
    shape = (2 * l1 + 1, 2 * l2 + 1, 2 * l3 + 1)
    if (l1 + l2 + l3) % 2 == 1 or not _triangle(l1, l2, l3):
        return np.zeros(shape)
    g = sphere_grid(l1 + l2 + l3, dtype=torch.float64)
    Y = [harmonics([l], g.points, True, "integral").numpy() for l in (l1, l2, l3)]
    G = np.einsum("n,ni,nj,nk->ijk", g.weights.numpy(), *Y, optimize=True)
    G[np.abs(G) < 1e-13] = 0.0
    G.setflags(write=False)
    return G


def gaunt(l1: int, l2: int, l3: int, dtype=None, device=None) -> torch.Tensor:
    r"""Gaunt coefficients ``G_{m1 m2 m3} = int Y_l1m1 Y_l2m2 Y_l3m3 dOmega``.

    With the orthonormal ('integral') real harmonics of e3nn's basis;
    ``[2l1+1, 2l2+1, 2l3+1]``. Exactly zero unless ``l1+l2+l3`` is even and
    the triangle inequality holds; otherwise proportional to
    ``wigner_3j(l1, l2, l3)``. Computed by an exact quadrature; cached.
    """
    _check_l(l1, l2, l3)
    return torch.tensor(_gaunt_np(l1, l2, l3), dtype=dtype or torch.get_default_dtype(), device=device)


@functools.cache
def _so3_generators_np(l: int) -> np.ndarray:
    j = l
    m = np.arange(-j, j)
    raising = np.diag(-np.sqrt(j * (j + 1) - m * (m + 1)), k=-1)
    m = np.arange(-j + 1, j + 1)
    lowering = np.diag(np.sqrt(j * (j + 1) - m * (m - 1)), k=1)
    m = np.arange(-j, j + 1)
    X = np.stack([0.5 * (raising + lowering), np.diag(1j * m), -0.5j * (raising - lowering)])
    Q = change_basis_real_to_complex_np(l)
    X = np.conj(Q.T) @ X @ Q
    return X.real


def so3_generators(l: int, dtype=None, device=None) -> torch.Tensor:
    """Real generators ``[3, 2l+1, 2l+1]`` (about x, y, z) in e3nn's basis."""
    _check_l(l)
    return torch.tensor(_so3_generators_np(l), dtype=dtype or torch.get_default_dtype(), device=device)


def wigner_D(l: int, R: torch.Tensor) -> torch.Tensor:
    r"""Wigner-D matrix of degree ``l`` for proper rotations ``R [..., 3, 3]``.

    Returns ``D [..., 2l+1, 2l+1]`` with ``Y_l(R x) = D(R) Y_l(x)`` for the
    spherical harmonics of this module (e3nn's basis), hence
    ``D(R1 R2) = D(R1) D(R2)``. Any ``l`` up to ``MAX_L``. Computed by
    projecting rotated harmonics on a quadrature grid exact for degree
    ``2l`` (in float64, cast back to ``R.dtype``); differentiable in ``R``.

    For an improper ``R`` use ``Irrep.D_from_matrix`` (parity). Raises
    ``ValueError`` if ``R`` is not orthogonal or has det -1.
    """
    _check_l(l)
    check_rotation(R)
    if R.numel() and (torch.linalg.det(R.detach()) < 0).any():
        raise ValueError("wigner_D needs proper rotations (det +1); use Irrep.D_from_matrix for improper ones")
    if l == 0:
        return torch.ones(R.shape[:-2] + (1, 1), dtype=R.dtype, device=R.device)
    g = sphere_grid(2 * l, dtype=torch.float64, device=R.device)
    R64 = R.to(torch.float64)
    Yx = harmonics([l], g.points, True, "integral")  # [n, d]
    Yrx = harmonics([l], torch.einsum("...ij,nj->...ni", R64, g.points), True, "integral")
    D = torch.einsum("n,...ni,nj->...ij", g.weights, Yrx, Yx)
    return D.to(R.dtype)


def wigner_D_from_angles(l: int, alpha, beta, gamma) -> torch.Tensor:
    """Wigner-D for e3nn Euler angles (``R = Y(alpha) X(beta) Y(gamma)``)."""
    return wigner_D(l, angles_to_matrix(torch.as_tensor(alpha), torch.as_tensor(beta), torch.as_tensor(gamma)))
