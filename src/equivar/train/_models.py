"""Build a model from its hyperparameters: ``equivar.models`` names or ``"package.module:callable"``."""
from __future__ import annotations

import importlib
import inspect
from typing import Mapping, Optional

import torch

#: Hyperparameters the trainer fills from the data and the run (``dtype``, ``seed``) unless the config sets them.
DATA_HPARAMS = ("atomic_numbers", "atomic_energies", "r_max", "avg_num_neighbors", "scale", "shift", "dtype", "seed")


def _resolve(name: str):
    if ":" in name:
        mod, attr = name.split(":", 1)
        try:
            return getattr(importlib.import_module(mod), attr)
        except (ImportError, AttributeError) as e:
            raise ValueError(f"model name {name!r}: cannot import {attr!r} from {mod!r} ({e})") from None
    return None


def _accepted(name: str) -> Optional[set]:
    """Keyword names the builder of ``name`` accepts, or ``None`` when it takes any (``**kwargs``)."""
    fn = _resolve(name)
    if fn is None:
        from .. import models

        lookup = getattr(models, "model_class", None) or getattr(models, "get_model_class", None)
        registry = getattr(models, "MODELS", None) or getattr(getattr(models, "_registry", None), "_MODELS", None)
        if lookup is not None:
            try:
                fn = lookup(name)
            except Exception:
                fn = None
        elif isinstance(registry, Mapping) and name in registry:
            fn = registry[name]
    if fn is None:
        return None
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return None
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return None
    return set(params)


def complete_hparams(model_cfg: Mapping, data_info: Mapping) -> dict:
    """Model hyperparameters = ``model_cfg`` + data-derived values (:data:`DATA_HPARAMS`) it does not set.

    A data-derived key is added only when the model's builder accepts it
    (when that can be told from its signature).
    """
    hp = dict(model_cfg)
    accepted = _accepted(hp["name"])
    for k in DATA_HPARAMS:
        if k in data_info and k not in hp and (accepted is None or k in accepted):
            hp[k] = data_info[k]
    return hp


def build_model(hparams: Mapping) -> torch.nn.Module:
    """Instantiate a model from ``hparams`` (``hparams["name"]`` picks the builder).

    ``"module.path:callable"`` calls that callable with the other keys;
    any other name goes to ``equivar.models.build_model(**hparams)``.

    Raises
    ------
    ValueError
        unknown name or rejected hyperparameters.
    """
    hparams = dict(hparams)
    if "name" not in hparams:
        raise ValueError("model hyperparameters need a 'name'")
    fn = _resolve(hparams["name"])
    try:
        if fn is not None:
            rest = {k: v for k, v in hparams.items() if k != "name"}
            return fn(**rest)
        from .. import models

        if not hasattr(models, "build_model"):
            raise ValueError(f"equivar.models has no build_model yet (model name {hparams['name']!r})")
        return models.build_model(**hparams)
    except TypeError as e:
        raise ValueError(f"model {hparams['name']!r}: bad hyperparameters ({e})") from e


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The bare model inside a ``DistributedDataParallel`` wrapper (or the model itself)."""
    return getattr(model, "module", model)


def model_dtype(model: torch.nn.Module) -> torch.dtype:
    for p in model.parameters():
        if p.is_floating_point():
            return p.dtype
    for b in model.buffers():
        if b.is_floating_point():
            return b.dtype
    return torch.get_default_dtype()
