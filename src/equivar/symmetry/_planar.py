"""Planar groups (:mod:`equivar.planar`) as audit groups: their elements act on ``"image"``-typed tensors.

Names accepted by :func:`get_group` with the ``planar:`` prefix:

==============================  ===============================================
``planar:shifts``               circular shifts of the subject's images (size
``planar:shifts(H,W)``          from the first ``"image"`` input), exact
``planar:C4``, ``planar:Cn``    quarter turns (exact) / ``n``-fold rotations
``planar:SO2``                  rotations (bilinear resampling)
``planar:scalings(s)``          log-uniform scalings in ``[1/s, s]`` (default 1.5)
``planar:GL+2(scale)``,         ``GL+(2)`` / ``SL(2)`` (polar decomposition,
``planar:SL2(scale)``           log-normal SPD factor, default scale 0.2)
``planar:affine(SL2)``          ``R^2 x| SL2`` (or ``GL+2``, ``SO2``)
==============================  ===============================================
"""

from __future__ import annotations

import math

import torch

from .. import planar as P
from ._groups import PREFIXES, Group
from ._types import GroupElement


def _label(G, g) -> str:
    if isinstance(G, P.CircularShifts):
        return f"shift ({int(g[0])}, {int(g[1])})"
    if isinstance(G, P.CyclicRotations):
        return f"{360 * int(g) / G.n:.4g} deg"
    if isinstance(G, P.AffineElement) or isinstance(g, P.AffineElement):
        A, t = g.A.tolist(), g.t.tolist()
        return f"A=[[{A[0][0]:.3g}, {A[0][1]:.3g}], [{A[1][0]:.3g}, {A[1][1]:.3g}]] t=({t[0]:.3g}, {t[1]:.3g})"
    if isinstance(G, P.SO2):
        return f"{math.degrees(float(P.SO2.angle(g))):.4g} deg"
    A = torch.as_tensor(g).tolist()
    return f"[[{A[0][0]:.3g}, {A[0][1]:.3g}], [{A[1][0]:.3g}, {A[1][1]:.3g}]]"


def _split(G, els) -> list:
    if isinstance(els, P.AffineElement):
        return [P.AffineElement(a, t) for a, t in zip(els.A, els.t)]
    return list(els)


class ImageGroup(Group):
    """A :class:`~equivar.planar.PlanarGroup` as an audit group.

    Parameters
    ----------
    make : callable
        ``make(image_shape) -> PlanarGroup`` (the size is known only from the
        subject: circular shifts depend on it).
    name : str
    finite : bool
    order : callable, optional
        ``order(image_shape) -> int`` for finite groups.
    """

    acts_on = "image"

    def __init__(self, make, name: str, finite: bool = False, order=None):
        self._make, self.name, self.finite, self._order = make, name, finite, order
        self.order = 10**9  # unknown until resolve(): never listed exhaustively by default

    def resolve(self, **context) -> None:
        """Fix the group for the subject's inputs (sets ``order`` of finite groups)."""
        self._group(context)

    def planar_group(self, image_shape=None):
        """The underlying planar group for images of ``image_shape`` ``(H, W)``."""
        return self._make(image_shape)

    def _group(self, context):
        shape = context.get("image_shape")
        G = self._make(shape)
        if self._order is not None and shape is not None:
            self.order = self._order(shape)
        return G

    def elements(self, **context):
        if not self.finite:
            return None
        G = self._group(context)
        ident = G.identity()
        return [GroupElement(planar=(G, g), label=_label(G, g)) for g in G.elements() if not G.equal(g, ident)]

    def sample(self, n, generator=None, **context):
        G = self._group(context)
        return [GroupElement(planar=(G, g), label=_label(G, g)) for g in _split(G, G.sample(n, generator))]


def _shifts(arg):
    size = None
    if arg:
        parts = [int(v) for v in arg.split(",")]
        size = (parts[0], parts[-1])

    def make(shape):
        hw = size or (tuple(shape) if shape is not None else None)
        if hw is None:
            raise ValueError("planar:shifts needs the image size: an input typed 'image', or planar:shifts(H,W)")
        return P.CircularShifts(*hw)

    name = "planar:shifts" + (f"({size[0]},{size[1]})" if size else "")
    return ImageGroup(make, name, finite=True, order=lambda s: (size or s)[0] * (size or s)[1])


def _linear(base: str, arg):
    if base in ("so2", "rotations"):
        return P.SO2()
    if base == "scalings":
        return P.Scalings(float(arg) if arg else 1.5)
    if base in ("gl+2", "gl2", "glplus2"):
        return P.GLPlus2(float(arg) if arg else 0.2)
    if base == "sl2":
        return P.SL2(float(arg) if arg else 0.2)
    return None


def get_planar_group(spec: str) -> ImageGroup:
    """An :class:`ImageGroup` from a ``planar:...`` name (module docstring).

    Raises
    ------
    ValueError
        Unknown name (the message lists the accepted ones) or a bad argument.
    """
    body = spec.strip()[len("planar:") :].replace(" ", "")
    base, _, arg = body.partition("(")
    arg = arg.rstrip(")")
    low = base.lower()
    try:
        if low == "shifts":
            return _shifts(arg)
        if low.startswith("c") and low[1:].isdigit():
            n = int(low[1:])
            return ImageGroup(lambda s: P.CyclicRotations(n), f"planar:C{n}", finite=True, order=lambda s: n)
        if low == "affine":
            lin = _linear((arg or "sl2").lower(), None)
            if lin is not None:
                return ImageGroup(lambda s: P.Affine(lin, shift_scale=1.0), f"planar:affine({lin.name})")
        lin = _linear(low, arg)
        if lin is not None:
            return ImageGroup(lambda s: lin, f"planar:{lin.name}" + (f"({arg})" if arg else ""))
    except ValueError as e:
        raise ValueError(f"bad planar group {spec!r}: {e}") from None
    raise ValueError(
        f"unknown planar group {spec!r}: use planar:shifts, planar:shifts(H,W), planar:Cn, planar:SO2, "
        "planar:scalings(s), planar:GL+2(scale), planar:SL2(scale) or planar:affine(SL2|GL+2|SO2)"
    )


PREFIXES["planar:"] = get_planar_group
