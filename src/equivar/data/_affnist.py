"""An affNIST-style test set regenerated from MNIST digits: padded to 40 x 40, random affine maps, seeded.

affNIST (Tijmen Tieleman, University of Toronto,
https://www.cs.toronto.edu/~tijmen/affNIST/) takes the MNIST digits, centres
each in a 40 x 40 canvas (an edge of 6 background pixels around the 28 x 28
original; the page's "just centered" version, which Mironenco & Forre's
``rgenn`` trains on) and applies a random affine map per image; its test set
transforms the 10,000 MNIST test digits. The published ranges, as used here
(per image, independently, uniform):

- rotation within +-20 degrees;
- shearing within +-45 degrees (read here as a shear angle ``phi``: columns
  move by ``tan(phi)`` times the row, so the shear factor lies in [-1, 1]);
- contraction / expansion: vertical and horizontal scale factors each in
  [0.8, 1.2];
- translation: the transformed digit is placed anywhere such that it stays
  inside the 40 x 40 canvas (uniform over the allowed offsets).

Caveat: the affNIST page's own list of ranges could not be retrieved when
this was written; the rotation, scale and 40 x 40 canvas are as its
introduction and secondary descriptions state (e.g. Gu & Tresp, CVPR 2020:
rotation within 20 degrees, shearing within 45 degrees, scaling 0.8-1.2), and
the shear convention is an assumption. The ranges are parameters
(:class:`AffnistRanges`), and ``strength`` scales all of them (0 = the padded
digit, 1 = the ranges above), so accuracy can be read against distortion.

The map is ``A = R(theta) Sh(phi) diag(s_row, s_col)`` in the pixel
coordinates of :mod:`equivar.planar` (``(row, col)``, origin at the canvas
centre), followed by the translation ``t``; images are resampled bilinearly
(``torch.nn.functional.grid_sample`` through :func:`equivar.planar.warp`).
"""

from __future__ import annotations

import dataclasses
import math
import numbers

import torch
import torch.nn.functional as F

from ..planar import pixel_coordinates, warp


@dataclasses.dataclass(frozen=True)
class AffnistRanges:
    """Half-widths of affNIST's transformation ranges (module docstring).

    Attributes
    ----------
    rotation_deg : float
        Rotation angle in ``[-rotation_deg, rotation_deg]`` degrees.
    shear_deg : float
        Shear angle ``phi`` in ``[-shear_deg, shear_deg]`` degrees (factor ``tan(phi)``); below 90.
    scale : float
        Each axis' scale factor in ``[1 - scale, 1 + scale]``; below 1.
    canvas : int
        Side of the output images (pixels); at least the input side.

    Raises
    ------
    ValueError
        One line naming the field and its value: ``rotation_deg`` not a real number in [0, 180],
        ``shear_deg`` not in [0, 90), ``scale`` not in [0, 1) (NaN, booleans and strings included), or
        ``canvas`` not an integer >= 1. A canvas smaller than the images is refused later, by
        :func:`affnist_like` (as :func:`pad_images`).
    """

    rotation_deg: float = 20.0
    shear_deg: float = 45.0
    scale: float = 0.2
    canvas: int = 40

    def __post_init__(self):
        for name, hi, closed in (("rotation_deg", 180.0, True), ("shear_deg", 90.0, False), ("scale", 1.0, False)):
            v = getattr(self, name)
            ok = (
                isinstance(v, numbers.Real) and not isinstance(v, bool) and 0.0 <= v and (v <= hi if closed else v < hi)
            )
            if not ok:
                raise ValueError(f"{name} must be a number in [0, {hi:g}{']' if closed else ')'}, got {v!r}")
        c = self.canvas
        if isinstance(c, bool) or not isinstance(c, numbers.Integral) or c < 1:
            raise ValueError(f"canvas must be an integer >= 1, got {c!r}")


def pad_images(images: torch.Tensor, size: int = 40) -> torch.Tensor:
    """Centre ``images [N, C, h, w]`` in a zero canvas ``[N, C, size, size]`` (affNIST's "just centered" set).

    Raises
    ------
    ValueError
        ``images`` not 4-D, larger than ``size``, or ``size - h`` / ``size - w`` odd (no exact centre).
    """
    if images.dim() != 4:
        raise ValueError(f"images must be [N, C, H, W], got shape {tuple(images.shape)}")
    h, w = images.shape[-2:]
    dh, dw = int(size) - h, int(size) - w
    if dh < 0 or dw < 0 or dh % 2 or dw % 2:
        raise ValueError(f"cannot centre {h}x{w} images in a {size}x{size} canvas (needs an even, non-negative margin)")
    return F.pad(images, (dw // 2, dw // 2, dh // 2, dh // 2))


def affnist_matrices(rotation: torch.Tensor, shear: torch.Tensor, scale_row: torch.Tensor, scale_col: torch.Tensor):
    """``A [N, 2, 2] = R(rotation) Sh(shear) diag(scale_row, scale_col)`` (angles in radians, float64).

    ``R`` is :mod:`equivar.planar`'s rotation in ``(row, col)`` coordinates and
    ``Sh = [[1, 0], [tan(shear), 1]]`` (columns move by ``tan(shear)`` times the row).
    """
    c, s, k = torch.cos(rotation), torch.sin(rotation), torch.tan(shear)
    R = torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], -2)
    one, zero = torch.ones_like(k), torch.zeros_like(k)
    Sh = torch.stack([torch.stack([one, zero], -1), torch.stack([k, one], -1)], -2)
    D = torch.diag_embed(torch.stack([scale_row, scale_col], -1))
    return R @ Sh @ D


def affnist_like(
    images: torch.Tensor,
    seed: int,
    strength: float = 1.0,
    ranges: AffnistRanges = AffnistRanges(),
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """An affNIST-style copy of ``images``: padded to ``ranges.canvas``, one random affine map per image.

    Parameters
    ----------
    images : Tensor ``[N, C, h, w]``
        Floating images (e.g. MNIST test digits in [0, 1], 28 x 28).
    seed : int
        Seeds the transformations (same seed, same images and maps, on any machine: CPU float64 draws).
    strength : float
        Scales every range (rotation and shear angles, ``scale``, the translation range); 0 gives
        the padded images, 1 affNIST's ranges.
    ranges : AffnistRanges

    Returns
    -------
    (images ``[N, C, canvas, canvas]`` of the input dtype, params)
        ``params``: ``rotation``, ``shear`` (radians), ``scale_row``, ``scale_col``, ``A [N, 2, 2]``,
        ``t [N, 2]`` (pixels, (row, col)), all float64; pixel ``p`` of the output reads the padded
        input at ``A^-1 (p - t)`` (bilinear, zero outside).

    Raises
    ------
    ValueError
        ``images`` not a floating ``[N, C, h, w]`` tensor with ``N >= 1``; ``strength`` outside [0, 1]; ``seed``
        not an integer; as :func:`pad_images`.
    """
    if images.dim() != 4 or not images.is_floating_point():
        raise ValueError(f"images must be a floating [N, C, H, W] tensor, got {images.dtype} {tuple(images.shape)}")
    if images.shape[0] < 1:
        raise ValueError(f"images must hold at least one image, got {tuple(images.shape)}")
    if not 0.0 <= float(strength) <= 1.0:
        raise ValueError(f"strength must be in [0, 1], got {strength}")
    if isinstance(seed, bool) or int(seed) != seed:
        raise ValueError(f"seed must be an integer, got {seed!r}")
    x = pad_images(images, ranges.canvas)
    N, H = x.shape[0], x.shape[-1]
    gen = torch.Generator().manual_seed(int(seed))
    s = float(strength)

    def uniform(half):
        return (2 * torch.rand(N, generator=gen, dtype=torch.float64) - 1) * half

    rotation = uniform(math.radians(ranges.rotation_deg) * s)
    shear = uniform(math.radians(ranges.shear_deg) * s)
    scale_row = 1 + uniform(ranges.scale * s)
    scale_col = 1 + uniform(ranges.scale * s)
    A = affnist_matrices(rotation, shear, scale_row, scale_col)
    # translation: keep the moved digit's pixel centres inside the canvas, uniform over what is allowed
    p = pixel_coordinates(H, H)  # [H, H, 2] float64
    q = torch.einsum("nij,hwj->nhwi", A, p)  # where each input pixel lands
    ink = (x.detach().abs().sum(1) > 0).to(torch.float64)[..., None]  # [N, H, H, 1]
    big = torch.tensor(float("inf"), dtype=torch.float64)
    qmin = torch.where(ink > 0, q, big).amin(dim=(1, 2))  # [N, 2]
    qmax = torch.where(ink > 0, q, -big).amax(dim=(1, 2))
    half = (H - 1) / 2
    lo, hi = -half - qmin, half - qmax  # allowed t per axis
    empty = ~torch.isfinite(qmin)  # blank images: no constraint but the centre
    lo, hi = torch.where(empty, 0.0, lo), torch.where(empty, 0.0, hi)
    u = lo + torch.rand(N, 2, generator=gen, dtype=torch.float64) * (hi - lo)  # uniform over [lo, hi]
    # strength s shrinks the offset towards 0 (convex in [lo, hi] when 0 is allowed); a digit too big
    # for the canvas is centred on its bounding box
    t = torch.where(lo <= hi, torch.minimum(torch.maximum(s * u, lo), hi), (lo + hi) / 2)
    out = warp(x.to(torch.float64), A, t).to(x.dtype)  # resampled in float64: identity maps are exact
    return out, {"rotation": rotation, "shear": shear, "scale_row": scale_row, "scale_col": scale_col, "A": A, "t": t}
