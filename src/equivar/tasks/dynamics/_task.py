"""The ``dynamics`` task: predict future positions of interacting agents (N-body particles, pedestrians)."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Mapping

import torch

from ..._paths import atomic_output
from ...data import collate_scenes, make_loader
from .._data import TaskData
from .._registry import register_task
from .._task import Task
from ._data import DynamicsData
from ._metrics import DynamicsMetrics


@register_task("dynamics")
class DynamicsTask(Task):
    """Trajectory prediction on the dynamics batch of ``docs/contracts.md``.

    Forward: ``model(batch) -> {"pos": [N, T_out, D]}`` (deterministic) or
    ``{"pos": [K, N, T_out, D]}`` (K hypotheses). Loss of a deterministic
    prediction: the MSE of the scored agents' positions (``loss: mse``, EGNN's
    ``torch.nn.MSELoss``) or their average displacement error (``loss: ade``,
    the mean Euclidean distance EqMotion's N-body script trains on); with K
    hypotheses always the mean over scored agents of the smallest average
    displacement error over hypotheses (EqMotion's "best of K" loss, only the
    best hypothesis of each agent gets a gradient).
    Metrics: ``mse``, ``ade``, ``fde`` (``min_ade``, ``min_fde`` with K
    hypotheses); model selection on the validation loss.

    Parameters
    ----------
    training : TrainingConfig or None
        Unused (the optimiser settings are the trainer's).
    data : mapping or DynamicsData
        The ``task.data`` section: :class:`DynamicsData` (default EGNN's charged N-body,
        frame 30 -> 40, 3000 / 2000 / 2000).
    loss : str
        ``'mse'`` (default) or ``'ade'``: the loss of deterministic predictions.

    Raises
    ------
    ValueError
        Unknown ``task.data`` key or a wrong type (named), or an unknown ``task.loss``.
    """

    data_section = False

    def __init__(self, training=None, *, data: Mapping | None = None, loss: str = "mse"):
        super().__init__(training)
        if loss not in ("mse", "ade"):
            raise ValueError(f"task.loss must be 'mse' or 'ade', got {loss!r}")
        self.loss_kind = loss
        self.data = DynamicsData.from_mapping(data)

    def load_data(self, cfg, log=print) -> TaskData:
        """The scenes of ``task.data`` (simulated once and cached for N-body; read for ETH-UCY)."""
        sets = self.data.load(log)
        meta = {"task": "dynamics", "data": dict(vars(self.data)), "dtype": cfg.dtype, "config": cfg.to_dict()}
        n = ", ".join(f"{len(v)} {k}" for k, v in sets.items())
        return TaskData(
            train=sets["train"],
            valid=sets["valid"],
            tests={"test": sets["test"]},
            collate=collate_scenes,
            data_info={"dtype": cfg.dtype, "seed": cfg.seed},
            metadata=meta,
            note=f"{n} scenes",
        )

    def evaluate(self, model: torch.nn.Module, dataset, batch_size: int = 500) -> dict[str, float]:
        """The task's metrics of ``model`` (eval mode, no gradients) over ``dataset``.

        A dataset with a ``length_scale`` attribute (ETH-UCY's ``test_scale``) holds coordinates divided by
        it; predictions and targets are multiplied back before the loss and the metrics.
        """
        p = next(model.parameters())
        model.eval()
        acc = self.metrics()
        scale = float(getattr(dataset, "length_scale", 1.0))  # test-time rescaled data: errors back in the data's units
        with torch.no_grad():
            for batch in make_loader(dataset, batch_size, shuffle=False, collate_fn=collate_scenes):
                b = self.prepare(batch, p.device, p.dtype)
                pred = self.forward(model, b, False)
                if scale != 1.0:
                    pred = dict(pred, pos=pred["pos"] * scale)
                    b = dict(b, target=b["target"] * scale)
                loss, _ = self.loss(pred, b)
                acc.update(pred, b, float(loss))
        return acc.compute()

    def report(self, model, data: TaskData, cfg, history, log=print) -> list[dict]:
        """Metrics of the selected model per set (train, valid, test); writes ``errors.md`` / ``errors.csv``."""
        sets = {"train": data.train, "valid": data.valid, **data.tests}
        rows = []
        for name, dataset in sets.items():
            if dataset is not None and len(dataset):
                m = self.evaluate(model, dataset, cfg.training.valid_batch_size)
                scenes = int(m.pop("n_structures", len(dataset)))
                rows.append({"set": name, "scenes": scenes, **m})
        keys = ["set", "scenes"] + [k for k in (rows[0] if rows else {}) if k not in ("set", "scenes")]
        lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
        for r in rows:
            lines.append("| " + " | ".join(str(r[k]) if k in ("set", "scenes") else f"{r[k]:.6g}" for k in keys) + " |")
        table = "\n".join(lines)
        out = cfg.output_dir
        with atomic_output(os.path.join(out, "errors.md"), "w") as f:
            f.write(table + "\n")
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)
        with atomic_output(os.path.join(out, "errors.csv"), "w") as f:
            f.write(buf.getvalue())
        log(f"evaluation of the selected model:\n{table}")
        log(f"wrote {out}/: model.pt, metrics.csv, errors.md")
        return rows

    def forward(self, model: torch.nn.Module, batch: Mapping[str, torch.Tensor], training: bool) -> dict:
        out = model(batch)
        pos = out.get("pos") if isinstance(out, Mapping) else None
        target = batch["target"]
        if pos is None or pos.dim() not in (3, 4) or tuple(pos.shape[-3:]) != tuple(target.shape):
            got = None if pos is None else tuple(pos.shape)
            raise ValueError(
                f"dynamics task: the model must return {{'pos': [N, T_out, D] or [K, N, T_out, D]}} matching "
                f"target {tuple(target.shape)}, got pos {got}"
            )
        return out

    def loss(self, pred: Mapping, batch: Mapping) -> tuple[torch.Tensor, dict[str, float]]:
        p = pred["pos"]
        mask = batch["target_mask"]
        target = batch["target"].to(p.dtype)
        if p.dim() == 4:
            ade = (p[:, mask] - target[mask]).norm(dim=-1).mean(-1)  # [K, N_scored]
            loss = ade.min(0).values.mean()
        elif self.loss_kind == "ade":
            loss = (p[mask] - target[mask]).norm(dim=-1).mean()
        else:
            loss = ((p[mask] - target[mask]) ** 2).mean()
        return loss, {"loss": float(loss.detach())}

    def metrics(self) -> DynamicsMetrics:
        return DynamicsMetrics()

    def summary(self, row: Mapping[str, float]) -> str:
        if "valid_min_ade" in row:
            return f"  valid minADE {row['valid_min_ade']:.4g} minFDE {row['valid_min_fde']:.4g}"
        if "valid_mse" in row:
            return f"  valid MSE {row['valid_mse']:.4g} ADE {row['valid_ade']:.4g} FDE {row['valid_fde']:.4g}"
        return ""
