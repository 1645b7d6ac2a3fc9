"""Name -> model class registry (``build_model``)."""
from __future__ import annotations

_MODELS: dict = {}


def register_model(name: str, cls) -> None:
    """Register ``cls`` (constructor taking keyword hyperparameters) under ``name``."""
    _MODELS[name] = cls


def available_models() -> list[str]:
    """Registered model names."""
    return sorted(_MODELS)


def build_model(name: str = "mace", **hparams):
    """Build a registered model: ``build_model(**model.hparams)`` rebuilds ``model``.

    Parameters
    ----------
    name : str
        Registered name (``'mace'``).
    **hparams
        Constructor keyword arguments of that model.

    Raises
    ------
    ValueError
        Unknown model name (the message lists the registered ones).
    TypeError
        Unknown hyperparameter for that model.
    """
    try:
        cls = _MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; registered: {available_models()}") from None
    return cls(**hparams)
