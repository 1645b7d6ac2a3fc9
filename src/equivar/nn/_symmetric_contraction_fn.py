"""Autograd of :class:`~equivar.nn.SymmetricContraction`: an analytic, twice-differentiable backward.

For one node ``n`` of element ``e`` and one channel ``c`` (``x = x[c, :, n]``,
``D`` values) the contraction is a polynomial of degree ``nu_max``::

    y_o     = sum_j M[e, c, o, j] m_j(x)              m_j: sorted monomials (U's columns)
    J[o, i] = dy_o / dx_i = sum_q G[e, c, o, i, q] b_q(x)

with ``b_q`` the monomials of degree ``0 .. nu_max - 1`` that occur as
derivatives, ``M = W U`` and ``G = W U_G`` (``U_G`` is ``U`` differentiated,
``d x^t / dx_i = count_i(t) x^(t - i)``). The backward is
``gx[i] = sum_o gy_o J[o, i]`` and ``gW = (gy m^T) U^T``, written with plain
differentiable ops: a force loss (forward -> ``create_graph`` backward ->
backward) differentiates one ``[E*C, K] @ U_G`` matmul and one batched
matmul per element instead of autograd's trace through the monomial
products, and the Jacobian is computed once and reused by the second
backward. Nodes are grouped by element (``counts``), so every node meets
only its own element's coefficients.
"""

from __future__ import annotations

import numpy as np
import torch

from ._symmetric_basis import sorted_monomials


def _per_element(fn, counts) -> list:
    """``[fn(e, start, n) for every element e with n > 0 nodes]`` (nodes grouped by element)."""
    out, s = [], 0
    for e, n in enumerate(counts):
        if n:
            out.append(fn(e, s, n))
        s += n
    return out


def _will_execute(t: torch.Tensor) -> bool:
    """Whether the running backward needs a gradient for ``t`` (False skips weight gradients in a forces pass)."""
    try:
        return bool(torch._C._will_engine_execute_node(torch.autograd.graph.get_gradient_edge(t).node))
    except Exception:  # API not available: compute it
        return True


def contraction_output(sc, M: torch.Tensor, mono: torch.Tensor, counts) -> torch.Tensor:
    """``M [E, C, d, J]``, monomials ``[C, J, N]`` (nodes grouped by element) -> ``y [C, d, N]``."""
    parts = _per_element(lambda e, s, n: torch.bmm(M[e], mono[:, :, s : s + n]), counts)
    if not parts:
        return mono.new_zeros(M.shape[1], M.shape[2], 0)
    return parts[0] if len(parts) == 1 else torch.cat(parts, 2)


def weight_grad(sc, gy: torch.Tensor, mono: torch.Tensor, counts) -> torch.Tensor:
    """``gy [C, d, N]``, monomials ``[C, J, N]`` -> gradient of the stacked weights ``[E*C, K]``."""
    E, C, d = sc.num_elements, sc.channels, sc.d_tot
    parts = _per_element(lambda e, s, n: torch.bmm(gy[:, :, s : s + n], mono[:, :, s : s + n].transpose(1, 2)), counts)
    if len(parts) == E:
        gM = torch.stack(parts, 0)
    else:
        zero = gy.new_zeros(C, d, mono.shape[1])
        it = iter(parts)
        gM = torch.stack([next(it) if n else zero for n in counts], 0)
    return gM.view(E * C, d * mono.shape[1]) @ sc._U.t()


def jacobian(sc, xt: torch.Tensor, Wc: torch.Tensor, counts) -> torch.Tensor:
    """``J [C, d, D, N]``, ``J[c, o, i, n] = dy[c, o, n] / dx[c, i, n]`` (differentiable in ``xt`` and ``Wc``).

    Parity blocks: row ``(o, i)`` only meets monomials ``b_q`` of parity
    ``p_o p_i``, so ``G_e = W_e U_G`` is stored as its two dense blocks
    ``[C, R+, P+]`` and ``[C, R-, P-]`` (about half of the full ``[C, d*D, P]``).
    """
    _E, C, d, D, N = sc.num_elements, sc.channels, sc.d_tot, sc.D, xt.shape[2]
    (Rp, Pp), (Rm, Pm) = sc._jac_blocks
    B = sc._derivative_monomials(xt)  # [C, P, N], even monomials first
    Bp, Bm = B.split([Pp, Pm], 1)
    plus, minus = [], []

    def block(e, s, n):
        Gp, Gm = (Wc.narrow(0, e * C, C) @ sc._UG).split([Rp * Pp, Rm * Pm], 1)
        plus.append(torch.bmm(Gp.view(C, Rp, Pp), Bp[:, :, s : s + n]))
        minus.append(torch.bmm(Gm.view(C, Rm, Pm), Bm[:, :, s : s + n]))

    _per_element(block, counts)
    if not plus:
        return xt.new_zeros(C, d, D, 0)
    J = torch.cat([torch.cat(plus, 2), torch.cat(minus, 2)], 1) if len(plus) > 1 else torch.cat([plus[0], minus[0]], 1)
    return J.index_select(1, sc._jac_rows).view(C, d, D, N)


def init_derivatives(sc, coef: dict, d_off) -> None:
    """Register on ``sc`` the derivative monomials and ``U_G`` (``U`` differentiated), in parity blocks.

    ``coef[(o, nu)] [K, d_o, M_nu]`` are the path coefficients on all sorted
    monomials of order ``nu`` (multiplicities included), ``d_off`` the
    output block offsets. Registers ``_bf<f>`` (factor indices of ``b_q``
    into ``[1, x]``), ``_UG [K_all, R+ P+ + R- P-]`` (rows ``(o, i)`` with
    ``p_o p_i = +1`` against even ``b_q``, then the odd block), ``_jac_rows``
    (natural row order ``o*D + i`` from the blocks) and ``_jac_blocks``.
    """
    D, nu_max, d = sc.D, sc.correlation, sc.d_tot
    p_in = [ir.p for _, ir in sc.per_channel_in for _ in range(ir.dim)]
    p_out = [ir.p for _, ir in sc.irreps_out for _ in range(ir.dim)]
    used = {}  # (o, nu) -> [(column in vals, sorted tuple)] of monomials some path uses
    for (o, nu), vals in coef.items():
        tup = sorted_monomials(D, nu)
        nz = np.flatnonzero(np.abs(vals).max(axis=(0, 1)) > 0)
        used[(o, nu)] = [(m, tuple(int(v) for v in tup[m])) for m in nz]
    parity = lambda q: int(np.prod([p_in[v] for v in q])) if q else 1  # noqa: E731
    derivs = {t[:k] + t[k + 1 :] for lst in used.values() for _, t in lst for k in range(len(t))}
    Q = sorted(derivs, key=lambda q: (parity(q) != 1, len(q), q))
    qpos = {q: r for r, q in enumerate(Q)}
    P, Pp = len(Q), sum(parity(q) == 1 for q in Q)
    for f in range(max(nu_max - 1, 1)):  # b_q = prod_f xe[f-th padded factor], xe = [1, x]
        pad = [(-1,) * (nu_max - 1 - len(q)) + q for q in Q]
        sc.register_buffer(
            f"_bf{f}", torch.tensor([t[f] + 1 if nu_max > 1 else 0 for t in pad], dtype=torch.long), persistent=False
        )
    rows = []
    for (o, nu), vals in sorted(coef.items()):
        u = np.zeros((vals.shape[0], d, D, P))
        for m, t in used[(o, nu)]:
            for i in set(t):
                k = t.index(i)
                u[:, d_off[o] : d_off[o + 1], i, qpos[t[:k] + t[k + 1 :]]] += vals[:, :, m] * t.count(i)
        rows.append(u.reshape(vals.shape[0], d * D, P))
    u = np.concatenate(rows, 0)  # [K_all, d*D, P]
    sign = np.array([p_out[r // D] * p_in[r % D] for r in range(d * D)])
    rp, rm = np.flatnonzero(sign == 1), np.flatnonzero(sign != 1)
    assert not u[:, rp, Pp:].any() and not u[:, rm, :Pp].any(), "parity selection rule violated"
    K = u.shape[0]
    sc.register_constant("_UG", np.concatenate([u[:, rp, :Pp].reshape(K, -1), u[:, rm, Pp:].reshape(K, -1)], 1))
    sc.register_buffer(
        "_jac_rows", torch.tensor(np.argsort(np.concatenate([rp, rm])), dtype=torch.long), persistent=False
    )
    sc._jac_blocks = ((len(rp), Pp), (len(rm), P - Pp))
    sc.P = P
    # the analytic backward pays off when the Jacobian blocks are small next to the monomial work that
    # autograd would trace (E * d_tot output rows over J monomials, e.g. 0e+1o outputs); for scalar
    # outputs (d_tot = 1) the derivative monomials outnumber the contracted ones and autograd is cheaper
    sc.analytic_backward = len(rp) * Pp + len(rm) * (P - Pp) <= 3 * d * sc.J


class ContractionFunction(torch.autograd.Function):
    """``y = ContractionFunction.apply(xt, Wc, sc, counts)``.

    ``xt [C, D, N]`` channel-major input with nodes grouped by element
    (``counts[e]`` nodes of element ``e``, in order), ``Wc [E*C, K]`` the
    stacked path weights (row ``e*C + c``), ``sc`` the
    :class:`~equivar.nn.SymmetricContraction` (its constant bases and index
    tables). Returns ``y [C, d_tot, N]``. Differentiable to any order in
    ``xt`` and ``Wc``.
    """

    @staticmethod
    def forward(ctx, xt, Wc, sc, counts):
        E, C = sc.num_elements, sc.channels
        mono = sc._monomial_buffer(xt)  # [C, J, N]
        M = (Wc @ sc._U).view(E, C, sc.d_tot, sc.J)
        y = contraction_output(sc, M, mono, counts)
        ctx.save_for_backward(xt, Wc)
        ctx.sc, ctx.counts = sc, counts
        ctx.mono = mono if ctx.needs_input_grad[1] else None
        ctx.jac = None
        return y

    @staticmethod
    def backward(ctx, gy):
        xt, Wc = ctx.saved_tensors
        sc, counts = ctx.sc, ctx.counts
        graph = torch.is_grad_enabled()
        gx = gw = None
        if ctx.needs_input_grad[0]:
            if graph and (xt.requires_grad or Wc.requires_grad):
                J = jacobian(sc, xt, Wc, counts)  # recorded: the forces pass
                ctx.jac = J.detach()
            else:
                if ctx.jac is None:  # reused by a later backward (the loss's, after the forces')
                    ctx.jac = jacobian(sc, xt, Wc, counts)
                J = ctx.jac
            gx = (J * gy.unsqueeze(2)).sum(1)
        if ctx.needs_input_grad[1] and _will_execute(Wc):
            if graph and (gy.requires_grad or xt.requires_grad):
                mono = sc._monomial_matrix(xt)  # recomputed with a graph (rare: higher derivatives of gW)
            else:
                mono = ctx.mono
            gw = weight_grad(sc, gy, mono, counts)
        return gx, gw, None, None
