"""Base class of the groups of ``2 x 2`` matrices (rotations, scalings, GL+(2), SL(2))."""

from __future__ import annotations

import torch

from ._base import PlanarGroup
from ._resample import warp


class MatrixGroup(PlanarGroup):
    """A group of ``[2, 2]`` matrices (float64) acting on the plane by ``p -> g p`` and on images by resampling."""

    def identity(self) -> torch.Tensor:
        return torch.eye(2, dtype=torch.float64)

    def compose(self, a, b) -> torch.Tensor:
        return torch.as_tensor(a) @ torch.as_tensor(b)

    def inverse(self, a) -> torch.Tensor:
        a = torch.as_tensor(a)
        d = torch.linalg.det(a)[..., None, None]
        adj = torch.stack(
            [torch.stack([a[..., 1, 1], -a[..., 0, 1]], -1), torch.stack([-a[..., 1, 0], a[..., 0, 0]], -1)], -2
        )
        return adj / d

    def act(self, g, x: torch.Tensor) -> torch.Tensor:
        return warp(x, g)

    def exp(self, xi) -> torch.Tensor:
        """``matrix_exp`` of a Lie algebra element ``xi [..., 2, 2]``."""
        return torch.linalg.matrix_exp(torch.as_tensor(xi, dtype=torch.float64))

    def contains(self, g, tol: float = 1e-9) -> bool:
        raise NotImplementedError
