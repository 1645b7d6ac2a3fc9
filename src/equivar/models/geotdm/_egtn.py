"""EGTN, GeoTDM's equivariant geometric trajectory network: EGNN layers over space, attention over frames.

Han et al., "Geometric Trajectory Diffusion Models", NeurIPS 2024, section 4.1 and Figure 4 (code
``hanjq17/GeoTDM``, ``models/EGTN.py``): ``L`` blocks, each an :class:`~equivar.nn.EGCL` applied to every
frame separately (the same weights on each frame's graph: ``m_ij = phi_e(h_i, h_j, |x_ij|^2, a_ij)``,
``x_i += mean_j (x_i - x_j) / (|x_i - x_j| + 1) phi_x(m_ij)``, ``h_i = phi_h(h_i, sum_j m_ij)``; GeoTDM's
``ESLayer``: normalised differences, no residual node update) followed by a
:class:`TemporalAttention` over each node's frames (``ETLayer``).

Shapes: positions ``x [M, F, D]`` and invariant features ``h [M, F, H]`` of ``M`` nodes over ``F`` frames;
``edge_index [2, E]`` (row 0 sender ``j``, row 1 receiver ``i``) and invariant ``edge_attr [E, A]`` the
same on every frame. E(D)-equivariant in ``x`` (rotations, reflections, translations), invariant in
``h``, equivariant under permutations of nodes (with the edges relabelled).

Complete graphs of one size (the N-body scenes) run through :meth:`EGCL.forward_dense` with the frames
folded into the batch of graphs; other graphs through :meth:`EGCL.forward` on ``F`` copies of the edges.
"""

from __future__ import annotations

import torch

from ...nn import EGCL
from ._temporal import TemporalAttention


class EGTN(torch.nn.Module):
    """Alternating spatial EGCL and temporal attention blocks (module docstring).

    Parameters
    ----------
    hidden_dim : int
        Width ``H`` of the invariant features.
    num_layers : int
        Blocks (spatial + temporal).
    edge_attr_dim : int
        Width ``A`` of the invariant edge attributes (0: none).
    time_emb_dim : int
        Width of the frame-offset embedding of the temporal layers.
    activation : str
        ``'silu'`` (GeoTDM).

    Shapes
    ------
    ``forward(x [M, F, D], h [M, F, H], edge_index [2, E], edge_attr [E, A] or None, size=None)``
    returns ``(x [M, F, D], h [M, F, H])``. ``size``: the nodes per graph when the batch is complete
    graphs of one size in the dynamics batch order (:func:`~equivar.nn.complete_graph_size`), else None.
    """

    def __init__(
        self, hidden_dim: int, num_layers: int, edge_attr_dim: int = 0, time_emb_dim: int = 32, activation="silu"
    ):
        super().__init__()
        self.edge_attr_dim = edge_attr_dim
        self.spatial = torch.nn.ModuleList(
            EGCL(
                hidden_dim,
                edge_attr_dim=edge_attr_dim,
                activation=activation,
                residual=False,
                coords_aggregation="mean",
                norm_diff=True,
            )
            for _ in range(num_layers)
        )
        self.temporal = torch.nn.ModuleList(
            TemporalAttention(hidden_dim, time_emb_dim, activation) for _ in range(num_layers)
        )

    def forward(self, x, h, edge_index, edge_attr=None, size: int | None = None):
        m, f, d = x.shape
        if size is not None:
            return self._forward_dense(x, h, edge_attr, size)
        # F copies of the graph, frame-major: node (frame k, node i) is row k M + i
        offsets = (torch.arange(f, device=x.device) * m).repeat_interleave(edge_index.shape[1])
        edges = edge_index.repeat(1, f) + offsets
        attr = edge_attr.repeat(f, 1) if self.edge_attr_dim else None
        for spatial, temporal in zip(self.spatial, self.temporal):
            hs, xs = spatial(_frames_first(h), _frames_first(x), edges, attr)
            h, x = temporal(_nodes_first(hs, m, f), _nodes_first(xs, m, f))
        return x, h

    def _forward_dense(self, x, h, edge_attr, n: int):
        m, f, d = x.shape
        b = m // n
        attr = None
        if self.edge_attr_dim:
            attr = edge_attr.reshape(b, 1, n, n - 1, -1).expand(b, f, n, n - 1, edge_attr.shape[-1])
            attr = attr.reshape(b * f, n, n - 1, -1)
        for spatial, temporal in zip(self.spatial, self.temporal):
            hs, xs = spatial.forward_dense(_graphs_frames(h, b, n, f), _graphs_frames(x, b, n, f), attr)
            h, x = temporal(_graph_nodes(hs, b, n, f), _graph_nodes(xs, b, n, f))
        return x, h


def _frames_first(t: torch.Tensor) -> torch.Tensor:
    """``[M, F, C]`` -> ``[F M, C]`` (frame-major rows)."""
    return t.transpose(0, 1).reshape(-1, t.shape[-1])


def _nodes_first(t: torch.Tensor, m: int, f: int) -> torch.Tensor:
    """``[F M, C]`` -> ``[M, F, C]``."""
    return t.reshape(f, m, -1).transpose(0, 1)


def _graphs_frames(t: torch.Tensor, b: int, n: int, f: int) -> torch.Tensor:
    """``[B N, F, C]`` -> ``[B F, N, C]`` (one complete graph per scene and frame)."""
    return t.reshape(b, n, f, -1).transpose(1, 2).reshape(b * f, n, -1)


def _graph_nodes(t: torch.Tensor, b: int, n: int, f: int) -> torch.Tensor:
    """``[B F, N, C]`` -> ``[B N, F, C]``."""
    return t.reshape(b, f, n, -1).transpose(1, 2).reshape(b * n, f, -1)


__all__ = ["EGTN"]
