"""Model registry (``@register_model("mace")``, :func:`build_model`) and hyperparameters recorded from the constructor.

A registered class gets ``model.hparams`` without writing it: the arguments
its constructor was called with, bound to its signature, defaults applied,
values made JSON-able, plus ``name``; ``build_model(**model.hparams)``
rebuilds the model. Potentials (:class:`~equivar.models.Potential`
subclasses) get this whether they are registered or not (their name is then
``"package.module:Class"``, which the trainer and the checkpoints resolve).
"""

from __future__ import annotations

import functools
import inspect
import operator
from collections.abc import Callable, Mapping

import torch

_MODELS: dict = {}

#: the attribute of a registered class (in its own ``__dict__``, not inherited) holding its registered name
_NAME_ATTR = "_equivar_model_name"


def json_value(value, key: str = "value"):
    """``value`` as plain JSON-able Python: bool/int/float/str/None, lists and string/int-keyed dicts.

    Tuples become lists, NumPy and 0-d tensor scalars Python numbers, ``torch.dtype`` its name
    (``'float32'``), objects with a canonical string form (``Irreps``) that string.

    Raises
    ------
    ValueError
        a value with no JSON form (a module, a function, a tensor with more than one element);
        the message names ``key``.
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, torch.dtype):
        return str(value).replace("torch.", "")
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, torch.Tensor) and value.numel() == 1 and value.dim() == 0:
        return value.item()
    if hasattr(value, "dtype") and hasattr(value, "item") and getattr(value, "ndim", None) == 0:  # numpy scalar
        return value.item()
    if isinstance(value, Mapping):
        return {(k if isinstance(k, (str, int)) else str(k)): json_value(v, f"{key}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_value(v, f"{key}[{i}]") for i, v in enumerate(value)]
    from ..o3 import Irrep, Irreps

    if isinstance(value, (Irreps, Irrep)):
        return str(value)
    try:  # other sequences (numpy arrays, ranges)
        return [json_value(v, f"{key}[{i}]") for i, v in enumerate(list(value))]
    except TypeError:
        pass
    raise ValueError(f"hyperparameter {key}={value!r} ({type(value).__name__}) has no JSON form; pass plain values")


def model_name(obj) -> str:
    """The name ``build_model`` / the trainer resolve ``obj`` (a class or a model) by.

    The registered name (``'mace'``) when the class was registered itself (a subclass of a
    registered class is not), else ``'package.module:QualName'``.
    """
    cls = obj if inspect.isclass(obj) else type(obj)
    name = cls.__dict__.get(_NAME_ATTR)
    return name if name is not None else f"{cls.__module__}:{cls.__qualname__}"


def bound_hparams(fn: Callable, args: tuple, kwargs: dict, skip_first: bool = True) -> dict:
    """The arguments of a call to ``fn`` as a dict: bound to its signature, defaults applied, JSON-able.

    ``**kwargs`` of the signature are flattened into the dict; ``*args`` are not recordable.

    Raises
    ------
    TypeError
        the call does not match the signature (as calling ``fn`` would).
    ValueError
        ``fn`` takes ``*args`` that were used, or a value has no JSON form.
    """
    sig = inspect.signature(fn)
    bound = sig.bind(None, *args, **kwargs) if skip_first else sig.bind(*args, **kwargs)
    bound.apply_defaults()
    params = list(sig.parameters.values())
    out: dict = {}
    for i, (k, v) in enumerate(bound.arguments.items()):
        p = sig.parameters[k]
        if skip_first and params and p is params[0]:
            continue
        if p.kind is p.VAR_KEYWORD:
            out.update({kk: json_value(vv, kk) for kk, vv in v.items()})
        elif p.kind is p.VAR_POSITIONAL:
            if v:
                raise ValueError(f"{getattr(fn, '__qualname__', fn)}: positional *{k} cannot be recorded as hparams")
        else:
            out[k] = json_value(v, k)
    return out


def record_hparams(cls) -> None:
    """Wrap ``cls.__init__`` so that a finished construction sets ``self.hparams`` (see the module docstring).

    Nested constructors (``super().__init__`` of recorded classes) record once, for the
    outermost call (the class actually built); a constructor that sets ``self.hparams``
    itself keeps its own. After recording, ``self._post_init()`` runs
    when the class defines one (:class:`~equivar.models.Potential` casts to its dtype there).
    Idempotent per class.
    """
    init = cls.__dict__.get("__init__")
    if init is None or getattr(init, "_equivar_records", False):
        return

    @functools.wraps(init)
    def __init__(self, *args, **kwargs):
        depth = self.__dict__.get("_equivar_init_depth", 0)
        object.__setattr__(self, "_equivar_init_depth", depth + 1)
        try:
            init(self, *args, **kwargs)
        finally:
            object.__setattr__(self, "_equivar_init_depth", depth)
        if depth == 0:
            if "hparams" not in self.__dict__:  # a constructor that writes its own keeps it
                hp = {"name": model_name(self), **bound_hparams(type(self).__init__, args, kwargs)}
                normalize = getattr(self, "_normalize_hparams", None)
                object.__setattr__(self, "hparams", normalize(hp) if normalize is not None else hp)
            post = getattr(self, "_post_init", None)
            if post is not None:
                post()

    __init__._equivar_records = True
    cls.__init__ = __init__


def register_model(name: str, obj=None):
    """Register a model class (or a builder function) under ``name``; usable as a decorator.

    ``@register_model("mace")`` on a class records ``model.hparams`` from each
    construction (see :func:`record_hparams`); a builder function's model gets
    ``hparams`` from the builder's arguments when it has none.

    Raises
    ------
    ValueError
        ``name`` is taken by another object, or is not a plain identifier-like string.
    """

    def deco(target):
        if not isinstance(name, str) or not name or ":" in name:
            raise ValueError(f"model name must be a non-empty string without ':', got {name!r}")
        old = _MODELS.get(name)
        if old is not None and old is not target and getattr(old, "__qualname__", None) != target.__qualname__:
            raise ValueError(f"model name {name!r} is already registered to {old!r}")
        if inspect.isclass(target):
            type.__setattr__(target, _NAME_ATTR, name)
            record_hparams(target)
        _MODELS[name] = target
        return target

    if obj is not None:  # register_model("mace", MACE): the older call form
        return deco(obj)
    return deco


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


def resolve_model(name: str):
    """The class or builder named ``name``: a registered name, or ``'package.module:callable'`` (imported).

    Raises
    ------
    ValueError
        unknown registered name (with a did-you-mean), or a ``module:callable`` that cannot be imported.
    """
    if isinstance(name, str) and ":" in name:
        import importlib

        mod, attr = name.split(":", 1)
        try:
            obj = importlib.import_module(mod)
            for part in attr.split("."):
                obj = getattr(obj, part)
            return obj
        except (ImportError, AttributeError) as e:
            raise ValueError(f"model name {name!r}: cannot import {attr!r} from {mod!r} ({e})") from None
    return model_class(name)


def build_model(name: str = "mace", **hparams) -> torch.nn.Module:
    """Build a model by name: ``build_model(**model.hparams)`` rebuilds ``model``.

    Parameters
    ----------
    name : str
        A registered name (``'mace'``, see :func:`available_models`) or
        ``'package.module:callable'`` (a class or builder function of your own).
    **hparams
        Keyword arguments of that constructor or builder.

    Returns
    -------
    torch.nn.Module
        with ``hparams`` set (recorded from the call when the model does not set it).

    Raises
    ------
    ValueError
        Unknown model name (the message lists the registered ones), or invalid values (the model's own check).
    TypeError
        Unknown hyperparameter for that model.
    """
    fn = resolve_model(name)
    model = fn(**hparams)
    if not hasattr(model, "hparams") and isinstance(model, torch.nn.Module):
        model.hparams = {"name": name, **bound_hparams(fn, (), hparams, skip_first=inspect.isclass(fn))}
    return model


def _is_int(value, low: int) -> bool:
    """``value`` is an integer (not a bool) >= ``low`` (for constructors' argument checks)."""
    if isinstance(value, bool):
        return False
    try:
        return operator.index(value) >= low
    except TypeError:
        return False
