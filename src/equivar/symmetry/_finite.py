"""Finite subgroups of O(3) as explicit lists of 3x3 matrices.

Built by closing a set of generators under multiplication (in float64,
deduplicated to 1e-8), so every list is a group exactly up to rounding.
Orders: ``C_n`` n, ``D_n`` 2n, ``T`` 12, ``O`` 24, ``I`` 60; the improper
extensions ``Td`` 24, ``Oh`` 48, ``Ih`` 120, ``Ci`` = {E, inversion} 2.
"""

from __future__ import annotations

import functools
import math

import torch

from ..o3 import axis_angle_to_matrix

_AXES = {"x": (1.0, 0.0, 0.0), "y": (0.0, 1.0, 0.0), "z": (0.0, 0.0, 1.0)}


def _rot(axis, angle: float) -> torch.Tensor:
    a = torch.tensor(axis, dtype=torch.float64)
    return axis_angle_to_matrix(a, torch.tensor(angle, dtype=torch.float64))


def closure(generators: list[torch.Tensor], max_order: int = 240) -> torch.Tensor:
    """All products of ``generators`` (each ``[3, 3]``): ``[K, 3, 3]``, identity first.

    Raises ``ValueError`` if the closure exceeds ``max_order`` elements (the
    generators then do not generate a finite group).
    """
    eye = torch.eye(3, dtype=torch.float64)
    elems = [eye]
    keys = {_key(eye)}
    frontier = [eye]
    while frontier:
        new = []
        for a in frontier:
            for g in generators:
                b = g @ a
                k = _key(b)
                if k not in keys:
                    keys.add(k)
                    elems.append(b)
                    new.append(b)
                    if len(elems) > max_order:
                        raise ValueError(f"generators do not close within {max_order} elements")
        frontier = new
    return torch.stack(elems)


def _key(R: torch.Tensor) -> tuple:
    return tuple(int(v) for v in torch.round(R * 1e6).flatten().tolist())


def perpendicular(axis: torch.Tensor) -> torch.Tensor:
    """A unit vector perpendicular to ``axis [3]`` (x for the z axis, deterministic)."""
    a = axis / axis.norm()
    ref = (
        torch.tensor([1.0, 0.0, 0.0], dtype=a.dtype)
        if abs(float(a[0])) < 0.9
        else torch.tensor([0.0, 1.0, 0.0], dtype=a.dtype)
    )
    p = ref - (ref @ a) * a
    return p / p.norm()


@functools.cache
def cyclic(n: int, axis: tuple) -> torch.Tensor:
    """``C_n`` about ``axis``: rotations by ``2 pi k / n``, k = 0..n-1 (in that order)."""
    if n < 1:
        raise ValueError(f"C_n needs n >= 1, got {n}")
    return torch.stack([_rot(axis, 2 * math.pi * k / n) for k in range(n)])


@functools.cache
def dihedral(n: int, axis: tuple) -> torch.Tensor:
    """``D_n``: ``C_n`` about ``axis`` plus ``n`` two-fold rotations about perpendicular axes."""
    if n < 1:
        raise ValueError(f"D_n needs n >= 1, got {n}")
    a = torch.tensor(axis, dtype=torch.float64)
    p = perpendicular(a)
    flip = _rot(tuple(p.tolist()), math.pi)
    return closure([_rot(axis, 2 * math.pi / n), flip])


@functools.cache
def tetrahedral() -> torch.Tensor:
    """``T`` (12 rotations of the tetrahedron with vertices (1,1,1), (1,-1,-1), ...)."""
    return closure([_rot((1.0, 1.0, 1.0), 2 * math.pi / 3), _rot(_AXES["z"], math.pi)])


@functools.cache
def octahedral() -> torch.Tensor:
    """``O`` (24 rotations of the cube with faces normal to x, y, z)."""
    return closure([_rot(_AXES["z"], math.pi / 2), _rot(_AXES["x"], math.pi / 2)])


@functools.cache
def icosahedral() -> torch.Tensor:
    """``I`` (60 rotations of the icosahedron with vertices (0, +-1, +-phi) and cyclic)."""
    phi = (1 + 5**0.5) / 2
    return closure([_rot((0.0, 1.0, phi), 2 * math.pi / 5), _rot((1.0, 1.0, 1.0), 2 * math.pi / 3)])


def with_inversion(G: torch.Tensor) -> torch.Tensor:
    """``G x {E, -E}``: ``[2K, 3, 3]`` (proper elements first)."""
    return torch.cat([G, -G])


@functools.cache
def tetrahedral_full() -> torch.Tensor:
    """``Td`` (24): ``T`` plus ``-R`` for the rotations ``R`` of ``O`` not in ``T``."""
    T, O = tetrahedral(), octahedral()
    tk = {_key(R) for R in T}
    rest = [-R for R in O if _key(R) not in tk]
    return torch.cat([T, torch.stack(rest)])


def axis_vector(spec) -> tuple:
    """``'x'|'y'|'z'`` or 3 numbers -> unit axis as a tuple of floats.

    Raises ``ValueError`` for an unknown name or a zero vector.
    """
    if isinstance(spec, str):
        s = spec.strip().lower()
        if s in _AXES:
            return _AXES[s]
        try:
            spec = [float(v) for v in s.replace("(", "").replace(")", "").split(",")]
        except ValueError:
            raise ValueError(f"axis must be 'x', 'y', 'z' or 'a,b,c', got {spec!r}") from None
    v = torch.as_tensor(spec, dtype=torch.float64).flatten()
    if v.numel() != 3 or float(v.norm()) == 0.0:
        raise ValueError(f"axis must be a nonzero 3-vector, got {spec!r}")
    return tuple((v / v.norm()).tolist())
