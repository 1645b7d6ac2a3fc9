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
in ``cos(beta)`` (rounded up to an even number, see below) and
``n_alpha = B + 1`` azimuths (L1 = L2 = L3 = 6: 10 x 19 = 190 points; L = 3:
6 x 10). The vector product of the parity-complete variant has degree
``l1 + l2 + l3 - 1`` and is exact on the same grid. Finer grids
(``n_beta``, ``n_alpha`` options) give the same result up to rounding;
coarser ones are refused (``ValueError``). Measured equivariance error at
the default grid: ~4e-7 relative in float32 at L = 6 (rounding only).

Cost: with an even number of rings the grid is symmetric under the
reflection ``y -> -y``; harmonics are even or odd under it
(``(-1)^(l+m)``), so every synthesis and projection is done on the northern
half only, with the even and odd coefficients in two matrix products each
(half the multiply-adds of the full grid, see
:mod:`equivar.tp._s2grid_ops`). Per sample and channel a product costs
about ``(L+1)^2 n_grid`` multiply-adds forward (two half-grid passes) and
1.5 times that backward (three passes; the gradient of the single-channel
edge input is a cheap reduction); samples are processed in cache-sized chunks by a fused kernel
whose backward recomputes the grid values (or keeps them, ``save_grid``).
The grid is the minimal exact one at L1 = L2 = L3 = 6 (10 rings: Gauss-Legendre
with n nodes is exact to degree 2n - 1 >= 18; 19 azimuths: the product's
azimuthal frequencies up to 12 must not alias onto the projected ones up to 6).

Whole-product kernel: a single product that reads every block of x1 and
writes every output block (configuration S, the function product of
features and edge harmonics) skips the generic glue of
:class:`~equivar.tp._gaunt_plan.GauntFamilyBackend` (per-block weight
multiplies, parity gathers and scatters, each a whole-batch pass with its
own autograd node): the layout permutations and the in1 / out weights and
their gradients are applied per sample inside
:func:`~equivar.tp._s2grid_ops.fused_sym_product`, on the CPU by the compiled
kernel of :mod:`equivar.tp._s2grid_native` (which also uses the grid's
second symmetry ``x -> -x``: quarter grid, four parity classes, half the
multiply-adds of the half-grid transforms; channels in the SIMD lanes,
everything for a sample in L1/L2), elsewhere by chunked PyTorch ops.
Measured on configuration S, L = 6, 4096 edges, float32, one thread (CPU
time, shared machine at load 6): forward+backward 107 ms (native, quarter
grid), 230 ms (chunked PyTorch), 351 ms (generic path); derivatives of the
backward (forces) go through the composable form of the same product.

See :mod:`equivar.tp._gaunt_plan` for the weight forms, normalization and
the parity-complete construction.
"""

from __future__ import annotations

import numpy as np
import torch

from ..o3 import sphere_grid
from ._gaunt_plan import EVEN, GauntFamilyBackend, _grid_fields_cached
from ._s2grid_native import NativeConsts
from ._s2grid_ops import FusedPlan, fused_sym_product, grid_bilinear, grid_bilinear_sym


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
    save_grid : bool
        Keep the grid values of ``x1`` from the forward for the backward
        (``Z * mul * n_grid`` numbers) instead of recomputing them; a few
        percent faster, more memory. Default False.
    native : bool
        Use the compiled CPU kernel of the whole-product path
        (:mod:`equivar.tp._s2grid_native`) when it applies (default True;
        ``EQUIVAR_NATIVE=0`` or a missing C compiler select PyTorch).

    Shapes: ``forward(x1 [Z, dim1], x2 [Z, dim2], weight [weight_numel] or
    [Z, weight_numel]) -> [Z, dim_out]``, float32 or float64, any device;
    first and higher derivatives (the fused kernel's backward is built from
    the same kernel, so double backward works).

    Raises
    ------
    ValueError
        Unknown option value (e.g. ``chunk_size`` not a positive integer),
        or a grid too coarse to be exact.

    Examples
    --------
    The "S" configuration (function product of features and edge harmonics):

    >>> from equivar.tp import TensorProduct
    >>> from equivar.tp import s_config
    >>> tp = TensorProduct(*s_config(2, 8), backend="s2grid", shared_weights=False)
    >>> tp.backend.weight_form
    'factorized'
    """

    def __init__(
        self,
        *args,
        n_beta: int | None = None,
        n_alpha: int | None = None,
        chunk_size: int | None = None,
        save_grid: bool = False,
        native: bool = True,
        **kwargs,
    ):
        if chunk_size is not None and (
            isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1
        ):
            raise ValueError(f"s2grid: chunk_size must be a positive integer or None, got {chunk_size!r}")
        self._grid_opts = (n_beta, n_alpha)
        self.native = bool(native)
        self._native_consts = {}
        self.chunk_size = chunk_size
        self.save_grid = bool(save_grid)
        super().__init__(*args, **kwargs)

    # ------------------------------------------------------------------
    def _build(self) -> None:
        bl = 0
        for pr in self.products:
            l1 = max(self.irreps_in1[i].ir.l for i in pr.A)
            l2 = max(self.irreps_in2[i].ir.l for i in pr.B)
            l3 = max(t.l3 for t in pr.targets)
            bl = max(bl, l1 + l2 + l3)
        nb, na = self._grid_opts
        if nb is None:
            nb = (bl + 2) // 2
            nb += nb % 2  # an even number of rings: the grid is symmetric under y -> -y without an equator ring
        g = sphere_grid(bl, n_beta=nb, n_alpha=na, dtype=torch.float64)
        self.band_limit = bl
        self.grid_shape = (g.n_beta, g.n_alpha)
        self.n_grid = g.n_beta * g.n_alpha
        self._sym = g.n_beta % 2 == 0
        self._grid_key = (g.n_beta, g.n_alpha)
        self._w = g.weights.numpy()
        self._layouts = {}
        for idx, pr in enumerate(self.products):
            r1, r2, co = self._layout(idx)
            nbg, nag = self._grid_key
            n = nbg * nag
            nh = n // 2
            fields = lambda l: _grid_fields_cached(nbg, nag, l)  # noqa: E731
            irr = {1: self.irreps_in1, 2: self.irreps_in2}
            if pr.kind == EVEN and self._sym:
                for side, rows in ((1, r1), (2, r2)):
                    for par in (0, 1):
                        sel = [(i, c) for i, c in rows if _parity(irr[side][i].ir.l, c) == par]
                        M = np.zeros((len(sel), nh))
                        for r, (i, c) in enumerate(sel):
                            M[r] = fields(irr[side][i].ir.l)[2][:nh, c]
                        self.register_constant(f"_S{side}{'eo'[par]}_{idx}", M)
                for par in (0, 1):
                    sel = [(t, c) for t, c in co if _parity(pr.targets[t].l3, c) == par]
                    M = np.zeros((nh, len(sel)))
                    for r, (t, c) in enumerate(sel):
                        M[:, r] = 2 * self._w[:nh] * fields(pr.targets[t].l3)[2][:nh, c] * pr.targets[t].const
                    self.register_constant(f"_M{'eo'[par]}_{idx}", M)
            else:
                K = 1 if pr.kind == EVEN else 3
                for side, rows in ((1, r1), (2, r2)):
                    M = np.zeros((len(rows), K * n))
                    for r, (i, c) in enumerate(rows):
                        _, _, Y, Q, G = fields(irr[side][i].ir.l)
                        if K == 1:
                            M[r] = Y[:, c]
                        else:
                            F = Q if side == 1 else G  # [n, 3, d]
                            M[r] = F[:, :, c].T.reshape(-1)  # component-major [3 * n]
                    self.register_constant(f"_S{side}_{idx}", M)
                M = np.zeros((n, len(co)))
                for r, (t, c) in enumerate(co):
                    M[:, r] = self._w * fields(pr.targets[t].l3)[2][:, c] * pr.targets[t].const
                self.register_constant(f"_M_{idx}", M)
        self._build_fused()

    def _build_fused(self) -> None:
        """Index maps of the whole-product kernel (:func:`fused_sym_product`) when it applies.

        It applies to a single symmetric-grid ``uvu`` product that reads every
        block of x1 and writes every output block once, all with the same
        multiplicity, each side's weights on all blocks or none (configuration
        S); ``self._fused`` is False otherwise and :meth:`forward` is the
        generic one.
        """
        self._fused = False
        if len(self.products) != 1 or not self._sym:
            return
        pr = self.products[0]
        U = pr.U
        i1, io = self.irreps_in1, self.irreps_out
        live1 = [i for i, (m, ir) in enumerate(i1) if m * ir.dim > 0]
        liveo = [k for k, (m, ir) in enumerate(io) if m * ir.dim > 0]
        ks = [t.k for t in pr.targets]
        if (
            pr.kind != EVEN
            or pr.mode != "uvu"
            or sorted(pr.A) != live1
            or sorted(ks) != liveo
            or len(set(ks)) != len(ks)
            or any(i1[i].mul != U for i in pr.A)
            or any(io[k].mul != U for k in ks)
        ):
            return
        wa_on = [i in self._a_off for i in pr.A]
        wc_on = [t.w_off is not None for t in pr.targets]
        if len(set(wa_on)) > 1 or len(set(wc_on)) > 1:
            return
        r1, _, co = self._layout(0)
        (p1e, _), _, (pte, _) = self._parts(0)
        s1 = [sl.start for sl in i1.slices()]
        so = [sl.start for sl in io.slices()]
        D1, Dt = len(r1), len(co)
        g1 = np.array([[s1[i] + u * i1[i].ir.dim + c for i, c in r1] for u in range(U)])  # [U, D1]
        gy = np.array([[so[pr.targets[t].k] + u * (2 * pr.targets[t].l3 + 1) + c for t, c in co] for u in range(U)])
        g1e, g1o = g1[:, :p1e].reshape(-1), g1[:, p1e:].reshape(-1)
        gye, gyo = gy[:, :pte].reshape(-1), gy[:, pte:].reshape(-1)
        inv1 = np.empty(i1.dim, dtype=np.int64)
        inv1[np.concatenate([g1e, g1o])] = np.arange(U * D1)
        invy = np.empty(io.dim, dtype=np.int64)
        invy[np.concatenate([gye, gyo])] = np.arange(U * Dt)
        for name, v in (("g1e", g1e), ("g1o", g1o), ("g1inv", inv1), ("gye", gye), ("gyo", gyo), ("gyinv", invy)):
            self.register_constant(f"_f_{name}", v.astype(np.int64))
        self._f_blocks1 = self._f_blocksy = None
        if wa_on[0]:
            wa = np.empty(i1.dim, dtype=np.int64)
            for i in pr.A:
                wa[s1[i] : s1[i] + U * i1[i].ir.dim] = self._a_off[i] + np.repeat(np.arange(U), i1[i].ir.dim)
            self.register_constant("_f_wa", wa)
            self._f_blocks1 = [(s1[i], U, i1[i].ir.dim, self._a_off[i]) for i in pr.A]
        if wc_on[0]:
            wc = np.empty(io.dim, dtype=np.int64)
            for t in pr.targets:
                d = 2 * t.l3 + 1
                wc[so[t.k] : so[t.k] + U * d] = t.w_off + np.repeat(np.arange(U), d)
            self.register_constant("_f_wc", wc)
            self._f_blocksy = [(so[t.k], U, 2 * t.l3 + 1, t.w_off) for t in pr.targets]
        self._fused = True
        self._build_quarter(pr, r1, co, s1, so)

    def _build_quarter(self, pr, r1, co, s1, so) -> None:
        """Constants of the native kernel, which also uses the grid's second symmetry ``x -> -x``.

        The azimuths ``alpha_j = 2 pi j / n_alpha`` are mirrored by ``j -> n_alpha - j``;
        the harmonic ``(l, m)`` is even under it for ``m >= 0`` and odd for ``m < 0``.
        With the reflection ``y -> -y`` each function splits into four parts
        (class ``k = 2 * [(l + m) odd] + [m < 0]``) that live on a quarter of the
        grid (northern rings x ``j = 0 .. n_alpha // 2``); a product of two
        functions is the group product ``H_k = sum_i F_i G_(i xor k)`` there.
        Half the multiply-adds of the half-grid transforms again. ``self._quarter``
        is None (and the native kernel unused) if the grid lacks the symmetry.
        """
        self._quarter = None
        nbg, nag = self._grid_key
        nh_r, nj = nbg // 2, nag // 2 + 1
        pts, w = _grid_fields_cached(nbg, nag, 0)[:2]
        P3 = pts.reshape(nbg, nag, 3)
        mirror = P3[:, (-np.arange(nag)) % nag] * np.array([-1.0, 1.0, 1.0])
        if not np.allclose(mirror, P3, atol=1e-12):
            return
        q_idx = (np.arange(nh_r)[:, None] * nag + np.arange(nj)[None, :]).reshape(-1)  # quarter points
        mult = np.where((np.arange(nj) == 0) | (2 * np.arange(nj) == nag), 1.0, 2.0)
        wq = 2.0 * w[q_idx] * np.tile(mult, nh_r)  # factor 2 of the y -> -y pairs, 2 of the x -> -x pairs
        nq = len(q_idx)
        cls = lambda l, c: 2 * (c % 2) + int(c < l)  # noqa: E731
        Yq = lambda l: _grid_fields_cached(nbg, nag, l)[2][q_idx]  # noqa: E731
        for l in (
            {self.irreps_in1[i].ir.l for i in pr.A}
            | {self.irreps_in2[i].ir.l for i in pr.B}
            | {t.l3 for t in pr.targets}
        ):
            Yf = _grid_fields_cached(nbg, nag, l)[2].reshape(nbg, nag, -1)
            for c in range(2 * l + 1):
                k = cls(l, c)
                sb = -1.0 if k & 2 else 1.0
                sa = -1.0 if k & 1 else 1.0
                if not (
                    np.allclose(Yf[::-1, :, c], sb * Yf[:, :, c], atol=1e-10)
                    and np.allclose(Yf[:, (-np.arange(nag)) % nag, c], sa * Yf[:, :, c], atol=1e-10)
                ):
                    return  # pragma: no cover - a convention mismatch; the half-grid kernels still apply
        U = pr.U
        i1, _io, i2 = self.irreps_in1, self.irreps_out, self.irreps_in2
        d1 = [[] for _ in range(4)]
        S1 = [[] for _ in range(4)]
        for i, c in r1:
            l = i1[i].ir.l
            k = cls(l, c)
            d1[k].append((s1[i] + c, i1[i].ir.dim, self._a_off.get(i, -1)))
            S1[k].append(Yq(l)[:, c])
        dy = [[] for _ in range(4)]
        My = [[] for _ in range(4)]
        for t, c in co:
            tg = pr.targets[t]
            k = cls(tg.l3, c)
            dy[k].append((so[tg.k] + c, 2 * tg.l3 + 1, -1 if tg.w_off is None else tg.w_off))
            My[k].append(wq * Yq(tg.l3)[:, c] * tg.const)
        r2 = self._layout(0)[1]
        (p2e, _) = self._parts(0)[1]
        S2 = [np.zeros((p2e, 4 * nq)), np.zeros((len(r2) - p2e, 4 * nq))]
        for n, (i, c) in enumerate(r2):
            l = i2[i].ir.l
            k = cls(l, c)
            part, row = (0, n) if n < p2e else (1, n - p2e)
            S2[part][row, k * nq : (k + 1) * nq] = Yq(l)[:, c]
        for k in range(4):
            self.register_constant(f"_q_d1_{k}", np.asarray(d1[k], dtype=np.int64).reshape(-1, 3))
            self.register_constant(f"_q_dy_{k}", np.asarray(dy[k], dtype=np.int64).reshape(-1, 3))
            self.register_constant(f"_q_S1_{k}", np.asarray(S1[k]).reshape(-1, nq))  # [rows, nq]
            self.register_constant(f"_q_M_{k}", np.asarray(My[k]).reshape(-1, nq))  # [rows, nq] (transposed projection)
        self.register_constant("_q_S2e", S2[0])
        self.register_constant("_q_S2o", S2[1])
        self._quarter = (nq, U)

    def forward(self, x1: torch.Tensor, x2: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """As :meth:`GauntFamilyBackend.forward`; configuration-S-like products run the whole-product kernel."""
        if not self._fused:
            return super().forward(x1, x2, weight)
        Z, dt = x1.shape[0], x1.dtype
        c = lambda name: getattr(self, f"{name}_0").to(dt)  # noqa: E731
        # the second operand: in2 channels summed (with their weights) into reflection-even / -odd rows
        if self._has_wb:
            wext = torch.cat([weight, weight.new_ones(weight.shape[:-1] + (1,))], -1)
            xw2 = x2 * wext.index_select(-1, self._wb)
        else:
            xw2 = x2
        S2e, S2o = self._sum2_0_0.to(dt), self._sum2_0_1.to(dt)
        be = (xw2 @ S2e).view(Z, 1, S2e.shape[1])
        bo = (xw2 @ S2o).view(Z, 1, S2o.shape[1])
        P = FusedPlan(
            g1e=self._f_g1e,
            g1o=self._f_g1o,
            g1inv=self._f_g1inv,
            gye=self._f_gye,
            gyo=self._f_gyo,
            gyinv=self._f_gyinv,
            wa=getattr(self, "_f_wa", None),
            wc=getattr(self, "_f_wc", None),
            blocks1=self._f_blocks1,
            blocksy=self._f_blocksy,
            S1e=c("_S1e"),
            S1o=c("_S1o"),
            S2e=c("_S2e"),
            S2o=c("_S2o"),
            Me=c("_Me"),
            Mo=c("_Mo"),
            U=self.products[0].U,
            dim1=self.irreps_in1.dim,
            dim_out=self.irreps_out.dim,
        )
        if (
            self.native
            and self._quarter is not None
            and x1.device.type == "cpu"
            and dt in (torch.float32, torch.float64)
        ):
            key = (dt, x1.device)
            if key not in self._native_consts:
                self._native_consts = {key: NativeConsts(self, dt)}
            P.native = self._native_consts[key]
        W = weight if weight.dim() == 2 else weight.reshape(1, weight.shape[-1])
        return fused_sym_product(x1, be, bo, W, P, self.chunk_size)

    def _layout(self, index: int):
        r1, r2, co = super()._layout(index)
        pr = self.products[index]
        if pr.kind == EVEN and getattr(self, "_sym", False):
            key1 = lambda rc: _parity(self.irreps_in1[rc[0]].ir.l, rc[1])  # noqa: E731
            key2 = lambda rc: _parity(self.irreps_in2[rc[0]].ir.l, rc[1])  # noqa: E731
            keyo = lambda tc: _parity(pr.targets[tc[0]].l3, tc[1])  # noqa: E731
            r1, r2, co = sorted(r1, key=key1), sorted(r2, key=key2), sorted(co, key=keyo)
        if index not in self._layouts:
            self._layouts[index] = (r1, r2, co)
        return self._layouts[index]

    def _parts(self, index: int):
        pr = self.products[index]
        if not (pr.kind == EVEN and self._sym):
            return super()._parts(index)
        r1, r2, co = self._layout(index)
        split = lambda rows, l_of: [sum(1 for x in rows if _parity(l_of(x), x[1]) == q) for q in (0, 1)]  # noqa: E731
        return (
            split(r1, lambda x: self.irreps_in1[x[0]].ir.l),
            split(r2, lambda x: self.irreps_in2[x[0]].ir.l),
            split(co, lambda x: pr.targets[x[0]].l3),
        )

    def _run(self, index: int, X1: list, X2: list) -> list:
        pr = self.products[index]
        dt = X1[0].dtype
        c = lambda name: getattr(self, f"{name}_{index}").to(dt)  # noqa: E731
        if pr.kind == EVEN and self._sym:
            return list(
                grid_bilinear_sym(
                    X1[0],
                    X1[1],
                    X2[0],
                    X2[1],
                    c("_S1e"),
                    c("_S1o"),
                    c("_S2e"),
                    c("_S2o"),
                    c("_Me"),
                    c("_Mo"),
                    X1[0].shape[1],
                    self.chunk_size,
                    self.save_grid,
                )
            )
        S1, S2, M = c("_S1"), c("_S2"), c("_M")
        return [grid_bilinear(X1[0], X2[0], S1, S2, M, M.shape[0], 1, X1[0].shape[1], self.chunk_size)]

    def resolution(self) -> dict:
        """Grid shape, band limit (exact up to it) and weight form."""
        return {
            "grid": self.grid_shape,
            "n_grid": self.n_grid,
            "band_limit": self.band_limit,
            "exact": True,
            "weight_form": self.weight_form,
            "products": len(self.products),
        }


def _parity(l: int, c: int) -> int:
    """0 if the harmonic ``(l, m = c - l)`` is even under ``y -> -y``, else 1: ``(l + m) mod 2 = c mod 2``."""
    return c % 2


from ._registry import register_backend  # noqa: E402

register_backend("s2grid", S2GridBackend)
