"""fibonacci_sphere: unit vectors, deterministic, near-uniform (moments converge), errors."""

import pytest
import torch

from equivar.o3 import fibonacci_sphere


def test_points_are_unit_and_spread():
    g = fibonacci_sphere(50, dtype=torch.float64)
    assert g.shape == (50, 3) and g.dtype == torch.float64
    torch.testing.assert_close(g.norm(dim=-1), torch.ones(50, dtype=torch.float64), rtol=0, atol=1e-14)
    d = torch.cdist(g, g) + 10 * torch.eye(50, dtype=torch.float64)
    assert float(d.min()) > 0.4  # no two points close: the lattice spacing is ~sqrt(4 pi / 50) = 0.5
    torch.testing.assert_close(fibonacci_sphere(50, dtype=torch.float64), g, rtol=0, atol=0)


def test_moments_converge_to_the_sphere_average():
    """mean(x) -> 0 and mean(x x^T) -> I/3 as n grows (the quadrature error falls)."""
    errs = []
    for n in (16, 64, 256, 1024):
        g = fibonacci_sphere(n, dtype=torch.float64)
        m2 = g.T @ g / n
        errs.append(float(g.mean(0).norm() + (m2 - torch.eye(3, dtype=torch.float64) / 3).norm()))
    for a, b in zip(errs, errs[1:]):
        assert b < 0.5 * a, errs
    assert errs[-1] < 1e-3


def test_errors():
    with pytest.raises(ValueError, match="n must be an integer >= 1, got 0"):
        fibonacci_sphere(0)
    with pytest.raises(ValueError, match="offset must be >= 0"):
        fibonacci_sphere(4, offset=-1.0)
