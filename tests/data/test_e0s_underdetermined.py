"""Least-squares E0s on data of one composition (rMD17): a warning that says what was done."""

import warnings

import numpy as np
import pytest

from equivar import data


def _ethanol_like(n=5, seed=0):
    rng = np.random.default_rng(seed)
    numbers = [6, 6, 8, 1, 1, 1, 1, 1, 1]
    pos = np.arange(9)[:, None] * np.array([[1.2, 0, 0]])
    return [data.Configuration(numbers, pos, energy=-4209.0 + rng.normal()) for _ in range(n)]


def test_single_composition_warns_and_gives_the_minimum_norm_solution():
    train = _ethanol_like()
    with pytest.warns(UserWarning, match=r"1 composition\(s\) and determine only 1 combination\(s\) of the 3 E0s") as w:
        e0 = data.resolve_e0s("least_squares", train, [], [1, 6, 8])
    msg = str(w[0].message)
    counts = np.array([6, 2, 1.0])  # H, C, O
    mean = np.mean([c.energy for c in train])
    expected = counts * mean / (counts @ counts)  # minimum-norm solution of counts . e0 = mean
    np.testing.assert_allclose([e0[1], e0[6], e0[8]], expected, rtol=1e-10)
    assert counts @ [e0[1], e0[6], e0[8]] == pytest.approx(mean, rel=1e-12)  # each molecule's energy is kept
    assert f"H {e0[1]:.4g}" in msg and "not an isolated-atom energy" in msg and "data.e0s" in msg


def test_two_independent_compositions_do_not_warn():
    a = data.Configuration([1, 1], [[0, 0, 0], [0.8, 0, 0]], energy=-30.0)
    b = data.Configuration([1, 8], [[0, 0, 0], [1.0, 0, 0]], energy=-2060.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        e0 = data.fit_e0s_least_squares([a, b], [1, 8])
    assert e0 == pytest.approx({1: -15.0, 8: -2045.0})
