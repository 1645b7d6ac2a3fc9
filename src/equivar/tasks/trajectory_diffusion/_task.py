"""The ``trajectory_diffusion`` task: the diffusion loss of a conditional trajectory generator, and the
minADE / minFDE of its samples (GeoTDM, Han et al. NeurIPS 2024, section 5.1).

Data and batches are the ``dynamics`` task's (:class:`~equivar.tasks.DynamicsData` under ``task.data``;
the dynamics batch of ``docs/contracts.md``, observed frames in ``pos``, the frames to generate in
``target``). The model is a diffusion model with ``model.loss(batch, source) -> [G]`` (per-scene loss
on noise drawn from a :class:`~equivar.diffusion.NoiseSource`) and ``model(batch) -> {"pos": [K, N, T_f, D]}``
(``K`` samples), e.g. :class:`~equivar.models.geotdm.GeoTDM`.

- training loss: the mean over scenes of ``model.loss`` with noise seeded from torch's generator (the
  trainer seeds it), one draw per step;
- validation loss (model selection, the LR schedule): the same loss with a fixed seed per validation
  batch (the same levels and noise every epoch, so epochs compare); GeoTDM validates on the NLL bound,
  which needs ``T`` network calls per scene;
- report: minADE / minFDE over the model's ``K`` samples on ``task.report_sets`` (default the test set),
  seeded by ``task.sample_seed`` (GeoTDM's protocol: K = 5, minimum over samples of the per-scene mean
  displacement, ADE over all generated frames, FDE at the last).

Checkpoints record ``metadata["task"] = "dynamics"``: ``equivar eval`` scores a trained model's samples
like any K-hypothesis dynamics model.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Mapping, Sequence

import torch

from ..._paths import atomic_output
from ...data import collate_scenes, make_loader
from ...diffusion import NoiseSource
from ...models import unwrap
from .._data import TaskData
from .._registry import register_task
from .._task import LossAccumulator
from ..dynamics import DynamicsMetrics, DynamicsTask

#: the seed of every validation batch's levels and noise
VALID_SEED = 20241028


@register_task("trajectory_diffusion")
class TrajectoryDiffusionTask(DynamicsTask):
    """Conditional trajectory diffusion on the dynamics batch (module docstring).

    Parameters
    ----------
    training : TrainingConfig or None
        Unused.
    data : mapping or DynamicsData
        The ``task.data`` section (GeoTDM's N-body: ``past: 10``, ``future: 20``).
    report_sets : sequence of str
        Which of ``train``, ``valid``, ``test`` the report samples and scores (``[test]``).
    sample_seed : int
        Seed of torch's generator before the report's sampling (the model draws its seeds from it).

    Raises
    ------
    ValueError
        An unknown set in ``report_sets``; unknown ``task.data`` keys (named); at the first batch, a
        model without ``loss(batch, source)``.
    """

    def __init__(
        self,
        training=None,
        *,
        data: Mapping | None = None,
        report_sets: Sequence[str] = ("test",),
        sample_seed: int = 0,
    ):
        super().__init__(training, data=data, loss="ade")
        bad = [s for s in report_sets if s not in ("train", "valid", "test")]
        if bad:
            raise ValueError(f"task.report_sets: unknown set {bad[0]!r}; choose among train, valid, test")
        self.report_sets = list(report_sets)
        self.sample_seed = int(sample_seed)

    def load_data(self, cfg, log=print) -> TaskData:
        out = super().load_data(cfg, log)
        out.metadata = {**out.metadata, "task": "dynamics", "trained_as": "trajectory_diffusion"}
        return out

    def forward(self, model: torch.nn.Module, batch: Mapping[str, torch.Tensor], training: bool) -> dict:
        m = unwrap(model)
        if not callable(getattr(m, "loss", None)):
            raise ValueError(
                f"task trajectory_diffusion: the model ({type(m).__name__}) has no loss(batch, source); "
                "use a diffusion model such as 'geotdm'"
            )
        if training:
            return {"loss_per_scene": m.loss(batch, NoiseSource(int(torch.randint(0, 2**62, (1,)))))}
        with torch.no_grad():
            return {"loss_per_scene": m.loss(batch, NoiseSource(VALID_SEED))}

    def loss(self, pred: Mapping, batch: Mapping) -> tuple[torch.Tensor, dict[str, float]]:
        loss = pred["loss_per_scene"].mean()
        return loss, {"loss": float(loss.detach())}

    def metrics(self) -> LossAccumulator:
        return LossAccumulator()

    def summary(self, row: Mapping[str, float]) -> str:
        return f"  valid diffusion loss {row['valid_loss']:.4g}" if "valid_loss" in row else ""

    def report(self, model, data: TaskData, cfg, history, log=print) -> list[dict]:
        """minADE / minFDE of the selected model's samples on ``report_sets``; writes ``errors.md`` / ``errors.csv``."""
        sets = {"train": data.train, "valid": data.valid, **data.tests}
        rows = []
        for name in self.report_sets:
            dataset = sets.get(name)
            if dataset is None or not len(dataset):
                continue
            m = sample_metrics(model, dataset, cfg.training.valid_batch_size, self.sample_seed)
            scenes = int(m.pop("n_structures", len(dataset)))
            rows.append({"set": name, "scenes": scenes, **m})
        keys = ["set", "scenes"] + [k for k in (rows[0] if rows else {}) if k not in ("set", "scenes")]
        lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
        for r in rows:
            lines.append("| " + " | ".join(str(r[k]) if k in ("set", "scenes") else f"{r[k]:.6g}" for k in keys) + " |")
        table = "\n".join(lines)
        with atomic_output(os.path.join(cfg.output_dir, "errors.md"), "w") as f:
            f.write(table + "\n")
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)
        with atomic_output(os.path.join(cfg.output_dir, "errors.csv"), "w") as f:
            f.write(buf.getvalue())
        log(f"minADE / minFDE of the selected model's samples:\n{table}")
        return rows


def sample_metrics(model: torch.nn.Module, dataset, batch_size: int = 500, seed: int = 0) -> dict[str, float]:
    """:class:`~equivar.tasks.dynamics.DynamicsMetrics` of ``model(batch)``'s samples over ``dataset``.

    Eval mode, no gradients, ``torch.manual_seed(seed)`` first. For ``{"pos": [K, N, T, D]}``: ``min_ade``,
    ``min_fde`` (each minimised over the K samples per agent, then averaged over scored agents), ``mse``
    of the best sample, ``loss`` (the best-of-K ADE), ``n_structures``.
    """
    p = next(unwrap(model).parameters())
    model.eval()
    acc = DynamicsMetrics()
    scorer = DynamicsTask()
    torch.manual_seed(seed)
    with torch.no_grad():
        for batch in make_loader(dataset, batch_size, shuffle=False, collate_fn=collate_scenes):
            b = scorer.prepare(batch, p.device, p.dtype)
            pred = scorer.forward(model, b, False)
            loss, _ = scorer.loss(pred, b)
            acc.update(pred, b, float(loss))
    return acc.compute()
