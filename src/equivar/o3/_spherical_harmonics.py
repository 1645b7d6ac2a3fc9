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

from collections.abc import Sequence

import torch

from ._irreps import Irreps
from ._sh_kernel import MAX_SH_L, _sh_reference, harmonics

__all__ = ["MAX_SH_L", "_sh_reference", "spherical_harmonics"]


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
        See the module docstring. The default is 'component' (MACE's and
        NequIP's choice); note that ``e3nn.o3.spherical_harmonics`` defaults
        to 'integral', so pass it explicitly when comparing.

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
    return harmonics(lst, vectors, normalize, normalization)
