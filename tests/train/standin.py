"""A tiny invariant pair potential honouring the model contract (docs/contracts.md).

Used by the data/train/CLI tests so they stay fast and independent of the
MACE implementation: E = sum_i E0[z_i] + 1/2 sum_{i != j} phi(z_i, z_j, r_ij),
phi an MLP of a Bessel basis times a cosine cutoff; forces = -dE/dr and
stress / virials through a symmetric strain (as MACE).
"""

from __future__ import annotations

import math

import torch


class PairPotential(torch.nn.Module):
    NAME = "standin:PairPotential"

    def __init__(self, atomic_numbers, atomic_energies=None, r_max=5.0, num_basis=8, hidden=32, **unused):
        super().__init__()
        self.hparams = {
            "name": self.NAME,
            "atomic_numbers": list(atomic_numbers),
            "atomic_energies": None if atomic_energies is None else list(atomic_energies),
            "r_max": float(r_max),
            "num_basis": num_basis,
            "hidden": hidden,
        }
        self.r_max = float(r_max)
        z = torch.tensor(list(atomic_numbers), dtype=torch.long)
        table = torch.full((int(z.max()) + 1,), -1, dtype=torch.long)
        table[z] = torch.arange(len(z))
        self.register_buffer("z_to_index", table)
        e0 = torch.tensor(atomic_energies if atomic_energies is not None else [0.0] * len(z), dtype=torch.float64)
        self.register_buffer("e0", e0)
        self.register_buffer("freqs", torch.arange(1, num_basis + 1) * math.pi / self.r_max)
        n = len(z)
        self.mlp = torch.nn.Sequential(
            torch.nn.Linear(num_basis + 2 * n, hidden), torch.nn.SiLU(), torch.nn.Linear(hidden, 1)
        )

    def forward(self, batch, compute_forces=True, compute_stress=False):
        pos = batch["positions"]
        G = batch["ptr"].numel() - 1
        idx = self.z_to_index[batch["atomic_numbers"]]
        if (idx < 0).any():
            raise ValueError("element not in the model")
        strain = torch.zeros(G, 3, 3, dtype=pos.dtype, device=pos.device)
        if compute_stress:
            strain.requires_grad_(True)
        if compute_forces:
            pos = pos.detach().requires_grad_(True)
        sym = 0.5 * (strain + strain.transpose(1, 2))
        pos_s = pos + torch.einsum("ni,nij->nj", pos, sym[batch["batch"]])
        cell = batch["cell"] + torch.bmm(batch["cell"], sym)
        s, r = batch["edge_index"]
        gidx = batch["batch"][s]
        shifts = torch.einsum("ei,eij->ej", batch["unit_shifts"], cell[gidx])
        vec = pos_s[r] - pos_s[s] + shifts
        d = vec.norm(dim=-1, keepdim=True)
        basis = torch.sin(self.freqs * d) / d
        fc = 0.5 * (torch.cos(math.pi * d / self.r_max) + 1.0) * (d < self.r_max)
        n = self.e0.numel()
        oh = torch.nn.functional.one_hot(idx, n).to(pos.dtype)
        feats = torch.cat([basis, oh[s] + oh[r], oh[s] * oh[r]], dim=-1)
        pair = (self.mlp(feats) * fc).squeeze(-1)
        node = self.e0[idx].to(pos.dtype) + 0.5 * torch.zeros_like(pos[:, 0]).index_add(0, r, pair)
        energy = torch.zeros(G, dtype=pos.dtype, device=pos.device).index_add(0, batch["batch"], node)
        out = {"energy": energy, "node_energy": node}
        inputs = [pos] if compute_forces else []
        if compute_stress:
            inputs.append(strain)
        if inputs:
            grads = torch.autograd.grad(energy.sum(), inputs, create_graph=self.training)
            if compute_forces:
                out["forces"] = -grads[0]
            if compute_stress:
                dEde = grads[-1]
                vol = torch.linalg.det(batch["cell"]).abs().view(-1, 1, 1)
                out["virials"] = -dEde
                out["stress"] = torch.where(vol > 0, dEde / vol.clamp_min(1e-12), torch.zeros_like(dEde))
        return out
