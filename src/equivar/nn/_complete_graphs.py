"""Batches of complete graphs of one size as dense ``[B, N, N - 1, C]`` pair tensors (no gathers or scatters).

A batch of ``B`` scenes of ``N`` agents each, fully connected (every ordered
pair ``i != j``), with its edges in the order of the dynamics batch
(``equivar.data.collate_scenes``: graph by graph, by receiver ``i``, then by
sender ``j`` ascending) holds edge ``j -> i`` of graph ``b`` at row
``b N (N-1) + i (N-1) + k`` with ``j = k + [k >= i]``. Edge rows reshaped to
``[B, N, N - 1, C]`` are then pair tensors: a pair quantity ``f(i, j)`` is
``off_diagonal`` of a broadcast ``[B, N, N, C]`` tensor (strided copies, whose
backward is a strided copy too), and a sum over a receiver's neighbours is a
sum over dimension 2, in place of the index gathers and scatters of a general
graph (EGNN's N-body graphs: 5 nodes, 20 edges each).
"""

from __future__ import annotations

import torch


def off_diagonal(t: torch.Tensor) -> torch.Tensor:
    """The entries ``(i, j)``, ``j != i``, of ``t [..., N, N, C]`` as ``[..., N, N - 1, C]`` (row-major, ``j`` ascending).

    The flattened ``N x N`` block without its first entry, viewed as ``(N - 1) x (N + 1)``, has the diagonal in its
    last column; dropping it leaves the off-diagonal entries in order. Differentiable to any order.

    Parameters
    ----------
    t : Tensor [..., N, N, C]

    Returns
    -------
    Tensor [..., N, N - 1, C], contiguous.

    Raises
    ------
    ValueError
        ``t`` has fewer than 3 dimensions or its dimensions -3 and -2 differ.
    """
    if t.dim() < 3 or t.shape[-3] != t.shape[-2]:
        raise ValueError(f"off_diagonal: expected [..., N, N, C], got shape {tuple(t.shape)}")
    *lead, n, _, c = t.shape
    flat = t.reshape(*lead, n * n, c)[..., 1:, :]
    return flat.reshape(*lead, n - 1, n + 1, c)[..., :n, :].reshape(*lead, n, n - 1, c)


_EDGE_CACHE: dict = {}


def complete_graph_edges(num_graphs: int, n: int, device=None) -> torch.Tensor:
    """``[2, B N (N-1)]`` edges of ``B`` complete directed graphs on ``N`` nodes in the dynamics batch order.

    Row 0 is the sender ``j``, row 1 the receiver ``i``; graph by graph (nodes ``b N ... b N + N - 1``), by
    receiver, then sender ascending. Cached per ``(B, N, device)`` (a few entries), so callers must not modify it.
    """
    key = (num_graphs, n, str(device))
    out = _EDGE_CACHE.get(key)
    if out is None:
        i, j = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
        keep = i != j
        local = torch.stack([j[keep], i[keep]])
        offsets = (torch.arange(num_graphs) * n).repeat_interleave(local.shape[1])
        out = (local.repeat(1, num_graphs) + offsets).to(device)
        if len(_EDGE_CACHE) >= 16:
            _EDGE_CACHE.pop(next(iter(_EDGE_CACHE)))
        _EDGE_CACHE[key] = out
    return out


def complete_graph_size(edge_index: torch.Tensor, num_nodes: int, ptr: torch.Tensor | None) -> int | None:
    """``N`` when the batch is ``B`` complete graphs of ``N`` nodes each with edges in the dynamics batch order
    (:func:`complete_graph_edges`), else None (then the general gather/scatter path applies).

    Parameters
    ----------
    edge_index : Tensor [2, E] long
    num_nodes : int
    ptr : Tensor [B + 1] long or None
        Graph boundaries (``ptr[b]`` is the first node of graph ``b``); None: not decidable, returns None.
    """
    if ptr is None or ptr.dim() != 1 or ptr.numel() < 2 or num_nodes == 0:
        return None
    b = ptr.numel() - 1
    if num_nodes % b:
        return None
    n = num_nodes // b
    if n < 2 or edge_index.shape != (2, b * n * (n - 1)):
        return None
    expected_ptr = torch.arange(0, num_nodes + 1, n, device=ptr.device)
    if not torch.equal(ptr, expected_ptr):
        return None
    if not torch.equal(edge_index, complete_graph_edges(b, n, edge_index.device)):
        return None
    return n
