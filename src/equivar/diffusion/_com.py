"""The zero-centre-of-mass subspace of each graph in a ragged batch (EDM, Hoogeboom et al. ICML 2022, section 3).

Positions are ``x [N, *P, D]``: ``N`` nodes of ``G`` graphs (``batch [N]`` gives each node's
graph), ``P`` optional middle dimensions (frames of a trajectory) and ``D`` coordinates. A
translation moves every point of a graph by the same vector, so the translation-invariant
subspace of a graph with ``n`` nodes is ``{x : sum of its n * prod(P) points = 0}``, of dimension
``(n * prod(P) - 1) * D`` (EDM's ``(M - 1) * n`` for molecules, ``P`` empty). The centre is the
unweighted mean of the points (EDM's ``remove_mean_with_mask``), not a mass-weighted one.
"""

from __future__ import annotations

import math

import torch

from ..nn import scatter_sum

__all__ = ["graph_mean", "remove_mean", "subspace_dim", "check_batch"]


def check_batch(x: torch.Tensor, batch: torch.Tensor, num_graphs: int) -> None:
    """Raise ``ValueError`` (one line naming the value) unless ``x [N, ..., D]`` and ``batch [N]`` fit ``num_graphs``."""
    if x.dim() < 2:
        raise ValueError(f"positions must be [N, ..., D], got shape {tuple(x.shape)}")
    if batch.dim() != 1 or batch.shape[0] != x.shape[0] or batch.dtype != torch.long:
        raise ValueError(
            f"batch must be a long tensor [N] with N = {x.shape[0]}, got {batch.dtype} {tuple(batch.shape)}"
        )
    if batch.numel() and (int(batch.min()) < 0 or int(batch.max()) >= num_graphs):
        raise ValueError(f"batch values must be in 0..{num_graphs - 1}, got {int(batch.min())}..{int(batch.max())}")


def _points_per_graph(x: torch.Tensor, batch: torch.Tensor, num_graphs: int) -> torch.Tensor:
    per_node = math.prod(x.shape[1:-1])
    ones = torch.ones(batch.shape[0], dtype=x.dtype, device=x.device)
    return scatter_sum(ones, batch, num_graphs) * per_node


def graph_mean(x: torch.Tensor, batch: torch.Tensor, num_graphs: int) -> torch.Tensor:
    """Mean point of each graph: ``x [N, *P, D]`` -> ``[G, D]`` (0 for a graph with no nodes).

    Differentiable in ``x``; ``batch [N]`` long with values in ``0..num_graphs-1``.
    """
    check_batch(x, batch, num_graphs)
    d = x.shape[-1]
    sums = scatter_sum(x.reshape(x.shape[0], -1, d).sum(1), batch, num_graphs)
    return sums / _points_per_graph(x, batch, num_graphs).clamp(min=1).unsqueeze(-1)


def remove_mean(x: torch.Tensor, batch: torch.Tensor, num_graphs: int) -> torch.Tensor:
    """Project ``x [N, *P, D]`` onto each graph's zero-CoM subspace (subtract the graph's mean point).

    An orthogonal projection: it commutes with rotations and reflections of the last axis and
    removes translations; applied to isotropic Gaussian noise it gives EDM's
    ``sample_center_gravity_zero_gaussian``.
    """
    mean = graph_mean(x, batch, num_graphs)[batch]
    return x - mean.reshape((x.shape[0],) + (1,) * (x.dim() - 2) + (x.shape[-1],))


def subspace_dim(x: torch.Tensor, batch: torch.Tensor, num_graphs: int) -> torch.Tensor:
    """Dimension of each graph's zero-CoM subspace: ``(n * prod(P) - 1) * D`` ``[G]`` (long; 0 for an empty graph).

    The number of degrees of freedom in the Gaussian log-likelihoods and KL terms (EDM's
    ``subspace_dimensionality``, ``(N - 1) * 3`` for a molecule of N atoms).
    """
    check_batch(x, batch, num_graphs)
    pts = torch.bincount(batch, minlength=num_graphs) * math.prod(x.shape[1:-1])
    return ((pts - 1) * x.shape[-1]).clamp(min=0)
