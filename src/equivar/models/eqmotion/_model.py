"""EqMotion (Xu, Tan, Tan, Chen, Wang, Wang, Wang, "EqMotion: Equivariant Multi-agent Motion Prediction with
Invariant Interaction Reasoning", CVPR 2023; github.com/MediaBrain-SJTU/EqMotion).

The authors' ``EqMotion`` of ``eth_ucy/model_t.py`` (pedestrians, K = 20
hypotheses) and ``n_body_system/model_t.py`` (particles, one prediction):

1. centre the observed positions on the scene's centroid (over agents and
   frames) and take a DCT over time of positions and velocities;
2. invariant pattern features ``h``: speeds ``|v_t|`` and turning angles
   ``acos(cos(v_{t-1}, v_t))`` of the T_in frames, each embedded to H/2;
3. equivariant geometric features: C channels mixed linearly from the T_in
   DCT coefficients (around their centroid) of positions, C from velocities;
4. invariant interaction reasoning: per pair, a softmax over M categories from
   invariant features (:class:`~._layers.InteractionReasoning`), computed once;
5. feature-learning layers (:class:`~._layers.FeatureLearningLayer`): L of
   them (N-body), or L - 1 shared ones then K heads of one layer each plus a
   channel map C -> T_out (ETH-UCY: K = 20, minADE / minFDE over them);
6. inverse DCT of the T_out coefficients, and the centroid added back.

Deviations from the authors' code: the turning angle is computed as
``atan2(|v_{t-1} x v_t|, v_{t-1} . v_t)`` instead of ``acos`` of an
epsilon-regularised cosine (:func:`turning_angle`: same angle, well
conditioned in float32); padded scenes are built from ``batch`` (their
loaders pad to ``total_num`` agents); parameters that never reach the output
are not created (each layer's ``coord_mlp``, the heads' invariant update and
that of the last layer without heads);
the K heads run as one batched product.
"""

from __future__ import annotations

import math

import torch

from .._registry import _is_int, register_model
from ._layers import (
    CopiesLinear,
    FeatureLearningLayer,
    InteractionReasoning,
    channel_map,
    dsum,
    masked_centroid,
    vnorm,
)


def turning_angle(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Unsigned angle in ``[0, pi]`` between vectors ``a`` and ``b`` ``[..., D]`` -> ``[...]`` (0 if either is 0).

    ``atan2(|a x b|, a . b)``: the authors' ``acos(a . b / ((|a| + 1e-6)(|b| + 1e-6)))`` without its
    ill-conditioning near 0 and pi (in float32, rounding of the cosine near 1 moves ``acos`` by ~1e-4 rad,
    which broke float32 equivariance at 1e-5) and without the epsilon's offset (it gives ~0.003 rad for
    parallel velocities of 0.5 m/frame where the angle is 0). Invariant under rotations and reflections.
    """
    dot = dsum(a * b)
    d = a.shape[-1]
    if d == 2:
        cross = (a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]).abs()
    elif d == 3:
        cross = vnorm(torch.linalg.cross(a, b, dim=-1))
    else:  # Lagrange's identity (any D)
        sq = (dsum(a * a) * dsum(b * b) - dot * dot).clamp_min(0.0)
        cross = torch.where(sq > 0, torch.sqrt(torch.where(sq > 0, sq, torch.ones_like(sq))), torch.zeros_like(sq))
    return torch.atan2(cross, dot)


def dct_matrix(n: int, dtype=torch.float64) -> torch.Tensor:
    """Orthonormal DCT-II matrix ``[n, n]``: row k is ``w_k cos(pi (i + 1/2) k / n)`` (EqMotion's ``get_dct_matrix``)."""
    k = torch.arange(n, dtype=torch.float64)[:, None]
    i = torch.arange(n, dtype=torch.float64)[None, :]
    w = torch.full((n, 1), math.sqrt(2.0 / n), dtype=torch.float64)
    w[0] = math.sqrt(1.0 / n)
    return (w * torch.cos(math.pi * (i + 0.5) * k / n)).to(dtype)


@register_model("eqmotion")
class EqMotion(torch.nn.Module):
    """Equivariant multi-agent motion prediction (E(D) x permutations, any dimension D).

    Parameters
    ----------
    past, future : int
        Observed frames T_in (ETH-UCY 8, N-body 10) and predicted frames T_out (12, 10).
    hidden_dim : int
        Invariant pattern features H (the authors' ``nf``, 64).
    channels : int
        Geometric channels C (``hid_channel``: 64; ETH-UCY zara1 128).
    num_layers : int
        Feature-learning layers (``n_layers``, 4); with hypotheses, the last one is the heads' own.
    num_hypotheses : int or None
        K prediction heads (ETH-UCY 20); None: one deterministic prediction (N-body).
    num_categories : int
        Interaction categories M of the softmax (ETH-UCY 4, N-body 2).
    active_categories : int or None
        How many of them weight the interaction messages (ETH-UCY code: ``category_num - 2`` = 2;
        None: all, as the N-body code).
    temperature : float
        Softmax temperature of the categories (1).

    Raises
    ------
    ValueError
        An option out of range or of the wrong type (the message names it).

    Shapes
    ------
    ``model(batch)`` on the dynamics batch of ``docs/contracts.md``: ``pos``, ``vel``
    ``[N, T_in, D]`` (velocities as ``x_t - x_{t-1}``, the first copied from the second, as
    the authors' loaders), ``batch`` ``[N]``, ``ptr`` ``[G+1]``. Every pair of agents of a scene
    interacts (``edge_index``, ``edge_attr`` and ``node_attr`` are not read: EqMotion infers the
    interactions). Returns ``{"pos": [K, N, T_out, D]}`` (or ``[N, T_out, D]`` without
    hypotheses) in the units of ``pos``. Equivariant under rotations and reflections (of ``pos``,
    ``vel`` and the output), translations (of ``pos`` and the output) and permutations of agents.
    """

    def __init__(
        self,
        past: int = 8,
        future: int = 12,
        hidden_dim: int = 64,
        channels: int = 64,
        num_layers: int = 4,
        num_hypotheses: int | None = 20,
        num_categories: int = 4,
        active_categories: int | None = 2,
        temperature: float = 1.0,
    ):
        super().__init__()
        for key, value, low in (
            ("past", past, 2),
            ("future", future, 1),
            ("hidden_dim", hidden_dim, 2),
            ("channels", channels, 1),
            ("num_layers", num_layers, 1 if num_hypotheses is None else 2),
            ("num_categories", num_categories, 1),
        ):
            if not _is_int(value, low):
                raise ValueError(f"{key} must be an integer >= {low}, got {value!r}")
        if hidden_dim % 2:
            raise ValueError(f"hidden_dim must be even (speeds and angles get half each), got {hidden_dim}")
        if num_hypotheses is not None and not _is_int(num_hypotheses, 1):
            raise ValueError(f"num_hypotheses must be an integer >= 1 or null, got {num_hypotheses!r}")
        active = num_categories if active_categories is None else active_categories
        if not _is_int(active, 1) or active > num_categories:
            raise ValueError(f"active_categories must be an integer in 1..{num_categories} or null, got {active!r}")
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not temperature > 0:
            raise ValueError(f"temperature must be a positive number, got {temperature!r}")
        self.past, self.future = past, future
        self.num_hypotheses = num_hypotheses
        self.register_buffer("dct_in", dct_matrix(past), persistent=False)
        self.register_buffer("idct_out", torch.linalg.inv(dct_matrix(future)), persistent=False)
        self.speed_embedding = CopiesLinear(1, past, hidden_dim // 2)
        self.angle_embedding = CopiesLinear(1, past, hidden_dim // 2)
        self.coord_map = CopiesLinear(1, past, channels, bias=False)
        self.vel_map = CopiesLinear(1, past, channels, bias=False)
        self.reasoning = InteractionReasoning(hidden_dim, channels, num_categories, float(temperature))
        trunk = num_layers if num_hypotheses is None else num_layers - 1
        self.layers = torch.nn.ModuleList(  # without heads, the last layer's invariant update reaches nothing
            FeatureLearningLayer(
                hidden_dim, channels, num_categories, active, update_h=num_hypotheses is not None or i < trunk - 1
            )
            for i in range(trunk)
        )
        k = num_hypotheses or 1
        self.heads = (
            None
            if num_hypotheses is None
            else FeatureLearningLayer(hidden_dim, channels, num_categories, active, copies=k, update_h=False)
        )
        self.readout = CopiesLinear(k, channels, future, bias=False)

    def forward(self, batch) -> dict:
        pos, vel = batch["pos"], batch["vel"]
        if pos.dim() != 3 or pos.shape[1] != self.past or vel.shape != pos.shape:
            raise ValueError(
                f"EqMotion: pos and vel must be [N, past={self.past}, D], got pos {tuple(pos.shape)}, "
                f"vel {tuple(vel.shape)}"
            )
        ptr = batch["ptr"]
        x, v, mask, where = _dense(pos, vel, batch["batch"], ptr)  # [1, G, Nmax, T, D], mask [G, Nmax]
        dtype = pos.dtype

        # invariant pattern inputs: speeds and turning angles (the previous velocity of frame 0 is itself)
        prev = torch.cat([v[..., :1, :], v[..., :-1, :]], dim=-2)
        h = torch.cat([self.speed_embedding(vnorm(v)), self.angle_embedding(turning_angle(prev, v))], dim=-1)

        # centre, DCT over time, channels mixed from the DCT coefficients
        centre = masked_centroid(x, mask)  # [1, G, 1, 1, D]
        x = self.dct_in.to(dtype) @ (x - centre)
        v = self.dct_in.to(dtype) @ v
        xm = masked_centroid(x, mask)
        x = channel_map(self.coord_map, x - xm) + xm
        v = channel_map(self.vel_map, v)
        category = self.reasoning(h, torch.cat([x, v], dim=-2), mask)

        for layer in self.layers:
            h, x = layer(h, x, v, category, mask)
        if self.heads is not None:
            k = self.num_hypotheses

            def rep(t):
                return t.expand(k, *t.shape[1:])

            _, x = self.heads(rep(h), rep(x), rep(v), rep(category), mask)
        xm = masked_centroid(x, mask)
        out = channel_map(self.readout, x - xm) + xm  # [K, G, Nmax, T_out, D]
        out = self.idct_out.to(dtype) @ out + centre
        out = out[:, where[0], where[1]]  # [K, N, T_out, D]
        return {"pos": out if self.heads is not None else out[0]}


def _dense(pos, vel, batch, ptr):
    """Pad the flat agents ``[N, ...]`` into ``[1, G, Nmax, ...]`` scenes; returns the mask and (scene, slot) of each.

    Agents need not be contiguous per scene (``batch`` decides; ``ptr`` gives the number of scenes G):
    agent i goes to the next free slot of its scene in the order of ``batch``.
    """
    g = ptr.numel() - 1
    counts = torch.bincount(batch, minlength=g)
    nmax = int(counts.max()) if counts.numel() else 0
    order = torch.argsort(batch, stable=True)
    starts = torch.cumsum(counts, 0) - counts
    slot = torch.empty_like(batch)
    slot[order] = torch.arange(batch.numel(), device=batch.device) - starts[batch[order]]
    x = pos.new_zeros(g, nmax, *pos.shape[1:])
    v = vel.new_zeros(g, nmax, *vel.shape[1:])
    x[batch, slot] = pos
    v[batch, slot] = vel
    mask = torch.zeros(g, nmax, dtype=torch.bool, device=pos.device)
    mask[batch, slot] = True
    return x[None], v[None], mask, (batch, slot)
