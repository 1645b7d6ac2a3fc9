"""The training loop: optimizer, EMA, LR schedule, early stopping, checkpoints, resume."""

from __future__ import annotations

import math
import os
import random
import time
from collections.abc import Callable, Sequence

import torch

from .._threads import thread_policy
from ..tasks import Task, build_task
from ._checkpoint import load_checkpoint, model_payload, save_checkpoint
from ._config import TrainingConfig
from ._distributed import DistInfo
from ._ema import ExponentialMovingAverage
from ._logging import MetricsLog
from ._models import model_dtype, unwrap

CHECKPOINT = "checkpoint.pt"
BEST_MODEL = "best_model.pt"


#: The largest finite float32 (3.4e38): a loss or gradient norm beyond it has overflowed in a float32 run, and in a
#: float64 run is a blow-up all the same.
FLOAT32_MAX = float(torch.finfo(torch.float32).max)


class TrainingDiverged(ValueError):
    """Training produced a non-finite loss, gradient or weight, or blew up while staying finite (a loss above
    ``training.divergence_factor`` times the first step's loss, a gradient norm beyond the float32 range); raised
    before the bad update is applied or saved, so ``checkpoint.pt`` still holds the last good epoch. The message
    is one line: epoch, step, what, and what to do (a lower learning rate, a look at the data)."""


#: A callback is called as ``callback(event, trainer)`` with event in
#: ``"step_end"``, ``"epoch_end"``; raising from it stops training (tests use
#: this to simulate a crash).
Callback = Callable[[str, "Trainer"], None]


def make_optimizer(model: torch.nn.Module, cfg: TrainingConfig) -> torch.optim.Optimizer:
    """Adam / AMSGrad / AdamW over the trainable parameters, with the multi-tensor (``foreach``) update
    also on the CPU, where PyTorch defaults to a per-parameter loop (0.8 against 1.6 ms per step for the
    28 parameter tensors of the rMD17 MACE config, 1 thread), or with ``training.optimizer_update: fused``
    PyTorch's fused update (one kernel for all parameters; EGNN's 66 tensors, 1 thread: 0.45 ms against
    1.3 ms foreach, which the CPU runs as a loop too), where every parameter is a float32/float64 tensor
    on the CPU or a CUDA device (else ``foreach``)."""
    params = [p for p in model.parameters() if p.requires_grad]
    fused = getattr(cfg, "optimizer_update", "foreach") == "fused" and _fused_ok(params)
    kind = {"fused": True} if fused else {"foreach": True}
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, **kind)
    return torch.optim.Adam(
        params, lr=cfg.lr, weight_decay=cfg.weight_decay, amsgrad=cfg.optimizer == "amsgrad", **kind
    )


def _fused_ok(params) -> bool:
    return bool(params) and all(
        p.dtype in (torch.float32, torch.float64) and p.device.type in ("cpu", "cuda") and not p.is_sparse
        for p in params
    )


class Trainer:
    """Train ``model`` for ``task`` on ``train_loader`` and select it on ``valid_loader``.

    Each epoch: one pass over the (sharded) training data with gradient
    clipping and an EMA update per step; validation with the EMA weights;
    ReduceLROnPlateau on the validation loss; ``checkpoint.pt`` (everything
    needed to resume) written atomically; ``best_model.pt`` (EMA weights,
    hparams, metadata) when the validation loss improves; early stopping
    after ``early_stopping_patience`` epochs without improvement.

    What is computed per batch (the model call, the loss, the metrics, the batch move) and
    what stage two changes in the objective is the task's (:class:`equivar.tasks.Task`); the
    loop, the optimiser, EMA, the schedule, budgets, checkpoints, resume, the metrics CSV
    and DDP are the trainer's, for every task.

    Parameters
    ----------
    model : the model, possibly wrapped in ``DistributedDataParallel``
    train_loader, valid_loader : loaders of batch dicts (``valid_loader`` may be None)
    cfg : TrainingConfig
    output_dir : str
        Where checkpoints and ``metrics.csv`` go (rank 0 writes).
    device : torch.device
    metadata : dict stored in every checkpoint (r_max, elements, E0s, config, ...)
    dist : DistInfo
    progress : bool, show a tqdm bar
    callbacks : sequence of :data:`Callback`
    log : callable taking a line of text (rank 0 only)
    task : Task, optional
        default: ``build_task("potential", cfg)``, energies/forces/stress with ``cfg``'s loss weights.
    """

    def __init__(
        self,
        model,
        train_loader,
        valid_loader,
        cfg: TrainingConfig,
        output_dir: str,
        device,
        metadata: dict | None = None,
        dist: DistInfo = DistInfo(),
        progress: bool = True,
        callbacks: Sequence[Callback] = (),
        log: Callable[[str], None] = print,
        task: Task | None = None,
    ):
        self.model = model
        self.train_loader = train_loader
        self.valid_loader = valid_loader
        self.cfg = cfg
        self.output_dir = output_dir
        self.device = device
        self.metadata = dict(metadata or {})
        self.dist = dist
        self.progress = progress
        self.callbacks = list(callbacks)
        self.log = log if dist.is_main else (lambda s: None)
        self.dtype = model_dtype(unwrap(model))
        self.task = task if task is not None else build_task("potential", cfg)
        self.optimizer = make_optimizer(unwrap(model), cfg)
        self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            self.optimizer, mode="min", factor=cfg.scheduler_factor, patience=cfg.scheduler_patience
        )
        self.ema = ExponentialMovingAverage(unwrap(model), cfg.ema_decay) if cfg.ema_decay else None
        self.epoch = 0
        self.step = 0
        self.best_loss = math.inf
        self.best_epoch = 0
        self.bad_epochs = 0
        self.elapsed = 0.0
        self.cpu_elapsed = 0.0
        self.history: list[dict] = []
        self.stop_reason = ""
        self._stage = 1
        self.reference_loss: float | None = None  # the run's first training-step loss: the divergence test's scale
        self.metrics_log = MetricsLog(output_dir) if dist.is_main else None

    # ---- state -------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "ema": None if self.ema is None else self.ema.state_dict(),
            "epoch": self.epoch,
            "step": self.step,
            "best_loss": self.best_loss,
            "best_epoch": self.best_epoch,
            "bad_epochs": self.bad_epochs,
            "elapsed": self.elapsed,
            "cpu_elapsed": self.cpu_elapsed,
            "history": list(self.history),
            "stage": self._stage,
            "reference_loss": self.reference_loss,
            "torch_rng": torch.get_rng_state(),
            "python_rng": random.getstate(),
        }

    def load_state_dict(self, st: dict) -> None:
        self.optimizer.load_state_dict(st["optimizer"])
        self.scheduler.load_state_dict(st["scheduler"])
        if self.ema is not None and st.get("ema") is not None:
            self.ema.load_state_dict(st["ema"])
        for k in ("epoch", "step", "best_loss", "best_epoch", "bad_epochs", "elapsed"):
            setattr(self, k, st[k])
        self.cpu_elapsed = st.get("cpu_elapsed", 0.0)
        self.reference_loss = st.get("reference_loss")  # absent from older checkpoints: the next step's loss
        if st.get("stage", 1) == 2:  # the optimizer and scheduler states already hold stage two's lr
            self._enter_stage_two(reset_best=False)
        self.history = list(st["history"])
        torch.set_rng_state(st["torch_rng"])
        random.setstate(st["python_rng"])

    def checkpoint_path(self) -> str:
        return os.path.join(self.output_dir, CHECKPOINT)

    def save(self) -> None:
        """Write ``checkpoint.pt`` (live weights + training state), rank 0 only."""
        if not self.dist.is_main:
            return
        payload = model_payload(self.model, self.metadata)
        payload["train_state"] = self.state_dict()
        save_checkpoint(self.checkpoint_path(), payload)

    def resume(self, path: str | None = None, payload: dict | None = None) -> None:
        """Restore weights and training state from ``path`` (default ``output_dir/checkpoint.pt``).

        ``payload``: the checkpoint already read from ``path`` by :func:`load_checkpoint` (not read again).
        """
        if payload is None:
            payload = load_checkpoint(path or self.checkpoint_path())
        if "train_state" not in payload:
            raise ValueError(f"{path or self.checkpoint_path()}: holds a model only, no training state to resume")
        mine = dict(getattr(unwrap(self.model), "hparams", {}))
        diff = sorted(k for k in set(mine) | set(payload["hparams"]) if mine.get(k) != payload["hparams"].get(k))
        if diff:
            raise ValueError(
                f"cannot resume {path or self.checkpoint_path()}: the model hyperparameters differ from "
                f"the checkpoint's in {diff}"
            )
        unwrap(self.model).load_state_dict(payload["state_dict"])
        self.load_state_dict(payload["train_state"])
        if self.metrics_log is not None:
            self.metrics_log.rewrite(self.history)
        self.log(f"resumed from epoch {self.epoch} (step {self.step})")
        # a learning rate changed on the command line (--resume --set training.lr=...) replaces the saved one, which
        # the optimizer state would otherwise restore: the way to continue a run that diverged
        saved_lr = ((payload.get("metadata") or {}).get("config") or {}).get("training", {}).get("lr")
        if saved_lr is not None and float(saved_lr) != float(self.cfg.lr):
            for g in self.optimizer.param_groups:
                g["lr"] = float(self.cfg.lr)
            self.scheduler.num_bad_epochs = 0
            self.log(f"learning rate {self.cfg.lr:g} (training.lr changed from {float(saved_lr):g})")

    def averaged(self):
        """Context manager: the model holds the EMA weights inside (no-op without EMA)."""
        import contextlib

        return self.ema.average_parameters() if self.ema is not None else contextlib.nullcontext()

    # ---- loop ---------------------------------------------------------------------------
    def _emit(self, event: str) -> None:
        for cb in self.callbacks:
            cb(event, self)

    def _forward(self, model, batch, training: bool):
        b = self.task.prepare(batch, self.device, self.dtype)
        return b, self.task.forward(model, b, training)

    def train_epoch(self) -> dict:
        from tqdm.auto import tqdm

        model = self.model
        model.train()
        self.train_loader.sampler.set_epoch(self.epoch)
        acc = self.task.metrics()
        t_limit, c_limit = self.cfg.max_time_s, self.cfg.max_cpu_s
        t0 = time.perf_counter()
        c0 = time.process_time()
        self._update_stage(0.0, 0.0)
        bar = tqdm(
            self.train_loader,
            desc=f"epoch {self.epoch + 1}",
            leave=False,
            disable=(None if self.progress and self.dist.is_main else True),  # None: off when not a terminal
            dynamic_ncols=True,
        )
        n_batches = max(len(self.train_loader), 1)
        for i, batch in enumerate(bar):
            if self.cfg.scheduler == "cosine":
                self._set_cosine_lr(i / n_batches, time.perf_counter() - t0, time.process_time() - c0)
            b = self.task.prepare(batch, self.device, self.dtype)
            with thread_policy(self.task.parallel_work(b)):  # small batches: torch ops on one thread, kernels on all
                pred = self.task.forward(model, b, True)
                loss, _ = self.task.loss(pred, b)
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if self.cfg.clip_grad_norm:
                    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), self.cfg.clip_grad_norm)
                else:
                    grad_norm = torch.nn.utils.get_total_norm(
                        [p.grad for p in model.parameters() if p.grad is not None]
                    )
                loss_value = float(loss.detach())
                self._check_step(loss_value, float(grad_norm))  # before the update: the weights stay the last good
                self.optimizer.step()
                if self.ema is not None:
                    self.ema.update()
            self.step += 1
            acc.update(pred, b, loss_value)
            bar.set_postfix(loss=f"{loss_value:.4g}")
            self._emit("step_end")
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            over_wall = t_limit is not None and self.elapsed + wall > t_limit
            over_cpu = c_limit is not None and self.cpu_elapsed + cpu > c_limit
            if (t_limit is not None or c_limit is not None) and self._over_budget(over_wall or over_cpu):
                self.stop_reason = (
                    f"time budget of {t_limit:.0f} s reached"
                    if over_wall or c_limit is None
                    else f"CPU budget of {c_limit:.0f} s reached"
                )
                break
            self._update_stage(wall, cpu)
        bar.close()
        self.elapsed += time.perf_counter() - t0
        self.cpu_elapsed += time.process_time() - c0
        acc.all_reduce()
        return acc.compute()

    def _set_cosine_lr(self, epoch_fraction: float, wall: float, cpu: float) -> None:
        """``training.scheduler: cosine``: ``lr (1 + cos(pi f)) / 2`` times the linear warm-up, before each step."""
        c = self.cfg
        f = max(self.progress_fraction(wall, cpu), (self.epoch + epoch_fraction) / c.epochs)
        factor = 0.5 * (1.0 + math.cos(math.pi * min(f, 1.0)))
        if c.warmup_epochs > 0:
            factor *= min(1.0, (self.epoch + epoch_fraction + 1.0 / max(len(self.train_loader), 1)) / c.warmup_epochs)
        for g in self.optimizer.param_groups:
            g["lr"] = c.lr * factor

    # ---- divergence -----------------------------------------------------------------------
    def _diverged(self, what: str, epoch: int | None = None, step: int | None = None) -> TrainingDiverged:
        """The one-line error for a non-finite ``what`` (``"the loss is nan"``) in ``epoch`` (1-based; default the
        one running) at the current step."""
        epoch = self.epoch + 1 if epoch is None else epoch
        step = self.step + 1 if step is None else step
        ckpt = self.checkpoint_path()
        if os.path.isfile(ckpt) and epoch > 1:
            where = (
                f"{ckpt} still holds the last good state (epoch {epoch - 1}): continue it with --resume "
                "and a lower training.lr"
            )
        else:
            where = "no epoch finished, so there is no checkpoint: start again with a lower training.lr"
        lr = self.optimizer.param_groups[0]["lr"]
        return TrainingDiverged(
            f"training diverged at epoch {epoch}, step {step}: {what}; {where} "
            f"(lr is {lr:g}), or look for outliers in the data (labels, units, overlapping atoms)"
        )

    def _check_step(self, loss: float, grad_norm: float) -> None:
        """Raise :class:`TrainingDiverged` (on every rank when it holds on any) when the loss or the gradient norm
        is not finite, the gradient norm is beyond the float32 range, or the loss is above
        ``divergence_factor`` times :attr:`reference_loss` (the run's first-step loss, set here)."""
        if self.reference_loss is None and math.isfinite(loss) and loss > 0:
            self.reference_loss = loss
        what = self._step_problem(loss, grad_norm)
        if self._any_rank(what is not None):
            raise self._diverged((what or "on another rank") + " (weights not updated with it)")

    def _step_problem(self, loss: float, grad_norm: float) -> str | None:
        if not math.isfinite(loss):
            return f"the loss is {loss}"
        if not math.isfinite(grad_norm):
            return f"the gradient norm is {grad_norm}"
        if grad_norm > FLOAT32_MAX:
            return f"the gradient norm {grad_norm:.3g} is beyond the float32 range ({FLOAT32_MAX:.3g})"
        return self._blown_up("loss", loss)

    def _blown_up(self, name: str, loss: float) -> str | None:
        """``"the <name> 3.3e+157 is over 1e+06 x the first step's loss 12.5"`` when ``loss`` is that large."""
        factor, ref = self.cfg.divergence_factor, self.reference_loss
        if factor is None or ref is None or not loss > factor * ref:
            return None
        return (
            f"the {name} {loss:.3g} is over {factor:g} x the first step's loss {ref:.3g} (training.divergence_factor)"
        )

    def _check_weights(self) -> None:
        """Raise :class:`TrainingDiverged` naming the first parameter (or EMA copy) that is not finite."""
        bad = next((n for n, p in unwrap(self.model).named_parameters() if not bool(torch.isfinite(p).all())), None)
        if bad is None and self.ema is not None:
            bad = next(
                (f"EMA copy {i}" for i, t in enumerate(self.ema.shadow) if not bool(torch.isfinite(t).all())), None
            )
        if self._any_rank(bad is not None):
            raise self._diverged(
                f"parameter {bad or '(on another rank)'} is not finite after the update", step=self.step
            )

    def _any_rank(self, flag: bool) -> bool:
        """Whether ``flag`` is true on any rank (all ranks must stop together)."""
        return self._over_budget(flag)

    def progress_fraction(self, wall: float = 0.0, cpu: float = 0.0) -> float:
        """How far through the run training is, in [0, 1]: the largest of the epoch fraction and
        the fractions of the wall and CPU budgets used (``wall``/``cpu``: seconds of the current epoch)."""
        c = self.cfg
        f = self.epoch / c.epochs
        if c.max_time_s:
            f = max(f, (self.elapsed + wall) / c.max_time_s)
        if c.max_cpu_s:
            f = max(f, (self.cpu_elapsed + cpu) / c.max_cpu_s)
        return min(f, 1.0)

    @property
    def in_stage_two(self) -> bool:
        return self._stage == 2

    def _update_stage(self, wall: float, cpu: float) -> None:
        """Switch to stage two (the task's objective, the learning rate) once ``stage_two_start`` of the run has passed.

        Decided on rank 0's clock and broadcast, so every rank switches at the same step."""
        c = self.cfg
        if c.stage_two_start is None or self._stage == 2:
            return
        if not self._over_budget(self.progress_fraction(wall, cpu) >= c.stage_two_start):
            return
        what = self._enter_stage_two(reset_best=True)
        self.log(f"stage two from step {self.step}: " + (f"{what}, " if what else "") + f"lr {c.stage_two_lr:g}")

    def _enter_stage_two(self, reset_best: bool) -> str:
        c = self.cfg
        self._stage = 2
        what = self.task.enter_stage_two()
        if reset_best:
            for g in self.optimizer.param_groups:
                g["lr"] = c.stage_two_lr
            self.scheduler.best = self.scheduler.mode_worse
            self.scheduler.num_bad_epochs = 0
            self.best_loss, self.bad_epochs = math.inf, 0
        return what

    def _over_budget(self, over: bool) -> bool:
        """Whether any rank is over the time budget (all ranks must stop together)."""
        if not self.dist.distributed:
            return over
        import torch.distributed as tdist

        flag = torch.tensor([1.0 if over else 0.0])
        tdist.all_reduce(flag, op=tdist.ReduceOp.MAX)
        return bool(flag.item())

    def validate(self, loader=None) -> dict:
        """Metrics and mean loss of the EMA model on ``loader`` (default the validation loader), reduced over ranks."""
        loader = loader or self.valid_loader
        m = unwrap(self.model)
        m.eval()
        acc = self.task.metrics()
        with self.averaged():
            for batch in loader:
                b, pred = self._forward(m, batch, training=False)
                loss, _ = self.task.loss(pred, b)
                acc.update(pred, b, float(loss.detach()))
        m.train()
        acc.all_reduce()
        return acc.compute()

    def save_best(self) -> None:
        if not self.dist.is_main:
            return
        with self.averaged():
            payload = model_payload(self.model, {**self.metadata, "epoch": self.epoch})
        save_checkpoint(os.path.join(self.output_dir, BEST_MODEL), payload)

    def fit(self) -> list[dict]:
        """Train until ``cfg.epochs``, early stopping, or the time budget; returns the history."""
        cfg = self.cfg
        while self.epoch < cfg.epochs and not self.stop_reason:
            train = self.train_epoch()
            self._check_weights()  # finite losses and gradients can still step to an overflow: never save that
            self.epoch += 1
            row = {
                "epoch": self.epoch,
                "step": self.step,
                "stage": self._stage,
                "time_s": round(self.elapsed, 3),
                "cpu_s": round(self.cpu_elapsed, 3),
                "lr": self.optimizer.param_groups[0]["lr"],
            }
            row.update({f"train_{k}": v for k, v in train.items() if k != "n_structures"})
            last = self.epoch == cfg.epochs or bool(self.stop_reason)
            if self.valid_loader is not None and (self.epoch % cfg.eval_every == 0 or last):
                valid = self.validate()
                row.update({f"valid_{k}": v for k, v in valid.items() if k != "n_structures"})
                vloss = self.task.validation_loss(valid)
                vbad = None
                if "loss" in valid:
                    vbad = (
                        f"the validation loss is {valid['loss']}"
                        if not math.isfinite(valid["loss"])
                        else self._blown_up("validation loss", valid["loss"])
                    )
                if self._any_rank(vbad is not None):  # before the checkpoint: it keeps the last good epoch
                    weights = " (EMA weights)" if self.ema is not None else ""
                    raise self._diverged(f"{vbad or 'on another rank'}{weights}", epoch=self.epoch, step=self.step)
                if cfg.scheduler == "plateau":
                    self.scheduler.step(vloss)
                if vloss < self.best_loss:
                    self.best_loss, self.best_epoch, self.bad_epochs = vloss, self.epoch, 0
                    self.save_best()
                else:
                    self.bad_epochs += cfg.eval_every
                if cfg.early_stopping_patience is not None and self.bad_epochs >= cfg.early_stopping_patience:
                    self.stop_reason = f"early stopping: no improvement for {self.bad_epochs} epochs"
            elif self.valid_loader is None:
                self.best_epoch = self.epoch
                self.save_best()
            self.history.append(row)
            self.save()
            if self.metrics_log is not None:
                self.metrics_log.write(row, self.history)
            self.log(_summary(row, cfg.epochs, self.task.summary(row)))
            self._emit("epoch_end")
        if self.stop_reason:
            self.log(self.stop_reason)
        return self.history


def _summary(row: dict, epochs: int, task_text: str = "") -> str:
    s = f"epoch {row['epoch']:>4}/{epochs}  loss {row.get('train_loss', float('nan')):.4g}"
    if "valid_loss" in row:
        s += f"  valid loss {row['valid_loss']:.4g}" + task_text
    return s + f"  lr {row['lr']:.3g}  {row['time_s']:.1f} s"
