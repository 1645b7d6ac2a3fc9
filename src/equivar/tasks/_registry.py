"""Task registry: ``@register_task("potential")``, :func:`build_task`."""

from __future__ import annotations

import difflib
import inspect
import typing
from collections.abc import Mapping

from .._typecheck import check_annotated

_TASKS: dict = {}


def register_task(name: str):
    """Class decorator: register a :class:`~equivar.tasks.Task` subclass under ``name`` (the config's ``task:``).

    Raises
    ------
    ValueError
        ``name`` is empty or already registered to another class.
    """

    def deco(cls):
        if not isinstance(name, str) or not name:
            raise ValueError(f"task name must be a non-empty string, got {name!r}")
        old = _TASKS.get(name)
        if old is not None and old is not cls and old.__qualname__ != cls.__qualname__:
            raise ValueError(f"task name {name!r} is already registered to {old!r}")
        cls.name = name
        _TASKS[name] = cls
        return cls

    return deco


def available_tasks() -> list[str]:
    """Registered task names."""
    return sorted(_TASKS)


def task_class(name: str):
    """The task class registered under ``name``.

    Raises
    ------
    ValueError
        unknown name (with a did-you-mean and the registered names).
    """
    try:
        return _TASKS[name]
    except (KeyError, TypeError):
        close = difflib.get_close_matches(str(name), list(_TASKS), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ValueError(f"unknown task {name!r}; {hint}registered: {', '.join(available_tasks())}") from None


def task_options(name: str) -> list[str]:
    """The option names task ``name`` accepts in the config (``task: {name: ..., OPTION: ...}``)."""
    params = inspect.signature(task_class(name).__init__).parameters
    return [k for k, p in params.items() if k not in ("self", "training") and p.kind is p.KEYWORD_ONLY]


def build_task(spec="potential", training=None):
    """The task a config asks for.

    Parameters
    ----------
    spec : str or mapping
        ``"potential"``, or ``{"name": "potential", OPTION: VALUE, ...}`` (the options are the
        task class's keyword-only constructor arguments).
    training : the config's ``training`` section (loss weights, stage two), passed to the task.

    Raises
    ------
    ValueError
        unknown task or option, or an option value of the wrong type (checked against the
        constructor's annotation), named as ``task.OPTION``.
    """
    if isinstance(spec, Mapping):
        spec = dict(spec)
        name = spec.pop("name", None)
    else:
        name, spec = spec, {}
    cls = task_class(name)
    known = task_options(name)
    for k in spec:
        if k not in known:
            close = difflib.get_close_matches(str(k), known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; task {name!r} takes {known or 'no options'}"
            raise ValueError(f"unknown config key 'task.{k}'{hint}")
    try:
        hints = typing.get_type_hints(cls.__init__)
    except Exception:  # noqa: BLE001 - unresolvable annotations: skip the type checks
        hints = {}
    spec = {k: check_annotated(v, hints[k], f"task.{k}") if k in hints else v for k, v in spec.items()}
    return cls(training, **spec)
