"""Group convolutions for ``p4 = Z^2 x| C4`` (translations and quarter turns), exact on the pixel grid.

Source: Cohen & Welling, "Group Equivariant Convolutional Networks" (ICML
2016). A lifting layer correlates an image with the four quarter turns of
each filter; a group layer correlates ``p4`` feature maps ``[B, C, 4, H, W]``
with filters on ``p4``, turning them spatially and cyclically shifting their
rotation axis. With circular padding (odd kernels) both commute exactly (up to
the rounding of re-ordered sums) with circular shifts and with the quarter
turns acting on ``p4`` features as

    (g_k . f)[:, :, r] = rot90(f[:, :, r - k], k)      (indices modulo 4)

(:func:`rotate_p4`). Group pooling (max or mean over the rotation axis) makes
the features C4-invariant per pixel.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def rotate_p4(f: torch.Tensor, k: int) -> torch.Tensor:
    """The quarter turn ``k`` acting on ``p4`` features ``[..., 4, H, W]`` (see the module docstring)."""
    return torch.rot90(torch.roll(f, int(k), dims=-3), int(k), dims=(-2, -1))


def _check_kernel(kernel_size: int) -> int:
    k = int(kernel_size)
    if k < 1 or k % 2 == 0:
        raise ValueError(f"p4 convolutions need an odd kernel_size (a centre pixel), got {kernel_size}")
    return k


class LiftingConvP4(nn.Module):
    """Image ``[B, C_in, H, W]`` -> ``p4`` features ``[B, C_out, 4, H, W]``; circular padding, odd kernel.

    ``out[:, o, r] = sum_c x[:, c] (star) rot90(w[o, c], r)`` (cross-correlation),
    plus a bias per output channel (shared over rotations).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, bias: bool = True):
        super().__init__()
        k = _check_kernel(kernel_size)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, k, k) / math.sqrt(in_channels * k * k))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = torch.stack([torch.rot90(self.weight, r, dims=(-2, -1)) for r in range(4)], dim=1)  # [O, 4, C, k, k]
        O, _, C, k, _ = w.shape
        y = F.conv2d(F.pad(x, (k // 2,) * 4, mode="circular"), w.reshape(O * 4, C, k, k))
        y = y.reshape(x.shape[0], O, 4, *y.shape[-2:])
        return y if self.bias is None else y + self.bias[:, None, None, None]


class GroupConvP4(nn.Module):
    """``p4`` features ``[B, C_in, 4, H, W]`` -> ``[B, C_out, 4, H, W]``; circular padding, odd kernel.

    ``out[:, o, r] = sum_{c, s} f[:, c, s] (star) rot90(w[o, c, (s - r) mod 4], r)``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, bias: bool = True):
        super().__init__()
        k = _check_kernel(kernel_size)
        fan_in = in_channels * 4 * k * k
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 4, k, k) / math.sqrt(fan_in))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        if f.dim() != 5 or f.shape[2] != 4:
            raise ValueError(f"p4 features must be [B, C, 4, H, W], got shape {tuple(f.shape)}")
        # filter for output rotation r: roll the input-rotation axis by r, then turn it spatially by r
        w = torch.stack([torch.rot90(torch.roll(self.weight, r, dims=2), r, dims=(-2, -1)) for r in range(4)], dim=1)
        O, _, C, _, k, _ = w.shape  # [O, 4 (r), C, 4 (s), k, k]
        B = f.shape[0]
        x = F.pad(f.reshape(B, C * 4, *f.shape[-2:]), (k // 2,) * 4, mode="circular")
        y = F.conv2d(x, w.reshape(O * 4, C * 4, k, k)).reshape(B, O, 4, *f.shape[-2:])
        return y if self.bias is None else y + self.bias[:, None, None, None]


def group_pool(f: torch.Tensor, mode: str = "max") -> torch.Tensor:
    """``[..., 4, H, W]`` -> ``[..., H, W]``: max or mean over the rotation axis (C4-invariant per pixel).

    Raises ``ValueError`` for another ``mode``.
    """
    if mode == "max":
        return f.amax(dim=-3)
    if mode == "mean":
        return f.mean(dim=-3)
    raise ValueError(f"group_pool mode must be 'max' or 'mean', got {mode!r}")
