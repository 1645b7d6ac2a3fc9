"""The ``world_model`` task: a partially observed MNIST world; imagined frames scored overall and on re-entry."""

from ._data import WorldData, WorldSet, collate_worlds
from ._metrics import WorldMetrics
from ._task import WorldModelTask, pick_reentry_sequence, plot_rollout, write_report

__all__ = [
    "WorldData",
    "WorldMetrics",
    "WorldModelTask",
    "WorldSet",
    "collate_worlds",
    "pick_reentry_sequence",
    "plot_rollout",
    "write_report",
]
