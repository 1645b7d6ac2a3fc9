"""The activations' normalization constants 1/sqrt(E[f(z)^2]), z ~ N(0, 1), to 1e-10 against an independent
high-precision integral (mpmath, 30 digits, with its own definition of each activation)."""

import math

import mpmath
import pytest
import torch
import torch.nn.functional as F

from equivar.nn import normalize2mom_constant
from equivar.nn._activation_utils import _ACTS

mp = mpmath.mp


def _softplus(x):
    return mpmath.log1p(mpmath.exp(x))


def _relu6(x):
    return min(max(x, 0), 6)


#: name -> (equivar argument, mpmath definition, kinks)
CASES = {
    "silu": ("silu", lambda x: x / (1 + mpmath.exp(-x)), []),
    "swish": ("swish", lambda x: x / (1 + mpmath.exp(-x)), []),
    "tanh": ("tanh", mpmath.tanh, []),
    "sigmoid": ("sigmoid", lambda x: 1 / (1 + mpmath.exp(-x)), []),
    "relu": ("relu", lambda x: max(x, 0), [0]),
    "gelu": ("gelu", lambda x: x * (1 + mpmath.erf(x / mpmath.sqrt(2))) / 2, []),
    "softplus": ("softplus", _softplus, []),
    "abs": ("abs", abs, [0]),
    "identity": ("identity", lambda x: x, []),
    # callables, including kinks away from 0
    "relu6": (F.relu6, _relu6, [0, 6]),
    "hardtanh": (F.hardtanh, lambda x: min(max(x, -1), 1), [-1, 1]),
    "hardswish": (F.hardswish, lambda x: x * _relu6(x + 3) / 6, [-3, 3]),
    "leaky_relu": (F.leaky_relu, lambda x: x if x > 0 else mpmath.mpf("0.01") * x, [0]),
    "elu": (F.elu, lambda x: x if x > 0 else mpmath.expm1(x), [0]),
    "selu": (
        F.selu,
        lambda x: (
            mpmath.mpf("1.0507009873554804934193349852946")
            * (x if x > 0 else mpmath.mpf("1.6732632423543772848170429916717") * mpmath.expm1(x))
        ),
        [0],
    ),
    "mish": (F.mish, lambda x: x * mpmath.tanh(_softplus(x)), []),
    "cos": (torch.cos, mpmath.cos, []),
}


def _reference(f, kinks) -> float:
    with mpmath.workdps(30):
        pts = [-mpmath.inf, *[mpmath.mpf(k) for k in kinks], mpmath.inf]
        m = mpmath.quad(lambda x: f(x) ** 2 * mpmath.exp(-x * x / 2), pts) / mpmath.sqrt(2 * mpmath.pi)
        return float(1 / mpmath.sqrt(m))


def test_every_named_activation_is_covered():
    assert set(_ACTS) <= set(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_constant_matches_mpmath(name):
    act, f, kinks = CASES[name]
    c = normalize2mom_constant(act)
    ref = _reference(f, kinks)
    assert abs(c - ref) <= 1e-10 * ref, (name, c, ref)


def test_closed_forms():
    assert normalize2mom_constant("relu") == pytest.approx(math.sqrt(2), rel=1e-14, abs=0)
    assert normalize2mom_constant("identity") == pytest.approx(1.0, rel=1e-14, abs=0)
    # E[cos(z)^2] = (1 + exp(-2)) / 2
    assert normalize2mom_constant(torch.cos) == pytest.approx(1 / math.sqrt((1 + math.exp(-2)) / 2), rel=1e-14, abs=0)


def test_bad_activations_are_one_line_errors():
    with pytest.raises(ValueError, match="unknown activation 'nope'"):
        normalize2mom_constant("nope")
    with pytest.raises(ValueError, match="second moment under N"):
        normalize2mom_constant(lambda x: torch.exp(x * x))
    with pytest.raises(ValueError, match="elementwise"):
        normalize2mom_constant(lambda x: x.sum())
