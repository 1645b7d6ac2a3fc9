"""Read a mace-torch ``.model`` file (a whole pickled ``torch.nn.Module``) without mace-torch or e3nn.

A mace-torch model file is ``torch.save(model)``: a pickle of the module tree whose classes live in
``mace.*`` and ``e3nn.*`` (and ``torch.fx`` for e3nn's generated code). Unpickling it normally imports
those packages and runs their ``__setstate__`` (which compiles TorchScript). Here the pickle is read
by a restricted unpickler (passed to :func:`torch.load` as ``pickle_module``) that

- maps every class or function of ``mace``, ``e3nn``, ``torch``'s modules, ``torch.fx``, ``opt_einsum_fx``
  and the accelerated-backend packages to an inert :class:`Stub` that only records what the pickle
  gives it (constructor arguments and state: parameters, buffers, submodules, attributes); nothing of
  those packages is imported or executed;
- lets through only the few globals that rebuild plain data (tensors and parameters through
  ``torch._utils``, ``OrderedDict``, ``set``, NumPy arrays, torch dtypes and devices);
- refuses any other global with a one-line :class:`pickle.UnpicklingError` naming it.

So a foreign or malicious file cannot run code while it is read, and the stubs carry everything the
converter (:func:`equivar.models.mace.from_mace`) needs.
"""

from __future__ import annotations

import pickle
import types

import torch

#: top-level packages whose globals become stubs (never imported)
STUB_PACKAGES = (
    "mace",
    "e3nn",
    "torch",
    "opt_einsum_fx",
    "opt_einsum",
    "cuequivariance",
    "cuequivariance_torch",
    "openequivariance",
    "__torch__",
)

#: globals rebuilt for real (plain data only)
_REAL = {
    ("collections", "OrderedDict"),
    ("builtins", "set"),
    ("builtins", "frozenset"),
    ("builtins", "slice"),
    ("builtins", "complex"),
    ("builtins", "bytearray"),
    ("__builtin__", "set"),
    ("__builtin__", "frozenset"),
    ("__builtin__", "slice"),
    ("_codecs", "encode"),
    ("torch._utils", "_rebuild_tensor"),
    ("torch._utils", "_rebuild_tensor_v2"),
    ("torch._utils", "_rebuild_tensor_v3"),
    ("torch._utils", "_rebuild_parameter"),
    ("torch._utils", "_rebuild_parameter_with_state"),
    ("torch", "Size"),
    ("torch", "device"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
}
_TORCH_DTYPES = {
    "float16",
    "bfloat16",
    "float32",
    "float64",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "bool",
    "complex64",
    "complex128",
}


class Stub:
    """An inert stand-in for a pickled object of a class (or a call of a function) that is not imported.

    ``qualname`` (class attribute) is the pickled global's ``module.name``; ``args`` the arguments the
    pickle constructed it with; the pickled state is the instance ``__dict__``. Attribute access falls
    back to the state's ``_parameters``, ``_buffers`` and ``_modules`` (as on a ``torch.nn.Module``).
    """

    qualname = "?"

    def __new__(cls, *args, **kwargs):
        obj = object.__new__(cls)
        object.__setattr__(obj, "args", args)
        return obj

    def __init__(self, *args, **kwargs):  # REDUCE calls cls(*args): keep the args, run nothing
        pass

    def __setstate__(self, state):
        if isinstance(state, tuple) and len(state) == 2 and (state[0] is None or isinstance(state[0], dict)):
            state = {**(state[0] or {}), **(state[1] or {})}  # (dict state, slots state)
        if isinstance(state, dict):
            self.__dict__.update(state)
        else:
            self.__dict__["state"] = state

    def __getattr__(self, name):
        d = object.__getattribute__(self, "__dict__")
        for key in ("_parameters", "_buffers", "_modules"):
            table = d.get(key)
            if isinstance(table, dict) and name in table:
                return table[name]
        raise AttributeError(f"{type(self).qualname} has no attribute {name!r}")

    def children(self) -> dict:
        """The pickled submodules (``_modules``), name -> object."""
        return dict(self.__dict__.get("_modules") or {})

    def __repr__(self):
        return f"<stub {type(self).qualname}>"


_STUBS: dict = {}


def stub_class(module: str, name: str) -> type:
    """The (cached) :class:`Stub` subclass standing for the global ``module.name``."""
    key = f"{module}.{name}"
    cls = _STUBS.get(key)
    if cls is None:
        cls = type(name, (Stub,), {"qualname": key, "__module__": __name__})
        _STUBS[key] = cls
    return cls


def qualname(obj) -> str:
    """``module.name`` of a stub instance or stub class (``'?'`` for anything else)."""
    if isinstance(obj, type) and issubclass(obj, Stub):
        return obj.qualname
    return type(obj).qualname if isinstance(obj, Stub) else type(obj).__qualname__


class RefusedGlobal(pickle.UnpicklingError):
    """A pickle names a global outside the lists (raised before anything of it is imported or run)."""


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that turns foreign classes into :class:`Stub` and refuses globals outside its lists."""

    def find_class(self, module, name):
        if (module, name) in _REAL:
            return super().find_class(module, name)
        if module == "torch" and name in _TORCH_DTYPES:
            return getattr(torch, name)
        if module.split(".")[0] in STUB_PACKAGES:
            return stub_class(module, name)
        raise RefusedGlobal(
            f"refusing to unpickle global {module}.{name} (not part of a mace-torch model; nothing was executed)"
        )


def _load(file, **kwargs):
    return RestrictedUnpickler(file, **kwargs).load()


#: the ``pickle_module`` handed to :func:`torch.load`
pickle_module = types.ModuleType("equivar_restricted_pickle")
pickle_module.Unpickler = RestrictedUnpickler
pickle_module.load = _load
pickle_module.__version__ = "1"


def load_stubs(path: str):
    """Unpickle the mace-torch model file at ``path`` into stubs (on the CPU).

    Returns the root :class:`Stub` (for a mace-torch model, ``qualname`` ``mace.modules.models.MACE``
    or ``...ScaleShiftMACE``); tensors and parameters are real ``torch.Tensor``.

    Raises
    ------
    FileNotFoundError
        no file at ``path``.
    ValueError
        not a file written by ``torch.save``, or a pickle that refers to globals outside a model's
        packages (:class:`RefusedGlobal`: the message names the global); one line.
    """
    import os

    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such file")
    try:
        return torch.load(path, map_location="cpu", pickle_module=pickle_module, weights_only=False)
    except RefusedGlobal as e:
        raise ValueError(f"{path}: {e}") from None
    except Exception as e:  # noqa: BLE001 - torch raises many types for a truncated or foreign file
        first = (str(e).strip().splitlines() or [""])[0]
        raise ValueError(f"{path}: not a readable mace-torch model file ({type(e).__name__}: {first})") from None
