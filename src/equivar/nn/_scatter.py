"""Scatter helpers for message passing."""
from __future__ import annotations

import torch


def scatter_sum(src: torch.Tensor, index: torch.Tensor, dim_size: int) -> torch.Tensor:
    """Sum rows of ``src [E, ...]`` into ``[dim_size, ...]`` at ``index [E]`` (``index_add``).

    Deterministic on CPU; differentiable in ``src``.
    """
    out = src.new_zeros((dim_size,) + src.shape[1:])
    return out.index_add(0, index, src)
