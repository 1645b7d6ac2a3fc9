"""Name -> model class registry (``build_model``)."""

from __future__ import annotations

_MODELS: dict = {}


def register_model(name: str, cls) -> None:
    """Register ``cls`` (constructor taking keyword hyperparameters) under ``name``."""
    _MODELS[name] = cls


def available_models() -> list[str]:
    """Registered model names."""
    return sorted(_MODELS)


def model_class(name: str):
    """The class (or builder) registered under ``name``.

    Raises
    ------
    ValueError
        unknown name; the message suggests the closest registered name and lists them all.
    """
    try:
        return _MODELS[name]
    except (KeyError, TypeError):
        import difflib

        lower = {k.lower(): k for k in _MODELS}
        close = difflib.get_close_matches(str(name).lower(), list(lower), n=1)
        hint = f"did you mean {lower[close[0]]!r}? " if close else ""
        raise ValueError(
            f"unknown model {name!r}; {hint}registered: {', '.join(available_models())} "
            "(or 'package.module:callable' for a model of your own)"
        ) from None


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
    return model_class(name)(**hparams)
