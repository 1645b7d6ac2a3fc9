"""The ``potential`` task: energies, forces, stress (:class:`PotentialTask`, :class:`WeightedLoss`, :class:`ErrorAccumulator`),
its data (:func:`load_datasets`), evaluation (:func:`predict`, :func:`error_rows`) and parity plots."""

from ._data import Datasets, load_datasets, resolve_path
from ._evaluate import error_rows, format_table, predict, write_predictions, write_rows_csv
from ._loss import WeightedLoss
from ._metrics import METRICS, ErrorAccumulator
from ._plots import parity_figure, plot_parity
from ._task import PotentialTask

__all__ = [
    "METRICS",
    "Datasets",
    "ErrorAccumulator",
    "PotentialTask",
    "WeightedLoss",
    "error_rows",
    "format_table",
    "load_datasets",
    "parity_figure",
    "plot_parity",
    "predict",
    "resolve_path",
    "write_predictions",
    "write_rows_csv",
]
