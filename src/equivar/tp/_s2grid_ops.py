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
