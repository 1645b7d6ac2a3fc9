"""equivar.o3 against e3nn (the oracle): harmonics, Wigner-D, 3j for l <= 8."""

import pytest
import torch

from equivar import o3

E = pytest.importorskip("e3nn.o3")


@pytest.fixture(autouse=True)
def _e3nn_in_float64():
    """e3nn builds some constants in the default dtype: make the oracle float64."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


def rel(a, b):
    return float((a - b).norm() / b.norm().clamp_min(1e-300))


@pytest.mark.parametrize("normalization", ["component", "norm", "integral"])
@pytest.mark.parametrize("normalize", [True, False])
def test_spherical_harmonics_match_e3nn(dtype, tol, normalization, normalize):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 3, generator=g, dtype=dtype)
    ls = list(range(9))
    ours = o3.spherical_harmonics(ls, x, normalize=normalize, normalization=normalization)
    ref = E.spherical_harmonics(ls, x.double(), normalize=normalize, normalization=normalization)
    assert ours.dtype == dtype
    assert rel(ours.double(), ref) < tol * (10 if dtype == torch.float32 and not normalize else 1)


@pytest.mark.parametrize("l", range(9))
def test_single_l_and_irreps_forms(l):
    x = torch.randn(10, 3, dtype=torch.float64)
    a = o3.spherical_harmonics(l, x)
    b = o3.spherical_harmonics(o3.Irreps([(1, (l, (-1) ** l))]), x)
    ref = E.spherical_harmonics(l, x, True, normalization="component")
    assert rel(a, ref) < 1e-12 and rel(b, ref) < 1e-12


def test_spherical_harmonics_grad_matches_e3nn(dtype, tol):
    x = torch.randn(50, 3, dtype=dtype, requires_grad=True)
    x2 = x.detach().double().requires_grad_()
    w = torch.randn(81, dtype=torch.float64)
    (o3.spherical_harmonics(list(range(9)), x).double() @ w).sum().backward()
    (E.spherical_harmonics(list(range(9)), x2, True, normalization="component") @ w).sum().backward()
    assert rel(x.grad.double(), x2.grad) < tol * 10


@pytest.mark.parametrize("l", range(9))
def test_wigner_D_matches_e3nn(dtype, tol, l):
    R = o3.rand_matrix(5, generator=torch.Generator().manual_seed(l), dtype=dtype)
    ours = o3.wigner_D(l, R)
    a, b, c = E.matrix_to_angles(R.double())
    ref = E.wigner_D(l, a, b, c)
    assert ours.dtype == dtype
    assert rel(ours.double(), ref) < tol


def test_irreps_D_from_matrix_matches_e3nn_improper(dtype, tol):
    s = "2x0e+0o+1o+1e+2e+2o+3o+4e"
    R = -o3.rand_matrix(3, generator=torch.Generator().manual_seed(1), dtype=dtype)
    ours = o3.Irreps(s).D_from_matrix(R)
    ref = E.Irreps(s).D_from_matrix(R.double())
    assert rel(ours.double(), ref) < tol


def test_wigner_3j_matches_e3nn(dtype, tol):
    # every triple up to l = 8 with l1 <= l2 (the code path does not depend on the
    # order; a few reversed triples guard the index order)
    triples = [(l1, l2, l3) for l1 in range(9) for l2 in range(l1, 9) for l3 in range(l2 - l1, min(l1 + l2, 8) + 1)]
    triples += [(3, 1, 2), (5, 2, 4), (8, 3, 6)]
    for l1, l2, l3 in triples:
        ours = o3.wigner_3j(l1, l2, l3, dtype=dtype)
        ref = E.wigner_3j(l1, l2, l3, dtype=torch.float64)
        assert rel(ours.double(), ref) < tol, (l1, l2, l3)


def test_euler_angles_match_e3nn(dtype):
    R = o3.rand_matrix(20, dtype=torch.float64)
    a, b, c = o3.matrix_to_angles(R)
    a2, b2, c2 = E.matrix_to_angles(R)
    for u, v in [(a, a2), (b, b2), (c, c2)]:
        assert torch.allclose(u, v, atol=1e-10)
    assert torch.allclose(o3.angles_to_matrix(a, b, c), R, atol=1e-12)
