"""The ``potential`` task: energies, forces, stress (:class:`PotentialTask`, :class:`WeightedLoss`, :class:`ErrorAccumulator`)."""

from ._loss import WeightedLoss
from ._metrics import METRICS, ErrorAccumulator
from ._task import PotentialTask

__all__ = ["METRICS", "ErrorAccumulator", "PotentialTask", "WeightedLoss"]
