"""What a task that reads its own data hands to the trainer (:class:`TaskData`)."""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Callable, Mapping


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


def parse_section(cls, d, key: str):
    """Build the dataclass ``cls`` from a config mapping ``d`` (``None``: the defaults; an instance: itself).

    Unknown keys (with the closest known one as a hint) and values of the wrong type raise a one-line
    ``ValueError`` naming ``key.KEY``; value ranges are the caller's to check on the result.
    """
    if d is None:
        return cls()
    if isinstance(d, cls):
        return d
    if not isinstance(d, Mapping):
        raise ValueError(f"{key}: expected a mapping, got {d!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for k, v in d.items():
        if k not in names:
            close = difflib.get_close_matches(str(k), names, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"unknown config key '{key}.{k}'{hint}")
        kwargs[k] = coerce_value(v, hints[k], f"{key}.{k}")
    return cls(**kwargs)


def coerce_value(value, tp, key: str):
    """``value`` as the annotated type ``tp`` (bool, int, float, str, or ``X | None``); else a one-line
    ``ValueError`` naming ``key``. Ints are accepted as floats, numeric strings (YAML's ``1e-3``) too."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        tp = next(a for a in args if a is not type(None))
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
    elif tp is str:
        if isinstance(value, str):
            return value
    raise ValueError(f"{key}: expected {getattr(tp, '__name__', tp)}, got {value!r}")
