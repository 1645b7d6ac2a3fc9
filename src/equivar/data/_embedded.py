"""Datasets shipped inside the package (``equivar/data/embedded/*.xyz``)."""

from __future__ import annotations

import os

_DIR = os.path.join(os.path.dirname(__file__), "embedded")


def embedded_datasets() -> list[str]:
    """Names of the shipped datasets (file names without ``.xyz``)."""
    if not os.path.isdir(_DIR):
        return []
    return sorted(f[:-4] for f in os.listdir(_DIR) if f.endswith(".xyz"))


def embedded_path(name: str) -> str:
    """Path of the shipped dataset ``name`` (see :func:`embedded_datasets`).

    Raises
    ------
    FileNotFoundError
        unknown name.
    """
    path = os.path.join(_DIR, f"{name}.xyz")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no embedded dataset {name!r}; available: {embedded_datasets()}")
    return path
