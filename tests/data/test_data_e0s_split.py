"""E0s (isolated atoms, dict, least squares) and seeded splits."""

import numpy as np
import pytest

from equivar import data


def _configs(true_e0, n=30, seed=0):
    rng = np.random.default_rng(seed)
    zs = list(true_e0)
    out = []
    for i in range(n):
        counts = rng.integers(0, 4, size=len(zs))
        counts[i % len(zs)] += 1
        numbers = np.repeat(zs, counts)
        pos = np.arange(len(numbers))[:, None] * np.array([[1.5, 0, 0]])
        out.append(data.Configuration(numbers, pos, energy=sum(true_e0[z] for z in numbers)))
    return out


def test_least_squares_recovers_e0s():
    true = {1: -13.6, 6: -1029.5, 8: -2041.9}
    fit = data.fit_e0s_least_squares(_configs(true), [1, 6, 8])
    for z in true:
        assert fit[z] == pytest.approx(true[z], abs=1e-8)


def test_resolve_e0s_variants():
    true = {1: -13.6, 8: -2041.9}
    train = _configs(true)
    iso = [data.Configuration([8], [[0, 0, 0]], energy=-2000.0)]
    assert data.resolve_e0s({"H": 1.0, 8: 2.0}, train, [], [1, 8]) == {1: 1.0, 8: 2.0}
    with pytest.raises(ValueError, match=r"no E0 for element\(s\) \['H'\]"):
        data.resolve_e0s("isolated", train, iso, [1, 8])
    with pytest.warns(UserWarning, match=r"kept for \['O'\].*no isolated atom for \['H'\]"):
        auto = data.resolve_e0s("auto", train, iso, [1, 8])  # O kept, H fitted with O held fixed
    assert auto[8] == -2000.0
    # the H fit absorbs what O's reference leaves: n_H * E_H = E - n_O * (-2000) in the least-squares sense
    rows = [(sum(z == 1 for z in c.atomic_numbers), sum(z == 8 for z in c.atomic_numbers), c.energy) for c in train]
    a = np.array([[r[0]] for r in rows], float)
    b = np.array([r[2] + 2000.0 * r[1] for r in rows])
    assert auto[1] == pytest.approx(float(np.linalg.lstsq(a, b, rcond=None)[0][0]), rel=1e-12)
    iso.append(data.Configuration([1], [[0, 0, 0]], energy=-13.0))
    assert data.resolve_e0s("auto", train, iso, [1, 8]) == {1: -13.0, 8: -2000.0}
    with pytest.raises(ValueError, match="unknown E0s spec"):
        data.resolve_e0s("mean", train, iso, [1, 8])


def test_least_squares_with_fixed_e0s():
    true = {1: -13.6, 6: -1029.5, 8: -2041.9}
    fit = data.fit_e0s_least_squares(_configs(true), [1, 6, 8], fixed={6: -1029.5})
    assert fit == pytest.approx(true, abs=1e-8) and fit[6] == -1029.5
    assert data.fit_e0s_least_squares([], [6], fixed={6: 1.0}) == {6: 1.0}  # nothing left to fit


def test_isolated_detection_keeps_periodic_single_atom_cells():
    bulk1 = data.Configuration([29], [[0, 0, 0]], cell=np.eye(3) * 2.5, pbc=True)
    iso = data.Configuration([29], [[0, 0, 0]])
    typed = data.Configuration([29, 29], [[0, 0, 0], [0, 0, 9]], config_type="IsolatedAtom")
    i, rest = data.split_isolated_atoms([bulk1, iso, typed])
    assert i == [iso, typed] and rest == [bulk1]


def test_random_split_seeded_disjoint():
    items = list(range(1000))
    tr, va = data.random_split(items, 0.05, seed=1)
    assert len(tr) == 950 and len(va) == 50 and not set(tr) & set(va)
    assert data.random_split(items, 0.05, seed=1) == (tr, va)
    assert data.random_split(items, 0.05, seed=2)[1] != va
    assert len(data.random_split(items, 0.05, seed=1, max_train=100)[0]) == 100
    with pytest.raises(ValueError):
        data.random_split(items, 1.5)


def test_e0s_mapping_errors_name_the_element_and_value():
    check_e0s_spec = data.check_e0s_spec

    assert check_e0s_spec({"H": -13.6, 8: "-2000.5"}) == {1: -13.6, 8: -2000.5}
    with pytest.raises(ValueError, match=r"data\.e0s\.H: expected a number \(eV\), got 'abc'"):
        check_e0s_spec({"H": "abc"}, "data.e0s")
    with pytest.raises(ValueError, match=r"e0s: unknown element 'Hx'"):
        data.resolve_e0s({"Hx": 1.0}, [], [], [1])
    with pytest.raises(ValueError, match=r"e0s\.O: expected a number \(eV\), got None"):
        data.resolve_e0s({"O": None}, [], [], [8])
