"""Translations of the pixel grid: circular shifts ``Z_H x Z_W`` (exact) and integer shifts of ``Z^2``."""

from __future__ import annotations

import torch

from ._base import PlanarGroup


def _pair(g) -> torch.Tensor:
    g = torch.as_tensor(g)
    if g.is_floating_point() or g.shape[-1:] != (2,):
        raise ValueError(f"a shift is an integer pair (rows, cols), got {g.tolist()!r}")
    return g.long()


class CircularShifts(PlanarGroup):
    """Circular shifts of ``H x W`` images: the finite group ``Z_H x Z_W``, acting exactly.

    An element is a long tensor ``[2]`` = ``(rows, cols)``, reduced modulo
    ``(H, W)``; ``act(g, x)[..., i, j] = x[..., i - g0, j - g1]`` (indices
    modulo the size), i.e. ``torch.roll(x, g, dims=(-2, -1))``.

    Parameters
    ----------
    H, W : int
        Image size (positive).

    Raises
    ------
    ValueError
        Non-positive size; an image of another size in :meth:`act`.
    """

    exact = True
    finite = True

    def __init__(self, H: int, W: int):
        if int(H) < 1 or int(W) < 1:
            raise ValueError(f"circular shifts need a positive image size, got H={H}, W={W}")
        self.H, self.W = int(H), int(W)
        self.name = f"shifts({self.H},{self.W})"
        self._mod = torch.tensor([self.H, self.W])

    def identity(self) -> torch.Tensor:
        return torch.zeros(2, dtype=torch.long)

    def compose(self, a, b) -> torch.Tensor:
        return torch.remainder(_pair(a) + _pair(b), self._mod)

    def inverse(self, a) -> torch.Tensor:
        return torch.remainder(-_pair(a), self._mod)

    def act(self, g, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[-2:]) != (self.H, self.W):
            raise ValueError(f"{self.name} acts on {self.H}x{self.W} images, got shape {tuple(x.shape)}")
        g = _pair(g).tolist()
        return torch.roll(x, shifts=(int(g[0]), int(g[1])), dims=(-2, -1))

    def elements(self) -> torch.Tensor:
        """All ``H W`` shifts, ``[H W, 2]`` (row-major)."""
        i, j = torch.meshgrid(torch.arange(self.H), torch.arange(self.W), indexing="ij")
        return torch.stack([i.flatten(), j.flatten()], dim=-1)

    def sample(self, n, generator=None) -> torch.Tensor:
        """``n`` uniform shifts ``[n, 2]`` (Haar measure of the finite group)."""
        return torch.stack(
            [torch.randint(self.H, (n,), generator=generator), torch.randint(self.W, (n,), generator=generator)], -1
        )

    def exp(self, xi) -> torch.Tensor:
        """An integer velocity ``xi`` (rows, cols per unit time) is its own group element."""
        return torch.remainder(_pair(xi), self._mod)


class IntegerShifts(PlanarGroup):
    """Integer translations ``Z^2`` of an unbounded grid, acting on finite images with zero fill.

    Elements are long tensors ``[2]``. The group law is exact; the action on
    a finite image is exact only while the content stays inside the frame
    (pixels shifted out are lost, zeros come in), so it is a group action on
    images with enough empty border, not on all images.
    """

    exact = True
    name = "Z2"

    def identity(self) -> torch.Tensor:
        return torch.zeros(2, dtype=torch.long)

    def compose(self, a, b) -> torch.Tensor:
        return _pair(a) + _pair(b)

    def inverse(self, a) -> torch.Tensor:
        return -_pair(a)

    def act(self, g, x: torch.Tensor) -> torch.Tensor:
        di, dj = (int(v) for v in _pair(g).tolist())
        H, W = x.shape[-2:]
        out = torch.zeros_like(x)
        if abs(di) >= H or abs(dj) >= W:
            return out
        src = x[..., max(-di, 0) : H - max(di, 0), max(-dj, 0) : W - max(dj, 0)]
        out[..., max(di, 0) : H - max(-di, 0), max(dj, 0) : W - max(-dj, 0)] = src
        return out

    def sample(self, n, generator=None, max_shift: int = 3) -> torch.Tensor:
        """``n`` shifts uniform in ``[-max_shift, max_shift]^2`` (no Haar probability measure on ``Z^2``)."""
        return torch.randint(-max_shift, max_shift + 1, (n, 2), generator=generator)

    def exp(self, xi) -> torch.Tensor:
        return _pair(xi)
