import pytest
import torch

from equivar.o3 import Irrep, Irreps, rand_matrix

e3nn_o3 = pytest.importorskip("e3nn.o3")


@pytest.mark.parametrize("s", ["16x0e+8x1o+4x2e", "0e + 1o", "1o+0e+1o", "3x2y", "", "0x1e+2x0o", "1e"])
def test_parse_matches_e3nn(s):
    ours, theirs = Irreps(s), e3nn_o3.Irreps(s)
    assert str(ours) == str(theirs)
    assert ours.dim == theirs.dim
    assert ours.num_irreps == theirs.num_irreps
    assert [(sl.start, sl.stop) for sl in ours.slices()] == [(sl.start, sl.stop) for sl in theirs.slices()]
    assert str(ours.simplify()) == str(theirs.simplify())
    so, st = ours.sort(), theirs.sort()
    assert str(so.irreps) == str(st.irreps)
    assert tuple(so.p) == tuple(st.p) and tuple(so.inv) == tuple(st.inv)


def test_irrep_basics():
    assert Irrep("1o") == Irrep(1, -1)
    assert Irrep("2y") == Irrep(2, 1)
    assert Irrep("1o").dim == 3
    assert list(Irrep("1o") * Irrep("1o")) == [Irrep("0e"), Irrep("1e"), Irrep("2e")]
    assert 3 * Irrep("1o") == Irreps("3x1o")
    assert Irreps("1o") + "2x0e" == Irreps("1o+2x0e")
    assert Irreps("0e+1o").count("1o") == 1
    assert "1o" in Irreps("0e+1o") and "1e" not in Irreps("0e+1o")
    assert Irreps.spherical_harmonics(2) == Irreps("0e+1o+2e")
    assert Irreps("2x0e+1o").filter(keep="1o") == Irreps("1o")
    assert Irreps("2x0e+1o").filter(drop=["1o"]) == Irreps("2x0e")
    assert Irreps("2x1o").lmax == 1


@pytest.mark.parametrize(
    "bad",
    ["16x0q", "x1o", "1ox3", "16 x", "-1x0e", "0e++1o", "1.5x0e", "3x-1o", "abc"],
)
def test_malformed_strings_name_the_value(bad):
    with pytest.raises(ValueError) as e:
        Irreps(bad)
    assert repr(bad) in str(e.value) or bad in str(e.value)


def test_l_too_large():
    with pytest.raises(ValueError, match="65"):
        Irrep(65, 1)
    with pytest.raises(ValueError, match="parity"):
        Irrep(1, 0)


def test_randn_and_D(dtype):
    irreps = Irreps("3x0e+2x1o+1x2e+0o")
    x = irreps.randn(7, -1, dtype=dtype)
    assert x.shape == (7, irreps.dim) and x.dtype == dtype
    xn = irreps.randn(1000, -1, normalization="norm", dtype=torch.float64)
    for s, (mul, ir) in zip(irreps.slices(), irreps):
        n = xn[:, s].reshape(1000, mul, ir.dim).norm(dim=-1)
        assert torch.allclose(n, torch.ones_like(n))
    R = rand_matrix(2, dtype=dtype)
    D = irreps.D_from_matrix(R)
    assert D.shape == (2, irreps.dim, irreps.dim)
    eye = torch.eye(irreps.dim, dtype=dtype)
    assert torch.allclose(D @ D.transpose(-1, -2), eye.expand_as(D), atol=1e-5 if dtype == torch.float32 else 1e-12)
    # parity: -I acts as p on each block
    Dm = irreps.D_from_matrix(-torch.eye(3, dtype=dtype))
    p = torch.cat([torch.full((ir.dim * mul,), float(ir.p), dtype=dtype) for mul, ir in irreps])
    assert torch.allclose(Dm, torch.diag(p), atol=1e-5 if dtype == torch.float32 else 1e-12)


def test_D_rejects_non_rotation():
    with pytest.raises(ValueError, match="not a rotation"):
        Irreps("1o").D_from_matrix(torch.tensor([[1.0, 0.2, 0], [0, 1, 0], [0, 0, 1]]))
    with pytest.raises(ValueError, match="shape"):
        Irreps("1o").D_from_matrix(torch.eye(2))


def test_non_iterable_and_non_float_inputs():
    with pytest.raises(ValueError, match="cannot interpret 5"):
        Irreps(5)
    from equivar.o3 import spherical_harmonics

    with pytest.raises(ValueError, match="floating-point"):
        spherical_harmonics(1, torch.ones(2, 3, dtype=torch.long))
