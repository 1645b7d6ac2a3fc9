"""Seeded random draws for training and sampling, reproducible on any device.

Every draw is made by one ``torch.Generator`` on the CPU in float64 and then cast and moved, so a
seed gives the same numbers on CPU and GPU and in float32 and float64 (up to the cast).
"""

from __future__ import annotations

import torch

__all__ = ["NoiseSource"]


class NoiseSource:
    """The source of every random number a diffusion draws: standard normals, uniforms, integers.

    Subclass it to transform the draws (the equivariance tests rotate the normals: a sampler
    that is equivariant maps rotated noise to rotated samples, and isotropic noise is
    rotation-invariant in distribution, so the sampled distribution is equivariant).

    Parameters
    ----------
    seed : int
        Seed of the generator.

    Raises
    ------
    ValueError
        ``seed`` not an integer.
    """

    def __init__(self, seed: int = 0):
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ValueError(f"seed must be an integer, got {seed!r}")
        self.seed = seed
        self.generator = torch.Generator().manual_seed(seed)

    def normal(self, shape, dtype: torch.dtype = torch.float64, device=None) -> torch.Tensor:
        """Independent N(0, 1) draws of ``shape``."""
        return torch.randn(tuple(shape), generator=self.generator, dtype=torch.float64).to(dtype=dtype, device=device)

    def uniform(self, shape, dtype: torch.dtype = torch.float64, device=None) -> torch.Tensor:
        """Independent U[0, 1) draws of ``shape``."""
        return torch.rand(tuple(shape), generator=self.generator, dtype=torch.float64).to(dtype=dtype, device=device)

    def integers(self, low: int, high: int, shape, device=None) -> torch.Tensor:
        """Independent uniform integers in ``low..high-1`` (long) of ``shape``."""
        return torch.randint(low, high, tuple(shape), generator=self.generator).to(device=device)
