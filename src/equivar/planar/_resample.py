"""Images as functions on the plane: pixel coordinates and resampling under affine maps.

Convention (used by every planar group): pixel ``(i, j)`` (row, column) of an
``H x W`` image sits at the point ``p = (i - (H - 1) / 2, j - (W - 1) / 2)``
(rows first, origin at the image centre). A matrix ``A`` acts on ``p``; in
these coordinates ``[[cos a, -sin a], [sin a, cos a]]`` turns the image
counter-clockwise as displayed, and ``a = 90 deg`` is ``torch.rot90(x, 1,
dims=(-2, -1))``. An element acts on an image by ``(g . f)(p) = f(g^-1 p)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def pixel_coordinates(H: int, W: int, dtype=torch.float64, device=None) -> torch.Tensor:
    """Centred ``(row, col)`` coordinates of every pixel, ``[H, W, 2]``."""
    i = torch.arange(H, dtype=dtype, device=device) - (H - 1) / 2
    j = torch.arange(W, dtype=dtype, device=device) - (W - 1) / 2
    return torch.stack(torch.meshgrid(i, j, indexing="ij"), dim=-1)


def warp(
    x: torch.Tensor,
    A: torch.Tensor,
    t: torch.Tensor | None = None,
    mode: str = "bilinear",
    padding_mode: str = "zeros",
) -> torch.Tensor:
    """Resample ``x`` under the affine map ``p -> A p + t``: ``out(p) = x(A^-1 (p - t))``.

    Approximate (interpolation with ``torch.nn.functional.grid_sample``,
    ``align_corners=True`` so pixel centres are sample points; points that
    land outside the image read ``padding_mode``). Exact up to rounding where
    ``A^-1 (p - t)`` falls on pixel centres (quarter turns, integer shifts).

    Parameters
    ----------
    x : Tensor ``[..., H, W]`` (floating)
    A : Tensor ``[2, 2]`` or ``[B, 2, 2]``
        Linear part in ``(row, col)`` coordinates (see the module docstring);
        ``[B, 2, 2]`` applies ``A[b]`` to ``x[b]``.
    t : Tensor ``[2]`` or ``[B, 2]``, optional
        Translation in pixels (rows, cols).
    mode, padding_mode : str
        As ``grid_sample`` (``'bilinear'`` / ``'nearest'`` / ``'bicubic'``;
        ``'zeros'`` / ``'border'`` / ``'reflection'``).

    Returns
    -------
    Tensor of the shape and dtype of ``x``.

    Raises
    ------
    ValueError
        ``x`` has fewer than two axes, or ``A``'s batch does not match ``x.shape[0]``.
    """
    if x.dim() < 2:
        raise ValueError(f"warp needs an image [..., H, W], got shape {tuple(x.shape)}")
    H, W = x.shape[-2:]
    A = torch.as_tensor(A).to(dtype=x.dtype, device=x.device)
    batched = A.dim() == 3
    if batched and (x.dim() < 3 or x.shape[0] != A.shape[0]):
        raise ValueError(f"warp: {A.shape[0]} matrices for an image batch of shape {tuple(x.shape)}")
    lead = x.shape[:-2]
    B = A.shape[0] if batched else 1
    img = x.reshape(B, -1, H, W)
    p = pixel_coordinates(H, W, x.dtype, x.device).reshape(1, H * W, 2)
    if t is not None:
        t = torch.as_tensor(t).to(dtype=x.dtype, device=x.device).reshape(-1, 1, 2)
        p = p - t
    Ainv = torch.linalg.inv(A).reshape(-1, 2, 2)
    q = p @ Ainv.transpose(-1, -2)  # [B, HW, 2] source (row, col)
    sy = q[..., 0] / ((H - 1) / 2) if H > 1 else torch.zeros_like(q[..., 0])
    sx = q[..., 1] / ((W - 1) / 2) if W > 1 else torch.zeros_like(q[..., 1])
    grid = torch.stack([sx, sy], dim=-1).reshape(-1, H, W, 2).expand(B, H, W, 2)
    out = F.grid_sample(img, grid, mode=mode, padding_mode=padding_mode, align_corners=True)
    return out.reshape(lead + (H, W))
