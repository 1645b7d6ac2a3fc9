"""Expressivity accounting against full Clebsch-Gordan (Price of Freedom's path count)."""

import pytest

from equivar import tp as T


def _n_paths(L):
    """Number of (ir1, ir2, ir3) couplings among all irreps up to L, both parities (closed form by enumeration)."""
    irs = list(T.all_irreps(L))
    return sum(1 for (_, a) in irs for (_, b) in irs for (_, c) in irs if c in list(a * b))


@pytest.mark.parametrize("L", [1, 2, 3])
def test_cg_is_complete(L):
    r = T.expressivity(irreps_in1=T.all_irreps(L), irreps_in2=T.all_irreps(L), irreps_out=T.all_irreps(L))
    assert r.exact and r.dim == r.dim_full == _n_paths(L) == len(r.realized)
    assert not r.missing and not r.unexpressible


def test_counts_connection_modes_and_multiplicities():
    # uvw on 2x1o x 3x1o -> 4x1e spans 2*3*4 maps; uvu on the same block triple (mul_in1 == mul_out) spans 2*3
    full = T.TensorProduct("2x1o", "3x1o", "4x1e", [(0, 0, 0, "uvw", True)])
    assert (T.expressivity(full).dim, T.expressivity(full).dim_full) == (24, 24)
    cw = T.TensorProduct("2x1o", "3x1o", "2x1e", [(0, 0, 0, "uvu", True)])
    assert (T.expressivity(cw).dim, T.expressivity(cw).dim_full) == (6, 12)
    ew = T.TensorProduct("3x1o", "3x1o", "3x1e", [(0, 0, 0, "uuu", True)])
    assert T.expressivity(ew).dim == 3
    # an unweighted uvu path adds one map; inside a weighted uvu span it adds nothing
    fixed = T.TensorProduct("2x1o", "3x1o", "2x1e", [(0, 0, 0, "uvu", False)])
    assert T.expressivity(fixed).dim == 1
    both = T.TensorProduct("2x1o", "3x1o", "2x1e", [(0, 0, 0, "uvu", True), (0, 0, 0, "uvu", False)])
    assert T.expressivity(both).dim == 6


def test_missing_interactions_are_listed():
    tp, _ = T.channelwise_tp("1x0e+1x1o", "0e+1o", "0e+1o")  # drops 1o x 1o -> 1e
    r = T.expressivity(tp)
    assert [str(i) for i in r.realized] == ["0e x 0e -> 0e", "1o x 1o -> 0e", "0e x 1o -> 1o", "1o x 0e -> 1o"]
    # irreps_mid has two 0e and two 1o blocks: full CG couples every input pair into both copies
    assert r.dim == 4 and r.dim_full == 8
    r2 = T.expressivity(T.TensorProduct("1x1o", "1x1o", "1x0e+1x1e", [(0, 0, 0, "uvu", True)]))
    assert [str(i) for i in r2.missing] == ["1o x 1o -> 1e"] and r2.dim == 1 and r2.dim_full == 2


def test_gaunt_family_reports_odd_paths():
    """Gaunt coefficients vanish for odd l1+l2+l3: a plain Gaunt product cannot make the cross product."""
    if "s2grid" not in T.available_backends():
        pytest.skip("s2grid backend not installed")
    r = T.expressivity(irreps_in1="1o", irreps_in2="1o", irreps_out="0e+1e+2e", backend="s2grid", parity_complete=False)
    assert [str(i) for i in r.unexpressible] == ["1o x 1o -> 1e"]
    assert (r.dim, r.dim_full) == (2, 3)
    r = T.expressivity(irreps_in1="1o", irreps_in2="1o", irreps_out="0e+1e+2e", backend="s2grid")
    assert (r.dim, r.dim_full) == (3, 3)  # parity-complete variant


def test_table_rows():
    rows = T.expressivity_table([1, 2], ["cg"])
    assert [(r["L"], r["config"], r["dim"], r["dim_full"]) for r in rows] == [
        (1, "full", _n_paths(1), _n_paths(1)),
        (1, "edge", 5, 5),
        (2, "full", _n_paths(2), _n_paths(2)),
        (2, "edge", 15, 15),
    ]


def test_expressivity_needs_irreps():
    with pytest.raises(ValueError, match="give a TensorProduct"):
        T.expressivity(irreps_in1="1o")
    with pytest.raises(ValueError, match="unknown tensor-product backend"):
        T.expressivity(irreps_in1="1o", irreps_in2="1o", irreps_out="1e", backend="nope")
