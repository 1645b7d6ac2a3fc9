"""The ``dynamics`` task: trajectories of interacting agents (:class:`DynamicsTask`, :class:`DynamicsData`).

Metrics: :func:`displacement_errors` (ADE/FDE), :func:`min_over_hypotheses`
(minADE/minFDE over K samples), :class:`DynamicsMetrics`.
"""

from ._data import DynamicsData
from ._metrics import DynamicsMetrics, displacement_errors, min_over_hypotheses
from ._task import DynamicsTask

__all__ = ["DynamicsData", "DynamicsMetrics", "DynamicsTask", "displacement_errors", "min_over_hypotheses"]
