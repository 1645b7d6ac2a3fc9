"""Rotations of the plane: the cyclic groups ``C_n`` and ``SO(2)``.

``C_4`` (and its subgroups ``C_2``, ``C_1``) acts exactly on square pixel
grids by ``torch.rot90``; other orders and ``SO(2)`` act by resampling
(:func:`~equivar.planar.warp`, approximate). Angles are counter-clockwise as
displayed (see :mod:`equivar.planar._resample` for the coordinates).
"""

from __future__ import annotations

import math

import torch

from ._base import PlanarGroup
from ._matrix import MatrixGroup
from ._resample import warp


def rotation_matrix(angle, dtype=torch.float64) -> torch.Tensor:
    """``[[cos a, -sin a], [sin a, cos a]]`` for angles ``[...]`` (radians) -> ``[..., 2, 2]``."""
    a = torch.as_tensor(angle, dtype=dtype)
    c, s = torch.cos(a), torch.sin(a)
    return torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], -2)


class CyclicRotations(PlanarGroup):
    """``C_n``: rotations by multiples of ``360/n`` degrees; an element is an integer ``k`` (angle ``2 pi k / n``).

    Exact on square images for ``n`` in (1, 2, 4) (quarter turns by
    ``torch.rot90``); otherwise by bilinear resampling (approximate, corners
    are cut: zero fill). Raises ``ValueError`` for ``n < 1`` or, for exact
    quarter turns, a non-square image.
    """

    finite = True

    def __init__(self, n: int):
        if int(n) < 1:
            raise ValueError(f"C_n needs n >= 1, got n={n}")
        self.n = int(n)
        self.name = f"C{self.n}"
        self.exact = 4 % self.n == 0

    def identity(self) -> torch.Tensor:
        return torch.tensor(0)

    def compose(self, a, b) -> torch.Tensor:
        return torch.remainder(torch.as_tensor(a).long() + torch.as_tensor(b).long(), self.n)

    def inverse(self, a) -> torch.Tensor:
        return torch.remainder(-torch.as_tensor(a).long(), self.n)

    def angle(self, k) -> float:
        return 2 * math.pi * int(k) / self.n

    def act(self, g, x: torch.Tensor) -> torch.Tensor:
        k = int(torch.remainder(torch.as_tensor(g).long(), self.n))
        if self.exact:
            if x.shape[-1] != x.shape[-2] and (k * 4 // self.n) % 2 == 1:
                raise ValueError(f"quarter turns of a non-square image of shape {tuple(x.shape)}")
            return torch.rot90(x, k * 4 // self.n, dims=(-2, -1))
        return warp(x, rotation_matrix(self.angle(k)))

    def elements(self) -> torch.Tensor:
        return torch.arange(self.n)

    def sample(self, n, generator=None) -> torch.Tensor:
        return torch.randint(self.n, (n,), generator=generator)


class SO2(MatrixGroup):
    """``SO(2)`` as ``[2, 2]`` rotation matrices (float64), acting on images by bilinear resampling.

    :meth:`sample` is Haar (uniform angle); :meth:`exp` maps an angle (the
    Lie algebra coordinate) to its matrix.
    """

    name = "SO2"

    def inverse(self, a) -> torch.Tensor:
        return torch.as_tensor(a).transpose(-1, -2)

    def sample(self, n, generator=None) -> torch.Tensor:
        """``n`` Haar-random rotations ``[n, 2, 2]``."""
        return rotation_matrix(torch.rand(n, generator=generator, dtype=torch.float64) * (2 * math.pi))

    def exp(self, xi) -> torch.Tensor:
        """Rotation by the angle ``xi`` (radians; the Lie algebra coordinate)."""
        return rotation_matrix(xi)

    def contains(self, g, tol: float = 1e-9) -> bool:
        g = torch.as_tensor(g)
        eye = torch.eye(2, dtype=g.dtype)
        return bool(
            torch.allclose(g @ g.transpose(-1, -2), eye.expand_as(g), atol=tol) and (torch.linalg.det(g) > 0).all()
        )

    @staticmethod
    def angle(R: torch.Tensor) -> torch.Tensor:
        """Angle in ``(-pi, pi]`` of rotation matrices ``[..., 2, 2]``."""
        return torch.atan2(R[..., 1, 0], R[..., 0, 0])
