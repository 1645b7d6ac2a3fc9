"""``Irreps.sort`` is e3nn 0.6's: by l, then odd before even, stable; checked on 1,000 random mixed-parity irreps."""

import random

import pytest

from equivar.o3 import Irrep, Irreps

e3nn_o3 = pytest.importorskip("e3nn.o3")


def test_parity_order_example():
    s = Irreps("0e+0o+2e+2o").sort()
    assert s.p == (1, 0, 3, 2) and s.inv == (1, 0, 3, 2)
    assert str(s.irreps) == "1x0o+1x0e+1x2o+1x2e"


def test_sort_agrees_with_sorting_irrep_objects():
    irreps = Irreps("3x2e+1x1e+2x0e+1x2o+5x0o+1x1o")
    assert [ir for _, ir in irreps.sort().irreps] == sorted(ir for _, ir in irreps)
    assert Irrep("0o") < Irrep("0e") < Irrep("1o") < Irrep("1e")


def test_sort_matches_e3nn_on_1000_random_irreps():
    rng = random.Random(20261204)
    for _ in range(1000):
        n = rng.randint(0, 12)
        terms = [f"{rng.randint(0, 4)}x{rng.randint(0, 4)}{rng.choice('eo')}" for _ in range(n)]
        s = "+".join(terms)
        ours, theirs = Irreps(s).sort(), e3nn_o3.Irreps(s).sort()
        assert str(ours.irreps) == str(theirs.irreps), s
        assert tuple(ours.p) == tuple(theirs.p) and tuple(ours.inv) == tuple(theirs.inv), s
        assert str(Irreps(s).sort().irreps.simplify()) == str(e3nn_o3.Irreps(s).regroup()), s
