"""EGCL on complete graphs of one size as one autograd node with a hand-written backward (the N-body fast path).

:meth:`EGCL.forward_dense` runs the layer as about a hundred small autograd
operations (each recording its node, saving its inputs, and in the backward
expanding, copying and accumulating gradients). On EGNN's N-body batches (100
graphs of 5 nodes, 2000 edges, 64 features) most of the time went there and
not into the per-edge matrix products. Here the forward runs without
recording, keeps what the backward needs, and the backward is written out:
fused SiLU derivatives (``silu_backward`` on the saved pre-activations),
products of the transposed saved activations for the weights, in-place
accumulation, the last linear maps of ``phi_x`` / ``phi_v`` as
matrix-vector products and their backward as outer products, and the
off-diagonal pair layout undone by one strided copy.

It is the same function as :meth:`EGCL.forward_dense` (same operations, in
the same order up to the placement of the bias of the receiver term and the
scaling of the coordinate mean; tested to round-off, gradients included);
first derivatives only (``once_differentiable``). Used for SiLU layers
without ``norm_diff`` when neither ``vel`` nor ``edge_attr`` requires grad.

The whole layer (node terms, the edge and coordinate MLPs, the sums over
neighbours, the velocity term and the node update, forward and backward with
every weight gradient) runs in the native kernel of
:mod:`equivar.nn._egcl_native` when it is available (CPU, float32 / float64,
``F`` a multiple of 16), else as the PyTorch operations above. At N-body size
(2000 edges) the torch operations and the kernel run on one thread
(:func:`equivar._threads.thread_policy`, :data:`~equivar.nn._egcl_native.PARALLEL_EDGES`:
a second thread costs more than it gives there; the user's thread count stays
the ceiling and is restored).
"""

from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable

from .._threads import thread_policy
from . import _egcl_native as _native
from ._complete_graphs import off_diagonal

_silu_backward = torch.ops.aten.silu_backward


def _sender_sums(g: torch.Tensor) -> torch.Tensor:
    """``g [N, N-1, C]`` (entries ``(i, j != i)`` as :func:`off_diagonal` lays them out) -> ``[N, C]``: the sum over
    ``i`` for each ``j`` (the adjoint of broadcasting a sender term). One strided copy into an ``N x N`` block whose
    diagonal rows are zeroed, then a sum over receivers."""
    n, _, c = g.shape
    full = g.new_empty(n * n, c)
    full[1:].view(n - 1, n + 1, c)[:, :n].copy_(g.reshape(n - 1, n, c))
    full[:: n + 1].zero_()
    return full.view(n, n, c).sum(0)


class _DenseEGCL(torch.autograd.Function):
    """Node-major layout: node row ``i B + b`` (node ``i`` of graph ``b``), edge row ``(i (N-1) + k) B + b``."""

    @staticmethod
    def forward(ctx, h, x, pair_attr, vel, n, scale, residual, update_h, *params):
        with thread_policy(h.shape[0] * (n - 1)):  # small layers: torch ops on one thread
            return _DenseEGCL._forward(ctx, h, x, pair_attr, vel, n, scale, residual, update_h, *params)

    @staticmethod
    def _forward(ctx, h, x, pair_attr, vel, n, scale, residual, update_h, *params):
        wn, bn, wp, w2, b2, wc1, bc1, wc2, wv1, bv1, wv2, bv2, wh1, bh1, wh2, bh2 = params
        ctx.set_materialize_grads(False)
        rows, f = h.shape
        d = x.shape[1]
        b = rows // n
        k = n - 1
        e = rows * k
        if _native.usable(h):  # the whole layer, forward and backward, in the native kernel
            fw = _native.layer_forward(h, x, pair_attr, vel, params, n, scale, residual, update_h)
            ctx.dims = (b, n, d, f, scale, residual, True)
            ctx.keys = [key for key in _NATIVE_SAVED if fw[key] is not None]
            ctx.save_for_backward(h, x, pair_attr, vel, *params, *(fw[k] for k in ctx.keys))
            return (fw["x"], fw["h"]) if update_h else (fw["x"],)
        xn = x.view(n, b * d)
        diff = off_diagonal(xn.unsqueeze(1) - xn.unsqueeze(0))  # [N, K, B D]: x_i - x_j
        r = (diff * diff).view(e, d).sum(-1, keepdim=True)
        pair_in = torch.cat([r, pair_attr], dim=1) if pair_attr is not None else r
        a = torch.mm(h, wn[:, :f]).view(n, 1, b * f)  # receiver term W_i h_i
        c = torch.mm(h, wn[:, f:]).view(1, n, b * f)  # sender term W_j h_j
        pre = off_diagonal(a + c).view(e, f)
        pre.addmm_(pair_in, wp).add_(bn)
        s1 = torch.nn.functional.silu(pre)
        z2 = torch.addmm(b2, s1, w2.t())
        m = torch.nn.functional.silu(z2)
        z3 = torch.addmm(bc1, m, wc1.t())
        s3 = torch.nn.functional.silu(z3)
        phi = torch.mv(s3, wc2[0])  # [E]
        trans = (diff.view(n, k, b, d) * phi.view(n, k, b, 1)).sum(1).view(rows, d)
        x_new = torch.add(x, trans, alpha=scale)
        agg = m.view(n, k, b * f).sum(1).view(rows, f) if update_h else None
        edge = (diff, pair_in, pre, s1, z2, m, z3, s3, phi)
        zv = hv = None
        if vel is not None:
            zv = torch.addmm(bv1, h, wv1.t())
            hv = torch.nn.functional.silu(zv)
            sv = torch.addmv(bv2, hv, wv2[0])
            x_new.addcmul_(sv.unsqueeze(1), vel)
        hin = zu = u = None
        outputs = (x_new,)
        if update_h:
            hin = torch.cat([h, agg], dim=1)
            zu = torch.addmm(bh1, hin, wh1.t())
            u = torch.nn.functional.silu(zu)
            h_new = torch.addmm(bh2, u, wh2.t())
            if residual:
                h_new.add_(h)
            outputs = (x_new, h_new)
        ctx.dims = (b, n, d, f, scale, residual, False)
        ctx.save_for_backward(h, vel, zv, hv, hin, zu, u, *params, *edge)
        return outputs

    @staticmethod
    @once_differentiable
    def backward(ctx, g_x, g_h=None):
        with thread_policy(ctx.dims[0] * ctx.dims[1] * (ctx.dims[1] - 1)):
            return _DenseEGCL._backward(ctx, g_x, g_h)

    @staticmethod
    def _backward(ctx, g_x, g_h):
        b, n, d, f, scale, residual, native = ctx.dims
        if native:
            h, x, pair_attr, vel, *rest = ctx.saved_tensors
            params, saved = rest[:16], dict.fromkeys(_NATIVE_SAVED)
            saved.update(zip(ctx.keys, rest[16:]))
            need_h, need_x = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
            g_h_in, g_x_in, grads = _native.layer_backward(
                saved, g_x, g_h, h, x, pair_attr, vel, params, n, scale, residual, need_h, need_x
            )
            return (g_h_in, g_x_in, None, None, None, None, None, None, *grads)
        (h, vel, zv, hv, hin, zu, u, *rest) = ctx.saved_tensors
        params, edge = rest[:16], rest[16:]
        wn, bn, wp, w2, b2, wc1, bc1, wc2, wv1, bv1, wv2, bv2, wh1, bh1, wh2, bh2 = params
        gp = dict.fromkeys(range(16))  # parameter gradients by position
        g_hacc = None  # gradient of the layer's input h
        g_agg = None  # [N B, F]
        if g_h is not None:  # h_new = [h +] W_h2 silu(W_h1 [h, agg] + b_h1) + b_h2
            gp[14] = g_h.t().mm(u)
            gp[15] = g_h.sum(0)
            g_zu = _silu_backward(g_h.mm(wh2), zu)
            gp[12] = g_zu.t().mm(hin)
            gp[13] = g_zu.sum(0)
            g_hin = g_zu.mm(wh1)
            g_hacc = g_hin[:, :f] + g_h if residual else g_hin[:, :f].clone()
            g_agg = g_hin[:, f:]
        if g_x is not None and vel is not None:  # x_new = ... + (w_v2 . silu(W_v1 h + b_v1) + b_v2) vel
            g_sv = (vel * g_x).sum(1)
            gp[10] = hv.t().mv(g_sv).unsqueeze(0)
            gp[11] = g_sv.sum().reshape(1)
            g_zv = _silu_backward(torch.outer(g_sv, wv2[0]), zv)
            gp[8] = g_zv.t().mm(h)
            gp[9] = g_zv.sum(0)
            g_hacc = g_zv.mm(wv1) if g_hacc is None else g_hacc.addmm_(g_zv, wv1)
        need_x = ctx.needs_input_grad[1]
        g_nt, g_x_in = _edge_backward(gp, edge, g_x, g_agg, params, n, scale, need_x)
        if g_nt is not None:
            gp[0] = h.t().mm(g_nt)
            g_hacc = g_nt.mm(wn.t()) if g_hacc is None else g_hacc.addmm_(g_nt, wn.t())
        if not ctx.needs_input_grad[0]:
            g_hacc = None
        return (g_hacc, g_x_in, None, None, None, None, None, None, *(gp[i] for i in range(16)))


_NATIVE_SAVED = ("pre", "z2", "z3", "phi", "agg", "zu", "zv")


def _edge_backward(gp, edge, g_x, g_agg, params, n, scale, need_x):
    """The edge chain's backward in PyTorch operations; fills ``gp[1:8]``, returns ``(g_nt [N B, 2F], g_x_in)``."""
    diff, pair_in, pre, s1, z2, m, z3, s3, phi = edge
    wn, bn, wp, w2, b2, wc1, bc1, wc2 = params[:8]
    k = n - 1
    e, f = s1.shape
    rows = e // k
    b = rows // n
    d = diff.shape[-1] // b
    g_m = None  # [E, F]
    g_x_in = None
    g_nt = None
    if g_x is not None:  # x_new = x + scale sum_k diff_k phi_k + ...
        g_phi = (diff.view(n, k, b, d) * g_x.view(n, 1, b, d)).sum(-1).view(e).mul_(scale)
        gp[7] = s3.t().mv(g_phi).unsqueeze(0)
        g_z3 = _silu_backward(torch.outer(g_phi, wc2[0]), z3)
        gp[5] = g_z3.t().mm(m)
        gp[6] = g_z3.sum(0)
        g_m = g_z3.mm(wc1)
    if g_agg is not None:  # agg_i = sum_k m_ik
        g_agg = g_agg.reshape(n, 1, b * f)
        if g_m is None:
            g_m = g_agg.expand(n, k, b * f).reshape(e, f)
        else:
            g_m.view(n, k, b * f).add_(g_agg)
    if g_m is not None:
        g_z2 = _silu_backward(g_m, z2)
        gp[3] = g_z2.t().mm(s1)
        gp[4] = g_z2.sum(0)
        g_pre = _silu_backward(g_z2.mm(w2), pre)
        gp[2] = pair_in.t().mm(g_pre)
        gp[1] = g_pre.sum(0)
        g_pre3 = g_pre.view(n, k, b * f)
        g_nt = torch.cat([g_pre3.sum(1).view(rows, f), _sender_sums(g_pre3).view(rows, f)], dim=1)
        if need_x:  # through r_ij = |x_i - x_j|^2 and the coordinate messages
            g_diff = diff.view(n, k, b, d) * torch.mv(g_pre, wp[0]).mul_(2.0).view(n, k, b, 1)
            if g_x is not None:
                g_diff.addcmul_(phi.view(n, k, b, 1), g_x.view(n, 1, b, d), value=scale)
            g_diff = g_diff.view(n, k, b * d)
            g_x_in = (g_diff.sum(1) - _sender_sums(g_diff)).view(rows, d)
    if g_x is not None and need_x:
        g_x_in = g_x if g_x_in is None else g_x_in.add_(g_x)
    return g_nt, g_x_in


def egcl_fusable(layer) -> bool:
    """Whether :func:`egcl_dense_fused` computes ``layer`` (SiLU activations, no ``norm_diff``)."""
    return isinstance(layer.act, torch.nn.SiLU) and not layer.norm_diff


def egcl_dense_fused(layer, h, x, pair_attr, vel, n: int, update_h: bool = True):
    """:meth:`EGCL.forward_dense` as one autograd node (see the module docstring), in the node-major layout.

    ``B`` complete graphs of ``N`` nodes; node rows are node-major (row ``i B + b`` is node ``i`` of graph ``b``:
    ``[B, N, ...]`` tensors transposed to ``[N, B, ...]`` and flattened), edge rows too (row ``(i (N-1) + k) B + b``
    is the edge ``j -> i`` of graph ``b`` with ``j = k + [k >= i]``), so that pair tensors have the ``B F``
    values of a node pair contiguous.

    Parameters
    ----------
    layer : EGCL
        SiLU activations, ``norm_diff`` off (:func:`egcl_fusable`).
    h : Tensor [N B, F]
    x : Tensor [N B, D]
    pair_attr : Tensor [N (N-1) B, A] or None
        Invariant edge attributes; no gradient flows to it.
    vel : Tensor [N B, D] or None
        Needed when the layer has the velocity term; no gradient flows to it.
    n : int
        Nodes per graph (>= 2).
    update_h : bool
        False: the node update is skipped and ``h`` returned as given.

    Returns
    -------
    (Tensor [B N, F], Tensor [B N, D])

    Raises
    ------
    ValueError
        The layer is not :func:`egcl_fusable`, ``vel`` is missing for a velocity layer, or ``edge_attr`` has the wrong
        width.
    """
    if not egcl_fusable(layer):
        raise ValueError("egcl_dense_fused: the layer must use SiLU without norm_diff")
    if layer.edge_attr_dim and (pair_attr is None or pair_attr.shape[-1] != layer.edge_attr_dim):
        got = None if pair_attr is None else pair_attr.shape[-1]
        raise ValueError(f"EGCL: edge_attr has {got} features, the layer was built for {layer.edge_attr_dim}")
    vp = layer.coord_mlp_vel
    if vp is not None and vel is None:
        raise ValueError("EGCL(velocity=True) needs vel [N, D]")
    # Sequential's ``[i]`` walks its modules (microseconds each, a third of a millisecond per N-body step): read
    # the registered children directly
    cm, nm = layer.coord_mlp._modules, layer.node_mlp._modules
    vm = vp._modules if vp is not None else None
    params = (
        layer.edge_in_nodes,
        layer.edge_in_bias,
        layer.edge_in_pairs,
        layer.edge_out.weight,
        layer.edge_out.bias,
        cm["0"].weight,
        cm["0"].bias,
        cm["2"].weight,
        *((vm["0"].weight, vm["0"].bias, vm["2"].weight, vm["2"].bias) if vm is not None else (None,) * 4),
        nm["0"].weight,
        nm["0"].bias,
        nm["2"].weight,
        nm["2"].bias,
    )
    scale = 1.0 / (n - 1) if layer.coords_aggregation == "mean" else 1.0
    out = _DenseEGCL.apply(
        h,
        x,
        pair_attr if layer.edge_attr_dim else None,
        vel if vp is not None else None,
        n,
        scale,
        layer.residual,
        update_h,
        *params,
    )
    return (out[1], out[0]) if update_h else (h, out[0])
