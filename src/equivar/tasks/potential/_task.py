"""The ``potential`` task: energies, forces and stress of atomic structures (MACE's training objective)."""

from __future__ import annotations

from collections.abc import Mapping

import torch

from .._registry import register_task
from .._task import Task
from ._loss import WeightedLoss
from ._metrics import ErrorAccumulator


@register_task("potential")
class PotentialTask(Task):
    """Train an interatomic potential on energies, forces and (periodic) stress.

    Batch: the atomic graph batch of ``docs/contracts.md`` with its labels. Forward:
    ``model(batch, compute_forces=True, compute_stress=...)``, stress only when the loss
    weighs it (``stress_weight > 0``) and the batch holds a periodic structure. Loss:
    :class:`WeightedLoss`; metrics: :class:`ErrorAccumulator` (meV units). Stage two
    switches the energy and forces weights to ``stage_two_energy_weight`` /
    ``stage_two_forces_weight`` (MACE's ``--swa``).

    Parameters
    ----------
    training : TrainingConfig or None
        Reads ``energy_weight``, ``forces_weight``, ``stress_weight``,
        ``stage_two_energy_weight``, ``stage_two_forces_weight`` (defaults 1, 100, 0, 1000, 100).
    """

    def __init__(self, training=None):
        super().__init__(training)
        t = training
        self.loss_fn = WeightedLoss(
            getattr(t, "energy_weight", 1.0), getattr(t, "forces_weight", 100.0), getattr(t, "stress_weight", 0.0)
        )
        self.stage_two_weights = (
            float(getattr(t, "stage_two_energy_weight", 1000.0)),
            float(getattr(t, "stage_two_forces_weight", 100.0)),
        )

    def forward(self, model, batch: Mapping[str, torch.Tensor], training: bool) -> dict:
        stress = self.loss_fn.needs_stress and bool(batch["pbc"].any())
        return model(batch, compute_forces=True, compute_stress=stress)

    def loss(self, pred, batch):
        return self.loss_fn(pred, batch)

    def metrics(self) -> ErrorAccumulator:
        return ErrorAccumulator()

    def summary(self, row: Mapping[str, float]) -> str:
        s = ""
        if "valid_mae_e_per_atom" in row:
            s += f"  E {row['valid_mae_e_per_atom']:.2f} meV/atom"
        if "valid_mae_f" in row:
            s += f"  F {row['valid_mae_f']:.1f} meV/Å"
        return s

    def enter_stage_two(self) -> str:
        self.loss_fn.energy_weight, self.loss_fn.forces_weight = self.stage_two_weights
        return f"energy weight {self.loss_fn.energy_weight:g}, forces weight {self.loss_fn.forces_weight:g}"
