"""Spatial and global pooling of planar feature maps ``[..., H, W]`` (any leading axes: channels, group samples)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def spatial_max_pool(f: torch.Tensor, factor: int) -> torch.Tensor:
    """Max over non-overlapping ``factor x factor`` blocks of the last two axes: ``[..., H, W] -> [..., H/f, W/f]``.

    ``factor = 1`` returns ``f``. It commutes exactly with quarter turns (and with the cyclic shift of a
    rotation axis in front), and with circular shifts by multiples of ``factor`` only.

    Raises
    ------
    ValueError
        ``factor < 1``, or ``H`` / ``W`` not divisible by ``factor`` (the blocks would not tile the grid).
    """
    k = int(factor)
    if k < 1:
        raise ValueError(f"pool factor must be >= 1, got {factor}")
    if k == 1:
        return f
    H, W = f.shape[-2:]
    if H % k or W % k:
        raise ValueError(f"pool factor {k} does not divide the feature map size {H} x {W}")
    lead = f.shape[:-2]
    return F.max_pool2d(f.reshape(-1, 1, H, W), k).reshape(*lead, H // k, W // k)


def global_pool(f: torch.Tensor, dims: tuple[int, ...], mode: str = "mean") -> torch.Tensor:
    """Mean or max of ``f`` over ``dims`` (both invariant to any permutation of those entries).

    Raises
    ------
    ValueError
        ``mode`` not ``'mean'`` or ``'max'``.
    """
    if mode == "mean":
        return f.mean(dim=dims)
    if mode == "max":
        return f.amax(dim=dims)
    raise ValueError(f"global_pool must be 'mean' or 'max', got {mode!r}")


def check_pooling(pool: int, readout: str) -> tuple[int, str]:
    """A model's ``(pool, readout)`` options, checked: ``ValueError`` naming the value for a ``pool`` that is
    not an integer >= 1 or a ``readout`` other than ``'mean'`` / ``'max'``."""
    if isinstance(pool, bool) or int(pool) != pool or int(pool) < 1:
        raise ValueError(f"pool must be an integer >= 1, got {pool!r}")
    if readout not in ("mean", "max"):
        raise ValueError(f"readout must be 'mean' or 'max', got {readout!r}")
    return int(pool), readout
