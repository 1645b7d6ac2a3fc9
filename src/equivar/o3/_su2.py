"""Generators of su(2) in the spin-``j`` representation (integer and half-integer ``j``)."""

from __future__ import annotations

import torch


def su2_generators(j: float, dtype=None, device=None) -> torch.Tensor:
    r"""Anti-Hermitian generators ``X [3, 2j+1, 2j+1]`` (complex) with ``[X_0, X_1] = X_2`` and cyclic.

    ``X_k = -i J_k`` for the angular momentum operators ``J_x, J_y, J_z`` in the basis ``m = -j, ..., j``
    (``J_z = diag(m)``, ``J_+ |m> = sqrt(j(j+1) - m(m+1)) |m+1>``; Condon-Shortley phases).

    Raises ``ValueError`` unless ``2j`` is a non-negative integer.
    """
    if 2 * j != int(2 * j) or j < 0:
        raise ValueError(f"spin j must be a non-negative multiple of 1/2, got {j!r}")
    real = dtype or torch.get_default_dtype()
    cplx = torch.complex128 if real == torch.float64 else torch.complex64
    n = int(round(2 * j)) + 1
    m = torch.arange(n, dtype=torch.float64) - j
    up = torch.zeros(n, n, dtype=torch.float64)
    k = torch.arange(n - 1)
    up[k + 1, k] = torch.sqrt(j * (j + 1) - m[:-1] * (m[:-1] + 1))
    jp, jm = up.to(torch.complex128), up.T.to(torch.complex128)
    jx, jy, jz = (jp + jm) / 2, (jp - jm) / 2j, torch.diag(m).to(torch.complex128)
    return (-1j * torch.stack([jx, jy, jz])).to(dtype=cplx, device=device)
