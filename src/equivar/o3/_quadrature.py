"""Quadrature grids on the sphere S^2.

A product grid: Gauss-Legendre nodes in ``cos(beta)`` (beta measured from
e3nn's polar axis y) times equally spaced azimuths ``alpha``. With
``n_beta`` Legendre nodes and ``n_alpha`` azimuths the rule integrates
exactly every polynomial on the sphere of degree ``<= band_limit`` whenever
``2 n_beta - 1 >= band_limit`` and ``n_alpha >= band_limit + 1``
(Gauss-Legendre is exact for degree ``2n-1`` in ``cos beta``; the
trapezoid rule on ``n`` equispaced azimuths is exact for Fourier modes
``|m| < n``). A product of spherical harmonics of degrees ``l1, l2, l3``
has degree ``l1 + l2 + l3``.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import numpy as np
import torch


class SphereGrid(NamedTuple):
    """Points ``[n, 3]`` (unit vectors, e3nn axes) and weights ``[n]`` summing to 4*pi.

    ``band_limit``: degree up to which ``sum_i w_i f(x_i) = int f dOmega`` is exact.
    ``n_beta``, ``n_alpha``: the product grid's shape (points are
    ``beta``-major).
    """

    points: torch.Tensor
    weights: torch.Tensor
    band_limit: int
    n_beta: int
    n_alpha: int


@functools.cache
def _grid_np(n_beta: int, n_alpha: int):
    xb, wb = np.polynomial.legendre.leggauss(n_beta)  # cos(beta), weights sum 2
    beta = np.arccos(xb)
    alpha = 2 * math.pi * np.arange(n_alpha) / n_alpha
    B, A = np.meshgrid(beta, alpha, indexing="ij")
    pts = np.stack([np.sin(B) * np.sin(A), np.cos(B), np.sin(B) * np.cos(A)], -1).reshape(-1, 3)
    w = (wb[:, None] * np.full((1, n_alpha), 2 * math.pi / n_alpha)).reshape(-1)
    return pts, w


def sphere_grid(
    band_limit: int, n_beta: int | None = None, n_alpha: int | None = None, dtype=None, device=None
) -> SphereGrid:
    """Gauss-Legendre x equiangular grid exact for polynomials of degree ``<= band_limit``.

    Parameters
    ----------
    band_limit : int
        Largest total degree integrated exactly (``>= 0``).
    n_beta, n_alpha : int, optional
        Override the grid shape (must be at least the minimum for
        ``band_limit``: ``ceil((band_limit+1)/2)`` and ``band_limit+1``).

    Raises
    ------
    ValueError
        Negative band limit or a grid too small to be exact for it.
    """
    if not isinstance(band_limit, int) or band_limit < 0:
        raise ValueError(f"band_limit must be a non-negative int, got {band_limit!r}")
    nb_min = (band_limit + 2) // 2
    na_min = band_limit + 1
    n_beta = nb_min if n_beta is None else n_beta
    n_alpha = na_min if n_alpha is None else n_alpha
    if n_beta < nb_min or n_alpha < na_min:
        raise ValueError(
            f"grid (n_beta={n_beta}, n_alpha={n_alpha}) too small for band_limit={band_limit}: "
            f"needs n_beta >= {nb_min} and n_alpha >= {na_min}"
        )
    pts, w = _grid_np(n_beta, n_alpha)
    dtype = dtype or torch.get_default_dtype()
    return SphereGrid(
        torch.tensor(pts, dtype=dtype, device=device),
        torch.tensor(w, dtype=dtype, device=device),
        band_limit,
        n_beta,
        n_alpha,
    )
