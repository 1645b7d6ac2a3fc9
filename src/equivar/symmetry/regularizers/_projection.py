"""Projection of linear maps onto the equivariant subspace of a group.

For representations ``rho_in``, ``rho_out`` (irreps, e3nn layout) and a
compact group ``G``, the orthogonal (Frobenius) projection of ``W [out, in]``
onto ``{W : rho_out(g) W = W rho_in(g) for all g}`` is the group average
(Reynolds operator)::

    P(W) = E_g  rho_out(g) W rho_in(g)^T          (rho orthogonal)

computed *exactly* with the group's quadrature (:meth:`RotationGroup.quadrature`):
all elements of a finite group; ``l_in + l_out + 1`` equally spaced angles for
SO(2); an Euler-angle product grid (uniform in alpha, gamma; Gauss-Legendre
in cos beta) for SO(3), doubled with the inversion for O(3).

Sources: the distance ``|W - P(W)|`` as a soft-equivariance regularizer is
the per-layer regularizer of Kim et al., "Regularizing Towards Soft
Equivariance Under Mixed Symmetries" (ICML 2023) (see also Finzi et al.,
"Residual Pathway Priors for Soft Equivariance Constraints", NeurIPS 2021).
"""

from __future__ import annotations

import functools

import torch

from ...o3 import Irreps
from .._groups import RotationGroup, get_group
from .._types import irreps_matrix


@functools.lru_cache(maxsize=64)
def _quadrature_reps(group_name: str, rep_in: str, rep_out: str):
    G = get_group(group_name)
    if not isinstance(G, RotationGroup):
        raise ValueError(
            f"linear projections need a rotation group, got {group_name!r} (translations and "
            "permutations act on inputs, not on a linear layer's weights)"
        )
    ri, ro = Irreps(rep_in), Irreps(rep_out)
    degree = max([ir.l for _, ir in ri] or [0]) + max([ir.l for _, ir in ro] or [0])
    R, w = G.quadrature(degree)
    return irreps_matrix(ri, R), irreps_matrix(ro, R), w


class EquivariantProjector:
    """``P(W)`` for fixed ``(rep_in, rep_out, group)``; matrices cached per combination.

    Parameters
    ----------
    rep_in, rep_out : irreps (str or Irreps), e.g. ``"4x1o"`` for 4 flattened points
    group : name or RotationGroup (``SO3``, ``O3``, ``SO2(z)``, ``Oh``, ``D4``, ...)

    Raises
    ------
    ValueError
        Translations / permutations, or an unknown group.
    """

    def __init__(self, rep_in, rep_out, group):
        self.rep_in, self.rep_out = Irreps(rep_in), Irreps(rep_out)
        self.group = get_group(group)
        self.Din, self.Dout, self.w = _quadrature_reps(self.group.name, str(self.rep_in), str(self.rep_out))

    def __call__(self, W: torch.Tensor) -> torch.Tensor:
        """Project ``W [..., out, in]`` (or a bias ``[out]`` when ``rep_in`` is empty). Differentiable, linear in W."""
        Din = self.Din.to(dtype=W.dtype, device=W.device)
        Dout = self.Dout.to(dtype=W.dtype, device=W.device)
        w = self.w.to(dtype=W.dtype, device=W.device)
        if W.dim() == 1:
            if W.shape[0] != self.rep_out.dim:
                raise ValueError(
                    f"bias of size {W.shape[0]} does not match rep_out {self.rep_out} (dim {self.rep_out.dim})"
                )
            return torch.einsum("k,kij,j->i", w, Dout, W)
        if W.shape[-2:] != (self.rep_out.dim, self.rep_in.dim):
            raise ValueError(
                f"weight of shape {tuple(W.shape)} does not match [out={self.rep_out.dim}, in={self.rep_in.dim}]"
                f" for {self.rep_in} -> {self.rep_out}"
            )
        return torch.einsum("k,kij,...jl,kml->...im", w, Dout, W, Din)


def equivariant_projection(W: torch.Tensor, rep_in, rep_out, group) -> torch.Tensor:
    """``P(W)``: the nearest (Frobenius) ``group``-equivariant linear map ``rep_in -> rep_out``.

    ``W [..., dim_out, dim_in]`` (``nn.Linear.weight`` layout). Returns the same shape and dtype.
    """
    return EquivariantProjector(rep_in, rep_out, group)(W)


def linear_penalty(layer, rep_in, rep_out, group, *, relative: bool = True) -> torch.Tensor:
    """Squared distance of a linear layer from the equivariant subspace.

    Parameters
    ----------
    layer : ``nn.Linear`` or weight tensor ``[dim_out, dim_in]``
        With a bias, the bias is projected too (it must be invariant:
        ``rho_out(g) b = b``).
    rep_in, rep_out : irreps
    group : group name or RotationGroup
    relative : bool
        Divide by ``|W|^2 + |b|^2`` (scale-free, in [0, 1]).

    Returns
    -------
    scalar tensor, differentiable in the weights.
    """
    P = EquivariantProjector(rep_in, rep_out, group)
    W = layer.weight if isinstance(layer, torch.nn.Linear) else layer
    d = (W - P(W)).pow(2).sum()
    n = W.pow(2).sum()
    b = getattr(layer, "bias", None) if isinstance(layer, torch.nn.Linear) else None
    if b is not None:
        d = d + (b - P(b)).pow(2).sum()
        n = n + b.pow(2).sum()
    return d / n.clamp_min(torch.finfo(W.dtype).tiny) if relative else d
