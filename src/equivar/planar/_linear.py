"""Matrix groups of the plane: scalings, ``GL+(2)`` and ``SL(2)`` through their Lie group decomposition.

Source: Mironenco & Forre, "Lie Group Decompositions for Equivariant Neural
Networks" (ICLR 2024; code ``mirceamironenco/rgenn``). ``GL+(2)`` is not
compact, so it has no Haar *probability* measure; it decomposes as
``g = P R`` (``P`` symmetric positive definite, ``R`` in ``SO(2)``,
:func:`~equivar.planar._spd.polar`), ``P = exp(S)`` with ``S`` symmetric,
and the Haar measure factorizes as ``dmu(g) = dnu(P) dR`` where ``dR`` is
the normalized Haar measure of ``SO(2)`` and ``dnu`` the ``GL+(2)``-invariant
measure of the symmetric space ``GL+(2)/SO(2) = SPD(2)``. In the coordinates
``S = a I + [[b1, b2], [b2, -b1]]`` (eigenvalues ``a +- r``),

    dnu = J(S) da db1 db2,    J(S) = sinh(2 r) / (2 r)

(from the invariant measure ``det(Q)^(-3/2) dQ`` of ``Q = g g^T = P^2``;
Terras, "Harmonic Analysis on Symmetric Spaces II", Sec. 1.1). ``SL(2)`` is
the slice ``a = 0`` with the same ``J``. Both groups are unimodular.

:meth:`GLPlus2.sample_haar` draws ``S`` from a Gaussian in these
coordinates and ``R`` uniformly (as the paper's samplers do: a log-normal
SPD factor and a Haar ``SO(2)`` factor) and returns importance log-weights
``log(J / q)``, so that ``mean(f(g_i) exp(log_weight_i))`` is an unbiased
Monte-Carlo estimate of the Haar integral of ``f`` (this normalization).
"""

from __future__ import annotations

import dataclasses
import math

import torch

from ._matrix import MatrixGroup
from ._rotations import rotation_matrix
from ._spd import polar, spd_logm, sym_coords, sym_expm, sym_from_coords


class Scalings(MatrixGroup):
    """Isotropic scalings ``s I`` (``s > 0``); :meth:`sample` is log-uniform on ``[1/max_scale, max_scale]``.

    The Haar measure ``ds / s`` of ``R_{>0}`` restricted to that interval,
    normalized. Acts on images by resampling (approximate; zoom-out fills
    zeros, zoom-in loses the border).
    """

    name = "scalings"

    def __init__(self, max_scale: float = 2.0):
        if not float(max_scale) > 1.0:
            raise ValueError(f"scalings need max_scale > 1, got {max_scale}")
        self.max_scale = float(max_scale)

    def sample(self, n, generator=None) -> torch.Tensor:
        u = torch.rand(n, generator=generator, dtype=torch.float64) * 2 - 1
        s = torch.exp(u * math.log(self.max_scale))
        return s[:, None, None] * torch.eye(2, dtype=torch.float64)

    def contains(self, g, tol=1e-9) -> bool:
        g = torch.as_tensor(g)
        s = g[..., 0, 0]
        return bool(
            (
                (s > 0)
                & (g[..., 0, 1].abs() <= tol)
                & (g[..., 1, 0].abs() <= tol)
                & ((g[..., 1, 1] - s).abs() <= tol * s)
            ).all()
        )


@dataclasses.dataclass
class HaarSample:
    """Monte-Carlo samples of a Haar measure through the polar decomposition.

    Attributes
    ----------
    g : ``[n, 2, 2]`` elements ``g = P R``.
    P : ``[n, 2, 2]`` SPD factors ``exp(S)``.
    R : ``[n, 2, 2]`` rotation factors (Haar on ``SO(2)``).
    log_weight : ``[n]`` ``log(dmu / dq)`` at each sample (Haar density over the sampling density).
    """

    g: torch.Tensor
    P: torch.Tensor
    R: torch.Tensor
    log_weight: torch.Tensor


def log_jacobian(S: torch.Tensor) -> torch.Tensor:
    """``log J(S) = log(sinh(2 r) / (2 r))`` of symmetric ``S [..., 2, 2]`` (the invariant measure of SPD(2))."""
    _, b1, b2 = sym_coords(S)
    x = 2 * torch.sqrt(b1 * b1 + b2 * b2)
    small = x < 1e-4
    xs = torch.where(small, torch.ones_like(x), x)
    # log(sinh x / x) = x + log((1 - e^{-2x}) / (2x)), stable for large x
    big = xs + torch.log(-torch.expm1(-2 * xs)) - math.log(2.0) - torch.log(xs)
    return torch.where(small, x * x / 6, big)


class GLPlus2(MatrixGroup):
    """``GL+(2)``: real ``2 x 2`` matrices with positive determinant (Mironenco & Forre decomposition).

    Parameters
    ----------
    scale : float
        Standard deviation of the Gaussian on the log-eigenvalue coordinates
        ``(a, b1, b2)`` used by :meth:`sample` / :meth:`sample_haar`
        (``scale`` 0.3 gives stretches up to about ``e^(2*0.3*sqrt 2) ~ 2.3``).
    rotations : {'haar', 'equidistant'}
        The rotation factors of a sample of ``n``: independent and uniform (``'haar'``), or ``n`` angles
        ``u + 2 pi k / n`` with one uniform offset ``u`` in ``[0, 2 pi)`` (``'equidistant'``: each angle is still
        uniform, so the importance weights are unchanged, and the set is stratified; ``rgenn``'s default ``equi_distant`` sampler, far less Monte-Carlo
        noise in the rotation).

    Raises
    ------
    ValueError
        ``scale <= 0`` or another ``rotations``.
    """

    name = "GL+2"
    _coords = 3  # a, b1, b2

    def __init__(self, scale: float = 0.3, rotations: str = "haar"):
        if not float(scale) > 0:
            raise ValueError(f"{self.name} sampling scale must be > 0, got {scale}")
        if rotations not in ("haar", "equidistant"):
            raise ValueError(f"rotations must be 'haar' or 'equidistant', got {rotations!r}")
        self.scale, self.rotations = float(scale), rotations

    # -- decomposition ----------------------------------------------------
    def decompose(self, g) -> tuple[torch.Tensor, torch.Tensor]:
        """``g = P R`` (``P`` SPD, ``R`` rotation), see :func:`~equivar.planar._spd.polar`."""
        return polar(torch.as_tensor(g))

    def log_coordinates(self, g) -> torch.Tensor:
        """Global chart ``g -> (a, b1, b2, angle)`` with ``g = exp(S(a, b1, b2)) R(angle)``, ``[..., 4]``."""
        P, R = self.decompose(g)
        a, b1, b2 = sym_coords(spd_logm(P))
        return torch.stack([a, b1, b2, torch.atan2(R[..., 1, 0], R[..., 0, 0])], -1)

    def from_coordinates(self, c) -> torch.Tensor:
        """Inverse of :meth:`log_coordinates`."""
        c = torch.as_tensor(c, dtype=torch.float64)
        return sym_expm(sym_from_coords(c[..., 0], c[..., 1], c[..., 2])) @ rotation_matrix(c[..., 3])

    # -- sampling ---------------------------------------------------------
    def _draw_S(self, n, generator):
        z = torch.randn(n, 3, generator=generator, dtype=torch.float64) * self.scale
        if self._coords == 2:
            z[:, 0] = 0
        return z

    def sample_haar(self, n: int, generator: torch.Generator | None = None) -> HaarSample:
        """``n`` samples with importance log-weights for Haar integration (see the module docstring)."""
        z = self._draw_S(n, generator)
        S = sym_from_coords(z[:, 0], z[:, 1], z[:, 2])
        if self.rotations == "equidistant":
            offset = torch.rand(1, generator=generator, dtype=torch.float64) * (2 * math.pi)
            angles = offset + torch.arange(n, dtype=torch.float64) * (2 * math.pi / n)
        else:
            angles = torch.rand(n, generator=generator, dtype=torch.float64) * (2 * math.pi)
        R = rotation_matrix(angles)
        P = sym_expm(S)
        k = self._coords
        used = z[:, 3 - k :]
        log_q = -0.5 * (used / self.scale).square().sum(-1) - k * math.log(self.scale * math.sqrt(2 * math.pi))
        return HaarSample(P @ R, P, R, log_jacobian(S) - log_q)

    def sample(self, n, generator=None) -> torch.Tensor:
        """``n`` elements ``[n, 2, 2]`` (log-normal SPD factor times a Haar rotation; see :meth:`sample_haar`)."""
        return self.sample_haar(n, generator).g

    def contains(self, g, tol=1e-9) -> bool:
        return bool((torch.linalg.det(torch.as_tensor(g)) > 0).all())


class SL2(GLPlus2):
    """``SL(2)``: determinant one; ``g = P R`` with ``det P = 1`` (the slice ``a = 0`` of :class:`GLPlus2`)."""

    name = "SL2"
    _coords = 2

    def contains(self, g, tol=1e-9) -> bool:
        return bool(((torch.linalg.det(torch.as_tensor(g)) - 1).abs() <= tol).all())
