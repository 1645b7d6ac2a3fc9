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


def _fit(P: torch.Tensor, U: int, K: int) -> torch.Tensor:
    """Sum or broadcast ``P [Z, U', K', n]`` to ``[Z, U, K, n]``."""
    if P.shape[2] != K:
        P = P.sum(2, keepdim=True) if K == 1 else P.expand(P.shape[0], P.shape[1], K, P.shape[3])
    if P.shape[1] != U:
        P = P.sum(1, keepdim=True) if U == 1 else P.expand(P.shape[0], U, P.shape[2], P.shape[3])
    return P


def _chunk(Z: int, per_sample: int, chunk_size: int | None) -> int:
    if chunk_size:
        return max(1, int(chunk_size))
    # ~2 MB of grid values per chunk in float32
    return max(1, min(Z, (1 << 19) // max(1, per_sample)))


def _forward(A, B, SA, SB, M, n, Kc, Uo, chunk_size):
    Z = max(A.shape[0], B.shape[0])
    Ua, Ub = A.shape[1], B.shape[1]
    Ka, Kb = SA.shape[1] // n, SB.shape[1] // n
    U = max(Ua, Ub)
    out = A.new_empty(Z, Uo, M.shape[1])
    cs = _chunk(Z, U * max(Ka, Kb) * n, chunk_size)
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
    cs = _chunk(Z, U * max(Ka, Kb, Kc) * n, chunk_size)
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
    cs = _chunk(Z, max(Ua, Ub) * 2 * nh, chunk_size)
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
    cs = _chunk(Z, max(Ua, Ub, Uo) * 2 * nh, chunk_size)
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
                dae, dao = grid_bilinear_sym(ge, go, be, bo, Me.t(), Mo.t(), SBe, SBo, SAe.t(), SAo.t(), ae.shape[1], cs, sg)
            if need_b:
                dbe, dbo = grid_bilinear_sym(ge, go, ae, ao, Me.t(), Mo.t(), SAe, SAo, SBe.t(), SBo.t(), be.shape[1], cs, sg)
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
    return _GridBilinearSym.apply(ae, ao, be, bo, SAe, SAo, SBe, SBo, Me, Mo, Uo, chunk_size, save_grid)
