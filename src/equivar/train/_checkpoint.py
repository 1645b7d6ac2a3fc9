"""Checkpoints: atomic writes, CPU-loadable whatever device saved them.

A checkpoint is a dict::

    {"format": "equivar-checkpoint", "version": 1,
     "hparams": {...},          # equivar.models.build_model(**hparams) rebuilds the model
     "state_dict": {...},       # model weights (EMA weights in model files)
     "metadata": {...},         # r_max, atomic_numbers, e0s, dtype, config, ...
     "train_state": {...}}      # optional: optimizer, scheduler, EMA, epoch, RNG, history

It holds only tensors and plain Python containers, so it loads with
``torch.load(..., weights_only=True)``.
"""

from __future__ import annotations

import importlib
import os
import pickle
from collections.abc import Mapping

import torch

from ._models import build_model, unwrap

FORMAT = "equivar-checkpoint"


def save_checkpoint(path: str, payload: Mapping) -> None:
    """Write ``payload`` to ``path`` atomically (:func:`equivar._paths.atomic_output`: temporary file, fsync,
    ``os.replace``; a symbolic link's target is replaced, a device written directly).

    A crash during the write leaves any previous file at ``path`` intact.
    """
    from .._paths import atomic_output

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with atomic_output(path, "wb") as f:
        torch.save(dict(payload), f)


def _unsafe_global(message: str) -> str:
    """`` (torch.nn.modules.linear.Linear)`` from torch's weights_only error, or ``""``."""
    import re

    m = re.search(r"GLOBAL ([\w.]+)", message)
    return f" such as {m.group(1)}" if m else ""


def _first_sentence(message: str) -> str:
    """The first sentence of the first line: torch appends paragraphs of advice (``... internal miniz error. If
    you are seeing this error ...``) that would turn a one-line error into a page."""
    line = message.strip().splitlines()[0] if message.strip() else ""
    head, sep, _ = line.partition(". ")
    return head if sep else line.rstrip(".")


def load_checkpoint(path: str) -> dict:
    """Load a checkpoint onto the CPU (``map_location="cpu"``, ``weights_only=True``).

    Raises
    ------
    FileNotFoundError
        no file.
    ValueError
        not an equivar checkpoint.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such checkpoint")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        # torch's message is a page of weights_only advice; what matters is that this is no equivar model file
        what = _unsafe_global(str(e))
        if not what:
            raise ValueError(
                f"{path}: not a readable checkpoint (truncated, or not a file written by torch.save)"
            ) from None
        raise ValueError(
            f"{path}: not an equivar checkpoint (it holds pickled Python objects{what}; equivar "
            "model files are written by `equivar train`)"
        ) from None
    except Exception as e:  # noqa: BLE001 - torch raises many types for a truncated or foreign file
        raise ValueError(
            f"{path}: not a readable checkpoint (truncated, or not a file written by torch.save: "
            f"{type(e).__name__}: {_first_sentence(str(e))})"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"{path}: not an equivar checkpoint (missing format tag {FORMAT!r})")
    return payload


def check_finite_weights(tensors: Mapping, where: str = "") -> None:
    """Raise a one-line ``ValueError`` naming the first tensor of ``tensors`` (name -> tensor: a state dict)
    that holds NaN or infinite values, prefixed by ``where`` (``"runs/x/model.pt: "``).

    A model whose training diverged saves such weights; they would give NaN
    energies that look like bad input further down.
    """
    for name, v in tensors.items():
        if torch.is_tensor(v) and (v.is_floating_point() or v.is_complex()):
            bad = ~torch.isfinite(v)
            if bool(bad.any()):
                raise ValueError(
                    f"{where}parameter {name!r} has {int(bad.sum())} non-finite value(s) (NaN/inf) of {v.numel()}: "
                    "the training that wrote it diverged (use an earlier checkpoint, or retrain with a lower "
                    "learning rate)"
                )


def check_resumable(payload: Mapping, hparams: Mapping, path: str) -> None:
    """Everything that would refuse resuming ``payload`` (read from ``path``) into a model with ``hparams``,
    checked before a run writes anything: a training state, the same hyperparameters, finite weights and EMA.

    Raises a one-line ``ValueError`` naming ``path``.
    """
    if "train_state" not in payload:
        raise ValueError(f"{path}: holds a model only, no training state to resume")
    saved = dict(payload.get("hparams", {}))
    diff = sorted(k for k in set(hparams) | set(saved) if hparams.get(k) != saved.get(k))
    if diff:
        raise ValueError(
            f"cannot resume {path}: the model hyperparameters differ from the checkpoint's in {diff} "
            "(changed model settings or training data; nothing was written)"
        )
    check_finite_weights(payload.get("state_dict", {}), f"cannot resume {path}: ")
    ema = (payload["train_state"] or {}).get("ema") or {}
    check_finite_weights(
        {f"ema.shadow[{i}]": t for i, t in enumerate(ema.get("shadow", []))}, f"cannot resume {path}: "
    )


def model_payload(model: torch.nn.Module, metadata: Mapping | None = None, state_dict: Mapping | None = None) -> dict:
    """The model part of a checkpoint: ``hparams`` + ``state_dict`` (+ ``metadata``)."""
    m = unwrap(model)
    if not hasattr(m, "hparams"):
        raise ValueError(f"{type(m).__name__} has no .hparams; cannot checkpoint it")
    sd = m.state_dict() if state_dict is None else state_dict
    return {
        "format": FORMAT,
        "version": 1,
        "hparams": dict(m.hparams),
        # where the class is defined: load_model imports it when hparams['name'] is a name
        # registered by a module of the user's own (not imported yet in a fresh process)
        "model_class": f"{type(m).__module__}:{type(m).__qualname__}",
        "state_dict": {k: v.detach().cpu().clone() for k, v in sd.items()},
        "metadata": dict(metadata or {}),
    }


def _import_model_module(payload: Mapping) -> str:
    """Import the module that defines the checkpoint's model class when its registered name is unknown.

    A model registered with ``@register_model("name")`` in a module of the user's own is known
    only once that module is imported; the checkpoint records the class's ``module:QualName``.
    Returns a hint for the error message when the module cannot be imported, else ``""``.
    """
    from ..models import available_models

    name = payload.get("hparams", {}).get("name")
    origin = payload.get("model_class")
    if not isinstance(name, str) or ":" in name or name in available_models() or not isinstance(origin, str):
        return ""
    module = origin.split(":", 1)[0]
    try:
        importlib.import_module(module)
    except ImportError as e:
        return f"; it is defined in module {module!r}, which cannot be imported ({e}): put it on PYTHONPATH"
    return ""


def load_model(
    source: str | Mapping, device: str | torch.device = "cpu", dtype: torch.dtype | None = None
) -> torch.nn.Module:
    """Rebuild a model from a checkpoint path or payload, in eval mode on ``device``.

    ``dtype`` casts the model (default: the dtype it was saved in). The
    checkpoint's ``metadata`` is attached as ``model.equivar_metadata``.

    Raises
    ------
    FileNotFoundError, ValueError
        no file; not an equivar checkpoint; weights with NaN or infinite
        values (the message names the file and the parameter); weights that
        do not fit the hyperparameters.
    """
    named = isinstance(source, (str, os.PathLike))
    payload = load_checkpoint(source) if named else source
    where = f"{source}: " if named else ""
    if "hparams" not in payload or "state_dict" not in payload:
        raise ValueError(f"{where}checkpoint lacks {'hparams' if 'hparams' not in payload else 'state_dict'}")
    check_finite_weights(payload["state_dict"], where)
    hint = _import_model_module(payload)
    try:
        model = build_model(payload["hparams"])
    except ValueError as e:
        raise ValueError(f"{where}cannot rebuild the model from its hyperparameters ({e}){hint}") from None
    sd = payload["state_dict"]
    saved_dtype = next((v.dtype for v in sd.values() if v.is_floating_point()), None)
    if saved_dtype is not None:
        model = model.to(saved_dtype)
    try:
        model.load_state_dict(sd)
    except RuntimeError as e:
        first = str(e).splitlines()
        detail = next((ln.strip() for ln in first[1:] if ln.strip()), first[0] if first else "")
        raise ValueError(
            f"{where}weights do not fit the model its hyperparameters describe (written by another "
            f"equivar version?): {detail[:300]}"
        ) from None
    if dtype is not None:
        model = model.to(dtype)
    model = model.to(device).eval()
    model.equivar_metadata = dict(payload.get("metadata", {}))
    return model
