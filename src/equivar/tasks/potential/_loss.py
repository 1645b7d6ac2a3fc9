"""Weighted energy / forces / stress loss (MACE's ``WeightedEnergyForcesStressLoss``)."""

from __future__ import annotations

from collections.abc import Mapping

import torch


class WeightedLoss:
    """``loss = w_E * L_E + w_F * L_F + w_S * (L_S + L_V)``.

    With per-graph weights ``w_g = weight * <property>_weight`` (0 masks a
    missing label) and ``N_g`` atoms per graph:

    - ``L_E = mean_g w_g ((E_pred - E_ref) / N_g)^2``  (eV/atom)^2
    - ``L_F = mean_{atoms, xyz} w_g(atom) (F_pred - F_ref)^2``  (eV/Å)^2
    - ``L_S = mean_{g, 3x3} w_g (S_pred - S_ref)^2``  (eV/Å^3)^2, periodic graphs only
    - ``L_V = mean_{g, 3x3} w_g ((V_pred - V_ref) / N_g)^2``  (eV/atom)^2

    Terms whose label or prediction is absent from the batch are skipped.
    """

    def __init__(self, energy_weight: float = 1.0, forces_weight: float = 100.0, stress_weight: float = 0.0):
        self.energy_weight = float(energy_weight)
        self.forces_weight = float(forces_weight)
        self.stress_weight = float(stress_weight)

    @property
    def needs_stress(self) -> bool:
        return self.stress_weight > 0

    def __call__(
        self, pred: Mapping[str, torch.Tensor], batch: Mapping[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Return ``(loss, parts)``; ``loss`` is a 0-d tensor, ``parts`` maps term name to float."""
        n = (batch["ptr"][1:] - batch["ptr"][:-1]).to(pred["energy"].dtype)
        w = batch["weight"].to(pred["energy"].dtype)
        total = pred["energy"].new_zeros(())
        parts: dict[str, float] = {}
        if self.energy_weight and "energy" in batch:
            we = w * batch["energy_weight"]
            term = (we * ((pred["energy"] - batch["energy"]) / n) ** 2).mean()
            total = total + self.energy_weight * term
            parts["energy"] = float(term.detach())
        if self.forces_weight and "forces" in batch and "forces" in pred:
            wf = (w * batch["forces_weight"])[batch["batch"]].unsqueeze(-1)
            term = (wf * (pred["forces"] - batch["forces"]) ** 2).mean()
            total = total + self.forces_weight * term
            parts["forces"] = float(term.detach())
        if self.stress_weight:
            # select graphs (no multiply-by-zero: stress of a non-periodic graph may be inf/nan)
            m = ((w * batch["stress_weight"]) > 0) & batch["pbc"].any(dim=1)
            denom = 9.0 * n.numel()
            if "stress" in batch and "stress" in pred and bool(m.any()):
                d = pred["stress"][m] - batch["stress"][m]
                term = (w[m].view(-1, 1, 1) * batch["stress_weight"][m].view(-1, 1, 1) * d**2).sum() / denom
                total = total + self.stress_weight * term
                parts["stress"] = float(term.detach())
            if "virials" in batch and "virials" in pred and bool(m.any()):
                d = (pred["virials"][m] - batch["virials"][m]) / n[m].view(-1, 1, 1)
                term = (w[m].view(-1, 1, 1) * batch["stress_weight"][m].view(-1, 1, 1) * d**2).sum() / denom
                total = total + self.stress_weight * term
                parts["virials"] = float(term.detach())
        return total, parts
