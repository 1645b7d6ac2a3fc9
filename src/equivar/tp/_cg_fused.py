r"""Fused kernels of the ``cg`` backend for channelwise (``'uvu'``) paths.

Each ``uvu`` path ``in1[a] (mul u, l1) x in2[b] (mul v, l2) -> out[c] (mul u, l3)``
is split into ``v`` *sub-paths*, one per copy of the second input, so that
every sub-path couples the ``u`` channels of x1 with one irrep of x2:

    out[z, u, k] += w[z, u, v] * sum_ij C[i, j, k] x1[z, u, i] x2[z, v, j]

The sub-paths of one x1 block form a *group*; per chunk of samples:

1. ``B = x2 @ Cbig``: one dense product ``[c, D2] @ [D2, N]`` contracts x2
   with every sub-path's coefficients (path weights folded in), laid out
   per group as ``B_g [c, d1, K_g]`` (``K_g``: summed output dimensions of
   the group's sub-paths);
2. ``T_g = x1_g @ B_g``: one batched product ``[c, u, d1] @ [c, d1, K_g]``;
3. ``O_g = T_g * W_g``: the channel weights, gathered once per group into
   the ``[u, K_g]`` layout, one contiguous multiply into a work buffer
   ``O [c, sum_g u K_g]``;
4. ``out = O[:, idx]``: one gather puts every element in e3nn's output
   layout (paths summed into the same output block take one more gather
   per extra path).

The backward pass is the same steps transposed:
``GO = G[:, pos]`` (gather), ``dx1_g = (GO_g W_g) @ B_g^T``,
``dB_g = x1_g^T @ (GO_g W_g)``, ``dx2 = sum_g dB_g @ Cbig_g^T``,
``dw = gather(sum_k GO_g T_g)`` (the sum over each sub-path's columns is a
product with a 0/1 matrix). The map is trilinear in (x1, x2, w), so the
derivatives of the backward are forward/backward calls with permuted
arguments: two ``autograd.Function`` classes that call each other give
derivatives of any order (force training needs the second).

No ``[Z, u, v, i, j]`` tensor is formed; work buffers are per chunk of
samples, sized to stay in the last-level cache, and every elementwise
operation runs on contiguous memory.

On the CPU (float32/float64) ``fused_forward`` / ``fused_backward`` hand
the same plan to the native kernel of :mod:`equivar.tp._cg_native` when it
is available (``plan.native``); the PyTorch code above is the fallback and
the implementation on other devices.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch

from . import _cg_native, _cg_triton

#: Target size in bytes (float32) of one chunk's work buffer ``O``.
CHUNK_BYTES = 4 * 2**20


@dataclass(frozen=True)
class Group:
    x1_start: int  # slice of the x1 block
    mul: int
    d1: int
    b_start: int  # offset of B_g [d1, K] in the flat B
    K: int
    o_start: int  # offset of O_g [mul, K] in the work buffer
    S: int  # number of sub-paths
    r_start: int  # offset of the [mul, S] weight-gradient block in the R buffer
    name: str  # constants of this group: {name}_w (weight gather), {name}_e (0/1 [K, S])


@dataclass(frozen=True)
class FusedPlan:
    groups: tuple
    d_out: int
    n_o: int  # work-buffer columns (a zero column follows)
    n_r: int  # weight-gradient buffer columns (a zero column follows)
    n_gather: int  # gathers that assemble the output (max number of paths into one output element)
    n_weights: int  # flat weight size the gathers index (a ones column follows for unweighted sub-paths)
    has_unweighted: bool
    n_cols: int  # columns of Cbig
    native: tuple | None = None  # sizes for the native CPU kernels (equivar.tp._cg_native), None: not available
    triton: tuple | None = None  # sizes for the Triton GPU kernels (equivar.tp._cg_triton), None: not available


def build_plan(irreps_in1, irreps_in2, irreps_out, instructions, offsets, cg_np, n_weights):
    """Plan and constants (dict of numpy arrays, including ``cbig [D2, N]``) for ``uvu`` instructions.

    ``instructions``: ``(index, Instruction)`` pairs; ``offsets[index]`` the
    weight offset (``None`` if unweighted); ``cg_np(l1, l2, l3)`` the real
    CG tensor (float64); ``n_weights`` the full weight size.
    """
    s1 = irreps_in1.slices()
    s2 = irreps_in2.slices()
    so = irreps_out.slices()
    D2, d_out = irreps_in2.dim, irreps_out.dim
    ONES = n_weights  # index of the ones column appended for unweighted sub-paths
    by_group: dict[int, list] = {}
    for n, ins in instructions:
        by_group.setdefault(ins.i_in1, []).append((n, ins))

    consts: dict[str, np.ndarray] = {}
    cbig_blocks = []
    groups = []
    contributions: list[list[int]] = [[] for _ in range(d_out)]  # O indices per output element
    wsrc = np.full(n_weights, -1, dtype=np.int64)  # R index per weight
    b_start = o_start = r_start = 0
    has_unweighted = False
    for gi, a in enumerate(sorted(by_group)):
        mul, ir1 = irreps_in1[a]
        d1 = ir1.dim
        subs = []  # (C [d1, d2, d3], j0, out_start, w_base, w_stride, d3)
        for n, ins in by_group[a]:
            m2, ir2 = irreps_in2[ins.i_in2]
            iro = irreps_out[ins.i_out].ir
            C = cg_np(ir1.l, ir2.l, iro.l) * ins.path_weight
            for vi in range(m2):
                j0 = s2[ins.i_in2].start + vi * ir2.dim
                if ins.has_weight:
                    wb, ws = offsets[n] + vi, m2
                else:
                    wb, ws = -1, 0
                    has_unweighted = True
                subs.append((C, j0, so[ins.i_out].start, wb, ws, iro.dim))
        K = sum(s[5] for s in subs)
        S = len(subs)
        cb = np.zeros((D2, d1 * K))
        wg = np.empty((mul, K), dtype=np.int64)
        E = np.zeros((K, S))
        k = 0
        for si, (C, j0, out_start, wb, ws, d3) in enumerate(subs):
            d2 = C.shape[1]
            for i in range(d1):
                cb[j0 : j0 + d2, i * K + k : i * K + k + d3] = C[i]
            for u in range(mul):
                wg[u, k : k + d3] = wb + u * ws if wb >= 0 else ONES
                for kk in range(d3):
                    contributions[out_start + u * d3 + kk].append(o_start + u * K + k + kk)
                if wb >= 0:
                    wsrc[wb + u * ws] = r_start + u * S + si
            E[k : k + d3, si] = 1.0
            k += d3
        name = f"_g{gi}"
        consts[name + "_w"] = wg.reshape(-1)
        consts[name + "_e"] = E
        cbig_blocks.append(cb)
        groups.append(Group(s1[a].start, mul, d1, b_start, K, o_start, S, r_start, name))
        b_start += d1 * K
        o_start += mul * K
        r_start += mul * S
    n_o, n_r = o_start, r_start
    n_gather = max((len(c) for c in contributions), default=0)
    gather = np.full((max(n_gather, 1), d_out), n_o, dtype=np.int64)  # n_o: the zero column
    pos = np.empty(n_o, dtype=np.int64)
    for j, cs in enumerate(contributions):
        for r, o in enumerate(cs):
            gather[r, j] = o
            pos[o] = j
    wsrc[wsrc < 0] = n_r  # weights of other paths: the zero column
    consts["cbig"] = np.concatenate(cbig_blocks, axis=1) if cbig_blocks else np.zeros((D2, 0))
    consts["out_gather"] = gather
    consts["o_pos"] = pos
    consts["w_src"] = wsrc
    plan = FusedPlan(tuple(groups), d_out, n_o, n_r, n_gather, n_weights, has_unweighted, b_start)
    if _cg_native.library() is not None:
        arrays, sizes = _cg_native.pack_plan(irreps_in1, irreps_in2, irreps_out, instructions, offsets, cg_np)
        consts.update(arrays)
        plan = dataclasses.replace(plan, native=tuple(sizes))
    if _cg_triton.available():
        arrays, sizes = _cg_triton.pack_plan(
            irreps_in1, irreps_in2, irreps_out, instructions, offsets, cg_np, n_weights
        )
        consts.update(arrays)
        plan = dataclasses.replace(plan, triton=tuple(sizes))
    return plan, consts


def _chunk_size(plan: FusedPlan, Z: int, like: torch.Tensor | None = None) -> int:
    """Samples per chunk: work buffers of about :data:`CHUNK_BYTES` on the CPU (cache-sized), ~1 GB on a GPU
    (few large launches)."""
    per_sample = 4 * (plan.n_o + plan.d_out + plan.n_cols)
    budget = CHUNK_BYTES if like is None or like.device.type == "cpu" else 2**30
    return max(16, min(max(Z, 1), budget // max(per_sample, 1)))


def _weights_ext(plan: FusedPlan, w: torch.Tensor, z0: int, z1: int, uw: float) -> torch.Tensor:
    """Weights of samples z0:z1 ([c, W] or shared [W]), plus a column ``uw`` for the unweighted sub-paths."""
    wc = w if w.dim() == 1 else w[z0:z1]
    if plan.has_unweighted:
        wc = torch.cat([wc, wc.new_full(wc.shape[:-1] + (1,), uw)], dim=-1)
    return wc


def _gather_w(wc: torch.Tensor, idx: torch.Tensor, c: int, g: Group) -> torch.Tensor:
    if wc.dim() == 1:
        return wc[idx].view(g.mul, g.K)
    return torch.index_select(wc, 1, idx).view(c, g.mul, g.K)


@torch.no_grad()
def fused_forward(plan: FusedPlan, consts: dict, x1, x2, w, uw: float = 1.0):
    """``out [Z, d_out]`` of the plan's sub-paths. ``w``: ``[Z, W]``, ``[W]`` (shared) or ``[0]``.

    ``uw`` weighs the unweighted sub-paths: 1, or 0 for the part that is linear in ``w``.
    """
    if plan.triton is not None and _cg_triton.usable(x1, x2, w):
        return _cg_triton.uvu_forward(consts, plan.triton, x1, x2, w, uw)
    if plan.native is not None and _cg_native.usable(x1, x2, w):
        fn = torch.ops.equivar.cg_uvu_forward if torch.compiler.is_compiling() else _cg_native.uvu_forward
        return fn(
            x1,
            x2,
            w,
            consts["n_groups"],
            consts["n_subs"],
            consts["n_nnz"],
            consts["n_coef"],
            consts["n_zero"],
            list(plan.native),
            float(uw),
        )
    return fused_forward_torch(plan, consts, x1, x2, w, uw)


def fused_forward_torch(plan: FusedPlan, consts: dict, x1, x2, w, uw: float = 1.0):
    """:func:`fused_forward` in PyTorch operations only; differentiable by autograd when called with
    gradient recording on (what ``torch.compile`` traces: derivatives of any order, no custom Function)."""
    Z = x1.shape[0]
    cbig = consts["cbig"]
    gather = consts["out_gather"]
    if isinstance(Z, torch.SymInt):  # symbolic batch (torch.export with dynamic shapes): one chunk, no loop over Z
        bounds = [(0, Z)]
    else:
        step = _chunk_size(plan, Z, x1)
        bounds = [(z0, min(Z, z0 + step)) for z0 in range(0, Z, step)]
    outs = []
    for z0, z1 in bounds:
        c = z1 - z0
        B = x2[z0:z1] @ cbig
        wc = _weights_ext(plan, w, z0, z1, uw)
        pieces = []
        for g in plan.groups:
            Bg = B[:, g.b_start : g.b_start + g.d1 * g.K].view(c, g.d1, g.K)
            x1g = x1[z0:z1, g.x1_start : g.x1_start + g.mul * g.d1].view(c, g.mul, g.d1)
            pieces.append((torch.bmm(x1g, Bg) * _gather_w(wc, consts[g.name + "_w"], c, g)).reshape(c, g.mul * g.K))
        pieces.append(x1.new_zeros(c, 1))
        O = torch.cat(pieces, dim=1)  # work buffer [c, n_o + 1], last column zero
        dst = torch.index_select(O, 1, gather[0])
        for r in range(1, plan.n_gather):
            dst = dst + torch.index_select(O, 1, gather[r])
        outs.append(dst)
    if not outs:  # empty batch: zeros still connected to the inputs, as the custom Function's output is
        return x1.new_zeros(0, plan.d_out) + 0 * (x1.sum() + x2.sum() + w.sum())
    return torch.cat(outs, dim=0) if len(outs) > 1 else outs[0]


@torch.no_grad()
def fused_backward(
    plan: FusedPlan, consts: dict, G, x1, x2, w, need_x1: bool, need_x2: bool, need_w: bool, uw: float = 1.0
):
    """Gradients of ``<G, fused_forward(x1, x2, w)>`` with respect to x1, x2, w (``None`` where not needed)."""
    if plan.triton is not None and _cg_triton.usable(x1, x2, w) and G.dtype == x1.dtype and G.device == x1.device:
        return _cg_triton.uvu_backward(consts, plan.triton, G, x1, x2, w, need_x1, need_x2, need_w, uw)
    if plan.native is not None and _cg_native.usable(x1, x2, w) and G.dtype == x1.dtype:
        fn = torch.ops.equivar.cg_uvu_backward if torch.compiler.is_compiling() else _cg_native.uvu_backward
        gx1, gx2, gw = fn(
            G,
            x1,
            x2,
            w,
            consts["n_groups"],
            consts["n_subs"],
            consts["n_nnz_i"],
            consts["n_coef_i"],
            list(plan.native),
            [bool(need_x1), bool(need_x2), bool(need_w)],
            float(uw),
        )
        return (gx1 if need_x1 else None), (gx2 if need_x2 else None), (gw if need_w else None)
    Z = x1.shape[0]
    cbig = consts["cbig"]
    pos = consts["o_pos"]
    shared = w.dim() == 1
    gx1 = torch.zeros_like(x1) if need_x1 else None
    gx2 = torch.empty_like(x2) if need_x2 else None
    gw = None
    if need_w:
        gw = torch.zeros_like(w) if shared else torch.empty_like(w)
    step = _chunk_size(plan, Z, x1)
    for z0 in range(0, Z, step):
        z1 = min(Z, z0 + step)
        c = z1 - z0
        GO = torch.index_select(G[z0:z1], 1, pos)  # [c, n_o]: G in the work-buffer layout
        B = x2[z0:z1] @ cbig
        wc = _weights_ext(plan, w, z0, z1, uw) if (need_x1 or need_x2) else None
        if need_x2:
            gx2c = gx2[z0:z1]
            gx2c.zero_()
        if need_w:
            R = x1.new_empty(c, plan.n_r + 1)
            R[:, plan.n_r].zero_()
        for g in plan.groups:
            Bg = B[:, g.b_start : g.b_start + g.d1 * g.K].view(c, g.d1, g.K)
            x1g = x1[z0:z1, g.x1_start : g.x1_start + g.mul * g.d1].view(c, g.mul, g.d1)
            GOg = GO[:, g.o_start : g.o_start + g.mul * g.K].view(c, g.mul, g.K)
            if need_x1 or need_x2:
                GW = GOg * _gather_w(wc, consts[g.name + "_w"], c, g)
                if need_x1:
                    gx1[z0:z1, g.x1_start : g.x1_start + g.mul * g.d1].view(c, g.mul, g.d1).copy_(
                        torch.bmm(GW, Bg.transpose(1, 2))
                    )
                if need_x2:
                    gB = torch.bmm(x1g.transpose(1, 2), GW).view(c, g.d1 * g.K)
                    gx2c.addmm_(gB, cbig[:, g.b_start : g.b_start + g.d1 * g.K].T)
            if need_w:
                PT = torch.bmm(x1g, Bg).mul_(GOg)  # [c, u, K]: G * T
                Rg = (PT.view(c * g.mul, g.K) @ consts[g.name + "_e"]).view(c, g.mul * g.S)
                R[:, g.r_start : g.r_start + g.mul * g.S].copy_(Rg)
        if need_w:
            if shared:
                gw += torch.index_select(R.sum(0, keepdim=True), 1, consts["w_src"])[0]
            else:
                gw[z0:z1] = torch.index_select(R, 1, consts["w_src"])
    return gx1, gx2, gw


class FusedTP(torch.autograd.Function):
    """out = TP(x1, x2, w) through the plan; differentiable to any order (eager mode; under
    ``torch.compile`` the backend calls :func:`fused_forward_torch` instead, because dynamo loses the
    double backward of a traced Function).

    ``uw`` is the weight of the unweighted paths: 1 for the product itself,
    0 for its part that is linear in ``w`` (what derivatives in a weight
    direction need: unweighted paths do not depend on ``w``). ``consts``:
    the plan's constants (a dict of tensors in the inputs' dtype).
    """

    @staticmethod
    def forward(ctx, plan, consts, x1, x2, w, uw):
        ctx.set_materialize_grads(False)
        ctx.plan, ctx.consts, ctx.uw = plan, consts, uw
        ctx.save_for_backward(x1, x2, w)
        return fused_forward(plan, consts, x1, x2, w, uw)

    @staticmethod
    def backward(ctx, G):
        if G is None:
            return (None,) * 6
        x1, x2, w = ctx.saved_tensors
        nx1, nx2, nw = ctx.needs_input_grad[2:5]
        nw = nw and w.numel() > 0
        gx1, gx2, gw = FusedTPBackward.apply(ctx.plan, ctx.consts, G.contiguous(), x1, x2, w, ctx.uw, nx1, nx2, nw)
        return None, None, gx1, gx2, gw, None


class FusedTPBackward(torch.autograd.Function):
    """(dx1, dx2, dw): gradients of <G, TP(x1, x2, w)>; each linear in G and in the remaining inputs."""

    @staticmethod
    def forward(ctx, plan, consts, G, x1, x2, w, uw, nx1, nx2, nw):
        ctx.set_materialize_grads(False)  # outputs nobody differentiates come back as None: skipped below
        ctx.plan, ctx.consts, ctx.uw, ctx.flags = plan, consts, uw, (nx1, nx2, nw)
        ctx.save_for_backward(G, x1, x2, w)
        return fused_backward(plan, consts, G, x1, x2, w, nx1, nx2, nw, uw)

    @staticmethod
    def backward(ctx, ggx1, ggx2, ggw):
        # d/d(G, x1, x2, w) of <ggx1, dx1(G,x2,w)> + <ggx2, dx2(G,x1,w)> + <ggw, dw(G,x1,x2)>;
        # a substituted weight direction (ggw) only reaches the weighted paths (uw = 0)
        G, x1, x2, w = ctx.saved_tensors
        plan, consts, uw = ctx.plan, ctx.consts, ctx.uw
        nx1, nx2, nw = ctx.flags
        nG, n1, n2, nW = ctx.needs_input_grad[2:6]
        ggx1 = ggx1.contiguous() if (nx1 and ggx1 is not None) else None
        ggx2 = ggx2.contiguous() if (nx2 and ggx2 is not None) else None
        ggw = ggw.contiguous() if (nw and ggw is not None) else None

        nW_ = nW and w.numel() > 0
        flags = [
            bool(nG and (ggx1 is not None or ggx2 is not None or ggw is not None)),
            bool(n1 and (ggx2 is not None or ggw is not None)),
            bool(n2 and (ggw is not None or ggx1 is not None)),
            bool(nW_ and (ggx2 is not None or ggx1 is not None)),
        ]
        if (
            plan.triton is not None
            and not torch.is_grad_enabled()
            and _cg_triton.usable(x1, x2, w)
            and G.dtype == x1.dtype
            and G.device == x1.device
        ):  # a first-order result on the GPU: one launch per output
            oG, o1, o2, oW = _cg_triton.uvu_double_backward(
                consts, plan.triton, G, x1, x2, w, ggx1, ggx2, ggw, flags, uw
            )
            return None, None, oG, o1, o2, oW, None, None, None, None
        if (
            plan.native is not None
            and not torch.is_grad_enabled()
            and _cg_native.usable(x1, x2, w)
            and G.dtype == x1.dtype
        ):  # a first-order result: one native sweep
            oG, o1, o2, oW = _cg_native.uvu_double_backward(
                G,
                x1,
                x2,
                w,
                ggx1,
                ggx2,
                ggw,
                consts["n_groups"],
                consts["n_subs"],
                consts["n_nnz_i"],
                consts["n_coef_i"],
                consts["n_zero"],
                list(plan.native),
                flags,
                float(uw),
            )
            return None, None, oG, o1, o2, oW, None, None, None, None

        def tp(a, b, c, u):
            return FusedTP.apply(plan, consts, a, b, c, u)

        def bwd(a, b, c, u, flags):
            return FusedTPBackward.apply(plan, consts, G, a, b, c, u, *flags)

        gG = None
        if nG:
            gG = _sum(
                [
                    tp(ggx1, x2, w, uw) if ggx1 is not None else None,
                    tp(x1, ggx2, w, uw) if ggx2 is not None else None,
                    tp(x1, x2, ggw, 0.0) if ggw is not None else None,
                ]
            )
        nW = nW and w.numel() > 0
        # the six remaining terms share three argument lists; one sweep each computes two gradients
        g1, g2, gW = [], [], []
        if ggx2 is not None and (n1 or nW):  # (x1, ggx2, w): dx1 -> x1, dw -> w
            a = bwd(x1, ggx2, w, uw, (n1, False, nW))
            g1.append(a[0])
            gW.append(a[2])
        if ggw is not None and (n1 or n2):  # (x1, x2, ggw) weighted part: dx1 -> x1, dx2 -> x2
            a = bwd(x1, x2, ggw, 0.0, (n1, n2, False))
            g1.append(a[0])
            g2.append(a[1])
        if ggx1 is not None and (n2 or nW):  # (ggx1, x2, w): dx2 -> x2, dw -> w
            a = bwd(ggx1, x2, w, uw, (False, n2, nW))
            g2.append(a[1])
            gW.append(a[2])
        g1, g2, gW = _sum(g1) if n1 else None, _sum(g2) if n2 else None, _sum(gW) if nW else None
        return None, None, gG, g1, g2, gW, None, None, None, None


def _sum(terms):
    terms = [t for t in terms if t is not None]
    if not terms:
        return None
    out = terms[0]
    for t in terms[1:]:
        out = out + t
    return out
