"""Error metrics (MAE / RMSE in meV units) accumulated over batches, reducible across ranks."""

from __future__ import annotations

from collections.abc import Mapping

import torch

_FIELDS = (
    "n_e",
    "abs_e",
    "sq_e",
    "abs_epa",
    "sq_epa",
    "n_f",
    "abs_f",
    "sq_f",
    "n_s",
    "abs_s",
    "sq_s",
    "n_v",
    "abs_v",
    "sq_v",
    "loss",
    "n_loss",
)

#: Metric names, units and meaning (all errors are reference minus prediction).
METRICS = {
    "mae_e": "meV, energy MAE per structure",
    "rmse_e": "meV, energy RMSE per structure",
    "mae_e_per_atom": "meV/atom, energy MAE divided by atom count",
    "rmse_e_per_atom": "meV/atom",
    "mae_f": "meV/Å, force MAE over Cartesian components",
    "rmse_f": "meV/Å",
    "mae_s": "meV/Å^3, stress MAE over the 9 components",
    "rmse_s": "meV/Å^3",
    "mae_v_per_atom": "meV/atom, virials MAE over the 9 components divided by atom count (as MACE reports them)",
    "rmse_v_per_atom": "meV/atom",
}


class ErrorAccumulator:
    """Sums of absolute and squared errors; :meth:`compute` turns them into MAE/RMSE.

    Only graphs whose weight for a property is positive count for it.
    """

    def __init__(self):
        self.sums = torch.zeros(len(_FIELDS), dtype=torch.float64)

    def _add(self, name: str, value) -> None:
        self.sums[_FIELDS.index(name)] += float(value)

    @torch.no_grad()
    def update(
        self, pred: Mapping[str, torch.Tensor], batch: Mapping[str, torch.Tensor], loss: float | None = None
    ) -> None:
        """Add one batch (``pred`` from the model, ``batch`` with labels)."""
        n = (batch["ptr"][1:] - batch["ptr"][:-1]).double()
        w = batch["weight"].double()
        if "energy" in batch and "energy" in pred:
            m = (w * batch["energy_weight"].double()) > 0
            d = (pred["energy"].detach().double() - batch["energy"].double())[m]
            self._add("n_e", m.sum())
            self._add("abs_e", d.abs().sum())
            self._add("sq_e", (d**2).sum())
            self._add("abs_epa", (d / n[m]).abs().sum())
            self._add("sq_epa", ((d / n[m]) ** 2).sum())
        if "forces" in batch and "forces" in pred:
            m = ((w * batch["forces_weight"].double()) > 0)[batch["batch"]]
            d = (pred["forces"].detach().double() - batch["forces"].double())[m]
            self._add("n_f", d.numel())
            self._add("abs_f", d.abs().sum())
            self._add("sq_f", (d**2).sum())
        if "stress" in batch and "stress" in pred:
            m = ((w * batch["stress_weight"].double()) > 0) & batch["pbc"].any(dim=1)
            d = (pred["stress"].detach().double() - batch["stress"].double())[m]
            self._add("n_s", d.numel())
            self._add("abs_s", d.abs().sum())
            self._add("sq_s", (d**2).sum())
        if loss is not None:
            self._add("loss", loss)
            self._add("n_loss", 1)

    def add_structure(self, config, pred: Mapping) -> None:
        """Add one :class:`~equivar.data.Configuration` and its numpy prediction (``energy``, ``forces``, ``stress``,
        ``virials``)."""
        import numpy as np

        w = config.weight
        if config.energy is not None and pred.get("energy") is not None and w * config.energy_weight > 0:
            d = float(pred["energy"]) - config.energy
            for k, v in (
                ("n_e", 1),
                ("abs_e", abs(d)),
                ("sq_e", d * d),
                ("abs_epa", abs(d) / config.num_atoms),
                ("sq_epa", (d / config.num_atoms) ** 2),
            ):
                self._add(k, v)
        if config.forces is not None and pred.get("forces") is not None and w * config.forces_weight > 0:
            d = np.asarray(pred["forces"]) - config.forces
            self._add("n_f", d.size)
            self._add("abs_f", np.abs(d).sum())
            self._add("sq_f", (d**2).sum())
        if (
            config.stress is not None
            and pred.get("stress") is not None
            and w * config.stress_weight > 0
            and config.pbc.any()
        ):
            d = np.asarray(pred["stress"]) - config.stress
            self._add("n_s", d.size)
            self._add("abs_s", np.abs(d).sum())
            self._add("sq_s", (d**2).sum())
        if (
            config.virials is not None
            and pred.get("virials") is not None
            and w * config.stress_weight > 0
            and config.pbc.any()
        ):
            d = (np.asarray(pred["virials"]) - config.virials) / config.num_atoms
            self._add("n_v", d.size)
            self._add("abs_v", np.abs(d).sum())
            self._add("sq_v", (d**2).sum())

    def all_reduce(self) -> None:
        """Sum over ranks when ``torch.distributed`` is initialised (no-op otherwise)."""
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            t = self.sums.clone()
            dist.all_reduce(t)
            self.sums = t

    def compute(self) -> dict[str, float]:
        """``{metric: value}`` for the properties seen (see :data:`METRICS`), plus ``loss`` and ``n_structures``."""
        s = dict(zip(_FIELDS, self.sums.tolist()))
        out: dict[str, float] = {}
        if s["n_loss"]:
            out["loss"] = s["loss"] / s["n_loss"]
        if s["n_e"]:
            out["mae_e"] = 1e3 * s["abs_e"] / s["n_e"]
            out["rmse_e"] = 1e3 * (s["sq_e"] / s["n_e"]) ** 0.5
            out["mae_e_per_atom"] = 1e3 * s["abs_epa"] / s["n_e"]
            out["rmse_e_per_atom"] = 1e3 * (s["sq_epa"] / s["n_e"]) ** 0.5
            out["n_structures"] = s["n_e"]
        if s["n_f"]:
            out["mae_f"] = 1e3 * s["abs_f"] / s["n_f"]
            out["rmse_f"] = 1e3 * (s["sq_f"] / s["n_f"]) ** 0.5
        if s["n_s"]:
            out["mae_s"] = 1e3 * s["abs_s"] / s["n_s"]
            out["rmse_s"] = 1e3 * (s["sq_s"] / s["n_s"]) ** 0.5
        if s["n_v"]:
            out["mae_v_per_atom"] = 1e3 * s["abs_v"] / s["n_v"]
            out["rmse_v_per_atom"] = 1e3 * (s["sq_v"] / s["n_v"]) ** 0.5
        return out
