"""The :class:`Task` interface: what the trainer asks of a task (see ``docs/contracts.md``, 'Tasks')."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import torch

from ..data import batch_to
from ._data import TaskData


class Task:
    """What a model is trained for: the forward call, the loss, the metrics and the batch contract.

    A run (:func:`equivar.train.run_training`) asks the task for its data (:meth:`load_data`)
    and, after training, for its report (:meth:`report`). The trainer
    (:class:`equivar.train.Trainer`) is the same for every task; per batch it calls

    .. code-block:: text

        b          = task.prepare(batch, device, dtype)       # move / cast (default: equivar.data.batch_to)
        pred       = task.forward(model, b, training)         # the model call
        loss, parts = task.loss(pred, b)                      # 0-d tensor, {term: float}
        acc        = task.metrics(); acc.update(pred, b, float(loss)); acc.all_reduce(); acc.compute()

    and per epoch ``task.validation_loss(valid_metrics)`` (what the LR schedule, best-model
    selection and early stopping watch), ``task.summary(row)`` (the log line), and at the
    stage-two switch ``task.enter_stage_two()``.

    Subclasses register with ``@register_task("name")`` and take the config's ``training``
    section as first argument plus keyword-only options (``task: {name: NAME, OPTION: VALUE}``).

    Parameters
    ----------
    training : object or None
        The config's ``training`` section (:class:`equivar.train.TrainingConfig`); tasks read their
        loss weights and stage-two settings from it.
    """

    #: registered name (set by :func:`register_task`)
    name: str = ""
    #: the task reads the config's ``data:`` section (False: its data are among its own options, and
    #: ``Config.validate`` requires ``data.train_file`` to be unset instead of set)
    data_section: bool = True

    def __init__(self, training=None):
        self.training = training

    # ---- per run -----------------------------------------------------------------------------
    def load_data(self, cfg, log: Callable[[str], None] = print) -> TaskData:
        """Read, split and check the run's data (``cfg`` is the whole :class:`equivar.train.Config`).

        Returns the datasets (items that ``collate`` batches into this task's batch contract), the
        data-derived model hyperparameters the run fills in when the model takes them, and the
        checkpoint metadata. Raises ``ValueError`` / ``FileNotFoundError`` naming the file or key.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement load_data(cfg, log) -> TaskData")

    def report(self, model: torch.nn.Module, data: TaskData, cfg, history: list, log: Callable[[str], None] = print):
        """Evaluate the selected ``model`` after training; write the task's files to ``cfg.output_dir``.

        Returns the rows of the error table (``RunResult.rows``). Default: nothing written, ``[]``.
        """
        return []

    # ---- per batch ---------------------------------------------------------------------------
    def prepare(self, batch: Mapping[str, torch.Tensor], device, dtype: torch.dtype) -> dict:
        """The batch on ``device`` with floating tensors in ``dtype`` (the model's)."""
        return batch_to(batch, device, dtype)

    def forward(self, model: torch.nn.Module, batch: Mapping[str, torch.Tensor], training: bool) -> dict:
        """The model's predictions for ``batch`` (``training``: a training step, else evaluation)."""
        return model(batch)

    def parallel_work(self, batch: Mapping[str, torch.Tensor]) -> int | None:
        """Size of a step on ``batch`` for :func:`equivar._threads.thread_policy` (edges), or ``None`` (default:
        the trainer leaves the threads as the user set them)."""
        return None

    def loss(self, pred: Mapping, batch: Mapping) -> tuple[torch.Tensor, dict[str, float]]:
        """``(loss, parts)``: a 0-d tensor to minimise, and its terms as floats."""
        raise NotImplementedError(f"{type(self).__name__} must implement loss(pred, batch)")

    def metrics(self):
        """A new accumulator: ``update(pred, batch, loss)``, ``all_reduce()`` (DDP), ``compute() -> dict``.

        ``compute()`` must include ``'loss'`` (the mean loss) once a batch was added; a key
        ``'n_structures'`` is not logged.
        """
        return LossAccumulator()

    # ---- per epoch ---------------------------------------------------------------------------
    def validation_loss(self, metrics: Mapping[str, float]) -> float:
        """The quantity model selection, the LR schedule and early stopping minimise (default ``metrics['loss']``)."""
        return float(metrics.get("loss", math.inf))

    def summary(self, row: Mapping[str, float]) -> str:
        """Extra text for the epoch log line from the metrics row (``valid_*`` keys); default none."""
        return ""

    def enter_stage_two(self) -> str:
        """Switch to the stage-two objective (e.g. loss weights); return what changed, for the log."""
        return ""


class LossAccumulator:
    """The mean of the loss over batches (as :class:`~equivar.tasks.ErrorAccumulator`), reducible over ranks."""

    def __init__(self):
        self.sums = torch.zeros(2, dtype=torch.float64)

    def update(self, pred: Mapping, batch: Mapping, loss: float | None = None) -> None:
        if loss is not None:
            self.sums += torch.tensor([float(loss), 1.0], dtype=torch.float64)

    def all_reduce(self) -> None:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(self.sums)

    def compute(self) -> dict[str, float]:
        s, n = self.sums.tolist()
        return {"loss": s / n} if n else {}
