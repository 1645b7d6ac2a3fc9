"""Atomic graph batches (docs/contracts.md) as audit inputs: types and concatenation.

The symmetry layer sits above ``equivar.data`` and must not import it, so
this module only knows the batch *format*: a dict of tensors with node-,
edge- and graph-level keys.
"""

from __future__ import annotations

import torch

from ._types import Typed

NODE_KEYS = {"positions", "atomic_numbers", "batch", "forces", "node_attrs", "charges", "velocities"}
EDGE_KEYS = {"shifts", "unit_shifts"}
GRAPH_KEYS = {"energy", "cell", "pbc", "stress", "virials", "weight", "energy_weight", "forces_weight", "stress_weight"}

#: How a potential's input batch transforms (docs/contracts.md).
BATCH_TYPES = {
    "positions": Typed("positions", nodes=True),
    "atomic_numbers": Typed(None, nodes=True),
    "batch": Typed(None, nodes=True),
    "node_attrs": Typed(None, nodes=True),
    "charges": Typed(None, nodes=True),
    "velocities": Typed("vector", nodes=True),
    "edge_index": "index",
    "shifts": "vector",
    "cell": "cell",
    "forces": Typed("vector", nodes=True),
    "stress": "rank2",
    "virials": "rank2",
}

#: How a potential's outputs (and the matching labels) transform.
POTENTIAL_OUTPUT_TYPES = {
    "energy": "0e",
    "forces": Typed("vector", nodes=True),
    "stress": "rank2",
    "virials": "rank2",
}


def batch_types(batch: dict) -> dict:
    """Types for the keys present in ``batch`` (unknown keys: unchanged)."""
    return {k: BATCH_TYPES[k] for k in batch if k in BATCH_TYPES}


def num_graphs(batch: dict) -> int:
    return int(batch["ptr"].numel() - 1)


def concat_batches(batches: list[dict]) -> dict:
    """Concatenate graph batches into one (offsets for ``batch``, ``ptr``, ``edge_index``).

    Keys are classified as node / edge / graph level by name (see
    ``NODE_KEYS``, ``EDGE_KEYS``, ``GRAPH_KEYS``) or, for other keys, by their
    leading size. Raises ``ValueError`` if the batches have different keys.
    """
    if len(batches) == 1:
        return dict(batches[0])
    keys = list(batches[0])
    if any(set(b) != set(keys) for b in batches):
        raise ValueError("cannot concatenate batches with different keys")
    out: dict = {}
    n_off, g_off = 0, 0
    parts: dict = {k: [] for k in keys}
    for b in batches:
        n, g = int(b["positions"].shape[0]), num_graphs(b)
        for k in keys:
            v = b[k]
            if k == "edge_index":
                v = v + n_off
            elif k == "batch":
                v = v + g_off
            elif k == "ptr":
                v = (v + n_off) if not parts[k] else (v[1:] + n_off)
            parts[k].append(v)
        n_off += n
        g_off += g
    for k in keys:
        if k == "edge_index":
            out[k] = torch.cat(parts[k], dim=1)
        elif isinstance(parts[k][0], torch.Tensor) and parts[k][0].dim() > 0:
            out[k] = torch.cat(parts[k], dim=0)
        else:
            out[k] = parts[k][0]
    return out


def split_outputs(out: dict, batches: list[dict]) -> list[dict]:
    """Split a potential's output dict computed on ``concat_batches(batches)`` back per batch."""
    res: list[dict] = [dict() for _ in batches]
    n_sizes = [int(b["positions"].shape[0]) for b in batches]
    g_sizes = [num_graphs(b) for b in batches]
    N, G = sum(n_sizes), sum(g_sizes)
    for k, v in out.items():
        if not isinstance(v, torch.Tensor) or v.dim() == 0:
            for r in res:
                r[k] = v
            continue
        if k in NODE_KEYS or k == "node_energy" or (k not in GRAPH_KEYS and v.shape[0] == N and N != G):
            chunks = torch.split(v, n_sizes)
        elif v.shape[0] == G:
            chunks = torch.split(v, g_sizes)
        else:
            raise ValueError(f"cannot split output {k!r} of shape {tuple(v.shape)} ({N} nodes, {G} graphs)")
        for r, c in zip(res, chunks):
            r[k] = c
    return res
