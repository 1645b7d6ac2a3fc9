"""Build a model from its hyperparameters: ``equivar.models`` names or ``"package.module:callable"``."""

from __future__ import annotations

import inspect
import typing
from collections.abc import Mapping

import torch

from .._typecheck import check_annotated, unknown_key_error
from ..models import build_model as _models_build_model
from ..models import model_dtype, resolve_model, unwrap  # noqa: F401  (unwrap, model_dtype: re-exported)

#: Hyperparameters the trainer fills from the data and the run (``dtype``, ``seed``) unless the config sets them.
DATA_HPARAMS = (
    "atomic_numbers",
    "atomic_energies",
    "r_max",
    "avg_num_neighbors",
    "scale",
    "shift",
    "dtype",
    "seed",
    "image_size",
    "in_channels",
    "num_classes",
)


def _builder(name: str):
    """The callable that builds model ``name``: a registered name or a ``module:callable``.

    Raises ``ValueError`` (with a did-you-mean) for an unknown name or an unimportable callable.
    """
    return resolve_model(name)


def _signature(fn):
    try:
        return inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return None


def _accepted(name: str) -> set | None:
    """Keyword names the builder of ``name`` accepts, or ``None`` when it takes any (``**kwargs``)."""
    try:
        fn = _builder(name)
    except ValueError:
        return None
    params = _signature(fn)
    if params is None or any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return None
    return {k for k, p in params.items() if p.kind is not p.VAR_POSITIONAL and k != "self"}


def check_model_config(model_cfg: Mapping, prefix: str = "model.") -> dict:
    """Check the ``model`` section against its builder's signature, before any data is read.

    Unknown keys get a did-you-mean; values are checked against the builder's
    type annotations (``model.max_L: expected an integer, got 'abc'``).
    Value ranges are the builder's to check (see :func:`build_model`).

    Returns
    -------
    dict
        the section with values converted where the annotation asks (``"1e-3"`` -> ``0.001``).

    Raises
    ------
    ValueError
        unknown model name, unknown key, or a value of the wrong type; the message names the full key.
    """
    cfg = dict(model_cfg)
    name = cfg.get("name")
    if not isinstance(name, str) or not name:
        raise ValueError(f"{prefix}name: expected a model name (e.g. 'mace'), got {name!r}")
    try:
        fn = _builder(name)
    except ValueError as e:
        raise ValueError(f"{prefix}name: {e}") from None
    params = _signature(fn)
    if params is None:
        return cfg
    takes_any = any(p.kind is p.VAR_KEYWORD for p in params.values())
    known = [k for k, p in params.items() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and k != "self"]
    try:
        hints = typing.get_type_hints(fn.__init__ if inspect.isclass(fn) else fn)
    except Exception:  # noqa: BLE001 - unresolvable annotations: skip the type checks
        hints = {}
    for k, v in list(cfg.items()):
        if k == "name":
            continue
        if k not in params and not takes_any:
            raise unknown_key_error(prefix + str(k), known)
        if k in hints:
            cfg[k] = check_annotated(v, hints[k], prefix + k)
        elif k in params and _is_number(params[k].default) and isinstance(v, str):
            # no annotation, a numeric default: a value that is not a number is named here, not deep in the model
            try:
                cfg[k] = type(params[k].default)(v) if isinstance(params[k].default, int) else float(v)
            except ValueError:
                raise ValueError(f"{prefix}{k}: expected a number (default {params[k].default!r}), got {v!r}") from None
    return cfg


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def complete_hparams(model_cfg: Mapping, data_info: Mapping) -> dict:
    """Model hyperparameters = ``model_cfg`` + data-derived values (:data:`DATA_HPARAMS`) it does not set.

    A data-derived key is added only when the model's builder accepts it
    (when that can be told from its signature).
    """
    hp = dict(model_cfg)
    accepted = _accepted(hp["name"])
    r_model, r_data = hp.get("r_max"), data_info.get("r_max")
    if _is_number(r_model) and _is_number(r_data) and r_model > r_data:
        raise ValueError(
            f"model.r_max={r_model} is larger than data.r_max={r_data}: the neighbour lists are built at "
            "data.r_max, so the model would miss neighbours; set the cutoff once, in data.r_max"
        )
    for k in DATA_HPARAMS:
        if k in data_info and k not in hp and (accepted is None or k in accepted):
            hp[k] = data_info[k]
    return hp


def build_model(hparams: Mapping) -> torch.nn.Module:
    """Instantiate a model from ``hparams`` (``hparams["name"]`` picks the builder).

    ``equivar.models.build_model(**hparams)``: a registered name or ``"module.path:callable"``
    (called with the other keys).

    Raises
    ------
    ValueError
        unknown name or rejected hyperparameters.
    """
    hparams = dict(hparams)
    if "name" not in hparams:
        raise ValueError("model hyperparameters need a 'name'")
    try:
        return _models_build_model(**hparams)
    except (TypeError, RuntimeError) as e:  # RuntimeError: e.g. a negative layer width reaching torch
        raise ValueError(f"model {hparams['name']!r}: bad hyperparameters ({e})") from e
    except ValueError as e:
        # a builder's "max_L must be >= 0, got -1" names the key: say it as the config does (model.max_L)
        msg = str(e)
        key = msg.split(" ", 1)[0].rstrip(":")
        if key in hparams and key != "name" and not msg.startswith("model."):
            raise ValueError(f"model.{msg}") from e
        raise
