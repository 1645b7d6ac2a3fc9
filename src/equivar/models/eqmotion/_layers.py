"""EqMotion's building blocks on dense, padded scenes with a leading *copies* axis.

Every tensor here is ``[K, G, N, ...]``: ``K`` independent copies of the
weights (1 for the shared trunk, ``K`` for the K prediction heads, which then
run as one batched matrix product instead of K small ones), ``G`` scenes,
``N`` agents (padded; ``mask [G, N]`` marks the real ones). Geometric
features are ``[K, G, N, C, D]``: ``C`` channels of ``D``-dimensional
vectors; invariant features are ``[K, G, N, F]``.

The operations and their order follow the authors' ``Feature_learning_layer``
(``eth_ucy/gcl_t.py`` and ``n_body_system/gcl_t.py`` of
github.com/MediaBrain-SJTU/EqMotion; Xu et al., CVPR 2023, section 4).
"""

from __future__ import annotations

import math

import torch

#: the EPS of the authors' non-linearity (``non_linear`` in ``gcl_t.py``), added to ``|k|^2``
PROJECTION_EPS = 1e-4


class CopiesLinear(torch.nn.Module):
    """``K`` independent affine maps applied to ``[K, ..., in]`` -> ``[K, ..., out]`` (one ``baddbmm``).

    Initialised like ``torch.nn.Linear`` (uniform in ``±1/sqrt(in)``), copy by copy.
    """

    def __init__(self, copies: int, n_in: int, n_out: int, bias: bool = True):
        super().__init__()
        bound = 1.0 / math.sqrt(n_in)
        self.weight = torch.nn.Parameter(torch.empty(copies, n_in, n_out).uniform_(-bound, bound))
        self.bias = torch.nn.Parameter(torch.empty(copies, 1, n_out).uniform_(-bound, bound)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, n_in, n_out = self.weight.shape
        flat = x.reshape(k, -1, n_in)
        out = torch.baddbmm(self.bias, flat, self.weight) if self.bias is not None else torch.bmm(flat, self.weight)
        return out.reshape(*x.shape[:-1], n_out)


def mlp(copies: int, sizes: list[int], final_activation: bool = True) -> torch.nn.Sequential:
    """Linear-SiLU stacks (the authors' ``act_fn = nn.SiLU()``), one per copy."""
    mods: list[torch.nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        mods.append(CopiesLinear(copies, a, b))
        if final_activation or i < len(sizes) - 2:
            mods.append(torch.nn.SiLU())
    return torch.nn.Sequential(*mods)


def dsum(t: torch.Tensor) -> torch.Tensor:
    """Sum over the last (spatial, D = 2 or 3) axis as D - 1 elementwise adds: much faster on CPU than a
    reduction over a short innermost axis."""
    parts = t.unbind(-1)
    out = parts[0]
    for p in parts[1:]:
        out = out + p
    return out


def vnorm(t: torch.Tensor) -> torch.Tensor:
    """``|t|`` over the last axis, with gradient 0 (not NaN) at 0 (the i = j and padded pairs)."""
    sq = dsum(t * t)
    nonzero = sq > 0
    return torch.where(nonzero, torch.sqrt(torch.where(nonzero, sq, torch.ones_like(sq))), torch.zeros_like(sq))


def channel_map(linear: CopiesLinear, x: torch.Tensor) -> torch.Tensor:
    """Mix the channels of geometric features ``[K, G, N, C, D]`` (equivariant: acts on C, not on D)."""
    return linear(x.transpose(-1, -2)).transpose(-1, -2)


def masked_centroid(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``x [K, G, N, C, D]`` over the real agents and all channels -> ``[K, G, 1, 1, D]``."""
    w = mask.to(x.dtype)[None, :, :, None, None]
    count = w.sum(dim=2, keepdim=True) * x.shape[-2]
    return (x * w).sum(dim=(2, 3), keepdim=True) / count


def others(n: int, device=None) -> torch.Tensor:
    """``[n, n - 1]``: row i lists the agents j != i (the pairs that can interact; i = j contributes nothing:
    ``x_i - x_i = 0`` and the authors mask the diagonal out of every sum)."""
    j = torch.arange(n, device=device).expand(n, n)
    return j[~torch.eye(n, dtype=torch.bool, device=device)].reshape(n, n - 1)


def pair_mask(mask: torch.Tensor, idx: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``[1, G, N, N - 1, 1]``: 1 where agent i and its partner ``idx[i, j]`` are both real."""
    return (mask[:, :, None] & mask[:, idx]).to(dtype)[None, ..., None]


def pairs(h: torch.Tensor, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``h [K, G, N, F]`` -> ``(h_i, h_j)`` as ``[K, G, N, N - 1, F]`` over the pairs ``j = idx[i, :]``."""
    return h[:, :, :, None].expand(-1, -1, -1, idx.shape[1], -1), h[:, :, idx]


class FeatureLearningLayer(torch.nn.Module):
    """One EqMotion layer: equivariant geometric features ``x`` and invariant pattern features ``h``.

    Given ``h [K, G, N, H]``, ``x [K, G, N, C, D]``, the velocity features
    ``v [K, G, N, C, D]`` and the interaction categories ``c [K, G, N, N - 1, M]`` (pairs ``j = others(N)[i]``):

    1. pair features ``e_ij = phi_e(h_i, h_j, |x_i - x_j|)`` (one distance per channel);
    2. inner-agent attention ``x_i <- x_i + phi_q(h_i) * (x_i - xbar)`` (``xbar``: centroid of the
       scene's agents and channels; one gate per channel);
    3. interaction aggregation ``x_i <- x_i + sum_j phi_f(sum_m c_ijm phi_m(h_i, h_j, |x_i - x_j|)) (x_i - x_j)``
       over the first ``active_categories`` categories (the ETH-UCY code softmaxes over 4 categories
       and weights messages by the first 2; the other two are "no interaction");
    4. ``x <- x + W_v v``; 5. the equivariant non-linearity
       ``q = W_q (x - xbar)``, ``k = W_k (x - xbar)``, ``x <- xbar + q`` where ``<q, k> >= 0`` else
       ``xbar + q - <q, k> / (|k|^2 + 1e-4) k`` (per channel);
    6. ``h_i <- h_i + phi_h(h_i, sum_{j != i} e_ij)`` (skipped with ``update_h=False``: the prediction
       heads discard it).

    ``|.|``, ``<.,.>`` are over D and every weight mixes channels only, so ``x`` is O(D)-equivariant,
    translation-equivariant (``xbar`` moves with the scene), ``h`` invariant, in any dimension D.

    Parameters
    ----------
    hidden : int
        Invariant features H.
    channels : int
        Geometric channels C.
    num_categories, active_categories : int
        Interaction categories M, and how many of them weight messages.
    copies : int
        Independent copies of every weight (K heads run as one batch).
    update_h : bool
        Compute the invariant update (step 6).
    """

    def __init__(
        self,
        hidden: int,
        channels: int,
        num_categories: int,
        active_categories: int,
        copies: int = 1,
        update_h: bool = True,
    ):
        super().__init__()
        k, hd, c = copies, hidden, channels
        self.active_categories = active_categories
        self.update_h = update_h
        self.edge_mlp = mlp(k, [2 * hd + c, hd, hd]) if update_h else None
        self.category_mlp = torch.nn.ModuleList(mlp(k, [2 * hd + c, hd, c]) for _ in range(active_categories))
        self.factor_mlp = mlp(k, [c, c, c])
        self.node_mlp = mlp(k, [2 * hd, hd, hd], final_activation=False) if update_h else None
        self.attention = mlp(k, [hd, c])
        self.vel_map = CopiesLinear(k, c, c, bias=False)
        self.q_map = CopiesLinear(k, c, c, bias=False)
        self.k_map = CopiesLinear(k, c, c, bias=False)

    def forward(self, h, x, vel, category, mask):
        idx = others(x.shape[2], x.device)
        pm = pair_mask(mask, idx, x.dtype)  # [1, G, N, N - 1, 1]
        diff = x[:, :, :, None] - x[:, :, idx]  # [K, G, N, N - 1, C, D], x_i - x_j
        dist = vnorm(diff)  # [K, G, N, N - 1, C]
        hi, hj = pairs(h, idx)
        pair_in = torch.cat([hi, hj, dist], dim=-1)

        x = x + self.attention(h)[..., None] * (x - masked_centroid(x, mask))

        factors = 0.0
        for m in range(self.active_categories):
            factors = factors + category[..., m : m + 1] * self.category_mlp[m](pair_in)
        factors = self.factor_mlp(factors)  # [K, G, N, N - 1, C]
        x = x + ((pm * factors)[..., None] * diff).sum(dim=3)
        x = x + channel_map(self.vel_map, vel)

        centre = masked_centroid(x, mask)
        q = channel_map(self.q_map, x - centre)
        kk = channel_map(self.k_map, x - centre)
        dot = dsum(q * kk)[..., None]
        x = centre + torch.where(dot >= 0, q, q - dot / (dsum(kk * kk)[..., None] + PROJECTION_EPS) * kk)

        if self.update_h:
            e = self.edge_mlp(pair_in)
            h = h + self.node_mlp(torch.cat([h, (pm * e).sum(dim=3)], dim=-1))
        return h, x


class InteractionReasoning(torch.nn.Module):
    """Invariant interaction categories ``c_ij = softmax(phi_c(h'_i, h'_j, d_ij) / tau)`` (``[1, G, N, N - 1, M]``,
    pairs ``j = others(N)[i]``).

    ``d_ij = phi_d(|x_i - x_j|)`` over the channels of the geometric and velocity features, ``h'`` one
    message-passing update of ``h`` (the authors' ``calc_category``; ``tau = 1``).
    """

    def __init__(self, hidden: int, channels: int, num_categories: int, temperature: float = 1.0):
        super().__init__()
        hd, c2 = hidden, 2 * channels
        self.temperature = temperature
        self.dist_mlp = mlp(1, [c2, hd, c2])
        self.edge_mlp = mlp(1, [2 * hd + c2, hd, hd])
        self.node_mlp = mlp(1, [2 * hd, hd, hd])
        self.category_mlp = mlp(1, [2 * hd + c2, hd, num_categories])

    def forward(self, h, x_cat, mask):
        idx = others(x_cat.shape[2], x_cat.device)
        pm = pair_mask(mask, idx, x_cat.dtype)
        d = self.dist_mlp(vnorm(x_cat[:, :, :, None] - x_cat[:, :, idx]))
        hi, hj = pairs(h, idx)
        e = self.edge_mlp(torch.cat([hi, hj, d], dim=-1))
        h2 = self.node_mlp(torch.cat([h, (pm * e).sum(dim=3)], dim=-1))
        hi, hj = pairs(h2, idx)
        return torch.softmax(self.category_mlp(torch.cat([hi, hj, d], dim=-1)) / self.temperature, dim=-1)
