"""Equivariant frames of a point cloud, including degenerate covariance.

A *frame* is an orthogonal matrix ``F [3, 3]`` whose columns are the frame
axes; a *frame set* ``F(X)`` must satisfy ``F(g X) = g F(X)`` as a multiset
(Puny et al., "Frame Averaging for Invariant and Equivariant Network
Design", ICLR 2022). Then averaging ``rho(F) f(rho(F)^-1 x)`` over the set is
exactly equivariant.

Strategy, decided per point cloud from the centred covariance
``C = P^T P / N`` with eigenvalues ``l1 >= l2 >= l3`` (all in float64):

1. ``pca`` - all relative gaps ``(l_i - l_j) / l1 > eig_tol``: the PCA frames,
   every sign choice of the eigenvectors (8 for O(3)), or the 4 proper ones
   with third axis ``e1 x e2`` (SO(3)).
2. One repeated pair (uniaxial: collinear points, regular polygons,
   cylinders): the simple eigenvector ``u`` is known up to sign; the
   in-plane direction is taken from the data - the in-plane components of
   the points (and, for O3/SO3, of the centroid, which is then preferred)
   with the largest norm, every tied one (relative ``tie_tol``) giving frames
   ``[d, +-(+-u) x d, +-u]`` (``axis+points``). Exactly equivariant: the
   candidates are chosen by invariant criteria and ties are all kept.
   If no point has an in-plane component (collinear points), the plane
   direction is averaged over ``n_average`` equally spaced rotations about
   ``u`` from an arbitrary reference (``axis+average``); exact whenever the
   inputs are invariant about ``u`` (true for collinear positions) and the
   outputs have degree ``l < n_average``.
3. All three equal (isotropic: regular tetrahedron, octahedron, cube,
   icosahedron): first axis from the longest centred points (or the
   centroid, O3/SO3), second from the longest components perpendicular to
   it, all ties kept (``points``; a regular tetrahedron gives its 12
   rotations, an octahedron its 24). Again exactly equivariant.
4. Coincident points (nothing to orient by): the icosahedral rotations
   (60, or 120 with inversion for O(3)) (``isotropic``); exact for outputs
   of degree ``l <= 5`` since the input carries no direction.

Near-degenerate covariance is decided by the same thresholds: gaps below
``eig_tol`` are treated as repeated (so the PCA axes are never used when they
are ill-conditioned); norms within ``tie_tol`` as tied. Outputs are always
finite; equivariance can only break for inputs within rounding of a
threshold. The frame set is discontinuous across thresholds (no continuous
canonicalization exists in general).
"""

from __future__ import annotations

import dataclasses
import math

import torch

from . import _finite

CASES = ("pca", "axis+points", "axis+average", "points", "isotropic")


@dataclasses.dataclass
class FrameSet:
    """Frames ``[K, 3, 3]`` (columns are axes, float64), the case that produced them, and truncation."""

    frames: torch.Tensor
    case: str
    truncated: bool = False


def default_tolerances(dtype: torch.dtype) -> tuple[float, float]:
    """``(eig_tol, tie_tol)``: (1e-2, 1e-4) for float32 and lower precision, (1e-4, 1e-6) for float64.

    The float64 tie tolerance is loose enough for symmetric structures stored
    in single precision (norms equal to ~1e-7).
    """
    if dtype == torch.float64:
        return 1e-4, 1e-6
    return 1e-2, 1e-4


def _sign_frames(U: torch.Tensor, proper: bool) -> torch.Tensor:
    out = []
    for s1 in (1.0, -1.0):
        for s2 in (1.0, -1.0):
            e1, e2 = s1 * U[:, 0], s2 * U[:, 1]
            if proper:
                out.append(torch.stack([e1, e2, torch.linalg.cross(e1, e2)], -1))
            else:
                for s3 in (1.0, -1.0):
                    out.append(torch.stack([e1, e2, s3 * U[:, 2]], -1))
    return torch.stack(out)


def _axis_frames(u: torch.Tensor, dirs: list[torch.Tensor], proper: bool) -> torch.Tensor:
    """Frames ``[d, e3 x d, e3]`` for ``e3 = +-u`` and every ``d`` (plus the mirror ``e2 -> -e2`` for O(3))."""
    out = []
    for d in dirs:
        for s in (1.0, -1.0):
            e3 = s * u
            e2 = torch.linalg.cross(e3, d)
            out.append(torch.stack([d, e2, e3], -1))
            if not proper:
                out.append(torch.stack([d, -e2, e3], -1))
    return torch.stack(out)


def _longest(vectors: torch.Tensor, tie_tol: float, scale: float) -> list[torch.Tensor]:
    """Unit directions of the vectors whose norm is within ``tie_tol`` (relative) of the largest."""
    n = vectors.norm(dim=-1)
    if n.numel() == 0:
        return []
    m = float(n.max())
    if m <= tie_tol * scale:
        return []
    keep = n >= m - tie_tol * max(m, scale)
    return list(vectors[keep] / n[keep, None])


def _in_plane(v: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    return v - (v @ u)[..., None] * u


def _average_dirs(u: torch.Tensor, ref: torch.Tensor, n: int) -> list[torch.Tensor]:
    ref = _in_plane(ref, u)
    ref = ref / ref.norm()
    w = torch.linalg.cross(u, ref)
    return [math.cos(2 * math.pi * k / n) * ref + math.sin(2 * math.pi * k / n) * w for k in range(n)]


def _perp_ref(u: torch.Tensor) -> torch.Tensor:
    return _finite.perpendicular(u)


def _axis_case(u, vectors, c0, proper, tie_tol, scale, n_average):
    if c0 is not None:
        q = _in_plane(c0, u)
        if float(q.norm()) > tie_tol * scale:
            return _axis_frames(u, [q / q.norm()], proper), "axis+points"
    dirs = _longest(_in_plane(vectors, u), tie_tol, scale)
    if dirs:
        return _axis_frames(u, dirs, proper), "axis+points"
    return _axis_frames(u, _average_dirs(u, _perp_ref(u), n_average), proper), "axis+average"


def frame_set(
    points: torch.Tensor,
    *,
    proper: bool,
    use_centroid: bool,
    eig_tol: float,
    tie_tol: float,
    n_average: int = 12,
    max_frames: int = 512,
) -> FrameSet:
    """The frame set of one point cloud (see the module docstring).

    Parameters
    ----------
    points : Tensor ``[N, 3]``
    proper : bool
        Only proper frames (SO(3), SE(3)); else both handednesses (O(3), E(3)).
    use_centroid : bool
        For O(3)/SO(3) (no translations) the centroid is an equivariant vector
        and is used to orient degenerate clouds; for E(3)/SE(3) it is not.
    eig_tol, tie_tol : relative tolerances (see :func:`default_tolerances`).
    n_average : rotations about the axis in the ``axis+average`` case.
    max_frames : frames kept at most (``truncated=True`` when cut; the cut
        set is no longer exactly equivariant).

    Returns
    -------
    FrameSet

    Raises
    ------
    ValueError
        ``points`` is not ``[N, 3]`` with ``N >= 1`` or is not finite.
    """
    if points.dim() != 2 or points.shape[-1] != 3 or points.shape[0] < 1:
        raise ValueError(f"frame_set needs points [N, 3] with N >= 1, got {tuple(points.shape)}")
    x = points.detach().to(torch.float64)
    if not torch.isfinite(x).all():
        raise ValueError("frame_set: points are not finite")
    c = x.mean(0)
    P = x - c
    # below this, centred points (and the centroid) count as zero: rounding of the coordinates
    floor = tie_tol * float(x.norm(dim=-1).max())
    spread = float(P.norm(dim=-1).max())
    if spread <= floor:
        P = torch.zeros_like(P)
        spread = 0.0
    c0 = c if use_centroid and float(c.norm()) > floor else None
    scale = max(spread, float(c0.norm()) if c0 is not None else 0.0)
    if scale == 0.0:
        return _isotropic(proper)
    C = P.T @ P / P.shape[0]
    lam, U = torch.linalg.eigh(C)
    lam, U = lam.flip(0), U.flip(1)
    l1 = float(lam[0])
    gap01 = spread > 0 and float(lam[0] - lam[1]) > eig_tol * l1
    gap12 = spread > 0 and float(lam[1] - lam[2]) > eig_tol * l1
    if gap01 and gap12:
        fs, case = _sign_frames(U, proper), "pca"
    elif gap01 or gap12:
        u = U[:, 0] if gap01 else U[:, 2]
        fs, case = _axis_case(u, P, c0, proper, tie_tol, scale, n_average)
    else:
        fs, case = _points_case(P, c0, proper, tie_tol, scale, n_average)
        if fs is None:
            return _isotropic(proper)
    truncated = fs.shape[0] > max_frames
    return FrameSet(fs[:max_frames], case, truncated)


def _points_case(P, c0, proper, tie_tol, scale, n_average):
    if c0 is not None and float(c0.norm()) > tie_tol * scale:
        firsts = [c0 / c0.norm()]
    else:
        firsts = _longest(P, tie_tol, scale)
    if not firsts:
        return None, "isotropic"
    frames = []
    case = "points"
    for d1 in firsts:
        seconds = _longest(_in_plane(P, d1), tie_tol, scale)
        if not seconds:
            f, _ = _axis_case(d1, P, None, proper, tie_tol, scale, n_average)
            frames.append(f)
            case = "axis+average"
            continue
        for d2 in seconds:
            e3 = torch.linalg.cross(d1, d2)
            frames.append(torch.stack([d1, d2, e3], -1)[None])
            if not proper:
                frames.append(torch.stack([d1, d2, -e3], -1)[None])
    return torch.cat(frames), case


def _isotropic(proper: bool) -> FrameSet:
    G = _finite.icosahedral()
    return FrameSet(G if proper else _finite.with_inversion(G), "isotropic")


def _sign_ops(proper: bool) -> torch.Tensor:
    """Column signs ``[K, 3]`` in the order of :func:`_sign_frames` (the third sign unused when ``proper``)."""
    if proper:
        return torch.tensor([[s1, s2, 1.0] for s1 in (1.0, -1.0) for s2 in (1.0, -1.0)], dtype=torch.float64)
    return torch.tensor(
        [[s1, s2, s3] for s1 in (1.0, -1.0) for s2 in (1.0, -1.0) for s3 in (1.0, -1.0)], dtype=torch.float64
    )


def batched_pca_frames(
    X: torch.Tensor, *, proper: bool, eig_tol: float, tie_tol: float, grad: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """PCA frame sets of a batch of clouds, and which clouds are in the ``pca`` case of :func:`frame_set`.

    The same decision as :func:`frame_set` (centred spread above rounding,
    both relative eigenvalue gaps above ``eig_tol``), made for all clouds at
    once with one batched ``eigh`` (float64).

    Parameters
    ----------
    X : Tensor ``[B, N, 3]`` (finite)
    proper, eig_tol, tie_tol
        As :func:`frame_set`.
    grad : bool
        Keep the autograd graph from ``X`` to the frames (differentiable in the
        ``pca`` case: the gaps are bounded below).

    Returns
    -------
    frames : Tensor ``[B, K, 3, 3]`` float64 (K = 4 proper, 8 otherwise)
        The sign frames of every cloud (meaningful only where ``pca`` is True).
    pca : Tensor ``[B]`` bool
    """
    x = X.to(torch.float64) if grad else X.detach().to(torch.float64)
    P = x - x.mean(1, keepdim=True)
    lam, U = torch.linalg.eigh(P.transpose(1, 2) @ P / P.shape[1])
    lam, U = lam.flip(-1).detach(), U.flip(-1)
    floor = tie_tol * x.detach().norm(dim=-1).amax(1)
    spread = P.detach().norm(dim=-1).amax(1)
    ok = (
        (spread > floor) & (lam[:, 0] - lam[:, 1] > eig_tol * lam[:, 0]) & (lam[:, 1] - lam[:, 2] > eig_tol * lam[:, 0])
    )
    S = _sign_ops(proper).to(U.device)
    F = U[:, None] * S[None, :, None, :]  # [B, K, 3, 3], column k scaled by S[:, k]
    if proper:
        F = torch.cat([F[..., :2], torch.linalg.cross(F[..., 0], F[..., 1])[..., None]], -1)
    return F, ok


def pca_frames(points: torch.Tensor, proper: bool) -> torch.Tensor:
    """Differentiable PCA frames ``[K, 3, 3]`` of ``points [N, 3]`` (non-degenerate case only).

    Same frames as :func:`frame_set` in its ``pca`` case, computed in float64
    with autograd through ``torch.linalg.eigh`` (finite gradients because the
    ``pca`` case guarantees eigenvalue gaps).
    """
    x = points.to(torch.float64)
    P = x - x.mean(0)
    lam, U = torch.linalg.eigh(P.T @ P / P.shape[0])
    return _sign_frames(U.flip(1), proper)
