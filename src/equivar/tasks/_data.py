"""What a task that reads its own data hands to the trainer (:class:`TaskData`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable


@dataclasses.dataclass
class TaskData:
    """What ``task.load_data(cfg, log)`` hands to the run: datasets, how to batch them, facts for the model.

    Attributes
    ----------
    train, valid : ``torch.utils.data.Dataset`` of batch items (``valid`` may be None)
    tests : dict ``{name: Dataset}``
    collate : callable turning a list of items into a batch dict
    data_info : dict of data-derived model hyperparameters (``equivar.train.DATA_HPARAMS``)
    metadata : dict stored in every checkpoint
    note : str
        Shown in the run's model line (e.g. ``graphs built in 1.2 s, 11.3 neighbours/atom``).
    extra : object
        Anything the task's :meth:`~equivar.tasks.Task.report` needs (the potential task: the configurations).
    """

    train: object
    valid: object | None
    tests: dict
    collate: Callable
    data_info: dict
    metadata: dict
    note: str = ""
    extra: object = None
