"""Monte-Carlo lifting convolution from images to functions on ``R^2 x| G`` (``G`` a matrix group).

Source: Mironenco & Forre, "Lie Group Decompositions for Equivariant Neural
Networks" (ICLR 2024; ``rgenn/layers.py``, ``LiftGConv2d``): a continuous
kernel ``k`` (a small MLP on kernel coordinates; the paper uses a SIREN) is
evaluated on the kernel grid transformed by each sampled group element,

    (L x)(t, A_i) = sum_q x(q) k(A_i^-1 (q - t)) |det A_i|^-1,

so the layer maps ``[B, C_in, H, W]`` to ``[B, C_out, N, H, W]`` for ``N``
sampled elements ``A_i`` (e.g. :meth:`GLPlus2.sample`). For a fixed sample
set it is equivariant in the sense ``L[h . x](samples) = h . L[x](h^-1
samples)``; for a quarter turn ``h`` this holds exactly on the pixel grid (the
kernel grid maps onto itself), for other ``h`` up to discretization. Kernel
coordinates are pixels divided by ``kernel_size // 2`` (the grid spans
``[-1, 1]^2``); points mapped outside the unit disc are masked (as the paper's
``circular_mask``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ._resample import pixel_coordinates


class AffineLiftingConv(nn.Module):
    """Lift images to ``R^2 x| G`` with a kernel MLP evaluated on transformed grids (see the module docstring).

    Parameters
    ----------
    in_channels, out_channels : int
    kernel_size : int
        Odd.
    hidden : int
        Width of the kernel MLP (``2 -> hidden -> hidden -> out * in``, SiLU).

    Shapes
    ------
    ``forward(x [B, C_in, H, W], samples [N, 2, 2]) -> [B, C_out, N, H, W]`` (circular padding).

    Raises
    ------
    ValueError
        Even ``kernel_size``; samples not ``[N, 2, 2]``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 5, hidden: int = 32):
        super().__init__()
        if int(kernel_size) % 2 == 0 or kernel_size < 3:
            raise ValueError(f"kernel_size must be odd and >= 3, got {kernel_size}")
        self.in_channels, self.out_channels, self.kernel_size = int(in_channels), int(out_channels), int(kernel_size)
        self.mlp = nn.Sequential(
            nn.Linear(2, hidden),
            nn.SiLU(),
            nn.Linear(hidden, hidden),
            nn.SiLU(),
            nn.Linear(hidden, out_channels * in_channels),
        )
        self.bias = nn.Parameter(torch.zeros(out_channels))

    def kernels(self, samples: torch.Tensor) -> torch.Tensor:
        """``[N, C_out, C_in, k, k]``: ``k(A_i^-1 p) / |det A_i|`` on the grid, zero outside the unit disc."""
        if samples.dim() != 3 or samples.shape[-2:] != (2, 2):
            raise ValueError(f"samples must be [N, 2, 2] matrices, got shape {tuple(samples.shape)}")
        k = self.kernel_size
        p = self.mlp[0].weight
        grid = pixel_coordinates(k, k, dtype=p.dtype, device=p.device) / (k // 2)  # [k, k, 2] in [-1, 1]
        A = samples.to(dtype=p.dtype, device=p.device)
        q = torch.einsum("nij,hwj->nhwi", torch.linalg.inv(A), grid)  # A^-1 p
        w = self.mlp(q).reshape(A.shape[0], k, k, self.out_channels, self.in_channels)
        w = w * (q.norm(dim=-1) <= 1.0)[..., None, None].to(w.dtype)
        w = w / torch.linalg.det(A).abs()[:, None, None, None, None]
        return w.permute(0, 3, 4, 1, 2)

    def forward(self, x: torch.Tensor, samples: torch.Tensor) -> torch.Tensor:
        w = self.kernels(samples)  # [N, O, C, k, k]
        N, O, C, k, _ = w.shape
        y = F.conv2d(F.pad(x, (k // 2,) * 4, mode="circular"), w.transpose(0, 1).reshape(O * N, C, k, k))
        return y.reshape(x.shape[0], O, N, *y.shape[-2:]) + self.bias[:, None, None, None]
