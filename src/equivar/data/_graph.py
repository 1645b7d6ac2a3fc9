"""Configurations -> graph dicts -> batches (the dict of ``docs/contracts.md``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from ._configuration import Configuration
from ._neighbors import neighbor_list

#: Optional label keys and the per-graph weight key that masks each of them.
LABELS = {"energy": "energy_weight", "forces": "forces_weight", "stress": "stress_weight", "virials": "stress_weight"}
WEIGHTS = ("weight", "energy_weight", "forces_weight", "stress_weight")
_PER_NODE = ("positions", "atomic_numbers", "forces")


def config_to_graph(config: Configuration, r_max: float) -> dict[str, torch.Tensor]:
    """Build the graph of one configuration (float64, CPU).

    Returns a dict with the keys of the batch contract for a single graph
    (``cell`` [1, 3, 3], ``pbc`` [1, 3], ``energy`` [1], ``stress`` [1, 3, 3],
    weights [1]) minus ``batch``/``ptr``; labels the configuration lacks are
    absent. An atom with no neighbour within ``r_max`` simply has no edges.
    """
    edge_index, unit_shifts, shifts = neighbor_list(config.positions, r_max, config.cell, config.pbc)
    f64 = torch.float64
    g = {
        "positions": torch.tensor(config.positions, dtype=f64),
        "atomic_numbers": torch.tensor(config.atomic_numbers, dtype=torch.long),
        "edge_index": torch.from_numpy(edge_index),
        "shifts": torch.tensor(shifts, dtype=f64),
        "unit_shifts": torch.tensor(unit_shifts, dtype=f64),
        "cell": torch.tensor(config.cell, dtype=f64).unsqueeze(0),
        "pbc": torch.tensor(config.pbc, dtype=torch.bool).unsqueeze(0),
    }
    for k in WEIGHTS:
        g[k] = torch.tensor([getattr(config, k)], dtype=f64)
    if config.energy is not None:
        g["energy"] = torch.tensor([config.energy], dtype=f64)
    if config.forces is not None:
        g["forces"] = torch.tensor(config.forces, dtype=f64)
    for k in ("stress", "virials"):
        v = getattr(config, k)
        if v is not None:
            g[k] = torch.tensor(v, dtype=f64).unsqueeze(0)
    return g


def collate(graphs: Sequence[Mapping[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Concatenate graphs into one batch dict (``docs/contracts.md``).

    Node-indexed tensors are concatenated, ``edge_index`` is offset by each
    graph's first node, ``batch`` [N] and ``ptr`` [G+1] are added. A label
    present in some graphs only is filled with zeros elsewhere and the
    matching per-graph weight (``energy_weight``, ``forces_weight`` or
    ``stress_weight``) is set to 0 there, so the loss ignores it.

    Raises
    ------
    ValueError
        empty list.
    """
    if len(graphs) == 0:
        raise ValueError("cannot collate an empty list of graphs")
    sizes = [int(g["atomic_numbers"].shape[0]) for g in graphs]
    ptr = torch.zeros(len(graphs) + 1, dtype=torch.long)
    ptr[1:] = torch.cumsum(torch.tensor(sizes, dtype=torch.long), 0)
    out: dict[str, torch.Tensor] = {
        "ptr": ptr,
        "batch": torch.repeat_interleave(torch.arange(len(graphs)), torch.tensor(sizes)),
        "edge_index": torch.cat([g["edge_index"] + ptr[k] for k, g in enumerate(graphs)], dim=1),
    }
    for k in ("positions", "atomic_numbers", "shifts", "unit_shifts", "cell", "pbc") + WEIGHTS:
        out[k] = torch.cat([g[k] for g in graphs], dim=0)
    weights = {k: out[k].clone() for k in WEIGHTS}
    ref = graphs[0]["positions"]
    for label, wkey in LABELS.items():
        if not any(label in g for g in graphs):
            continue
        parts = []
        for k, g in enumerate(graphs):
            if label in g:
                parts.append(g[label])
            else:
                shape = {"energy": (1,), "forces": (sizes[k], 3)}.get(label, (1, 3, 3))
                parts.append(torch.zeros(shape, dtype=ref.dtype))
                weights[wkey][k] = 0.0
        out[label] = torch.cat(parts, dim=0)
    out.update(weights)
    return out


def batch_to(
    batch: Mapping[str, torch.Tensor], device=None, dtype: torch.dtype | None = None
) -> dict[str, torch.Tensor]:
    """Move a batch to ``device`` and cast its floating tensors to ``dtype`` (integers and bools untouched)."""
    out = {}
    for k, v in batch.items():
        if dtype is not None and v.is_floating_point():
            v = v.to(device=device, dtype=dtype)
        elif device is not None:
            v = v.to(device)
        out[k] = v
    return out


def graph_statistics(graphs: Sequence[Mapping[str, torch.Tensor]], e0s: Mapping[int, float]) -> dict[str, float]:
    """Dataset statistics models use for normalisation.

    Returns
    -------
    dict with ``avg_num_neighbors`` (edges per atom), ``mean_interaction_energy``
    (mean of (E - sum E0)/N, eV/atom), ``std_interaction_energy`` (eV/atom) and
    ``rms_forces`` (eV/Å, 1.0 when no forces).
    """
    n_edges = sum(int(g["edge_index"].shape[1]) for g in graphs)
    n_atoms = sum(int(g["atomic_numbers"].shape[0]) for g in graphs)
    per_atom, f2, nf = [], 0.0, 0
    for g in graphs:
        if "energy" in g:
            e0 = sum(e0s.get(int(z), 0.0) for z in g["atomic_numbers"].tolist())
            per_atom.append((float(g["energy"][0]) - e0) / g["atomic_numbers"].shape[0])
        if "forces" in g and float(g["forces_weight"][0]) > 0:
            f2 += float((g["forces"] ** 2).sum())
            nf += g["forces"].numel()
    pa = np.array(per_atom) if per_atom else np.zeros(1)
    return {
        "avg_num_neighbors": n_edges / max(n_atoms, 1),
        "mean_interaction_energy": float(pa.mean()),
        "std_interaction_energy": float(pa.std()),
        "rms_forces": float(np.sqrt(f2 / nf)) if nf and f2 > 0 else 1.0,
    }
