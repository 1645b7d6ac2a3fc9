"""The ``world_model`` task: observe a window of a moving world, then imagine it along known actions."""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Mapping

import torch

from ..._paths import atomic_output
from ..._plotting import pyplot, save_figure
from ...data import make_loader
from .._data import TaskData
from .._registry import register_task
from .._task import Task
from ..sequence._task import checked_frames, frame_mse
from ._data import WorldData, WorldSet, collate_worlds
from ._metrics import WorldMetrics


@register_task("world_model")
class WorldModelTask(Task):
    """World modelling on a partially observed MNIST world (:class:`WorldData`; after Lillemark et al. 2026).

    Batch: ``{"inputs": [B, T_in, 1, w, w], "actions": [B, T - 1, 2] (long), "target": [B, T_out, 1, w, w],
    "reentry": [B, T_out, 1, w, w] (bool)}``. Forward:
    ``model(inputs, actions, T_out) -> [B, T_out, 1, w, w]`` (the model sees
    ``T_in`` frames, then imagines ``T_out`` more along the actions with no
    observation). Loss: mean squared error over imagined frames and pixels.
    Metrics (:class:`WorldMetrics`): ``mse`` and ``reentry_mse``, the error
    on digits that left the window and came back. The report writes
    ``errors.md`` / ``errors.csv`` per set, ``per_frame.csv`` and
    ``rollout.png`` (the world, the window, the target and the imagined frames).

    Parameters
    ----------
    training : TrainingConfig or None
    data : mapping or WorldData
        The ``task.data`` section.

    Raises
    ------
    ValueError
        Unknown ``task.data`` key or a wrong type or value (named).
    """

    data_section = False

    def __init__(self, training=None, *, data: Mapping | None = None):
        super().__init__(training)
        self.data = WorldData.from_mapping(data)

    def forward(self, model: torch.nn.Module, batch: Mapping, training: bool) -> dict:
        target = batch["target"]
        out = model(batch["inputs"], batch["actions"], int(target.shape[1]))
        return {"frames": checked_frames(out, target, "world_model")}

    def loss(self, pred: Mapping, batch: Mapping) -> tuple[torch.Tensor, dict[str, float]]:
        return frame_mse(pred, batch)

    def metrics(self) -> WorldMetrics:
        return WorldMetrics()

    def summary(self, row: Mapping[str, float]) -> str:
        mse, re = row.get("valid_mse"), row.get("valid_reentry_mse")
        return "" if mse is None else f"  valid MSE {mse:.4g}, re-entry MSE {re:.4g}"

    def load_data(self, cfg, log=print) -> TaskData:
        """The MNIST-world sets of ``task.data`` (generated, seeded)."""
        sets = self.data.load(log)
        C, w = sets["train"].world.frames.shape[2], sets["train"].world.frames.shape[-1]
        meta = {"task": "world_model", "data": dict(vars(self.data)), "dtype": cfg.dtype, "config": cfg.to_dict()}
        info = {"image_size": int(w), "in_channels": int(C), "dtype": cfg.dtype, "seed": cfg.seed}
        return TaskData(sets["train"], sets["valid"], {"test": sets["test"]}, collate_worlds, info, meta)

    @torch.no_grad()
    def evaluate(self, model, dataset, batch_size: int = 100) -> tuple[dict, tuple[list, list]]:
        """``({"sequences", "mse", "reentry_mse", "reentry_pixels", "loss"}, per-frame (mse, reentry_mse))``."""
        p = next(model.parameters())
        model.eval()
        acc = self.metrics()
        for batch in make_loader(dataset, batch_size, shuffle=False, collate_fn=collate_worlds):
            b = self.prepare(batch, p.device, p.dtype)
            pred = self.forward(model, b, False)
            loss, _ = self.loss(pred, b)
            acc.update(pred, b, float(loss))
        m = acc.compute()
        return {"sequences": int(m.pop("n_structures")), **m}, acc.per_frame()

    def report(self, model, data: TaskData, cfg, history, log=print) -> list[dict]:
        """Errors of the selected model per set and per frame; writes ``errors.md``, ``errors.csv``,
        ``per_frame.csv``, ``rollout.png``."""
        rows, frames = [], {}
        for name, ds in {"train": data.train, "valid": data.valid, **data.tests}.items():
            if ds is not None and len(ds):
                r, pf = self.evaluate(model, ds, cfg.training.valid_batch_size)
                rows.append({"set": name, **r})
                frames[name] = pf
        write_report(cfg.output_dir, rows, frames, log)
        test = self.data.load(log=lambda s: None, only=["test"], keep_world=True)["test"]
        plot_rollout({type(model).__name__: model}, test, os.path.join(cfg.output_dir, "rollout.png"))
        log(f"wrote {cfg.output_dir}/: model.pt, metrics.csv, errors.md, per_frame.csv, rollout.png")
        return rows


_COLUMNS = ("set", "sequences", "mse", "reentry_mse", "reentry_pixels")


def write_report(out_dir: str, rows: list[dict], frames: Mapping, log=print) -> str:
    """Write ``errors.md`` / ``errors.csv`` (rows) and ``per_frame.csv`` (set, frame, mse, reentry_mse) atomically;
    return the table."""
    lines = ["| set | sequences | MSE | re-entry MSE | re-entry pixels |", "|---|---|---|---|---|"]
    lines += [
        f"| {r['set']} | {r['sequences']} | {r['mse']:.6g} | {r['reentry_mse']:.6g} | {int(r['reentry_pixels'])} |"
        for r in rows
    ]
    table = "\n".join(lines)
    with atomic_output(os.path.join(out_dir, "errors.md"), "w") as f:
        f.write(table + "\n")
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(_COLUMNS))
    w.writeheader()
    w.writerows([{k: (repr(float(r[k])) if isinstance(r[k], float) else r[k]) for k in _COLUMNS} for r in rows])
    with atomic_output(os.path.join(out_dir, "errors.csv"), "w") as f:
        f.write(buf.getvalue())
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["set", "frame", "mse", "reentry_mse"])
    for name, (mse, re) in frames.items():
        w.writerows([name, k + 1, repr(float(a)), repr(float(b))] for k, (a, b) in enumerate(zip(mse, re)))
    with atomic_output(os.path.join(out_dir, "per_frame.csv"), "w") as f:
        f.write(buf.getvalue())
    log(f"evaluation of the selected model (imagined frames; re-entry: digits that left the window and came back):\n"
        f"{table}")  # fmt: skip
    return table


def pick_reentry_sequence(dataset: WorldSet) -> int:
    """Index of the sequence with the most re-entry pixels (the picture's default)."""
    return int(dataset.world.reentry[:, dataset.input_frames :].flatten(1).sum(1).argmax())


@torch.no_grad()
def plot_rollout(models: Mapping, dataset: WorldSet, path: str, index: int | None = None, context: int = 3) -> None:
    """Draw sequence ``index`` (default :func:`pick_reentry_sequence`): the world with the window (when the set kept
    it), the frames the agent sees (re-entry pixels outlined), and each model's imagined frames, from ``context``
    observed frames before the rollout to its end. ``models``: ``{label: model}``."""
    world = dataset.world
    i = pick_reentry_sequence(dataset) if index is None else int(index)
    T, T_in = world.frames.shape[1], dataset.input_frames
    ts = list(range(max(0, T_in - context), T))
    item = dataset[i]
    preds = {}
    for label, model in models.items():
        p = next(model.parameters())
        model.eval()
        x, a = item["inputs"][None].to(p.device, p.dtype), item["actions"][None].to(p.device)
        preds[label] = model(x, a, T - T_in)[0].cpu().float()
    rows = (["world"] if world.world is not None else []) + ["seen / target"] + list(preds)
    plt = pyplot()
    fig, axes = plt.subplots(len(rows), len(ts), figsize=(1.0 * len(ts), 1.05 * len(rows) + 0.3), squeeze=False)
    w, N = world.frames.shape[-1], (world.world.shape[-1] if world.world is not None else 0)
    for j, t in enumerate(ts):
        r = 0
        if world.world is not None:
            ax = axes[r, j]
            ax.imshow(world.world[i, t, 0].numpy(), cmap="gray", vmin=0, vmax=1)
            y0, x0 = world.positions[i, t].tolist()
            for dy in (0, -N):  # the window, drawn on each wrap-around copy that meets the canvas
                for dx in (0, -N):
                    ax.add_patch(plt.Rectangle((x0 + dx - 0.5, y0 + dy - 0.5), w, w, fill=False, ec="tab:orange", lw=1))
            ax.set_xlim(-0.5, N - 0.5)
            ax.set_ylim(N - 0.5, -0.5)
            r += 1
        ax = axes[r, j]
        ax.imshow(world.frames[i, t, 0].numpy(), cmap="gray", vmin=0, vmax=1)
        if t >= T_in and bool(world.reentry[i, t, 0].any()):
            ax.contour(world.reentry[i, t, 0].float().numpy(), levels=[0.5], colors="tab:red", linewidths=0.6)
        ax.set_title(("seen " if t < T_in else "") + f"t={t}", fontsize=7)
        for k, label in enumerate(preds):
            ax = axes[r + 1 + k, j]
            if t >= T_in:
                ax.imshow(preds[label][t - T_in, 0].clamp(0, 1).numpy(), cmap="gray", vmin=0, vmax=1)
            else:
                ax.set_frame_on(False)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    for r, label in enumerate(rows):
        axes[r, 0].set_ylabel(label, fontsize=6, rotation=0, ha="right", va="center")
    err = {label: float((p - world.frames[i, T_in:]).square().mean()) for label, p in preds.items()}
    fig.suptitle(
        f"MNIST world, sequence {i}: window (orange) on the {N}x{N} world; re-entering digits outlined (red); "
        + ", ".join(f"{k} MSE {v:.4f}" for k, v in err.items() if math.isfinite(v)),
        fontsize=7,
    )
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)
