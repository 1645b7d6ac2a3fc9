"""The orientation grid of a PONITA model and its random rotations (the paper's training augmentation)."""

from __future__ import annotations

import torch

from ...o3 import fibonacci_sphere, rand_matrix


def orientation_grid(num_ori: int) -> torch.Tensor:
    """``num_ori`` near-uniform orientations on S^2, ``[num_ori, 3]`` float64 (the Fibonacci lattice)."""
    return fibonacci_sphere(num_ori, dtype=torch.float64)


def scene_grids(grid: torch.Tensor, num_scenes: int, random: bool) -> torch.Tensor | None:
    """``[G, O, 3]``: ``grid`` rotated by an independent Haar-random rotation per scene, or None if not ``random``.

    Rotating the grid by ``R^T`` is exactly the authors' ``RandomRotate`` augmentation (inputs and
    targets rotated by ``R``) for a model built on the invariants of positions and grid. Uses the
    global torch RNG (seeded by the trainer).
    """
    if not random:
        return None
    R = rand_matrix(num_scenes, dtype=grid.dtype, device=grid.device)  # [G, 3, 3]
    return torch.einsum("gij,oj->goi", R, grid)
