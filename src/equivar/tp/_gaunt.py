"""``gaunt`` backend: the Gaunt tensor product through the 2D Fourier basis and FFTs.

Luo, Chen, Zhang, "Enabling Efficient Equivariant Operations in the Fourier
Basis via Gaunt Tensor Products" (ICLR 2024): the coefficients of each input
are read as a function on the sphere, converted to 2D Fourier coefficients
``F[u, v]`` of ``exp(i (u beta + v alpha))`` (a fixed, precomputed change of
basis), the product of the two functions is the 2D convolution of the
coefficient arrays, computed with ``torch.fft`` (``irfft2`` to values on an
equispaced torus grid, pointwise product, ``rfft2`` back), and the result is
converted back to spherical harmonics with the exact matrix of
``int_{S^2} exp(i (u beta + v alpha)) Y_l3m3 dOmega``
(:func:`equivar.tp._fourier.sphere_projection`).

Exactness: the FFT sizes are chosen so that the convolution is exact: a
product of degrees ``L1``, ``L2`` has ``beta``-frequencies up to ``L1 + L2``,
all of which the back-conversion needs, so ``n_beta = 2 (L1 + L2) + 1``; only
the ``alpha``-frequencies ``|v| <= L3`` are needed, so
``n_alpha = L1 + L2 + L3 + 1`` suffices (higher ones may alias onto
frequencies that are not used). The result equals the ``s2grid`` backend and
the Gaunt coefficients to rounding.

Cost: ``O(L^2 log L)`` per channel for the FFTs plus dense changes of basis
of ``O(L^3)``; on CPUs at small ``L`` the ``s2grid`` backend (fewer grid
points, GEMMs only) is much faster (measured, 1 thread, 4096 x 32 channels,
S configuration: 10x slower than ``s2grid`` at L = 3 and 6). Instruction
sets where every path has its own output block (the MACE edge product) need
one FFT product per path and are slow here; use ``cg`` for those. Weight forms, normalization and the
parity-complete vector product are those of :mod:`equivar.tp._gaunt_plan`.
"""

from __future__ import annotations

import numpy as np
import torch

from ._fourier import fourier_coefficients, sphere_projection
from ._gaunt_plan import EVEN, GauntFamilyBackend


class GauntBackend(GauntFamilyBackend):
    r"""Fourier-basis Gaunt tensor product (``backend='gaunt'``).

    ``TensorProduct(irreps_in1, irreps_in2, irreps_out, instructions,
    backend='gaunt', **options)`` with the options of
    :class:`~equivar.tp._gaunt_plan.GauntFamilyBackend` (``weight_form``,
    ``weight_parts``, ``parity_complete``).

    Shapes: ``forward(x1 [Z, dim1], x2 [Z, dim2], weight) -> [Z, dim_out]``,
    float32 or float64, any device; differentiable twice.

    Raises ``ValueError`` for unknown option values, and (through
    ``TensorProduct``) for inputs other than float32/float64: the FFTs have no
    half-precision CPU kernels.
    """

    supported_dtypes = (torch.float32, torch.float64)

    def _build(self) -> None:
        self._meta = []
        for idx, pr in enumerate(self.products):
            r1, r2, co = self._layout(idx)
            L1 = max(self.irreps_in1[i].ir.l for i in pr.A)
            L2 = max(self.irreps_in2[i].ir.l for i in pr.B)
            L3 = max(t.l3 for t in pr.targets)
            nb = 2 * (L1 + L2) + 1
            na = max(L1 + L2 + L3 + 1, 2 * max(L1, L2) + 1)
            K = 1 if pr.kind == EVEN else 3
            for side, rows, Lc, irreps, field in (
                (1, r1, L1, self.irreps_in1, "Y" if K == 1 else "Q"),
                (2, r2, L2, self.irreps_in2, "Y" if K == 1 else "G"),
            ):
                n = 2 * Lc + 1
                T = np.zeros((len(rows), K, n, Lc + 1), dtype=complex)
                for r, (i, c) in enumerate(rows):
                    l = irreps[i].ir.l
                    F = fourier_coefficients(l, field, Lc)  # [K*d, n, n] component-major
                    d = 2 * l + 1
                    for k in range(K):
                        T[r, k] = F[k * d + c][:, : Lc + 1]
                T = np.stack([T.real, T.imag], -1).reshape(len(rows), -1)
                self.register_constant(f"_T{side}_{idx}", T)
            P = np.concatenate(
                [sphere_projection(pr.targets[t].l3, nb, L3)[:, [c]] * pr.targets[t].const for t, c in co], 1
            )
            self.register_constant(f"_P_{idx}", P)
            self._meta.append((K, L1, L2, L3, nb, na))
        self.fft_shapes = [(m[4], m[5]) for m in self._meta]

    @staticmethod
    def _to_torus(C: torch.Tensor, Lc: int, nb: int, na: int) -> torch.Tensor:
        """Complex ``C [..., 2Lc+1 (u, FFT order), Lc+1 (v >= 0)]`` -> real values ``[..., nb, na]``."""
        n = 2 * Lc + 1
        if nb > n:
            pad = C.new_zeros(C.shape[:-2] + (nb - n, C.shape[-1]))
            C = torch.cat([C[..., : Lc + 1, :], pad, C[..., Lc + 1 :, :]], -2)
        return torch.fft.irfft2(C, s=(nb, na), norm="forward")

    def _run(self, index: int, X1: list, X2: list) -> list:
        return [self._product(index, X1[0], X2[0])]

    def _product(self, index: int, X1: torch.Tensor, X2: torch.Tensor) -> torch.Tensor:
        K, L1, L2, L3, nb, na = self._meta[index]
        dt = X1.dtype
        Z, U = X1.shape[0], X1.shape[1]
        T1 = getattr(self, f"_T1_{index}").to(dt)
        T2 = getattr(self, f"_T2_{index}").to(dt)
        P = getattr(self, f"_P_{index}").to(dt)
        if Z == 0:  # MKL's FFT refuses empty batches; keep the graph connected
            return X1.new_zeros(0, U, P.shape[1]) + 0 * (X1.sum() + X2.sum())
        C1 = torch.view_as_complex((X1 @ T1).view(Z, U, K, 2 * L1 + 1, L1 + 1, 2))
        C2 = torch.view_as_complex((X2 @ T2).view(Z, X2.shape[1], K, 2 * L2 + 1, L2 + 1, 2))
        h = (self._to_torus(C1, L1, nb, na) * self._to_torus(C2, L2, nb, na)).sum(2)  # [Z, U, nb, na]
        F = torch.fft.rfft2(h, norm="forward")[..., : L3 + 1]
        return torch.view_as_real(F).reshape(Z, U, -1) @ P

    def resolution(self) -> dict:
        """FFT sizes per product (exact for the products' band limits) and the weight form."""
        return {
            "fft_shapes": self.fft_shapes,
            "exact": True,
            "weight_form": self.weight_form,
            "products": len(self.products),
        }


from ._registry import register_backend  # noqa: E402

register_backend("gaunt", GauntBackend)
