"""Spatial and global pooling of planar feature maps ``[..., H, W]`` (any leading axes: channels, group samples)."""

from __future__ import annotations

import numbers

import torch
import torch.nn.functional as F


def spatial_max_pool(f: torch.Tensor, factor: int) -> torch.Tensor:
    """Max over non-overlapping ``factor x factor`` blocks of the last two axes: ``[..., H, W] -> [..., H/f, W/f]``.

    ``factor = 1`` returns ``f``. It commutes exactly with quarter turns (and with the cyclic shift of a
    rotation axis in front), and with circular shifts by multiples of ``factor`` only.

    Raises
    ------
    ValueError
        ``factor`` not an integer >= 1, or ``H`` / ``W`` not divisible by ``factor`` (the blocks would not tile the grid).
    """
    k = _int_at_least_one(factor, "pool factor")
    if k == 1:
        return f
    H, W = f.shape[-2:]
    if H % k or W % k:
        raise ValueError(f"pool factor {k} does not divide the feature map size {H} x {W}")
    lead = f.shape[:-2]
    return F.max_pool2d(f.reshape(-1, 1, H, W), k).reshape(*lead, H // k, W // k)


def global_pool(f: torch.Tensor, dims: tuple[int, ...], mode: str = "mean") -> torch.Tensor:
    """Mean or max of ``f`` over ``dims`` (both invariant to any permutation of those entries).

    ``f [...]`` -> ``f`` without the axes ``dims``; same dtype. The read-out of the planar group CNNs
    (``rgenn``'s ``GlobalMaxProjection`` / ``GlobalMeanProjection`` for ``'max'`` / ``'mean'``).

    Raises
    ------
    ValueError
        ``mode`` not ``'mean'`` or ``'max'``.
    """
    if mode == "mean":
        return f.mean(dim=dims)
    if mode == "max":
        return f.amax(dim=dims)
    raise ValueError(f"readout (global pool) must be 'mean' or 'max', got {mode!r}")


def check_pooling(pool: int, readout: str) -> tuple[int, str]:
    """A model's ``(pool, readout)`` options, checked.

    Returns
    -------
    ``(int(pool), readout)``

    Raises
    ------
    ValueError
        Naming the value: a ``pool`` that is not an integer >= 1 (a string, bool, NaN or 2.5 included), a
        ``readout`` other than ``'mean'`` / ``'max'``.
    """
    pool = _int_at_least_one(pool, "pool")
    if readout not in ("mean", "max"):
        raise ValueError(f"readout must be 'mean' or 'max', got {readout!r}")
    return pool, readout


def _int_at_least_one(v, name: str) -> int:
    """``v`` as an ``int`` if it is an integer >= 1 (not a bool, string or non-integral float), else ``ValueError``."""
    ok = not isinstance(v, (bool, str)) and isinstance(v, numbers.Real) and v == v and float(v).is_integer() and v >= 1
    if not ok:
        raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
    return int(v)
