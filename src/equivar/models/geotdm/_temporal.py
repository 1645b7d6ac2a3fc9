"""GeoTDM's equivariant temporal attention: each node attends over its own frames.

Han, Xu, Lou, Ye, Ermon, "Geometric Trajectory Diffusion Models", NeurIPS 2024, section 4.1 and
Figure 4 (code ``hanjq17/GeoTDM``, ``models/layers.py``, ``ETLayer``). For a node with invariant
features ``h_t`` and positions ``x_t`` at frames ``t = 1..F``, and ``r_{ts} = W_r e(t - s)`` a
learned map of the sinusoidal embedding of the frame offset::

    q_t, k_s, v_s = phi_q(h_t), phi_k(h_s), phi_v(h_s)                 (two-layer MLPs)
    a_ts  = softmax_s( q_t . (k_s + r_ts) )
    h_t  <- h_t + sum_s a_ts (v_s + r_ts)
    x_t  <- x_t + sum_s a_ts phi_x(v_s) (x_t - x_s)

``a`` and ``phi_x(v)`` are invariant and ``x_t - x_s`` is a difference of one node's positions, so the
update is E(D)-equivariant (rotations, reflections, translations of ``x``) and acts on each node
alone (permutation-equivariant). Shapes: ``h [M, F, H]``, ``x [M, F, D]`` for ``M`` nodes.
"""

from __future__ import annotations

import torch

from ._embedding import sinusoidal_embedding


def _mlp(n_in: int, hidden: int, n_out: int, act: str) -> torch.nn.Sequential:
    acts = {"silu": torch.nn.SiLU, "relu": torch.nn.ReLU}
    if act not in acts:
        raise ValueError(f"unknown activation {act!r}; choose one of {', '.join(acts)}")
    return torch.nn.Sequential(torch.nn.Linear(n_in, hidden), acts[act](), torch.nn.Linear(hidden, n_out))


class TemporalAttention(torch.nn.Module):
    """One equivariant temporal attention layer (module docstring).

    Parameters
    ----------
    hidden_dim : int
        Width ``H`` of ``h``, the queries, keys and values.
    time_emb_dim : int
        Width of the sinusoidal embedding of the frame offset ``t - s``.
    activation : str
        ``'silu'`` (GeoTDM) or ``'relu'``.

    Shapes
    ------
    ``forward(h [M, F, H], x [M, F, D]) -> (h [M, F, H], x [M, F, D])``.
    """

    def __init__(self, hidden_dim: int, time_emb_dim: int = 32, activation: str = "silu"):
        super().__init__()
        self.time_emb_dim = time_emb_dim
        self.q = _mlp(hidden_dim, hidden_dim, hidden_dim, activation)
        self.k = _mlp(hidden_dim, hidden_dim, hidden_dim, activation)
        self.v = _mlp(hidden_dim, hidden_dim, hidden_dim, activation)
        self.x_head = _mlp(hidden_dim, hidden_dim, 1, activation)
        self.offset = torch.nn.Linear(time_emb_dim, hidden_dim)

    def forward(self, h: torch.Tensor, x: torch.Tensor):
        f = h.shape[1]
        idx = torch.arange(f, device=h.device)
        r = self.offset(sinusoidal_embedding((idx[:, None] - idx[None, :]).to(h.dtype), self.time_emb_dim))  # [T, S, H]
        q, k, v = self.q(h), self.k(h), self.v(h)
        logits = torch.einsum("mth,msh->mts", q, k) + torch.einsum("mth,tsh->mts", q, r)
        a = torch.softmax(logits, dim=-1)  # [M, T, S]
        h = h + torch.einsum("mts,msh->mth", a, v) + torch.einsum("mts,tsh->mth", a, r)
        aw = a * self.x_head(v).squeeze(-1).unsqueeze(1)  # a_ts phi_x(v_s)
        x = x + aw.sum(-1, keepdim=True) * x - torch.einsum("mts,msd->mtd", aw, x)
        return h, x
