"""Near-uniform point sets on the sphere S^2 of any size: the Fibonacci (golden-spiral) lattice."""

from __future__ import annotations

import math

import torch


def fibonacci_sphere(n: int, offset: float = 0.5, dtype=None, device=None) -> torch.Tensor:
    """``n`` near-uniform unit vectors on S^2 on the golden spiral, ``[n, 3]``.

    Point ``i`` has polar angle ``acos(1 - 2 (i + offset) / (n - 1 + 2 offset))``
    from the z axis and azimuth ``pi (1 + sqrt 5) i mod 2 pi`` (the lattice of
    Gonzalez, Math. Geosci. 42, 49 (2010); PONITA's ``GridGenerator`` in
    github.com/ebekkers/ponita-torch uses the same formula). Deterministic;
    unlike :func:`sphere_grid` it exists for every ``n`` and its points are
    spread evenly, but it is only an approximate quadrature (equal weights
    ``4 pi / n``; the error of ``mean_i f(x_i)`` falls as ``n`` grows).

    Parameters
    ----------
    n : int
        Number of points, ``>= 1``.
    offset : float
        Pushes the first and last points away from the poles (0.5: the
        classic lattice; must be ``> 0`` when ``n = 1``).
    dtype, device : optional
        Of the result (default dtype when ``None``).

    Returns
    -------
    Tensor [n, 3]
        Unit vectors ``(x, y, z)``.

    Raises
    ------
    ValueError
        ``n`` not an integer ``>= 1``, or ``offset`` not ``>= 0`` (the message names the value).
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"fibonacci_sphere: n must be an integer >= 1, got {n!r}")
    if not offset >= 0 or (n == 1 and offset == 0):
        raise ValueError(f"fibonacci_sphere: offset must be >= 0 (> 0 for n = 1), got {offset!r}")
    i = torch.arange(n, dtype=torch.float64)
    azimuth = torch.remainder(math.pi * (1.0 + math.sqrt(5.0)) * i, 2.0 * math.pi)
    cos_polar = 1.0 - 2.0 * (i + offset) / (n - 1 + 2.0 * offset)
    sin_polar = torch.sqrt(torch.clamp(1.0 - cos_polar**2, min=0.0))
    pts = torch.stack([torch.cos(azimuth) * sin_polar, torch.sin(azimuth) * sin_polar, cos_polar], dim=-1)
    return pts.to(dtype=dtype or torch.get_default_dtype(), device=device)
