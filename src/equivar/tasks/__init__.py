"""What a model is trained for: one :class:`Task` per kind of training, each owning its forward call,
loss, metrics and batch contract (``docs/contracts.md``, 'Tasks').

The layer sits between ``data`` and ``train``: :class:`equivar.train.Trainer`
runs any task (checkpoints, resume, EMA, stage two, budgets, progress,
metrics CSV, plots and DDP are the trainer's); a task is picked in the config
by ``task: NAME`` (or ``task: {name: NAME, OPTION: VALUE}``) among the classes
registered with ``@register_task(NAME)``.

Tasks:

- ``potential`` (:class:`PotentialTask`): energies, forces and stress of atomic
  structures (:class:`WeightedLoss`, :class:`ErrorAccumulator`).
"""

from ._registry import available_tasks, build_task, register_task, task_class, task_options
from ._task import LossAccumulator, Task
from .potential import METRICS, ErrorAccumulator, PotentialTask, WeightedLoss

__all__ = [
    "METRICS",
    "ErrorAccumulator",
    "LossAccumulator",
    "PotentialTask",
    "Task",
    "WeightedLoss",
    "available_tasks",
    "build_task",
    "register_task",
    "task_class",
    "task_options",
]
