"""The ``classification`` task: image classifiers (cross-entropy, accuracy, shift consistency)."""

from ._metrics import AccuracyAccumulator
from ._task import ClassificationTask

__all__ = ["AccuracyAccumulator", "ClassificationTask"]
