"""Fused, chunked grid product with a backward built from the same kernel.

``grid_bilinear(A, B, SA, SB, M, n, Kc, Uo)`` computes, for constant matrices
``SA [Da, Ka*n]``, ``SB [Db, Kb*n]`` and ``M [Kc*n, Do]``::

    FA = A @ SA  -> [Z, Ua, Ka, n]        (synthesis of A on the grid)
    FB = B @ SB  -> [Z, Ub, Kb, n]
    P  = FA * FB  broadcast over channels and components, then summed
         (or broadcast) to Uo channels and Kc components
    out = P @ M  -> [Z, Uo, Do]            (projection)

with ``Ua, Ub, Uo`` each 1 or the common channel count ``U`` and ``Ka, Kb,
Kc`` each 1 or the common component count. The samples are processed in
chunks so the grid values stay in cache and are never stored; the backward
recomputes them. The gradients of this operation are again operations of
the same form (``dA = grid_bilinear(G, B, M^T, SB, SA^T, ...)``), which is how
double backward works. When no graph is requested (plain training without
force losses) the backward is fused into one pass computing both gradients.
"""

from __future__ import annotations

import torch

from . import _s2grid_native as _native


def _fit(P: torch.Tensor, U: int, K: int) -> torch.Tensor:
    """Sum or broadcast ``P [Z, U', K', n]`` to ``[Z, U, K, n]``."""
    if P.shape[2] != K:
        P = P.sum(2, keepdim=True) if K == 1 else P.expand(P.shape[0], P.shape[1], K, P.shape[3])
    if P.shape[1] != U:
        P = P.sum(1, keepdim=True) if U == 1 else P.expand(P.shape[0], U, P.shape[2], P.shape[3])
    return P


def _chunk(Z: int, per_sample: int, chunk_size: int | None, like: torch.Tensor | None = None) -> int:
    if chunk_size:
        return max(1, int(chunk_size))
    # CPU: ~2 MB of grid values per chunk in float32 (the chunk's grids stay in cache); GPU (``like`` not on
    # the CPU): ~1 GB, so a batch is a few large launches rather than thousands of cache-sized ones
    budget = (1 << 19) if like is None or like.device.type == "cpu" else (1 << 28)
    return max(1, min(Z, budget // max(1, per_sample)))


def _forward(A, B, SA, SB, M, n, Kc, Uo, chunk_size):
    Z = max(A.shape[0], B.shape[0])
    Ua, Ub = A.shape[1], B.shape[1]
    Ka, Kb = SA.shape[1] // n, SB.shape[1] // n
    U = max(Ua, Ub)
    out = A.new_empty(Z, Uo, M.shape[1])
    cs = _chunk(Z, U * max(Ka, Kb) * n, chunk_size, A)
    for s in range(0, Z, cs):
        e = min(Z, s + cs)
        a = A[s:e] if A.shape[0] != 1 else A
        b = B[s:e] if B.shape[0] != 1 else B
        FA = (a @ SA).view(-1, Ua, Ka, n)
        FB = (b @ SB).view(-1, Ub, Kb, n)
        P = _fit(FA * FB, Uo, Kc)
        torch.matmul(P.reshape(e - s, Uo, Kc * n), M, out=out[s:e])
    return out


class _GridBilinear(torch.autograd.Function):
    @staticmethod
    def forward(ctx, A, B, SA, SB, M, n, Kc, Uo, chunk_size):
        ctx.save_for_backward(A, B, SA, SB, M)
        ctx.meta = (n, Kc, Uo, chunk_size)
        return _forward(A, B, SA, SB, M, n, Kc, Uo, chunk_size)

    @staticmethod
    def backward(ctx, G):
        A, B, SA, SB, M = ctx.saved_tensors
        n, Kc, Uo, cs = ctx.meta
        Ka, Kb = SA.shape[1] // n, SB.shape[1] // n
        need_a, need_b = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        dA = dB = None
        if torch.is_grad_enabled():
            # differentiable: the gradients are grid products themselves
            if need_a:
                dA = grid_bilinear(G, B, M.t(), SB, SA.t(), n, Ka, A.shape[1], cs)
            if need_b:
                dB = grid_bilinear(G, A, M.t(), SA, SB.t(), n, Kb, B.shape[1], cs)
        else:
            dA, dB = _fused_backward(G, A, B, SA, SB, M, n, Kc, need_a, need_b, cs)
        if dA is not None and A.shape[0] == 1 and dA.shape[0] != 1:
            dA = dA.sum(0, keepdim=True)
        if dB is not None and B.shape[0] == 1 and dB.shape[0] != 1:
            dB = dB.sum(0, keepdim=True)
        return dA, dB, None, None, None, None, None, None, None


def _fused_backward(G, A, B, SA, SB, M, n, Kc, need_a, need_b, chunk_size):
    Z = G.shape[0]
    Ua, Ub, Uo = A.shape[1], B.shape[1], G.shape[1]
    Ka, Kb = SA.shape[1] // n, SB.shape[1] // n
    U = max(Ua, Ub, Uo)
    dA = G.new_empty(Z, Ua, A.shape[2]) if need_a else None
    dB = G.new_empty(Z, Ub, B.shape[2]) if need_b else None
    Mt, SAt, SBt = M.t(), SA.t(), SB.t()
    cs = _chunk(Z, U * max(Ka, Kb, Kc) * n, chunk_size, G)
    for s in range(0, Z, cs):
        e = min(Z, s + cs)
        a = A[s:e] if A.shape[0] != 1 else A
        b = B[s:e] if B.shape[0] != 1 else B
        H = (G[s:e] @ Mt).view(-1, Uo, Kc, n)
        if need_a:
            FB = (b @ SB).view(-1, Ub, Kb, n)
            PA = _fit(H * FB, Ua, Ka)
            torch.matmul(PA.reshape(e - s, Ua, Ka * n), SAt, out=dA[s:e])
        if need_b:
            FA = (a @ SA).view(-1, Ua, Ka, n)
            PB = _fit(H * FA, Ub, Kb)
            torch.matmul(PB.reshape(e - s, Ub, Kb * n), SBt, out=dB[s:e])
    return dA, dB


def grid_bilinear(A, B, SA, SB, M, n: int, Kc: int, Uo: int, chunk_size: int | None = None) -> torch.Tensor:
    """See the module docstring. ``A [Z or 1, Ua, Da]``, ``B [Z or 1, Ub, Db]`` -> ``[Z, Uo, Do]``."""
    if torch.compiler.is_compiling():  # plain ops: a Function traced by dynamo loses its double backward
        Z = max(A.shape[0], B.shape[0])
        FA = (A @ SA).view(A.shape[0], A.shape[1], SA.shape[1] // n, n)
        FB = (B @ SB).view(B.shape[0], B.shape[1], SB.shape[1] // n, n)
        return _fit(FA * FB, Uo, Kc).reshape(Z, Uo, Kc * n) @ M
    return _GridBilinear.apply(A, B, SA, SB, M, n, Kc, Uo, chunk_size)


def grid_product(X1, X2, S1, S2, P, K: int, chunk_size: int | None = None) -> torch.Tensor:
    """Product of ``X1 [Z, U, D1]`` and ``X2 [Z, 1 or U, D2]`` on the grid, summed over ``K``
    components, projected with ``P [n, Do]`` -> ``[Z, U, Do]``."""
    n = P.shape[0]  # the K components are summed before the projection (Kc = 1)
    U = max(X1.shape[1], X2.shape[1])
    return grid_bilinear(X1, X2, S1, S2, P, n, 1, U, chunk_size)


# ----------------------------------------------------------------------------
# Equatorially symmetric variant (half the grid, half the matrix work)
# ----------------------------------------------------------------------------
# On a grid symmetric under the reflection y -> -y (Gauss-Legendre nodes
# come in pairs +-cos(beta)), Y_lm(reflected) = (-1)^(l+m) Y_lm. Splitting
# coefficients into reflection-even (e) and -odd (o) rows, a function is
# f_north = E + O, f_south = E - O with E, O computed on the northern half
# only. For a product h = f g the projection on even rows needs
# h_N + h_S = 2 (Ef Eg + Of Og) and on odd rows h_N - h_S = 2 (Ef Og + Of Eg)
# (the factor 2 is folded into the projection matrices). Inputs have columns
# [e | o]; the output has columns [e | o].


def _fitU(P, U):
    """Sum or broadcast ``P [Z, U', n]`` to ``U`` channels."""
    if P.shape[1] == U:
        return P
    return P.sum(1, keepdim=True) if U == 1 else P.expand(P.shape[0], U, P.shape[2])


def _twisted(Ae, Ao, Be, Bo):
    """Reflection-even and -odd parts of the product: ``(Ae Be + Ao Bo, Ae Bo + Ao Be)``."""
    Pp = Ae * Be
    Pp.addcmul_(Ao, Bo)
    Pm = Ae * Bo
    Pm.addcmul_(Ao, Be)
    return Pp, Pm


def _rows(X, s, e):
    return X[s:e] if X.shape[0] != 1 else X


def _sym_forward(ae, ao, be, bo, SAe, SAo, SBe, SBo, Me, Mo, Uo, chunk_size, save_a=False):
    """Outputs ``(oe [Z, Uo, Doe], oo [Z, Uo, Doo])`` and (if ``save_a``) A's grid values ``[2, Z, Ua, nh]``."""
    Z = max(ae.shape[0], be.shape[0])
    Ua, Ub = ae.shape[1], be.shape[1]
    nh = Me.shape[0]
    oe = ae.new_empty(Z, Uo, Me.shape[1])
    oo = ae.new_empty(Z, Uo, Mo.shape[1])
    saved = ae.new_empty(2, ae.shape[0], Ua, nh) if save_a else None
    cs = _chunk(Z, max(Ua, Ub) * 2 * nh, chunk_size, ae)
    for s in range(0, Z, cs):
        e = min(Z, s + cs)
        if save_a and (ae.shape[0] != 1 or s == 0):
            Ae, Ao = _rows(saved[0], s, e), _rows(saved[1], s, e)
            torch.matmul(_rows(ae, s, e), SAe, out=Ae)
            torch.matmul(_rows(ao, s, e), SAo, out=Ao)
        else:
            Ae, Ao = _rows(ae, s, e) @ SAe, _rows(ao, s, e) @ SAo
        Pp, Pm = _twisted(Ae, Ao, _rows(be, s, e) @ SBe, _rows(bo, s, e) @ SBo)
        torch.matmul(_fitU(Pp, Uo), Me, out=oe[s:e])
        torch.matmul(_fitU(Pm, Uo), Mo, out=oo[s:e])
    return oe, oo, saved


def _sym_fused_backward(ge, go, ae, ao, be, bo, SAe, SAo, SBe, SBo, Me, Mo, need_a, need_b, chunk_size, saved=None):
    Z = ge.shape[0]
    Ua, Ub, Uo = ae.shape[1], be.shape[1], ge.shape[1]
    nh = Me.shape[0]
    dae = dao = dbe = dbo = None
    if need_a:
        dae, dao = ge.new_empty(Z, Ua, SAe.shape[0]), ge.new_empty(Z, Ua, SAo.shape[0])
    if need_b:
        dbe, dbo = ge.new_empty(Z, Ub, SBe.shape[0]), ge.new_empty(Z, Ub, SBo.shape[0])
    ge, go = ge.contiguous(), go.contiguous()
    Met, Mot, SAet, SAot, SBet, SBot = Me.t(), Mo.t(), SAe.t(), SAo.t(), SBe.t(), SBo.t()
    cs = _chunk(Z, max(Ua, Ub, Uo) * 2 * nh, chunk_size, ge)
    for s in range(0, Z, cs):
        e = min(Z, s + cs)
        Hp, Hm = ge[s:e] @ Met, go[s:e] @ Mot
        if need_a:
            Qe, Qo = _twisted(Hp, Hm, _rows(be, s, e) @ SBe, _rows(bo, s, e) @ SBo)
            torch.matmul(_fitU(Qe, Ua), SAet, out=dae[s:e])
            torch.matmul(_fitU(Qo, Ua), SAot, out=dao[s:e])
        if need_b:
            if saved is not None:
                Ae, Ao = _rows(saved[0], s, e), _rows(saved[1], s, e)
            else:
                Ae, Ao = _rows(ae, s, e) @ SAe, _rows(ao, s, e) @ SAo
            Qe, Qo = _twisted(Hp, Hm, Ae, Ao)
            torch.matmul(_fitU(Qe, Ub), SBet, out=dbe[s:e])
            torch.matmul(_fitU(Qo, Ub), SBot, out=dbo[s:e])
    return dae, dao, dbe, dbo


def _sum_to(d, like):
    return d.sum(0, keepdim=True) if d is not None and like.shape[0] == 1 and d.shape[0] != 1 else d


class _GridBilinearSym(torch.autograd.Function):
    @staticmethod
    def forward(ctx, ae, ao, be, bo, SAe, SAo, SBe, SBo, Me, Mo, Uo, chunk_size, save_grid):
        # keeping A's grid values (Z * Ua * n_grid numbers) saves one synthesis in the backward of B
        save_a = bool(save_grid) and (ctx.needs_input_grad[2] or ctx.needs_input_grad[3])
        oe, oo, saved = _sym_forward(ae, ao, be, bo, SAe, SAo, SBe, SBo, Me, Mo, Uo, chunk_size, save_a)
        ctx.save_for_backward(ae, ao, be, bo, SAe, SAo, SBe, SBo, Me, Mo, saved)
        ctx.meta = (Uo, chunk_size, save_grid)
        return oe, oo

    @staticmethod
    def backward(ctx, ge, go):
        ae, ao, be, bo, SAe, SAo, SBe, SBo, Me, Mo, saved = ctx.saved_tensors
        Uo, cs, sg = ctx.meta
        Z = max(ae.shape[0], be.shape[0])
        if ge is None:
            ge = ae.new_zeros(Z, Uo, Me.shape[1])
        if go is None:
            go = ae.new_zeros(Z, Uo, Mo.shape[1])
        need_a = ctx.needs_input_grad[0] or ctx.needs_input_grad[1]
        need_b = ctx.needs_input_grad[2] or ctx.needs_input_grad[3]
        dae = dao = dbe = dbo = None
        if torch.is_grad_enabled():  # differentiable: the gradients are symmetric grid products themselves
            if need_a:
                dae, dao = grid_bilinear_sym(
                    ge, go, be, bo, Me.t(), Mo.t(), SBe, SBo, SAe.t(), SAo.t(), ae.shape[1], cs, sg
                )
            if need_b:
                dbe, dbo = grid_bilinear_sym(
                    ge, go, ae, ao, Me.t(), Mo.t(), SAe, SAo, SBe.t(), SBo.t(), be.shape[1], cs, sg
                )
        else:
            dae, dao, dbe, dbo = _sym_fused_backward(
                ge, go, ae, ao, be, bo, SAe, SAo, SBe, SBo, Me, Mo, need_a, need_b, cs, saved
            )
        return (_sum_to(dae, ae), _sum_to(dao, ao), _sum_to(dbe, be), _sum_to(dbo, bo)) + (None,) * 9


def grid_bilinear_sym(
    ae, ao, be, bo, SAe, SAo, SBe, SBo, Me, Mo, Uo: int, chunk_size: int | None = None, save_grid: bool = False
):
    """Symmetric-grid product (see above).

    ``ae [Z|1, Ua, Dae]``, ``ao [Z|1, Ua, Dao]`` (reflection-even / -odd rows of A),
    ``be``, ``bo`` likewise for B; returns ``(oe [Z, Uo, Doe], oo [Z, Uo, Doo])``.
    ``save_grid``: keep A's grid values for the backward (memory ``Z * Ua * n_grid``)
    instead of recomputing them.
    """
    if torch.compiler.is_compiling():  # plain ops (see grid_bilinear)
        Pp, Pm = _twisted(ae @ SAe, ao @ SAo, be @ SBe, bo @ SBo)
        return _fitU(Pp, Uo) @ Me, _fitU(Pm, Uo) @ Mo
    return _GridBilinearSym.apply(ae, ao, be, bo, SAe, SAo, SBe, SBo, Me, Mo, Uo, chunk_size, save_grid)


# ----------------------------------------------------------------------------
# Whole-product kernel: layout gathers and the factorized weights inside the chunk loop
# ----------------------------------------------------------------------------
# For one symmetric-grid product that takes every block of x1 and feeds every
# output block (configuration S), everything outside the grid transforms
# (the in1 / out weights, the permutation of e3nn's [mul, 2l+1] block layout
# into reflection-even / -odd rows, the permutation back, the weight
# gradients) is done chunk by chunk while the chunk is in cache, instead of
# as whole-batch passes of separate autograd nodes.


class FusedPlan:
    """Index maps and constants of :func:`fused_sym_product` (built by the backend, one dtype/device).

    ``g1e [U*De]``, ``g1o [U*Do]``: x1 columns of the (channel, even row) /
    (channel, odd row) operand entries; ``g1inv [dim1]``: position of each x1
    column in ``cat(Xe.flat, Xo.flat)``; ``wa [dim1]``: weight column of each
    x1 column (or None); ``gye``, ``gyo``, ``gyinv``, ``wc``: the same for the
    output; ``blocks1`` / ``blocksy``: ``(start, U, d, w_off)`` per block
    (weight-gradient reductions); ``S1e ... Mo``: grid matrices as
    :func:`grid_bilinear_sym`; ``U``; ``dim1``, ``dim_out``; ``native``: the
    constants of the compiled CPU kernel (:mod:`equivar.tp._s2grid_native`,
    quarter grid) or None for the PyTorch path.
    """

    __slots__ = (
        "g1e",
        "g1o",
        "g1inv",
        "wa",
        "gye",
        "gyo",
        "gyinv",
        "wc",
        "blocks1",
        "blocksy",
        "S1e",
        "S1o",
        "S2e",
        "S2o",
        "Me",
        "Mo",
        "U",
        "dim1",
        "dim_out",
        "native",
    )

    def __init__(self, **kw):
        self.native = None
        for k, v in kw.items():
            setattr(self, k, v)


def _wrows(W, s, e):
    return W[s:e] if W.shape[0] != 1 else W


def _synth_a(xc, Wr, P):
    """Weighted x1 rows ``xc [n, dim1]`` -> grid values ``(Ae, Ao) [n, U, nh]``."""
    n = xc.shape[0]
    if P.wa is not None:
        xc = xc * Wr.index_select(1, P.wa)
    Xe = xc.index_select(1, P.g1e).view(n, P.U, P.S1e.shape[0])
    Xo = xc.index_select(1, P.g1o).view(n, P.U, P.S1o.shape[0])
    return Xe @ P.S1e, Xo @ P.S1o


def _block_sums(prod, blocks, dW, s, e):
    """``dW[rows, off:off+U] += prod[:, start:start+U*d].view(n, U, d).sum(-1)`` per block (summed over rows if shared)."""
    n = prod.shape[0]
    for start, U, d, off in blocks:
        r = prod[:, start : start + U * d].view(n, U, d).sum(-1)
        if dW.shape[0] == 1:  # shared weights (or a batch of one)
            dW[0, off : off + U] += r.sum(0)
        else:
            dW[s:e, off : off + U] += r


def _whole_forward(x1, be, bo, W, P, cs, keep_raw):
    Z = x1.shape[0]
    out = x1.new_empty(Z, P.dim_out)
    raw = x1.new_empty(Z, P.dim_out) if keep_raw else None
    for s in range(0, Z, cs):
        e = min(Z, s + cs)
        n = e - s
        Wr = _wrows(W, s, e)
        Ae, Ao = _synth_a(x1[s:e], Wr, P)
        Pp, Pm = _twisted(Ae, Ao, _rows(be, s, e) @ P.S2e, _rows(bo, s, e) @ P.S2o)
        y = torch.cat([(Pp @ P.Me).view(n, -1), (Pm @ P.Mo).view(n, -1)], 1)
        if P.wc is None:
            torch.index_select(y, 1, P.gyinv, out=out[s:e])
            continue
        r = raw[s:e] if keep_raw else x1.new_empty(n, P.dim_out)
        torch.index_select(y, 1, P.gyinv, out=r)
        torch.mul(r, Wr.index_select(1, P.wc), out=out[s:e])
    return out, raw


def _whole_backward(G, x1, be, bo, W, raw, P, cs, need_x1, need_b, need_w):
    Z = G.shape[0]
    G = G.contiguous()
    U = P.U
    dx1 = x1.new_empty(Z, P.dim1) if need_x1 else None
    dbe = dbo = None
    if need_b:
        dbe = G.new_empty(Z, 1, P.S2e.shape[0])
        dbo = G.new_empty(Z, 1, P.S2o.shape[0])
    dW = W.new_zeros(W.shape) if need_w else None
    Met, Mot, S1et, S1ot, S2et, S2ot = P.Me.t(), P.Mo.t(), P.S1e.t(), P.S1o.t(), P.S2e.t(), P.S2o.t()
    for s in range(0, Z, cs):
        e = min(Z, s + cs)
        n = e - s
        Wr = _wrows(W, s, e)
        g = G[s:e]
        if P.wc is not None:
            if need_w:
                _block_sums(g * raw[s:e], P.blocksy, dW, s, e)
            g = g * Wr.index_select(1, P.wc)
        Hp = g.index_select(1, P.gye).view(n, U, P.Me.shape[1]) @ Met
        Hm = g.index_select(1, P.gyo).view(n, U, P.Mo.shape[1]) @ Mot
        if need_x1 or (need_w and P.wa is not None):
            Qe, Qo = _twisted(Hp, Hm, _rows(be, s, e) @ P.S2e, _rows(bo, s, e) @ P.S2o)
            d = torch.cat([(Qe @ S1et).view(n, -1), (Qo @ S1ot).view(n, -1)], 1).index_select(1, P.g1inv)
            if P.wa is None:
                dx1[s:e] = d
            else:
                if need_w:
                    _block_sums(d * x1[s:e], P.blocks1, dW, s, e)
                if need_x1:
                    torch.mul(d, Wr.index_select(1, P.wa), out=dx1[s:e])
        if need_b:
            Ae, Ao = _synth_a(x1[s:e], Wr, P)
            Qe, Qo = _twisted(Hp, Hm, Ae, Ao)
            torch.matmul(Qe.sum(1, keepdim=True), S2et, out=dbe[s:e])
            torch.matmul(Qo.sum(1, keepdim=True), S2ot, out=dbo[s:e])
    return dx1, dbe, dbo, dW


def _composite(x1, be, bo, W, P, cs):
    """The same product from differentiable pieces (used for higher derivatives)."""
    Z = x1.shape[0]
    xw = x1 * W.index_select(1, P.wa) if P.wa is not None else x1
    Xe = xw.index_select(1, P.g1e).view(Z, P.U, P.S1e.shape[0])
    Xo = xw.index_select(1, P.g1o).view(Z, P.U, P.S1o.shape[0])
    oe, oo = grid_bilinear_sym(Xe, Xo, be, bo, P.S1e, P.S1o, P.S2e, P.S2o, P.Me, P.Mo, P.U, cs, False)
    y = torch.cat([oe.reshape(Z, oe.shape[1] * oe.shape[2]), oo.reshape(Z, oo.shape[1] * oo.shape[2])], 1).index_select(
        1, P.gyinv
    )
    return y * W.index_select(1, P.wc) if P.wc is not None else y


class _FusedSym(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x1, be, bo, W, P, cs):
        keep_raw = P.wc is not None and ctx.needs_input_grad[3]
        if P.native is not None:
            out, raw = _native.forward(x1, be, bo, W, P, P.native, keep_raw)
        else:
            out, raw = _whole_forward(x1, be, bo, W, P, cs, keep_raw)
        ctx.save_for_backward(x1, be, bo, W, raw)
        ctx.P, ctx.cs = P, cs
        return out

    @staticmethod
    def backward(ctx, G):
        x1, be, bo, W, raw = ctx.saved_tensors
        P, cs = ctx.P, ctx.cs
        need = ctx.needs_input_grad[:4]
        if torch.is_grad_enabled():
            # higher derivatives: differentiate the composable form of the same product
            # (on aliases: partial derivatives, even where be / bo themselves depend on W)
            with torch.enable_grad():
                ins = tuple(t.view_as(t) if nd else t for t, nd in zip((x1, be, bo, W), need))
                wrt = [t for t, nd in zip(ins, need) if nd]
                y = _composite(*ins, P, cs)
                gs = iter(torch.autograd.grad(y, wrt, G, create_graph=True, allow_unused=True))
            res = [next(gs) if nd else None for nd in need]
            res = [torch.zeros_like(t) if r is None and nd else r for r, t, nd in zip(res, ins, need)]
            return (*res, None, None)
        if P.native is not None:
            dx1, dbe, dbo, dW = _native.backward(
                G.contiguous(), x1, be, bo, W, raw, P, P.native, need[0], need[1] or need[2], need[3]
            )
            if dbe is not None:
                dbe, dbo = dbe.view(be.shape), dbo.view(bo.shape)
        else:
            dx1, dbe, dbo, dW = _whole_backward(G, x1, be, bo, W, raw, P, cs, need[0], need[1] or need[2], need[3])
        return dx1, _sum_to(dbe, be), _sum_to(dbo, bo), dW, None, None


def fused_sym_product(x1, be, bo, W, P: FusedPlan, chunk_size: int | None = None) -> torch.Tensor:
    """One symmetric-grid product over all of ``x1`` (e3nn layout) into the whole output layout.

    ``x1 [Z, dim1]``; ``be [Z|1, 1, De2]``, ``bo [Z|1, 1, Do2]`` (the second
    operand's reflection-even / -odd rows, channels already summed);
    ``W [Z|1, weight_numel]`` (read at ``P.wa`` / ``P.wc``). Returns
    ``[Z, dim_out]``. Equal to :func:`grid_bilinear_sym` between the
    corresponding gathers and scatters (its composable form, used for
    derivatives of derivatives).
    """
    Z = x1.shape[0]
    cs = _chunk(Z, P.U * 2 * P.Me.shape[0], chunk_size, x1)
    if torch.compiler.is_compiling():  # the composable form: plain ops, derivatives of any order
        return _composite(x1, be, bo, W, P, cs)
    if P.native is not None:
        if not _native.usable(x1, be, bo, W):
            P.native = None
        else:  # the kernel reads plain row-major arrays
            x1, W = x1.contiguous(), W.contiguous()
            be, bo = be.expand(Z, 1, be.shape[2]).contiguous(), bo.expand(Z, 1, bo.shape[2]).contiguous()
    return _FusedSym.apply(x1, be, bo, W, P, cs)
