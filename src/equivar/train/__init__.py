"""Training any model for any task (``equivar.tasks``): one trainer, config, checkpoints, resume, DDP.

``run_training(load_config("configs/x.yaml", ["training.lr=0.005"]))`` runs
the whole job (see :func:`run_training`); the pieces are usable alone:
:class:`Config` (typed YAML config), :class:`WeightedLoss`,
:class:`ExponentialMovingAverage`, :class:`Trainer` (loop, checkpoints,
resume, DDP), :func:`predict` / :func:`error_rows` (evaluation),
:func:`save_checkpoint` / :func:`load_model` (CPU-loadable checkpoints).

The potential task's data, evaluation and parity plots (``load_datasets``,
``predict``, ``error_rows``, ``plot_parity``, ...) live in
``equivar.tasks.potential`` and are re-exported here.
"""

from ..tasks.potential import (
    METRICS,
    Datasets,
    ErrorAccumulator,
    WeightedLoss,
    error_rows,
    format_table,
    load_datasets,
    plot_parity,
    predict,
    resolve_path,
    write_predictions,
    write_rows_csv,
)
from ._checkpoint import FORMAT, check_finite_weights, load_checkpoint, load_model, model_payload, save_checkpoint
from ._config import Config, DataConfig, TrainingConfig, apply_overrides, config_from_dict, load_config, save_config
from ._distributed import DistInfo, init_distributed
from ._ema import ExponentialMovingAverage
from ._logging import MetricsLog, read_metrics
from ._models import DATA_HPARAMS, build_model, complete_hparams, model_dtype, unwrap
from ._plots import plot_learning_curves
from ._run import MODEL_FILE, RunResult, run_training
from ._trainer import BEST_MODEL, CHECKPOINT, Trainer, TrainingDiverged

__all__ = [
    "FORMAT",
    "check_finite_weights",
    "load_checkpoint",
    "load_model",
    "model_payload",
    "save_checkpoint",
    "Config",
    "DataConfig",
    "TrainingConfig",
    "apply_overrides",
    "config_from_dict",
    "load_config",
    "save_config",
    "DistInfo",
    "init_distributed",
    "ExponentialMovingAverage",
    "error_rows",
    "format_table",
    "predict",
    "write_predictions",
    "write_rows_csv",
    "MetricsLog",
    "read_metrics",
    "WeightedLoss",
    "METRICS",
    "ErrorAccumulator",
    "DATA_HPARAMS",
    "build_model",
    "complete_hparams",
    "model_dtype",
    "unwrap",
    "plot_learning_curves",
    "plot_parity",
    "MODEL_FILE",
    "Datasets",
    "RunResult",
    "load_datasets",
    "resolve_path",
    "run_training",
    "BEST_MODEL",
    "CHECKPOINT",
    "Trainer",
    "TrainingDiverged",
]
