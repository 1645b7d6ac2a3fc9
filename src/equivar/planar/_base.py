"""Common interface of the planar groups (elements as tensors, composition, inverse, action on images)."""

from __future__ import annotations

import torch


class PlanarGroup:
    """A group acting on images ``[..., H, W]`` (and on points of the plane).

    Subclasses define how an element is stored (an integer pair, an angle, a
    ``[2, 2]`` matrix, ...), and implement :meth:`identity`, :meth:`compose`,
    :meth:`inverse`, :meth:`act` and :meth:`sample`. Finite groups also list
    :meth:`elements`. ``exact`` says whether :meth:`act` is exact on the pixel
    grid (integer shifts, quarter turns) or an interpolation (``grid_sample``).
    """

    name = "planar"
    exact = False
    finite = False

    def identity(self):
        raise NotImplementedError

    def compose(self, a, b):
        """``a b`` (first ``b``, then ``a``)."""
        raise NotImplementedError

    def inverse(self, a):
        raise NotImplementedError

    def act(self, g, x: torch.Tensor) -> torch.Tensor:
        """``g . x`` for an image ``x [..., H, W]``: ``(g . f)(p) = f(g^-1 p)``."""
        raise NotImplementedError

    def sample(self, n: int, generator: torch.Generator | None = None):
        raise NotImplementedError

    def elements(self):
        """All elements (finite groups) or ``None``."""
        return None

    def exp(self, xi):
        """The one-parameter subgroup element ``exp(xi)`` (for flows); ``NotImplementedError`` where none."""
        raise NotImplementedError(f"{self.name} has no exponential map")

    def equal(self, a, b, rtol: float = 0.0, atol: float = 0.0) -> bool:
        """Whether two elements are equal (exactly, or within tolerances for continuous groups)."""
        a, b = torch.as_tensor(a), torch.as_tensor(b)
        if not a.is_floating_point():
            return bool(torch.equal(a, b))
        return bool(torch.allclose(a, b, rtol=rtol, atol=atol))

    def __repr__(self) -> str:
        return self.name
