"""Second-moment normalised activations (as e3nn's ``normalize2mom``)."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import numpy as np
import torch

_ACTS: dict[str, Callable] = {
    "silu": torch.nn.functional.silu,
    "swish": torch.nn.functional.silu,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "relu": torch.relu,
    "gelu": torch.nn.functional.gelu,
    "softplus": torch.nn.functional.softplus,
    "abs": torch.abs,
    "identity": lambda x: x,
}


def get_activation(act) -> Callable:
    """An activation by name (``'silu'``, ``'tanh'``, ``'sigmoid'``, ``'relu'``,
    ``'gelu'``, ``'softplus'``, ``'abs'``, ``'identity'``) or a callable.

    Raises ``ValueError`` for an unknown name.
    """
    if act is None:
        return None
    if callable(act):
        return act
    try:
        return _ACTS[act]
    except KeyError:
        raise ValueError(f"unknown activation {act!r}; choose from {sorted(_ACTS)} or pass a callable") from None


@functools.cache
def _moment_cached(name: str) -> float:
    return _second_moment(_ACTS[name])


def _second_moment(f: Callable) -> float:
    # E[f(z)^2], z ~ N(0, 1), by 100-point Gauss-Hermite quadrature (deterministic)
    x, w = np.polynomial.hermite_e.hermegauss(100)
    fx = f(torch.tensor(x, dtype=torch.float64)).numpy()
    return float((w * fx**2).sum() / math.sqrt(2 * math.pi))


def normalize2mom_constant(act) -> float:
    """``1 / sqrt(E[act(z)^2])`` for ``z ~ N(0, 1)``, so ``c * act(z)`` has unit second moment.

    Same purpose as e3nn's ``normalize2mom`` (which estimates the moment by
    sampling); computed here exactly by Gauss-Hermite quadrature.
    """
    if isinstance(act, str):
        m = _moment_cached(act)
    else:
        m = _second_moment(get_activation(act))
    return 1.0 / math.sqrt(m)


def parity_of(act) -> int:
    """+1 if ``act`` is even, -1 if odd, 0 if neither (numerically, on [-3, 3])."""
    f = get_activation(act)
    x = torch.linspace(0.1, 3.0, 13, dtype=torch.float64)
    a, b = f(x), f(-x)
    if torch.allclose(a, b, atol=1e-9):
        return 1
    if torch.allclose(a, -b, atol=1e-9):
        return -1
    return 0


class NormalizedActivation(torch.nn.Module):
    """``c * act(x)`` with ``c = normalize2mom_constant(act)`` (or ``c = 1`` when ``normalize=False``)."""

    def __init__(self, act, normalize: bool = True):
        super().__init__()
        self.name = act if isinstance(act, str) else getattr(act, "__name__", "custom")
        self.f = get_activation(act)
        self.c = normalize2mom_constant(act) if normalize else 1.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.f(x)
        return y * self.c if self.c != 1.0 else y

    def extra_repr(self) -> str:
        return f"{self.name}, c={self.c:.4f}"
