"""A whole training run from a :class:`Config`, for any task: the task's data -> model -> fit -> the task's report.

The task (``equivar.tasks``) reads its data (``task.load_data``) and writes its final report
(``task.report``: error tables, predictions, figures); the run builds the model, fits it with
:class:`Trainer`, selects it, and writes ``config.yaml``, ``metrics.csv``, the checkpoints,
``model.pt`` and ``learning_curves.png`` for every task.
"""

from __future__ import annotations

import dataclasses
import os
import random
import shutil
import time
from collections.abc import Callable, Sequence

import numpy as np
import torch

from .. import data as D
from .._paths import atomic_output
from .._threads import small_work_threshold
from ..tasks import Task, build_task
from ._checkpoint import load_model
from ._config import Config, save_config
from ._distributed import DistInfo, device_for, init_distributed, shutdown
from ._models import build_model, complete_hparams, unwrap
from ._plots import plot_learning_curves
from ._trainer import BEST_MODEL, CHECKPOINT, Trainer

MODEL_FILE = "model.pt"


@dataclasses.dataclass
class RunResult:
    """What :func:`run_training` returns.

    ``model``: the selected model (best validation loss, EMA weights), eval
    mode, CPU or the run's device; ``live_state``: this rank's final live
    weights (identical on all ranks under DDP); ``rows``: error-table rows
    (rank 0 only, else empty).
    """

    model: torch.nn.Module
    history: list
    rows: list
    output_dir: str
    live_state: dict
    dist: DistInfo


def _seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)


def run_training(
    cfg: Config, resume: bool = False, callbacks: Sequence = (), log: Callable[[str], None] | None = None
) -> RunResult:
    """Train, select, evaluate and save a model as described by ``cfg``.

    Writes to ``cfg.output_dir``: ``config.yaml``, ``metrics.csv``,
    ``checkpoint.pt`` (resumable), ``best_model.pt`` and ``model.pt``
    (selected EMA model), ``learning_curves.png``, and what the task's
    report writes (``potential``: ``errors.md``/``errors.csv`` per set and
    config_type, ``parity.png``, ``predictions_<test>.xyz``).

    Under ``torchrun`` (``WORLD_SIZE`` > 1) trains with DistributedDataParallel;
    rank 0 writes files.

    Raises
    ------
    ValueError
        bad config or data; ``output_dir`` already holds a run and neither
        ``resume`` nor ``cfg.overwrite`` is set; ``resume`` without checkpoint.
    """
    cfg.validate()
    info = init_distributed(cfg.device)
    log = log or (print if info.is_main else (lambda s: None))
    try:
        return _run(cfg, info, resume, callbacks, log)
    finally:
        shutdown(info)


def _run(cfg: Config, info: DistInfo, resume: bool, callbacks, log) -> RunResult:
    out = cfg.output_dir
    ckpt = os.path.join(out, CHECKPOINT)
    if resume and not os.path.isfile(ckpt):
        raise ValueError(f"cannot resume: {ckpt} does not exist")
    if not resume and os.path.isfile(ckpt) and not cfg.overwrite:
        raise ValueError(
            f"{out} already holds a run ({CHECKPOINT}); pass --resume to continue it, "
            f"or set overwrite=true / choose another output_dir"
        )
    if info.is_main:  # a bad output_dir fails now, not after the data are read and the model built
        from .._paths import prepare_output_dir

        prepare_output_dir(out, "output_dir")
    resume_payload = None
    if resume:  # a truncated or foreign checkpoint fails now, not after the data are read and the model built
        from ._checkpoint import load_checkpoint

        resume_payload = load_checkpoint(ckpt)
        if "train_state" not in resume_payload:
            raise ValueError(f"{ckpt}: holds a model only, no training state to resume")
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    _seed_everything(cfg.seed)
    task = build_task(cfg.task, cfg.training)
    t0 = time.perf_counter()
    td = task.load_data(cfg, log)
    hparams = complete_hparams(cfg.model, td.data_info)
    note = f"; {td.note}" if td.note else f"; data ready in {time.perf_counter() - t0:.1f} s"
    trainer, final, live_state = _fit(
        cfg,
        info,
        resume,
        resume_payload,
        callbacks,
        log,
        task,
        hparams,
        td.train,
        td.valid,
        td.collate,
        td.metadata,
        note,
    )
    rows = []
    if info.is_main:
        if trainer.history:
            plot_learning_curves(trainer.history, os.path.join(out, "learning_curves.png"))
        rows = task.report(final, td, cfg, trainer.history, log)
    return RunResult(final, trainer.history, rows, out, live_state, info)


def _fit(
    cfg, info, resume, resume_payload, callbacks, log, task, hparams, train_set, valid_set, collate, metadata, built=""
):
    """Build the model, fit it with :class:`Trainer` and select it (any task): ``(trainer, final model, live state)``."""
    out = cfg.output_dir
    ckpt = os.path.join(out, CHECKPOINT)
    device = device_for(cfg.device, info)
    dtype = getattr(torch, cfg.dtype)
    torch.manual_seed(cfg.seed)
    model = build_model(hparams).to(dtype=dtype).to(device)
    n_params = sum(p.numel() for p in model.parameters())
    log(
        f"model {hparams['name']}: {n_params} parameters, {cfg.dtype}, {device}"
        + (f", {info.world_size} processes (DDP)" if info.distributed else "")
        + built
        + (f"; {torch.get_num_threads()} torch threads" if device.type == "cpu" else "")
    )
    threaded_policy = type(task).parallel_work is not Task.parallel_work
    if device.type == "cpu" and torch.get_num_threads() > 1 and threaded_policy:
        log(
            f"threads: batches under {small_work_threshold()} edges run torch's operations on 1 thread and the "
            f"tensor-product kernels on {torch.get_num_threads()} (README, 'CPU settings')"
        )
    elif device.type == "cpu" and cfg.num_threads is None and torch.get_num_threads() > 1:
        log(
            f"note: num_threads is unset, so torch uses {torch.get_num_threads()} threads; for small models "
            "one thread is often 2-3x faster (num_threads: 1 in the config; README, 'CPU settings')"
        )
    if info.distributed:
        ids = [device.index] if device.type == "cuda" else None
        model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=ids, find_unused_parameters=cfg.training.find_unused_parameters
        )
    tc = cfg.training
    train_loader = D.make_loader(
        train_set,
        tc.batch_size,
        shuffle=True,
        seed=cfg.seed,
        rank=info.rank,
        world_size=info.world_size,
        collate_fn=collate,
    )
    valid_loader = (
        D.make_loader(
            valid_set,
            tc.valid_batch_size,
            shuffle=False,
            rank=info.rank,
            world_size=info.world_size,
            collate_fn=collate,
        )
        if valid_set is not None
        else None
    )
    if resume:  # every refusal before anything is written: a refused resume leaves the run as it was
        from ._checkpoint import check_resumable

        check_resumable(resume_payload, unwrap(model).hparams, ckpt)
    if info.is_main:
        os.makedirs(out, exist_ok=True)
        save_config(cfg, os.path.join(out, "config.yaml"))
    trainer = Trainer(
        model,
        train_loader,
        valid_loader,
        tc,
        out,
        device,
        metadata,
        info,
        progress=cfg.progress,
        callbacks=callbacks,
        log=log,
        task=task,
    )
    if resume:
        trainer.resume(ckpt, resume_payload)
    trainer.fit()
    live_state = {k: v.detach().cpu().clone() for k, v in unwrap(model).state_dict().items()}
    if trainer.ema is not None:
        live_state.update({f"ema.{i}": s.detach().cpu().clone() for i, s in enumerate(trainer.ema.shadow)})
    final = unwrap(model)
    if info.is_main:
        best = os.path.join(out, BEST_MODEL)
        final = load_model(best, device=device)
        with open(best, "rb") as src, atomic_output(os.path.join(out, MODEL_FILE), "wb") as dst:
            shutil.copyfileobj(src, dst)
    return trainer, final, live_state
