"""Groups (element generators, quadrature) and typed group actions."""

import math

import pytest
import torch

from equivar import o3, testing
from equivar.symmetry import GroupElement, Typed, act, get_group


@pytest.mark.parametrize(
    "name,order,improper",
    [
        ("C4", 4, False),
        ("C6(x)", 6, False),
        ("D3", 6, False),
        ("D4:z", 8, False),
        ("T", 12, False),
        ("Td", 24, True),
        ("O", 24, False),
        ("Oh", 48, True),
        ("I", 60, False),
        ("Ih", 120, True),
        ("Ci", 2, True),
    ],
)
def test_finite_groups_are_closed(name, order, improper):
    G = get_group(name)
    assert G.order == order and G.improper == improper
    M = G.mats
    keys = {tuple(torch.round(m * 1e6).long().flatten().tolist()) for m in M}
    assert len(keys) == order
    prods = torch.einsum("aij,bjk->abik", M, M).reshape(-1, 3, 3)
    for p in prods[:: max(1, len(prods) // 200)]:
        assert tuple(torch.round(p * 1e6).long().flatten().tolist()) in keys


def test_group_names_and_errors():
    assert get_group("SO(3)").name == "SO3" and get_group("o3").name == "O3"
    assert get_group("SO2(x)").name == "SO2(x)" and get_group("SO2").name == "SO2(z)"
    assert get_group("translations").acts_on == "translation"
    assert get_group("permutations").acts_on == "permutation"
    with pytest.raises(ValueError, match="unknown group"):
        get_group("SO4")
    with pytest.raises(ValueError, match="axis"):
        get_group("SO2(0,0,0)")


@pytest.mark.parametrize("name", ["SO3", "O3", "SO2(z)", "SO2(1,1,0)"])
def test_quadrature_is_exact_haar_average(name):
    # the average of D^l over the group is the projector onto invariants: zero for l >= 1 under SO(3)
    G = get_group(name)
    R, w = G.quadrature(6)
    assert torch.allclose(w.sum(), torch.tensor(1.0, dtype=torch.float64))
    for l in (1, 2, 3):
        D = o3.Irrep(l, -1).D_from_matrix(R)
        avg = torch.einsum("k,kij->ij", w, D)
        if name in ("SO3", "O3"):
            assert avg.abs().max() < 1e-12
        else:  # rotations about one axis: a rank-1 projector (the m = 0 component about that axis)
            assert abs(float(torch.linalg.matrix_rank(avg, atol=1e-9)) - 1) == 0


def test_samplers_seeded_and_in_group():
    for name in ("SO3", "O3", "SO2(y)", "Oh", "D6"):
        G = get_group(name)
        a = G.sample(5, torch.Generator().manual_seed(3))
        b = G.sample(5, torch.Generator().manual_seed(3))
        for x, y in zip(a, b):
            assert torch.equal(x.R, y.R)
            assert torch.allclose(x.R @ x.R.T, torch.eye(3, dtype=torch.float64), atol=1e-12)
    so2 = get_group("SO2(y)").sample(4, torch.Generator().manual_seed(0))
    for g in so2:  # fixes the y axis
        assert torch.allclose(g.R[:, 1], torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64), atol=1e-12)
    perms = get_group("permutations").sample(
        3, torch.Generator().manual_seed(0), num_nodes=6, segments=torch.tensor([0, 0, 0, 1, 1, 1])
    )
    for g in perms:  # permutations stay within each sample
        assert set(g.perm[:3].tolist()) == {0, 1, 2} and set(g.perm[3:].tolist()) == {3, 4, 5}


def test_act_matches_definitions(dtype):
    gen = torch.Generator().manual_seed(0)
    R = -o3.rand_matrix(generator=gen, dtype=torch.float64)  # improper
    t = torch.randn(3, generator=gen, dtype=torch.float64)
    g = GroupElement(R=R, t=t)
    x = torch.randn(5, 3, dtype=dtype)
    Rd, td = R.to(dtype), t.to(dtype)
    assert torch.allclose(act(x, "positions", g), x @ Rd.T + td)
    assert torch.allclose(act(x, "vector", g), x @ Rd.T)
    assert torch.allclose(act(x, "pseudovector", g), -(x @ Rd.T))
    e = torch.randn(4, dtype=dtype)
    assert torch.equal(act(e, "0e", g), e)
    assert torch.allclose(act(e, "0o", g), -e)  # scalars without a trailing irreps axis
    T = torch.randn(2, 3, 3, dtype=dtype)
    assert torch.allclose(act(T, "rank2", g), Rd @ T @ Rd.T)
    f = o3.Irreps("2x0e+1o+2e").randn(7, -1, dtype=dtype)
    D = o3.Irreps("2x0e+1o+2e").D_from_matrix(Rd)
    assert torch.allclose(act(f, "2x0e+1o+2e", g), f @ D.T, atol=1e-6 if dtype == torch.float32 else 1e-12)
    # testing.Typed is accepted; per-row elements equal one element per row
    assert torch.equal(act(x, testing.Typed("vector", nodes=True), g), act(x, "vector", g))
    Rs = o3.rand_matrix(5, generator=gen, dtype=torch.float64)
    rows = act(x, "vector", GroupElement(R=Rs))
    for i in range(5):
        assert torch.allclose(rows[i], act(x[i], "vector", GroupElement(R=Rs[i])))


def test_permutation_and_inverse():
    perm = torch.tensor([2, 0, 1])
    g = GroupElement(perm=perm)
    x = torch.arange(3.0)[:, None].repeat(1, 3)
    assert torch.equal(act(x, Typed("vector", nodes=True), g)[:, 0], torch.tensor([2.0, 0.0, 1.0]))
    assert torch.equal(act(x, "vector", g), x)  # not node-typed: unchanged
    ei = torch.tensor([[0, 1], [1, 2]])
    pe = act(ei, "index", g)
    # node i of the new order is old node perm[i]: old node 0 -> new 1
    assert torch.equal(pe, torch.tensor([[1, 2], [2, 0]]))
    gb = GroupElement(
        R=o3.rand_matrix(generator=torch.Generator().manual_seed(1), dtype=torch.float64),
        t=torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64),
    )
    y = torch.randn(4, 3, dtype=torch.float64)
    assert torch.allclose(act(act(y, "positions", gb), "positions", gb.inverse()), y, atol=1e-12)
    with pytest.raises(ValueError, match="does not match irreps"):
        act(torch.randn(3, 4), "1o", gb)
    with pytest.raises(ValueError, match="unknown type"):
        act(y, "vectorz", gb)


def test_rotation_labels():
    G = get_group("C4")
    labels = [g.label for g in G.elements()]
    assert labels[0] == "identity" and any(lbl.startswith("90 deg about (0,0,1)") for lbl in labels)
    assert get_group("Ci").elements()[1].label == "inversion"
    assert math.isclose(float(torch.linalg.det(get_group("Ci").mats[1])), -1.0)
