"""Type checks of config values against annotations, and errors that name the key.

Plumbing with no ``equivar`` imports (below every layer), so that the training config
(``equivar.train``), the ``model:`` section and the options of a task (``equivar.tasks``)
report a bad value the same way: ``training.lr: expected a number, got 'fast'``.
"""

from __future__ import annotations

import collections.abc
import difflib
import types
import typing
from typing import Any, Union


def short_repr(value, limit: int = 80) -> str:
    """``repr(value)``, cut to ``limit`` characters with ``...`` (a whole file read as one string stays one line)."""
    r = repr(value)
    return r if len(r) <= limit else r[: limit - 3] + "..."


def _type_name(tp) -> str:
    return getattr(tp, "__name__", str(tp).replace("typing.", ""))


def coerce_value(value, tp, key: str):
    """Check ``value`` against annotation ``tp`` (int -> float allowed); return the converted value.

    ``tp``: ``int``, ``float``, ``bool``, ``str``, ``dict``, ``Any``, or an ``Optional``/``Union``
    of them (other annotations pass the value through). A YAML string such as ``"1e-3"`` is
    accepted for a float.

    Raises
    ------
    ValueError
        a value of the wrong type: ``"{key}: expected a number, got 'abc'"``.
    """
    origin = typing.get_origin(tp)
    if origin is Union:
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return coerce_value(value, a, key)
            except ValueError as e:
                errors.append(str(e))
        raise ValueError(f"{key}: expected {' or '.join(_type_name(a) for a in args)}, got {short_repr(value)}")
    if tp is Any:
        return value
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 reads "1e-3" as a string
            try:
                return float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{key}: expected a number, got {short_repr(value)}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{key}: expected an integer, got {short_repr(value)}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ValueError(f"{key}: expected true or false, got {short_repr(value)}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ValueError(f"{key}: expected a string, got {short_repr(value)}")
        return value
    if tp is dict:
        if not isinstance(value, dict):
            raise ValueError(f"{key}: expected a mapping, got {short_repr(value)}")
        return dict(value)
    return value


def unknown_key_error(key: str, known) -> ValueError:
    """The error for an unknown config ``key``: names it and suggests the closest of ``known`` (or lists them)."""
    close = difflib.get_close_matches(key.split(".")[-1], list(known), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else f"; known keys: {', '.join(sorted(known))}"
    return ValueError(f"unknown config key {short_repr(key)}{hint}")


def check_annotated(value, tp, key: str):
    """``value`` checked against a constructor's annotation ``tp``; returns it converted (YAML ``"1e-3"`` -> float).

    Handles ``int``, ``float``, ``bool``, ``str``, ``dict``/``Mapping``, ``list[X]``/``Sequence[X]``/
    ``tuple[X, ...]`` and ``Optional``/unions of them; other annotations pass the value through.
    Used for the ``model:`` and ``task:`` sections, whose keys are constructor arguments.

    Raises
    ------
    ValueError
        ``"{key}: expected an integer, got 'abc'"`` (the key as the config spells it).
    """
    origin = typing.get_origin(tp)
    if origin is typing.Union or origin is types.UnionType:
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        for a in args:
            if a is type(None):
                continue
            try:
                return check_annotated(value, a, key)
            except ValueError:
                pass
        names = " or ".join("null" if a is type(None) else describe_type(a) for a in args)
        raise ValueError(f"{key}: expected {names}, got {value!r}")
    if origin in (list, tuple, collections.abc.Sequence) and origin is not None:
        args = [a for a in typing.get_args(tp) if a is not Ellipsis]
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            raise ValueError(f"{key}: expected {describe_type(tp)}, got {value!r}")
        if args:
            try:
                return [check_annotated(v, args[0], key) for v in value]
            except ValueError:
                raise ValueError(f"{key}: expected {describe_type(tp)}, got {value!r}") from None
        return list(value)
    if tp in (int, float, bool, str, dict):
        return coerce_value(value, tp, key)
    if origin in (dict, collections.abc.Mapping) or tp is collections.abc.Mapping:
        return coerce_value(value, dict, key)
    return value


def describe_type(tp) -> str:
    """How an error message names annotation ``tp`` (``'integer'``, ``'a list of numbers'``)."""
    origin = typing.get_origin(tp)
    if origin in (list, tuple, collections.abc.Sequence) and origin is not None:
        args = [a for a in typing.get_args(tp) if a is not Ellipsis]
        return f"a list of {describe_type(args[0])}s" if args else "a list"
    return {int: "integer", float: "number", bool: "true/false", str: "string", dict: "mapping"}.get(
        tp, getattr(tp, "__name__", str(tp))
    )
