"""Type checks of config values against annotations, and the errors that name the key (used by the config and the model section)."""

from __future__ import annotations

import difflib
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
