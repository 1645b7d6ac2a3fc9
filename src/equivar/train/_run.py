"""A whole training run from a :class:`Config`: data -> model -> fit -> error tables, plots, model file."""

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
from ..tasks import build_task
from ._checkpoint import load_model
from ._config import Config, save_config
from ._distributed import DistInfo, device_for, init_distributed, shutdown
from ._evaluate import error_rows, format_table, predict, write_predictions, write_rows_csv
from ._models import build_model, complete_hparams, unwrap
from ._plots import plot_learning_curves, plot_parity
from ._trainer import BEST_MODEL, CHECKPOINT, Trainer

MODEL_FILE = "model.pt"


@dataclasses.dataclass
class Datasets:
    """Configurations of a run, split and checked, with the E0s and element list."""

    train: list
    valid: list
    tests: dict
    isolated: list
    atomic_numbers: list
    e0s: dict


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


def resolve_path(path: str) -> str:
    """``embedded:NAME`` -> the shipped dataset's path; other paths unchanged."""
    if path.startswith("embedded:"):
        return D.embedded_path(path.split(":", 1)[1])
    return path


def _read(path: str, cfg: Config) -> list:
    d = cfg.data
    keys = D.DataKeys(
        energy=d.energy_key,
        forces=d.forces_key,
        stress=d.stress_key,
        virials=d.virials_key,
        config_type=d.config_type_key,
        weight=d.weight_key,
    )
    return D.read_dataset(resolve_path(path), format=d.format, keys=keys, min_distance=d.min_distance)


def load_datasets(cfg: Config, log: Callable[[str], None] = print) -> Datasets:
    """Read and split the data of ``cfg.data``.

    Raises
    ------
    FileNotFoundError, ValueError
        missing or bad files (messages name file, frame and key), test
        sets with elements absent from the training data.
    """
    d = cfg.data
    configs = _read(d.train_file, cfg)
    isolated, configs = D.split_isolated_atoms(configs)
    if d.e0s_file:
        isolated += D.split_isolated_atoms(_read(d.e0s_file, cfg))[0]
    if not configs:
        raise ValueError(f"{d.train_file}: no training configurations (only isolated atoms)")
    split_seed = cfg.seed if d.split_seed is None else d.split_seed
    if d.valid_file:
        train = configs[: d.max_train] if d.max_train else configs
        valid = D.split_isolated_atoms(_read(d.valid_file, cfg))[1]
    else:
        train, valid = D.random_split(configs, d.valid_fraction, split_seed, d.max_train)
    zs = sorted({int(z) for c in train + valid + isolated for z in c.atomic_numbers})
    tests = {}
    for name, path in (d.test_files or {}).items():
        tests[str(name)] = D.split_isolated_atoms(_read(path, cfg))[1]
        D.check_elements(tests[str(name)], zs)
    e0s = D.resolve_e0s(d.e0s, train, isolated, zs)
    log(
        f"data: {len(train)} train, {len(valid)} valid"
        + "".join(f", {len(v)} {k}" for k, v in tests.items())
        + f"; elements {zs}; E0s "
        + ", ".join(f"{z}: {e:.4f}" for z, e in e0s.items())
        + " eV"
    )
    return Datasets(train, valid, tests, isolated, zs, e0s)


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
    (selected EMA model), ``errors.md``/``errors.csv`` (train/valid/test per
    config_type), ``learning_curves.png``, ``parity.png`` and
    ``predictions_<test>.xyz``.

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
    if hasattr(task, "load_data"):  # tasks that read their own data (classification: image folders)
        td = task.load_data(cfg, log)
        hparams = complete_hparams(cfg.model, td.data_info)
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
        )
        rows = task.report(final, td, cfg, trainer.history, log) if info.is_main else []
        return RunResult(final, trainer.history, rows, out, live_state, info)
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
    hparams = complete_hparams(cfg.model, data_info)
    metadata = {
        "r_max": r_max,
        "atomic_numbers": ds.atomic_numbers,
        "e0s": {int(z): float(e) for z, e in ds.e0s.items()},
        "dtype": cfg.dtype,
        "statistics": stats,
        "config": cfg.to_dict(),
    }
    built = f"; graphs built in {time.perf_counter() - t0:.1f} s, {stats['avg_num_neighbors']:.1f} neighbours/atom"
    trainer, final, live_state = _fit(
        cfg, info, resume, resume_payload, callbacks, log, task, hparams, train_set, valid_set, None, metadata, built
    )
    rows = _final_report(final, ds, cfg, trainer.history, log) if info.is_main else []
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
    if device.type == "cpu" and cfg.num_threads is None and torch.get_num_threads() > 1:
        log(
            f"note: num_threads is unset, so torch uses {torch.get_num_threads()} threads; for molecules of tens of "
            "atoms one thread is often 2-3x faster (num_threads: 1 in the config; README, 'CPU settings')"
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


def _final_report(model, ds: Datasets, cfg: Config, history, log) -> list:
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
    if history:
        plot_learning_curves(history, os.path.join(out, "learning_curves.png"))
    parity_sets = {k: v for k, v in results.items() if k != "train"} or results
    plot_parity(parity_sets, os.path.join(out, "parity.png"))
    log(f"evaluation ({time.perf_counter() - t0:.1f} s), errors of the selected model:\n{table}")
    log(f"wrote {out}/: model.pt, metrics.csv, errors.md, learning_curves.png, parity.png")
    return rows
