"""Sinusoidal embeddings of integers: the diffusion level and the frame offset ``t - s`` (GeoTDM's EGTN).

Transformer-style features (Vaswani et al. 2017; DDPM's ``get_timestep_embedding``, which GeoTDM's
``models/EGTN.py`` and ``models/layers.py`` use for both): for ``k = 0 .. d/2 - 1``,
``omega_k = 10000^{-k / (d/2 - 1)}``, the features of ``n`` are ``[sin(n omega), cos(n omega)]``
(a zero column appended when ``d`` is odd). Invariant inputs, invariant outputs.
"""

from __future__ import annotations

import math

import torch


def sinusoidal_embedding(n: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal features of the numbers ``n`` (any shape, any real dtype) -> ``[*n.shape, dim]``.

    The output dtype is ``n``'s when floating, else float32. ``dim >= 2``; raises ``ValueError``
    otherwise (naming the value).
    """
    if isinstance(dim, bool) or not isinstance(dim, int) or dim < 2:
        raise ValueError(f"embedding dim must be an integer >= 2, got {dim!r}")
    dtype = n.dtype if n.is_floating_point() else torch.float32
    half = dim // 2
    step = math.log(max_period) / max(half - 1, 1)
    omega = torch.exp(-step * torch.arange(half, dtype=dtype, device=n.device))
    arg = n.to(dtype).unsqueeze(-1) * omega
    out = torch.cat([torch.sin(arg), torch.cos(arg)], dim=-1)
    if dim % 2:
        out = torch.nn.functional.pad(out, (0, 1))
    return out
