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
- ``classification`` (:class:`ClassificationTask`): image classifiers on
  MNIST-layout folders (cross-entropy, accuracy, shift consistency); it reads
  its own data (``load_data`` -> :class:`TaskData`) and writes its own report.
- ``dynamics`` (:class:`DynamicsTask`): future positions of interacting agents
  (N-body, ETH-UCY); MSE, ADE/FDE, minADE/minFDE over K hypotheses. Its data
  are set under ``task: {name: dynamics, data: {...}}`` (:class:`DynamicsData`:
  simulated N-body systems or ETH-UCY files), not the ``data:`` section.
- ``molecule_diffusion`` (:class:`MoleculeDiffusionTask`): a molecule denoiser on QM9 (EQGAT-diff's
  categorical diffusion or EDM's continuous one), then sampled molecules scored by
  :func:`molecule_metrics`; data under ``task: {name: molecule_diffusion, data: {...}}``.
- ``sequence`` (:class:`SequenceTask`): next-frame prediction (FERNN / G-RNN on
  Translating MNIST, :class:`SequenceData` under ``task: {name: sequence,
  data: {...}}``); MSE overall and per predicted frame.
- ``trajectory_diffusion`` (:class:`TrajectoryDiffusionTask`): a conditional trajectory diffusion model
  (GeoTDM) on the dynamics data: its diffusion loss in training, minADE/minFDE of its K samples in the report.
- ``world_model`` (:class:`WorldModelTask`): a world model with memory on a partially observed MNIST world
  (:class:`WorldData` under ``task: {name: world_model, data: {...}}``); MSE of imagined frames overall and
  on digits that left the window and came back.
"""

from ._data import TaskData
from ._registry import available_tasks, build_task, register_task, task_class, task_options
from ._task import LossAccumulator, Task
from .classification import AccuracyAccumulator, ClassificationTask
from .dynamics import DynamicsData, DynamicsMetrics, DynamicsTask
from .molecules import MoleculeData, MoleculeDiffusionTask, molecule_metrics
from .potential import METRICS, ErrorAccumulator, PotentialTask, WeightedLoss
from .sequence import SequenceData, SequenceMetrics, SequenceTask
from .trajectory_diffusion import TrajectoryDiffusionTask
from .world_model import WorldData, WorldMetrics, WorldModelTask

__all__ = [
    "AccuracyAccumulator",
    "ClassificationTask",
    "DynamicsData",
    "DynamicsMetrics",
    "DynamicsTask",
    "MoleculeData",
    "MoleculeDiffusionTask",
    "molecule_metrics",
    "TaskData",
    "METRICS",
    "ErrorAccumulator",
    "LossAccumulator",
    "PotentialTask",
    "SequenceData",
    "SequenceMetrics",
    "SequenceTask",
    "Task",
    "TrajectoryDiffusionTask",
    "WeightedLoss",
    "WorldData",
    "WorldMetrics",
    "WorldModelTask",
    "available_tasks",
    "build_task",
    "register_task",
    "task_class",
    "task_options",
]
