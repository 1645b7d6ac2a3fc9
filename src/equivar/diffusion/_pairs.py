"""The unordered atom pairs of each graph, the items of a bond diffusion (EQGAT-diff diffuses ``j < i`` and mirrors)."""

from __future__ import annotations

import torch

__all__ = ["complete_graph_pairs"]


def complete_graph_pairs(batch: torch.Tensor, num_graphs: int) -> torch.Tensor:
    """Every unordered pair of distinct nodes of the same graph, once: ``[2, M]`` long, ``row 0 < row 1``.

    ``batch [N]`` long (nodes need not be sorted by graph); ``M = sum_g n_g (n_g - 1) / 2``. Pairs are
    ordered by graph, then by the graph's node order. The graph of pair ``k`` is ``batch[pairs[0, k]]``;
    the reverse edges are ``pairs.flip(0)``.

    Raises
    ------
    ValueError
        ``batch`` not a 1-D long tensor with values in ``0..num_graphs-1``.
    """
    if batch.dim() != 1 or batch.dtype != torch.long:
        raise ValueError(f"batch must be a 1-D long tensor, got {batch.dtype} {tuple(batch.shape)}")
    if batch.numel() and (int(batch.min()) < 0 or int(batch.max()) >= num_graphs):
        raise ValueError(f"batch values must be in 0..{num_graphs - 1}, got {int(batch.min())}..{int(batch.max())}")
    order = torch.argsort(batch, stable=True)
    counts = torch.bincount(batch, minlength=num_graphs)
    ptr = torch.cumsum(counts, 0) - counts
    out = []
    for n in sorted(set(counts.tolist())):
        if n < 2:
            continue
        graphs = torch.nonzero(counts == n).flatten()
        tri = torch.triu_indices(n, n, 1, device=batch.device)  # [2, n(n-1)/2]
        pos = (ptr[graphs].view(-1, 1, 1) + tri.unsqueeze(0)).permute(1, 0, 2).reshape(2, -1)
        out.append((graphs.repeat_interleave(tri.shape[1]), order[pos]))
    if not out:
        return torch.zeros((2, 0), dtype=torch.long, device=batch.device)
    g = torch.cat([o[0] for o in out])
    pairs = torch.cat([o[1] for o in out], dim=1)
    pairs = torch.stack([torch.minimum(pairs[0], pairs[1]), torch.maximum(pairs[0], pairs[1])])
    return pairs[:, torch.argsort(g, stable=True)]
