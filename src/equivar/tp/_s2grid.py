"""``s2grid`` backend: the Gaunt tensor product computed on a spherical quadrature grid.

Each input's (weighted) irreps are synthesized as function values on a
Gauss-Legendre x equiangular grid (``equivar.o3.sphere_grid``), multiplied
pointwise channel by channel, and projected back on the harmonics of each
output degree with the quadrature weights. All three steps are dense matrix
products with precomputed ``[(L+1)^2, n_grid]`` matrices, so the work is
a few large GEMMs instead of many small sparse Clebsch-Gordan contractions
(the "spherical grid" product of Price of Freedom, Xie et al., ICML 2025, and
Facet, 2025; the coefficients are Luo et al.'s Gaunt coefficients, ICLR 2024).

Exactness: the grid is exact, not approximate. A path ``(l1, l2, l3)`` needs
``int Y_l1 Y_l2 Y_l3 dOmega``, an integral of a polynomial of degree
``l1 + l2 + l3`` on the sphere; the default grid is the smallest product
grid exact for the band limit ``B = L1 + L2 + L3`` (largest degrees of the
two inputs and the output): ``n_beta = floor(B/2) + 1`` Gauss-Legendre nodes
in ``cos(beta)`` and ``n_alpha = B + 1`` azimuths, ``n_beta * n_alpha``
points (L1 = L2 = L3 = 6: 10 x 19 = 190 points). The vector product of the
parity-complete variant has degree ``l1 + l2 + l3 - 1`` and is exact on the
same grid. Finer grids (``n_beta``, ``n_alpha`` options) give the same
result up to rounding; coarser ones are refused (``ValueError``).

See :mod:`equivar.tp._gaunt_plan` for the weight forms, normalization and
the parity-complete construction.
"""
from __future__ import annotations

import numpy as np
import torch

from ..o3 import sphere_grid
from ._gaunt_plan import EVEN, GauntFamilyBackend, _grid_fields_cached
from ._s2grid_ops import grid_product


class S2GridBackend(GauntFamilyBackend):
    r"""Spherical-grid Gaunt tensor product (``backend='s2grid'``).

    ``TensorProduct(irreps_in1, irreps_in2, irreps_out, instructions,
    backend='s2grid', **options)``; options as
    :class:`~equivar.tp._gaunt_plan.GauntFamilyBackend` plus:

    Parameters
    ----------
    n_beta, n_alpha : int, optional
        Grid shape (default: the minimal exact grid, see the module docstring).
    chunk_size : int, optional
        Samples processed per block by the fused kernel (keeps the grid
        values in cache; default chosen from the sizes).

    Shapes: ``forward(x1 [Z, dim1], x2 [Z, dim2], weight [weight_numel] or
    [Z, weight_numel]) -> [Z, dim_out]``, float32 or float64, any device;
    first and higher derivatives (the fused kernel's backward is built from
    the same kernel, so double backward works).

    Raises
    ------
    ValueError
        Unknown option value, or a grid too coarse to be exact.

    Examples
    --------
    The "S" configuration (function product of features and edge harmonics):

    >>> from equivar.tp import TensorProduct
    >>> from equivar.tp._s2grid import s_config
    >>> tp = TensorProduct(*s_config(2, 8), backend="s2grid", shared_weights=False)
    >>> tp.backend.weight_form
    'factorized'
    """

    def __init__(self, *args, n_beta: int | None = None, n_alpha: int | None = None, chunk_size: int | None = None, **kwargs):
        self._grid_opts = (n_beta, n_alpha)
        self.chunk_size = chunk_size
        super().__init__(*args, **kwargs)

    def _build(self) -> None:
        bl = 0
        for pr in self.products:
            l1 = max(self.irreps_in1[i].ir.l for i in pr.A)
            l2 = max(self.irreps_in2[i].ir.l for i in pr.B)
            l3 = max(t.l3 for t in pr.targets)
            bl = max(bl, l1 + l2 + l3)
        g = sphere_grid(bl, n_beta=self._grid_opts[0], n_alpha=self._grid_opts[1], dtype=torch.float64)
        self.grid_shape = (g.n_beta, g.n_alpha)
        self.band_limit = bl
        nb, na = g.n_beta, g.n_alpha
        n = nb * na
        self.n_grid = n
        w = g.weights.numpy()
        self._syn_names: dict = {}
        self._proj = []
        for idx, pr in enumerate(self.products):
            for side, blocks in ((1, pr.A), (2, pr.B)):
                key = (side, blocks, pr.kind)
                if key in self._syn_names:
                    continue
                irreps = self.irreps_in1 if side == 1 else self.irreps_in2
                rows = []
                for i in blocks:
                    _, _, Y, Q, G = _grid_fields_cached(nb, na, irreps[i].ir.l)
                    if pr.kind == EVEN:
                        rows.append(Y.T)  # [d, n]
                    else:
                        F = Q if side == 1 else G  # [n, 3, d]
                        rows.append(F.transpose(2, 1, 0).reshape(-1, 3 * n))  # [d, 3n]
                name = f"_syn{len(self._syn_names)}"
                self.register_constant(name, np.concatenate(rows, 0))
                self._syn_names[key] = name
            cols = []
            for t in pr.targets:
                _, _, Y3, _, _ = _grid_fields_cached(nb, na, t.l3)
                cols.append(w[:, None] * Y3 * t.const)  # [n, d3]
            name = f"_prj{idx}"
            self.register_constant(name, np.concatenate(cols, 1))
            self._proj.append(name)

    def _synth(self, side: int, blocks: tuple, kind: int, X: torch.Tensor) -> torch.Tensor:
        # deferred: the fused kernel synthesizes inside grid_product; return the coefficients and matrix
        return (X, getattr(self, self._syn_names[(side, blocks, kind)]))

    def _contract(self, index: int, F1, F2) -> torch.Tensor:
        (X1, S1), (X2, S2) = F1, F2
        P = getattr(self, self._proj[index])
        K = 1 if self.products[index].kind == EVEN else 3
        dt = X1.dtype
        return grid_product(X1, X2, S1.to(dt), S2.to(dt), P.to(dt), K, self.chunk_size)


def s_config(L: int, channels: int = 32):
    """Irreps and instructions of the "S" configuration (function product).

    ``channels x (l = 0..L, parity (-1)^l)`` times the spherical harmonics
    ``0..L`` of the edge, channelwise (``'uvu'``), every path with even
    ``l1 + l2 + l3`` summed into one output block ``channels x (l3, (-1)^l3)``
    per ``l3 <= L``.

    Returns ``(irreps_in1, irreps_in2, irreps_out, instructions)`` for
    :class:`~equivar.tp.TensorProduct`.
    """
    from ..o3 import Irreps

    i1 = Irreps([(channels, (l, (-1) ** l)) for l in range(L + 1)])
    i2 = Irreps([(1, (l, (-1) ** l)) for l in range(L + 1)])
    io = Irreps([(channels, (l, (-1) ** l)) for l in range(L + 1)])
    ins = [
        (a, b, c, "uvu", True)
        for a in range(L + 1)
        for b in range(L + 1)
        for c in range(L + 1)
        if abs(a - b) <= c <= a + b and (a + b + c) % 2 == 0
    ]
    return i1, i2, io, ins


def p_config(L: int, channels: int = 32):
    """Irreps and instructions of the "P" configuration (MACE/NequIP edge tensor product).

    ``channels x (l = 0..L, parity (-1)^l)`` times the spherical harmonics
    ``0..L``, channelwise (``'uvu'``), every allowed path into its own output
    block with ``l3 <= L`` (sorted as MACE does). Returns
    ``(irreps_in1, irreps_in2, irreps_out, instructions)``.
    """
    from ..o3 import Irreps
    from ._builders import channelwise_instructions

    i1 = Irreps([(channels, (l, (-1) ** l)) for l in range(L + 1)])
    i2 = Irreps([(1, (l, (-1) ** l)) for l in range(L + 1)])
    target = Irreps([(1, (l, p)) for l in range(L + 1) for p in (1, -1)])
    io, ins = channelwise_instructions(i1, i2, target)
    return i1, i2, io, ins


from ._registry import register_backend  # noqa: E402

register_backend("s2grid", S2GridBackend)
