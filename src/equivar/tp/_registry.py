"""Registry of tensor-product backends (name -> ``torch.nn.Module`` class)."""

from __future__ import annotations

_BACKENDS: dict[str, type] = {}


def register_backend(name: str, cls: type) -> None:
    """Register ``cls`` as the tensor-product backend ``name``.

    ``cls`` must follow the backend contract of :mod:`equivar.tp`.
    Re-registering a name replaces the previous class (useful when
    reloading a module).

    Raises ``ValueError`` if ``name`` is not a non-empty string or ``cls`` is
    not a ``torch.nn.Module`` subclass with ``forward`` and ``expressible``.
    """
    import torch

    if not isinstance(name, str) or not name:
        raise ValueError(f"backend name must be a non-empty string, got {name!r}")
    if not (isinstance(cls, type) and issubclass(cls, torch.nn.Module)):
        raise ValueError(f"backend {name!r}: {cls!r} is not a torch.nn.Module subclass")
    if not callable(getattr(cls, "expressible", None)):
        raise ValueError(f"backend {name!r}: {cls.__name__} has no expressible(instruction) method")
    _BACKENDS[name] = cls


def get_backend(name: str) -> type:
    """The backend class registered as ``name``; ``ValueError`` listing the known names otherwise."""
    try:
        return _BACKENDS[name]
    except KeyError:
        raise ValueError(f"unknown tensor-product backend {name!r}; available: {sorted(_BACKENDS)}") from None


def available_backends() -> list[str]:
    """Names of the registered backends, sorted."""
    return sorted(_BACKENDS)
