"""A toy second potential: the few lines a new potential writes (its node energies), nothing else.

``e_i = 1/2 sum_j a[z_i] a[z_j] exp(-b r_ij) fc(r_ij)``, ``fc`` a cosine cutoff. Forces,
stress, E0s, scale/shift, hparams, checkpoints, ``equivar train`` and ``equivar md`` come from
:class:`equivar.models.Potential`; referenced by name as ``"toy_potential:ToyPotential"``.
"""

import math

import torch

from equivar.models import AtomicGraph, Potential
from equivar.nn import scatter_sum


class ToyPotential(Potential):
    def __init__(self, atomic_numbers, atomic_energies=None, scale=1.0, shift=0.0, r_max=4.0, dtype="float64", seed=0):
        super().__init__(atomic_numbers, atomic_energies, scale, shift, r_max=r_max, dtype=dtype)
        with self.seeded(seed):
            self.a = torch.nn.Parameter(0.5 + torch.rand(self.num_elements))
        self.b = torch.nn.Parameter(torch.tensor(1.0))

    def node_energies(self, graph: AtomicGraph) -> torch.Tensor:
        s, r = graph.edge_index
        d = graph.edge_lengths
        fc = 0.5 * (torch.cos(math.pi * d / self.r_max) + 1.0) * (d < self.r_max)
        pair = self.a[graph.element[s]] * self.a[graph.element[r]] * torch.exp(-self.b * d) * fc
        return 0.5 * scatter_sum(pair, r, graph.positions.shape[0])
