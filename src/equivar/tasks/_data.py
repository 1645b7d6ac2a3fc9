"""What a task that reads its own data hands to the trainer (:class:`TaskData`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable


@dataclasses.dataclass
class TaskData:
    """Datasets and facts of a run whose task reads its own data (``task.load_data(cfg, log)``).

    Attributes
    ----------
    train, valid : ``torch.utils.data.Dataset`` of batch items (``valid`` may be None)
    tests : dict ``{name: Dataset}``
    collate : callable turning a list of items into a batch dict
    data_info : dict of data-derived model hyperparameters (``equivar.train.DATA_HPARAMS``)
    metadata : dict stored in every checkpoint
    """

    train: object
    valid: object | None
    tests: dict
    collate: Callable
    data_info: dict
    metadata: dict
