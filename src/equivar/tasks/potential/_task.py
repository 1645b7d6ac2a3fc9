"""The ``potential`` task: energies, forces and stress of atomic structures (MACE's training objective)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping

import torch

from ... import data as D
from ..._paths import atomic_output
from .._data import TaskData
from .._registry import register_task
from .._task import Task
from ._data import load_datasets
from ._evaluate import error_rows, format_table, predict, write_predictions, write_rows_csv
from ._loss import WeightedLoss
from ._metrics import ErrorAccumulator
from ._plots import plot_parity


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

    def load_data(self, cfg, log: Callable[[str], None] = print) -> TaskData:
        """Configurations of ``cfg.data`` (:func:`load_datasets`) as neighbour graphs (cutoff ``data.r_max``).

        Data-derived model hyperparameters: ``atomic_numbers``, ``atomic_energies`` (the E0s),
        ``r_max``, ``avg_num_neighbors``, ``scale`` (RMS force, eV/Å), ``shift`` (mean interaction
        energy per atom, eV), ``dtype``, ``seed`` (MACE's choices).
        """
        t0 = time.perf_counter()
        ds = load_datasets(cfg, log)
        r_max = cfg.data.r_max
        train_set = D.AtomicGraphDataset(ds.train, r_max)
        valid_set = D.AtomicGraphDataset(ds.valid, r_max) if ds.valid else None
        stats = D.graph_statistics(train_set.graphs, ds.e0s)
        data_info = {
            "atomic_numbers": ds.atomic_numbers,
            "atomic_energies": [ds.e0s[z] for z in ds.atomic_numbers],
            "r_max": r_max,
            "avg_num_neighbors": stats["avg_num_neighbors"],
            "scale": stats["rms_forces"],
            "shift": stats["mean_interaction_energy"],
            "dtype": cfg.dtype,
            "seed": cfg.seed,
        }
        metadata = {
            "r_max": r_max,
            "atomic_numbers": ds.atomic_numbers,
            "e0s": {int(z): float(e) for z, e in ds.e0s.items()},
            "dtype": cfg.dtype,
            "statistics": stats,
            "config": cfg.to_dict(),
        }
        note = f"graphs built in {time.perf_counter() - t0:.1f} s, {stats['avg_num_neighbors']:.1f} neighbours/atom"
        return TaskData(train_set, valid_set, {}, None, data_info, metadata, note=note, extra=ds)

    def report(self, model, data: TaskData, cfg, history, log: Callable[[str], None] = print) -> list:
        """Errors of the selected model per set and config_type (``errors.md``, ``errors.csv``), ``parity.png``
        (valid and test sets), ``predictions_<test>.xyz``; returns the error rows."""
        ds = data.extra
        out = cfg.output_dir
        r_max = cfg.data.r_max
        bs = cfg.training.valid_batch_size
        sets = {"train": ds.train, "valid": ds.valid, **ds.tests}
        results = {}
        t0 = time.perf_counter()
        for name, configs in sets.items():
            if configs:
                preds = predict(model, D.AtomicGraphDataset(configs, r_max), bs, device=next(model.parameters()).device)
                results[name] = (configs, preds)
                if name in ds.tests:
                    write_predictions(os.path.join(out, f"predictions_{name}.xyz"), configs, preds)
        rows = error_rows(results)
        table = format_table(rows)
        with atomic_output(os.path.join(out, "errors.md"), "w") as f:
            f.write(table + "\n")
        write_rows_csv(os.path.join(out, "errors.csv"), rows)
        parity_sets = {k: v for k, v in results.items() if k != "train"} or results
        plot_parity(parity_sets, os.path.join(out, "parity.png"))
        log(f"evaluation ({time.perf_counter() - t0:.1f} s), errors of the selected model:\n{table}")
        log(f"wrote {out}/: model.pt, metrics.csv, errors.md, learning_curves.png, parity.png")
        return rows

    def forward(self, model, batch: Mapping[str, torch.Tensor], training: bool) -> dict:
        stress = self.loss_fn.needs_stress and bool(batch["pbc"].any())
        return model(batch, compute_forces=True, compute_stress=stress)

    def parallel_work(self, batch: Mapping[str, torch.Tensor]) -> int | None:
        edges = batch.get("edge_index")
        return None if edges is None or edges.device.type != "cpu" else int(edges.shape[-1])

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
