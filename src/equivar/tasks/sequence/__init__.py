"""The ``sequence`` task: next-frame prediction on Translating MNIST (:class:`SequenceTask`, :class:`SequenceData`)."""

from ._data import SequenceData, SequenceSet, collate_sequences
from ._metrics import SequenceMetrics
from ._task import SequenceTask, plot_predictions, write_report

__all__ = [
    "SequenceData",
    "SequenceMetrics",
    "SequenceSet",
    "SequenceTask",
    "collate_sequences",
    "plot_predictions",
    "write_report",
]
