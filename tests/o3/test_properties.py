"""Properties of the O(3) core that hold for all inputs (hypothesis where it fits)."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from equivar import o3


def test_orthonormality_under_quadrature(dtype):
    L = 12
    g = o3.sphere_grid(2 * L, dtype=dtype)
    Y = o3.spherical_harmonics(list(range(L + 1)), g.points, normalization="integral")
    gram = torch.einsum("n,ni,nj->ij", g.weights, Y, Y)
    eye = torch.eye(gram.shape[0], dtype=dtype)
    assert (gram - eye).abs().max() < (1e-5 if dtype == torch.float32 else 1e-12)


def test_quadrature_weights_and_exactness():
    g = o3.sphere_grid(7, dtype=torch.float64)
    assert abs(float(g.weights.sum()) - 4 * math.pi) < 1e-12
    # integral of x^2 y^4 z^0 (degree 6) over S^2 = 4 pi * 1!!3!!/(7!!) ... check numerically vs a fine grid
    f = lambda p: p[:, 0] ** 2 * p[:, 1] ** 4  # noqa: E731
    fine = o3.sphere_grid(40, dtype=torch.float64)
    assert abs(float((g.weights * f(g.points)).sum() - (fine.weights * f(fine.points)).sum())) < 1e-13
    with pytest.raises(ValueError, match="too small"):
        o3.sphere_grid(8, n_beta=2)


@pytest.mark.parametrize("l", [0, 1, 2, 5, 8, 12, 16])
def test_sh_equivariance(dtype, l):
    gen = torch.Generator().manual_seed(l)
    x = torch.randn(30, 3, generator=gen, dtype=dtype)
    R = o3.rand_matrix(generator=gen, dtype=dtype)
    Y = o3.spherical_harmonics(l, x)
    YR = o3.spherical_harmonics(l, x @ R.T)
    D = o3.wigner_D(l, R)
    err = (YR - Y @ D.T).norm() / Y.norm()
    assert err < (2e-5 if dtype == torch.float32 else 1e-11)


@pytest.mark.parametrize("l", [1, 3, 7, 13])
def test_wigner_D_homomorphism(dtype, l):
    gen = torch.Generator().manual_seed(l)
    R1, R2 = o3.rand_matrix(2, generator=gen, dtype=dtype)
    D = lambda R: o3.wigner_D(l, R)  # noqa: E731
    err = (D(R1 @ R2) - D(R1) @ D(R2)).abs().max()
    assert err < (1e-5 if dtype == torch.float32 else 1e-11)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 6), st.integers(0, 6), st.integers(0, 12))
def test_gaunt_selection_rules(l1, l2, l3):
    G = o3.gaunt(l1, l2, l3, dtype=torch.float64)
    allowed = abs(l1 - l2) <= l3 <= l1 + l2 and (l1 + l2 + l3) % 2 == 0
    if not allowed:
        assert (G == 0).all()
    else:
        C = o3.wigner_3j(l1, l2, l3, dtype=torch.float64)
        # proportional to the Clebsch-Gordan coefficients, nonzero
        ratio = (G * C).sum() / (C * C).sum()
        assert ratio.abs() > 1e-8
        assert torch.allclose(G, ratio * C, atol=1e-12)


def test_gaunt_is_integral_of_three_harmonics():
    g = o3.sphere_grid(30, dtype=torch.float64)
    Y = [o3.spherical_harmonics(l, g.points, normalization="integral") for l in (2, 3, 3)]
    direct = torch.einsum("n,ni,nj,nk->ijk", g.weights, *Y)
    assert torch.allclose(o3.gaunt(2, 3, 3, dtype=torch.float64), direct, atol=1e-13)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 5), st.integers(0, 5), st.integers(0, 10), st.integers(0, 2**31 - 1))
def test_wigner_3j_invariance_and_zeros(l1, l2, l3, seed):
    if not abs(l1 - l2) <= l3 <= l1 + l2:
        with pytest.raises(ValueError, match=rf"wigner_3j\({l1}, {l2}, {l3}\): .*triangle rule"):
            o3.wigner_3j(l1, l2, l3, dtype=torch.float64)
        return
    C = o3.wigner_3j(l1, l2, l3, dtype=torch.float64)
    assert abs(float(C.norm()) - 1) < 1e-12
    R = o3.rand_matrix(generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    D1, D2, D3 = (o3.wigner_D(l, R) for l in (l1, l2, l3))
    rot = torch.einsum("ijk,ia,jb,kc->abc", C, D1, D2, D3)
    assert torch.allclose(rot, C, atol=1e-11)


def test_zero_vector_finite():
    x = torch.zeros(2, 3, dtype=torch.float64, requires_grad=True)
    Y = o3.spherical_harmonics(list(range(5)), x)
    assert torch.isfinite(Y).all()
    assert torch.allclose(Y[:, 0], torch.ones(2, dtype=torch.float64))
    assert (Y[:, 1:] == 0).all()
    Y.sum().backward()
    assert torch.isfinite(x.grad).all()


def test_normalize_false_is_homogeneous():
    x = torch.randn(10, 3, dtype=torch.float64)
    for l in range(6):
        a = o3.spherical_harmonics(l, 2.5 * x, normalize=False)
        b = o3.spherical_harmonics(l, x, normalize=False)
        assert torch.allclose(a, 2.5**l * b, rtol=1e-12)


def test_sh_bad_input():
    with pytest.raises(ValueError, match="trailing dimension"):
        o3.spherical_harmonics(1, torch.randn(4, 2))
    with pytest.raises(ValueError, match="l=65"):
        o3.spherical_harmonics(65, torch.randn(4, 3))
    with pytest.raises(ValueError, match="normalization"):
        o3.spherical_harmonics(1, torch.randn(4, 3), normalization="unit")
    with pytest.raises(ValueError, match="parity"):
        o3.spherical_harmonics("1e", torch.randn(4, 3))


def test_rotation_conversions(dtype):
    R = o3.rand_matrix(50, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    axis, angle = o3.matrix_to_axis_angle(R)
    assert torch.allclose(o3.axis_angle_to_matrix(axis, angle), R, atol=1e-10)
    a, b, c = o3.matrix_to_angles(R)
    assert torch.allclose(o3.angles_to_matrix(a, b, c), R, atol=1e-12)
    # rotation by pi about an axis
    Rpi = o3.axis_angle_to_matrix(
        torch.tensor([0.0, 0.6, 0.8], dtype=torch.float64), torch.tensor(math.pi, dtype=torch.float64)
    )
    ax, an = o3.matrix_to_axis_angle(Rpi)
    assert torch.allclose(o3.axis_angle_to_matrix(ax, an), Rpi, atol=1e-10)
    # Haar: mean of R is ~0
    Rm = o3.rand_matrix(4000, generator=torch.Generator().manual_seed(0), dtype=torch.float64).mean(0)
    assert Rm.abs().max() < 0.06
    # seeded
    assert torch.equal(
        o3.rand_matrix(3, generator=torch.Generator().manual_seed(5)),
        o3.rand_matrix(3, generator=torch.Generator().manual_seed(5)),
    )


def test_wigner_D_rejects_bad_matrices():
    with pytest.raises(ValueError, match="not a rotation"):
        o3.wigner_D(2, torch.ones(3, 3))
    with pytest.raises(ValueError, match="proper"):
        o3.wigner_D(2, -torch.eye(3))


@pytest.mark.parametrize("triple", [(1, 1, 3), (0, 1, 0), (2, 0, 1), (4, 1, 2)])
def test_wigner_3j_outside_the_triangle_raises(triple):
    with pytest.raises(
        ValueError, match=r"^wigner_3j\({}, {}, {}\): the degrees violate the triangle rule".format(*triple)
    ):
        o3.wigner_3j(*triple)
