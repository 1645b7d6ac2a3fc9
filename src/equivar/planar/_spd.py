"""Closed forms for 2 x 2 symmetric matrices: exp, log and square root of SPD matrices, polar decomposition.

A symmetric ``S = a I + [[b1, b2], [b2, -b1]]`` has eigenvalues ``a +- r``
with ``r = sqrt(b1^2 + b2^2)``; its traceless part ``B`` obeys ``B^2 = r^2 I``,
so ``exp(S) = e^a (cosh r I + sinh r / r B)``. No eigen-solver, exact to
rounding, batched over leading axes.
"""

from __future__ import annotations

import torch


def sym_from_coords(a: torch.Tensor, b1: torch.Tensor, b2: torch.Tensor) -> torch.Tensor:
    """``a I + [[b1, b2], [b2, -b1]]`` -> ``[..., 2, 2]``."""
    return torch.stack([torch.stack([a + b1, b2], -1), torch.stack([b2, a - b1], -1)], -2)


def sym_coords(S: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Inverse of :func:`sym_from_coords` for symmetric ``S [..., 2, 2]``: ``(a, b1, b2)``."""
    a = (S[..., 0, 0] + S[..., 1, 1]) / 2
    b1 = (S[..., 0, 0] - S[..., 1, 1]) / 2
    return a, b1, (S[..., 0, 1] + S[..., 1, 0]) / 2


def _sinhc(r: torch.Tensor) -> torch.Tensor:
    """``sinh(r) / r`` (1 at r = 0), stable for small r."""
    small = r < 1e-4
    rs = torch.where(small, torch.ones_like(r), r)
    return torch.where(small, 1 + r * r / 6, torch.sinh(rs) / rs)


def sym_expm(S: torch.Tensor) -> torch.Tensor:
    """``exp(S)`` of symmetric ``S [..., 2, 2]`` (an SPD matrix)."""
    a, b1, b2 = sym_coords(S)
    r = torch.sqrt(b1 * b1 + b2 * b2)
    c, s = torch.cosh(r), _sinhc(r)
    ea = torch.exp(a)
    return sym_from_coords(ea * c, ea * s * b1, ea * s * b2)


def spd_logm(P: torch.Tensor) -> torch.Tensor:
    """``log(P)`` of SPD ``P [..., 2, 2]`` (symmetric). Inverse of :func:`sym_expm`."""
    a, b1, b2 = sym_coords(P)
    rho = torch.sqrt(b1 * b1 + b2 * b2)  # eigenvalues a +- rho, both > 0
    la = 0.5 * (torch.log(a + rho) + torch.log(a - rho))
    r = 0.5 * (torch.log(a + rho) - torch.log(a - rho))  # = atanh(rho / a)
    scale = torch.where(rho > 0, r / torch.where(rho > 0, rho, torch.ones_like(rho)), 1 / a)
    return sym_from_coords(la, scale * b1, scale * b2)


def spd_sqrtm(M: torch.Tensor) -> torch.Tensor:
    """Square root of SPD ``M [..., 2, 2]``: ``(M + sqrt(det M) I) / sqrt(tr M + 2 sqrt(det M))``."""
    s = torch.sqrt(torch.linalg.det(M))
    tau = torch.sqrt(M[..., 0, 0] + M[..., 1, 1] + 2 * s)
    eye = torch.eye(2, dtype=M.dtype, device=M.device)
    return (M + s[..., None, None] * eye) / tau[..., None, None]


def polar(g: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Left polar decomposition ``g = P R`` of ``g [..., 2, 2]`` with ``det g > 0``.

    ``P = (g g^T)^(1/2)`` is symmetric positive definite and ``R = P^-1 g``
    a rotation (``SO(2)``); unique. Mironenco & Forre (2024), Sec. 4 / App. B.7:
    ``GL+(n) = SPD(n) x SO(n)`` and ``SL(n) = SSPD(n) x SO(n)`` (``SSPD``:
    SPD with determinant 1) as manifolds.
    """
    P = spd_sqrtm(g @ g.transpose(-1, -2))
    return P, torch.linalg.solve(P, g)
