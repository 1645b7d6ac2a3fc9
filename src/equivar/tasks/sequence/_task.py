"""The ``sequence`` task: predict future frames from observed ones (Translating MNIST; FERNN vs G-RNN)."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Mapping

import torch

from ..._paths import atomic_output
from ..._plotting import pyplot, save_figure
from ...data import make_loader
from .._data import TaskData
from .._registry import register_task
from .._task import Task
from ._data import SequenceData, collate_sequences
from ._metrics import SequenceMetrics


def checked_frames(out, target: torch.Tensor, task: str) -> torch.Tensor:
    """``out`` if it is a tensor shaped like ``target`` (predicted frames); else a one-line ``ValueError`` naming ``task``."""
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != tuple(target.shape):
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(f"{task} task: the model must return frames of shape {tuple(target.shape)}, got {got}")
    return out


def frame_mse(pred: Mapping, batch: Mapping) -> tuple[torch.Tensor, dict[str, float]]:
    """Mean squared error of ``pred["frames"]`` against ``batch["target"]`` over frames and pixels, and ``{"mse"}``."""
    loss = (pred["frames"] - batch["target"].to(pred["frames"].dtype)).square().mean()
    return loss, {"mse": float(loss.detach())}


@register_task("sequence")
class SequenceTask(Task):
    """Next-frame prediction: ``model(inputs [B, T_in, C, H, W], T_out) -> [B, T_out, C, H, W]``, MSE per frame.

    Batch: ``{"inputs": [B, T_in, C, H, W], "target": [B, T_out, C, H, W]}``
    (float in [0, 1]). Loss: the mean squared error over predicted frames and
    pixels (FERNN's ``nn.MSELoss``). The data are the task's own
    (``task: {name: sequence, data: {...}}``, :class:`SequenceData`:
    Translating MNIST generated from the MNIST IDX files). The report gives
    the MSE per set - ``test`` (training velocities), ``unseen`` (velocities
    never seen in training), ``long`` (longer rollouts) - in ``errors.md`` /
    ``errors.csv``, the MSE per predicted frame in ``per_frame.csv`` and a
    figure of predicted frames, ``frames.png``.

    Parameters
    ----------
    training : TrainingConfig or None
    data : mapping or SequenceData
        The ``task.data`` section.
    plot_sets : list of str
        Sets drawn in ``frames.png`` (default all test sets).

    Raises
    ------
    ValueError
        Unknown ``task.data`` key or a wrong type or value (named).
    """

    data_section = False

    def __init__(self, training=None, *, data: Mapping | None = None, plot_sets: list | None = None):
        super().__init__(training)
        self.data = SequenceData.from_mapping(data)
        self.plot_sets = None if plot_sets is None else [str(s) for s in plot_sets]

    # ---- per batch ------------------------------------------------------------------------
    def forward(self, model: torch.nn.Module, batch: Mapping, training: bool) -> dict:
        target = batch["target"]
        return {"frames": checked_frames(model(batch["inputs"], int(target.shape[1])), target, "sequence")}

    def loss(self, pred: Mapping, batch: Mapping) -> tuple[torch.Tensor, dict[str, float]]:
        return frame_mse(pred, batch)

    def metrics(self) -> SequenceMetrics:
        return SequenceMetrics()

    def summary(self, row: Mapping[str, float]) -> str:
        mse = row.get("valid_mse")
        return "" if mse is None else f"  valid MSE {mse:.4g}"

    # ---- data and report ------------------------------------------------------------------
    def load_data(self, cfg, log=print) -> TaskData:
        """The sequences of ``task.data`` (generated, seeded)."""
        sets = self.data.load(log)
        C, H, W = sets["train"].frames.shape[2:]
        meta = {"task": "sequence", "data": dict(vars(self.data)), "dtype": cfg.dtype, "config": cfg.to_dict()}
        info = {"image_size": int(H), "in_channels": int(C), "dtype": cfg.dtype, "seed": cfg.seed}
        tests = {k: v for k, v in sets.items() if k not in ("train", "valid")}
        return TaskData(sets["train"], sets["valid"], tests, collate_sequences, info, meta)

    @torch.no_grad()
    def evaluate(self, model, dataset, batch_size: int = 100) -> tuple[dict, list[float]]:
        """``({"sequences", "mse", "loss"}, per-frame MSE)`` of ``model`` on ``dataset`` (eval mode)."""
        p = next(model.parameters())
        model.eval()
        acc = self.metrics()
        for batch in make_loader(dataset, batch_size, shuffle=False, collate_fn=collate_sequences):
            b = self.prepare(batch, p.device, p.dtype)
            pred = self.forward(model, b, False)
            loss, _ = self.loss(pred, b)
            acc.update(pred, b, float(loss))
        m = acc.compute()
        return {"sequences": int(m.pop("n_structures")), **m}, acc.per_frame()

    def evaluate_sets(self, model, sets: Mapping, batch_size: int = 100) -> tuple[list[dict], dict]:
        """Rows ``{"set", "sequences", "mse", "loss"}`` and ``{set: per-frame MSE}`` for every non-empty set."""
        rows, frames = [], {}
        for name, ds in sets.items():
            if ds is not None and len(ds):
                r, pf = self.evaluate(model, ds, batch_size)
                rows.append({"set": name, "sequences": r["sequences"], "mse": r["mse"]})
                frames[name] = pf
        return rows, frames

    def report(self, model, data: TaskData, cfg, history, log=print) -> list[dict]:
        """MSE of the selected model per set and per frame; writes ``errors.md``, ``errors.csv``, ``per_frame.csv``,
        ``frames.png``."""
        sets = {"train": data.train, "valid": data.valid, **data.tests}
        rows, frames = self.evaluate_sets(model, sets, cfg.training.valid_batch_size)
        write_report(cfg.output_dir, rows, frames, log)
        plot_predictions(
            model,
            {k: v for k, v in data.tests.items() if self.plot_sets is None or k in self.plot_sets},
            os.path.join(cfg.output_dir, "frames.png"),
            title=type(model).__name__,
        )
        log(f"wrote {cfg.output_dir}/: model.pt, metrics.csv, errors.md, per_frame.csv, frames.png")
        return rows


def write_report(out_dir: str, rows: list[dict], frames: Mapping, log=print) -> str:
    """Write ``errors.md`` / ``errors.csv`` (rows) and ``per_frame.csv`` (set, frame, mse) atomically; return the table."""
    lines = ["| set | sequences | MSE |", "|---|---|---|"]
    lines += [f"| {r['set']} | {r['sequences']} | {r['mse']:.6g} |" for r in rows]
    table = "\n".join(lines)
    with atomic_output(os.path.join(out_dir, "errors.md"), "w") as f:
        f.write(table + "\n")
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=["set", "sequences", "mse"])
    w.writeheader()
    w.writerows([{k: r[k] for k in ("set", "sequences", "mse")} for r in rows])
    with atomic_output(os.path.join(out_dir, "errors.csv"), "w") as f:
        f.write(buf.getvalue())
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["set", "frame", "mse"])
    for name, pf in frames.items():
        w.writerows([name, k + 1, repr(float(v))] for k, v in enumerate(pf))
    with atomic_output(os.path.join(out_dir, "per_frame.csv"), "w") as f:
        f.write(buf.getvalue())
    log(f"evaluation of the selected model (MSE over predicted frames and pixels):\n{table}")
    return table


@torch.no_grad()
def plot_predictions(model, sets: Mapping, path: str, index: int = 0, max_frames: int = 10, title: str = "") -> None:
    """Draw, per set, sequence ``index``: the last observed frames, the targets and the predictions (rows)."""
    sets = {k: v for k, v in sets.items() if v is not None and len(v)}
    if not sets:
        return
    plt = pyplot()
    p = next(model.parameters())
    model.eval()
    rows = []
    for name, ds in sets.items():
        item = ds[index]
        x, y = item["inputs"][None].to(p.device, p.dtype), item["target"]
        pred = model(x, int(y.shape[0]))[0].cpu().float()
        step = max(1, -(-int(y.shape[0]) // max_frames))
        ks = list(range(0, int(y.shape[0]), step))
        rows += [(f"{name}: target", [y[k, 0] for k in ks], ks), (f"{name}: predicted", [pred[k, 0] for k in ks], ks)]
    n = max(len(r[1]) for r in rows)
    fig, axes = plt.subplots(len(rows), n, figsize=(1.1 * n, 1.2 * len(rows)), squeeze=False)
    for i, (label, imgs, ks) in enumerate(rows):
        for j in range(n):
            ax = axes[i, j]
            ax.set_xticks([])
            ax.set_yticks([])
            if j < len(imgs):
                ax.imshow(imgs[j].clamp(0, 1).numpy(), cmap="gray", vmin=0, vmax=1)
                if i % 2 == 0:
                    ax.set_title(f"t+{ks[j] + 1}", fontsize=7)
            else:
                ax.axis("off")
        axes[i, 0].set_ylabel(label, fontsize=6, rotation=0, ha="right", va="center")
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)
