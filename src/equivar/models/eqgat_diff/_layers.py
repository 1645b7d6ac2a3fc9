"""EQGAT layers with edge features (Le, Noé, Clevert 2022; as EQGAT-diff uses them, Le et al. ICLR 2024).

Read from ``tuanle618/eqgat-diff`` (``e3moldiffusion/convs.py``: ``EQGATGlobalEdgeConvFinal``;
``modules.py``: ``GatedEquivBlock``, ``LayerNorm``, ``SE3Norm``); written anew. Features per atom:
scalars ``s [N, S]`` and vectors ``v [N, 3, V]`` (Cartesian x, y, z on axis 1), positions ``p [N, 3]``;
per directed edge ``j -> i``: features ``e [E, F]``. A layer, on edge ``j -> i`` with
``r = p_i - p_j``, ``d = |r|``, ``a = p_i . p_j`` (positions centred per molecule),

    m_ij = MLP([s_i, s_j, d, a, e_ij, |p_i|, |p_j|])  ->  (alpha_ij [S], g0_ij [V], g1_ij [V], gp_ij, de_ij [F])
    s_i += sum_j softmax_j(alpha_ij) * W_s s_j                 (feature-wise attention over i's neighbours)
    v_i += mean_j (r_ij / (1 + d_ij)) g0_ij + g1_ij * W_v v_j
    p_i += SE3Norm(mean_j gp_ij r_ij / (1 + d_ij))             (scale / mean norm per molecule)
    e_ij = W_post silu(de_ij + W_pre e_ij)
    (s, v) += GatedEquivBlock(s, v)

Scalars, ``d``, ``a``, norms and edge features are invariant; ``r`` and ``v`` rotate; so ``s, e`` are
E(3)-invariant and ``v, p - CoM`` equivariant. Normalisation before each layer (``EquivLayerNorm``) is a
standard layer norm of ``s`` per molecule and a division of ``v`` by its root-mean-square norm; the
original divides by the variance itself (no square root), which we do not copy.
"""

from __future__ import annotations

import torch
from torch import nn

from ...nn import scatter_sum

__all__ = ["EQGATEdgeLayer", "EquivLayerNorm", "GatedEquivBlock", "graph_mean_of", "scatter_softmax"]


def graph_mean_of(x: torch.Tensor, index: torch.Tensor, size: int) -> torch.Tensor:
    """Mean of rows of ``x [M, ...]`` per group ``index [M]`` -> ``[size, ...]`` (0 for empty groups)."""
    count = torch.bincount(index, minlength=size).clamp(min=1).to(x.dtype)
    return scatter_sum(x, index, size) / count.reshape((-1,) + (1,) * (x.dim() - 1))


def scatter_softmax(logits: torch.Tensor, index: torch.Tensor, size: int) -> torch.Tensor:
    """Softmax of ``logits [E, C]`` over the rows sharing ``index`` (each receiver's incoming edges), per column."""
    big = torch.full((size, logits.shape[1]), -torch.inf, dtype=logits.dtype, device=logits.device)
    big = big.scatter_reduce(0, index.unsqueeze(1).expand_as(logits), logits, reduce="amax", include_self=True)
    w = torch.exp(logits - big[index].detach())
    return w / scatter_sum(w, index, size)[index]


class GatedEquivBlock(nn.Module):
    """Gated equivariant update of ``(s [N, S], v [N, 3, V])`` (EQGAT-diff's ``GatedEquivBlock`` with ``use_mlp``).

    ``u = W0 v``, ``[h, g] = MLP([s, |u_h|^2])``, returns ``(h [N, S], W1 (g * u_o) [N, 3, V])``.
    """

    def __init__(self, s_dim: int, v_dim: int, eps: float = 1e-6):
        super().__init__()
        self.v_dim, self.eps = v_dim, eps
        self.w0 = nn.Linear(v_dim, 2 * v_dim, bias=False)
        self.mlp = nn.Sequential(nn.Linear(s_dim + v_dim, s_dim), nn.SiLU(), nn.Linear(s_dim, v_dim + s_dim))
        self.w1 = nn.Linear(v_dim, v_dim, bias=False)

    def forward(self, s: torch.Tensor, v: torch.Tensor):
        u_h, u_o = self.w0(v).split(self.v_dim, dim=-1)
        norms = (u_h * u_h).sum(1).clamp(min=self.eps)
        gate, h = self.mlp(torch.cat([s, norms], -1)).split([self.v_dim, s.shape[-1]], dim=-1)
        return h, self.w1(gate.unsqueeze(1) * u_o)


class EquivLayerNorm(nn.Module):
    """Layer norm of scalars per molecule (affine) and RMS normalisation of vectors per molecule."""

    def __init__(self, s_dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(s_dim))
        self.bias = nn.Parameter(torch.zeros(s_dim))

    def forward(self, s, v, batch, num_graphs):
        mean = graph_mean_of(s.mean(-1, keepdim=True), batch, num_graphs)
        s = s - mean[batch]
        var = graph_mean_of((s * s).mean(-1, keepdim=True), batch, num_graphs).clamp(min=self.eps)
        s = s / var.sqrt()[batch] * self.weight + self.bias
        vn = graph_mean_of((v * v).sum(1).mean(-1, keepdim=True), batch, num_graphs).clamp(min=self.eps)
        return s, v / vn.sqrt()[batch].unsqueeze(1)


class EQGATEdgeLayer(nn.Module):
    """One EQGAT layer with edge features on a fully connected molecule (module docstring).

    Parameters
    ----------
    s_dim, v_dim, edge_dim : int
        Scalar channels ``S``, vector channels ``V``, edge channels ``F`` (EQGAT-diff: 256, 64, 32).
    eps : float
        Floor of norms.

    Shapes
    ------
    ``forward(s [N, S], v [N, 3, V], p [N, 3], e [E, F], src [E], dst [E], batch [N], num_graphs)``
    -> ``(s, v, p, e)`` of the same shapes; ``src -> dst`` are the directed edges (message from
    ``src = j`` to ``dst = i``), every receiver with at least one edge.
    """

    def __init__(self, s_dim: int, v_dim: int, edge_dim: int, eps: float = 1e-6):
        super().__init__()
        self.s_dim, self.v_dim, self.edge_dim, self.eps = s_dim, v_dim, edge_dim, eps
        self.edge_pre = nn.Linear(edge_dim, edge_dim)
        self.edge_net = nn.Sequential(
            nn.Linear(2 * s_dim + edge_dim + 4, s_dim), nn.SiLU(), nn.Linear(s_dim, s_dim + 2 * v_dim + 1 + edge_dim)
        )
        self.edge_post = nn.Linear(edge_dim, edge_dim)
        self.scalar_net = nn.Linear(s_dim, s_dim)
        self.vector_net = nn.Linear(v_dim, v_dim, bias=False)
        self.pos_scale = nn.Parameter(torch.ones(()))
        self.update = GatedEquivBlock(s_dim, v_dim, eps)

    def forward(self, s, v, p, e, src, dst, batch, num_graphs):
        n = s.shape[0]
        r = p[dst] - p[src]
        d = (r * r).sum(-1, keepdim=True).clamp(min=self.eps).sqrt()
        a = (p[dst] * p[src]).sum(-1, keepdim=True)
        pn = (p * p).sum(-1, keepdim=True).clamp(min=self.eps).sqrt()
        r_n = r / (1.0 + d)
        e = self.edge_pre(e)
        m = self.edge_net(torch.cat([s[dst], s[src], d, a, e, pn[dst], pn[src]], -1))
        alpha, g0, g1, gp, de = m.split([self.s_dim, self.v_dim, self.v_dim, 1, self.edge_dim], dim=-1)
        att = scatter_softmax(alpha, dst, n)
        s = s + scatter_sum(att * self.scalar_net(s)[src], dst, n)
        msg_v = r_n.unsqueeze(-1) * g0.unsqueeze(1) + g1.unsqueeze(1) * self.vector_net(v)[src]
        v = v + graph_mean_of(msg_v, dst, n)
        dp = graph_mean_of(gp * r_n, dst, n)
        scale = graph_mean_of(dp.norm(dim=-1, keepdim=True), batch, num_graphs)[batch]
        p = p + self.pos_scale * dp / (scale + 1e-5)
        e = self.edge_post(torch.nn.functional.silu(de + e))
        ds, dv = self.update(s, v)
        return s + ds, v + dv, p, e
