"""Semidirect products ``R^2 x| G`` of the plane's translations with a matrix group ``G``.

An element ``(A, t)`` maps ``p -> A p + t``; ``(A1, t1)(A2, t2) = (A1 A2,
A1 t2 + t1)`` and ``(A, t)^-1 = (A^-1, -A^-1 t)``. Acting on images is by
resampling (approximate). The left Haar measure is ``|det A|^-1 dt dmu_G(A)``.
"""

from __future__ import annotations

import dataclasses
import math

import torch

from ._base import PlanarGroup
from ._linear import GLPlus2
from ._matrix import MatrixGroup
from ._resample import warp


@dataclasses.dataclass
class AffineElement:
    """``p -> A p + t``: ``A [..., 2, 2]``, ``t [..., 2]`` (pixels, (row, col)); float64."""

    A: torch.Tensor
    t: torch.Tensor

    def apply(self, p: torch.Tensor) -> torch.Tensor:
        """The map on points ``p [..., 2]`` (exact)."""
        return (self.A.to(p.dtype) @ p[..., None])[..., 0] + self.t.to(p.dtype)


class Affine(PlanarGroup):
    """``R^2 x| G`` for a matrix group ``G`` (``SO2``, ``Scalings``, ``GLPlus2``, ``SL2``).

    Parameters
    ----------
    linear : MatrixGroup
    shift_scale : float
        Standard deviation (pixels) of the Gaussian translations drawn by :meth:`sample`.

    Raises
    ------
    ValueError
        ``linear`` is not a matrix group.
    """

    def __init__(self, linear: MatrixGroup, shift_scale: float = 2.0):
        if not isinstance(linear, MatrixGroup):
            raise ValueError(f"affine groups need a matrix group, got {linear!r}")
        self.linear, self.shift_scale = linear, float(shift_scale)
        self.name = f"R2x{linear.name}"

    def identity(self) -> AffineElement:
        return AffineElement(torch.eye(2, dtype=torch.float64), torch.zeros(2, dtype=torch.float64))

    def compose(self, a: AffineElement, b: AffineElement) -> AffineElement:
        return AffineElement(a.A @ b.A, (a.A @ b.t[..., None])[..., 0] + a.t)

    def inverse(self, a: AffineElement) -> AffineElement:
        Ainv = torch.linalg.inv(a.A)
        return AffineElement(Ainv, -(Ainv @ a.t[..., None])[..., 0])

    def act(self, g: AffineElement, x: torch.Tensor) -> torch.Tensor:
        return warp(x, g.A, g.t)

    def sample(self, n, generator=None) -> AffineElement:
        A = self.linear.sample(n, generator)
        t = torch.randn(n, 2, generator=generator, dtype=torch.float64) * self.shift_scale
        return AffineElement(A, t)

    def sample_haar(self, n, generator=None) -> tuple[AffineElement, torch.Tensor]:
        """``(elements, log_weight [n])`` for Monte-Carlo left-Haar integration (``GLPlus2``/``SL2`` only)."""
        if not isinstance(self.linear, GLPlus2):
            raise ValueError(f"sample_haar needs GL+2 or SL2 as the linear part, got {self.linear!r}")
        hs = self.linear.sample_haar(n, generator)
        t = torch.randn(n, 2, generator=generator, dtype=torch.float64) * self.shift_scale
        log_q = -0.5 * (t / self.shift_scale).square().sum(-1) - 2 * math.log(self.shift_scale * math.sqrt(2 * math.pi))
        lw = hs.log_weight - log_q - torch.log(torch.linalg.det(hs.g))
        return AffineElement(hs.g, t), lw

    def equal(self, a, b, rtol=0.0, atol=0.0) -> bool:
        return bool(torch.allclose(a.A, b.A, rtol=rtol, atol=atol) and torch.allclose(a.t, b.t, rtol=rtol, atol=atol))
