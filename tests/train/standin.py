"""A tiny invariant pair potential on :class:`equivar.models.Potential` (docs/contracts.md).

Used by the data/train/CLI tests so they stay fast and independent of the
MACE implementation: E = sum_i E0[z_i] + 1/2 sum_{i != j} phi(z_i, z_j, r_ij),
phi an MLP of a Bessel basis times a cosine cutoff. Only the node energies are
written here; forces, stress and virials come from the base class.
"""

from __future__ import annotations

import math

import torch

from equivar.models import AtomicGraph, Potential


class PairPotential(Potential):
    NAME = "standin:PairPotential"

    def __init__(self, atomic_numbers, atomic_energies=None, r_max=5.0, num_basis=8, hidden=32, dtype="float64"):
        super().__init__(atomic_numbers, atomic_energies, r_max=r_max, dtype=dtype)
        self.register_buffer("freqs", torch.arange(1, num_basis + 1) * math.pi / self.r_max)
        n = self.num_elements
        self.mlp = torch.nn.Sequential(
            torch.nn.Linear(num_basis + 2 * n, hidden), torch.nn.SiLU(), torch.nn.Linear(hidden, 1)
        )

    def node_energies(self, graph: AtomicGraph) -> torch.Tensor:
        s, r = graph.edge_index
        d = graph.edge_lengths.unsqueeze(-1)
        basis = torch.sin(self.freqs * d) / d
        fc = 0.5 * (torch.cos(math.pi * d / self.r_max) + 1.0) * (d < self.r_max)
        oh = graph.node_attrs
        feats = torch.cat([basis, oh[s] + oh[r], oh[s] * oh[r]], dim=-1)
        pair = (self.mlp(feats) * fc).squeeze(-1)
        return 0.5 * torch.zeros_like(graph.positions[:, 0]).index_add(0, r, pair)
