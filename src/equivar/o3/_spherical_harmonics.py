"""Real spherical harmonics in e3nn's basis.

Convention (identical to ``e3nn.o3.spherical_harmonics``): the polar axis is
**y**; degree ``l`` has ``2l+1`` components ordered ``m = -l..l``;
``Y_1(x, y, z) = sqrt(3) (x, y, z)`` in 'component' normalization. Values are
computed by the standard stable recurrence for associated Legendre functions
written in Cartesian form (no angles, so no singularity at the poles), with
the normalization folded into the recurrence coefficients.

Normalizations (on unit vectors):

- ``'component'``: ``sum_m Y_lm^2 = 2l+1``  (e3nn's default)
- ``'norm'``: ``sum_m Y_lm^2 = 1``
- ``'integral'``: ``int_{S^2} Y_lm Y_l'm' dOmega = delta`` (orthonormal)
"""
from __future__ import annotations

import functools
import math
from typing import Sequence

import torch

from ._irreps import MAX_L, Irreps

MAX_SH_L = MAX_L


@functools.lru_cache(maxsize=None)
def _coefficients(lmax: int):
    """Recurrence constants for P~_l^m = F(l,m) Q_l^m, F including sqrt(2) for m>0."""

    def logF(l, m):
        # component normalisation: sqrt((2l+1) (l-m)!/(l+m)!) * (sqrt2 if m>0)
        v = 0.5 * (math.log(2 * l + 1) + math.lgamma(l - m + 1) - math.lgamma(l + m + 1))
        if m > 0:
            v += 0.5 * math.log(2)
        return v

    diag = {}  # P~_m^m constant: F(m,m) (2m-1)!!
    for m in range(lmax + 1):
        log_df = sum(math.log(2 * k - 1) for k in range(1, m + 1))
        diag[m] = math.exp(logF(m, m) + log_df)
    rec = {}
    for m in range(lmax + 1):
        for l in range(m + 1, lmax + 1):
            a = math.exp(logF(l, m) - logF(l - 1, m)) * (2 * l - 1) / (l - m)
            b = math.exp(logF(l, m) - logF(l - 2, m)) * (l + m - 1) / (l - m) if l - 2 >= m else 0.0
            rec[(l, m)] = (a, b)
    return diag, rec


def _sh_all(lmax: int, x: torch.Tensor, y: torch.Tensor, z: torch.Tensor, r2) -> list[list[torch.Tensor]]:
    """Component-normalised harmonics per l, each a list of 2l+1 tensors (m=-l..l).

    ``x, y, z`` are e3nn coordinates; the recurrence's polar axis is e3nn's y.
    With the real basis without Condon-Shortley phase the signs equal e3nn's
    for every l (checked against e3nn in the tests).
    """
    # standard-frame coordinates: polar axis Z_ = y, X_ = z, Y_ = x
    X_, Y_, Z_ = z, x, y
    diag, rec = _coefficients(lmax)
    one = torch.ones_like(x)
    # (X + iY)^m = c_m + i s_m
    c = [one]
    s = [torch.zeros_like(x)]
    for m in range(1, lmax + 1):
        c.append(X_ * c[m - 1] - Y_ * s[m - 1])
        s.append(X_ * s[m - 1] + Y_ * c[m - 1])
    # P~_l^m by recurrence in l for fixed m
    P: dict[tuple[int, int], torch.Tensor | float] = {}
    for m in range(lmax + 1):
        P[(m, m)] = diag[m]
        for l in range(m + 1, lmax + 1):
            a, b = rec[(l, m)]
            if l == m + 1:
                P[(l, m)] = (a * P[(l - 1, m)]) * Z_
            else:
                P[(l, m)] = a * Z_ * P[(l - 1, m)] - (b * r2) * P[(l - 2, m)]
    out = []
    for l in range(lmax + 1):
        comps = []
        for m in range(-l, l + 1):
            pm = P[(l, abs(m))]
            if m == 0:
                v = pm * one if isinstance(pm, float) else pm
            elif m > 0:
                v = pm * c[m]
            else:
                v = pm * s[-m]
            comps.append(v)
        out.append(comps)
    return out


def _parse_ls(ls) -> list[int]:
    if isinstance(ls, bool):
        raise ValueError(f"ls must be an int, a list of ints or Irreps, got {ls!r}")
    if isinstance(ls, int):
        lst = [ls]
    elif isinstance(ls, str) or isinstance(ls, Irreps):
        irreps = Irreps(ls)
        lst = []
        for mul, ir in irreps:
            if ir.p != (-1) ** ir.l:
                raise ValueError(f"spherical harmonics have parity (-1)^l; irreps {irreps!r} contains {ir!r}")
            lst.extend([ir.l] * mul)
    else:
        lst = list(ls)
    for l in lst:
        if not isinstance(l, int) or isinstance(l, bool) or l < 0:
            raise ValueError(f"spherical harmonic degree must be a non-negative int, got {l!r}")
        if l > MAX_SH_L:
            raise ValueError(f"spherical harmonic degree l={l} exceeds the supported maximum {MAX_SH_L}")
    if not lst:
        raise ValueError("ls is empty")
    return lst


def spherical_harmonics(
    ls: int | Sequence[int] | str | Irreps,
    vectors: torch.Tensor,
    normalize: bool = True,
    normalization: str = "component",
) -> torch.Tensor:
    r"""Real spherical harmonics of ``vectors`` in e3nn's basis.

    Parameters
    ----------
    ls : int, list of int, or irreps (``"0e+1o+2e"``)
        Degrees to evaluate, concatenated in this order. ``l <= 64``.
    vectors : Tensor ``[..., 3]``
        Cartesian vectors (x, y, z), float32 or float64.
    normalize : bool
        If True the vectors are first scaled to unit length; if False the
        result is the homogeneous polynomial ``|r|^l Y_l(r/|r|)``.
    normalization : {'component', 'norm', 'integral'}
        See the module docstring.

    Returns
    -------
    Tensor ``[..., sum(2l+1)]``, same dtype and device as ``vectors``.

    Notes
    -----
    At the zero vector (``normalize=True``) the ``l = 0`` component is its
    constant and every ``l > 0`` component is 0, with gradient 0: the
    direction is treated as undefined rather than dividing by zero, so
    values and gradients stay finite.

    Raises
    ------
    ValueError
        Trailing dimension not 3, a degree outside ``0..64``, irreps of the
        wrong parity, or an unknown normalization.

    Examples
    --------
    >>> import torch
    >>> spherical_harmonics(1, torch.tensor([0.0, 0.0, 2.0]))
    tensor([0.0000, 0.0000, 1.7321])
    """
    lst = _parse_ls(ls)
    if not isinstance(vectors, torch.Tensor):
        raise ValueError(f"vectors must be a torch.Tensor [..., 3], got {type(vectors).__name__}")
    if vectors.shape[-1:] != (3,):
        raise ValueError(f"vectors must have trailing dimension 3, got shape {tuple(vectors.shape)}")
    if normalization not in ("component", "norm", "integral"):
        raise ValueError(f"normalization must be 'component', 'norm' or 'integral', got {normalization!r}")
    lmax = max(lst)
    batch = vectors.shape[:-1]
    v = vectors.reshape(-1, 3)
    if normalize:
        n2 = (v * v).sum(-1, keepdim=True)
        tiny = torch.finfo(v.dtype).tiny ** 0.5 if v.dtype.is_floating_point else 1e-30
        ok = n2 > tiny
        inv = torch.where(ok, torch.rsqrt(torch.where(ok, n2, torch.ones_like(n2))), torch.zeros_like(n2))
        v = v * inv
        # |v|^2: 1 for unit vectors, 0 for the zero vector (so l > 0 vanishes there)
        r2 = ok.squeeze(-1).to(v.dtype)
    vt = v.t()
    x, y, z = vt[0], vt[1], vt[2]
    if not normalize:
        r2 = x * x + y * y + z * z
    sh = _sh_all(lmax, x, y, z, r2)
    rows = []
    for l in lst:
        comps = sh[l]
        if normalization == "norm":
            f = 1.0 / math.sqrt(2 * l + 1)
            comps = [cmp * f for cmp in comps]
        elif normalization == "integral":
            f = 1.0 / math.sqrt(4 * math.pi)
            comps = [cmp * f for cmp in comps]
        rows.extend(comps)
    out = torch.stack(rows, dim=-1)
    return out.reshape(batch + (out.shape[-1],))
