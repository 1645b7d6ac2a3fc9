"""edge_harmonics: the native kernels against equivar.o3.spherical_harmonics (values, first and second
derivatives), finite differences, equivariance, zero vectors, thread counts and the fallbacks."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from equivar import _threads
from equivar.nn import _edge_harmonics as eh
from equivar.nn import edge_harmonics
from equivar.o3 import Irreps, rand_matrix, spherical_harmonics

pytestmark = pytest.mark.skipif(eh.library() is None, reason=f"native kernels unavailable: {eh.native_error()}")


def _values(v0, lmax, native, seed=0):
    """Y, the gradient of a scalar of Y (create_graph), and the gradient of a loss on that gradient."""
    v = v0.clone().requires_grad_(True)
    Y = edge_harmonics(Irreps.spherical_harmonics(lmax), v, native=native)
    gen = torch.Generator().manual_seed(seed)
    r = torch.randn(Y.shape, generator=gen, dtype=v0.dtype)
    (g,) = torch.autograd.grad((Y * r).sum() + Y.square().sum(), v, create_graph=True)
    f = torch.randn(g.shape, generator=gen, dtype=v0.dtype)
    (h,) = torch.autograd.grad((g * f).sum() + g.square().sum(), v)
    return Y.detach(), g.detach(), h


def _rel(a, b):
    a, b = a.detach(), b.detach()
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-30))


@pytest.mark.parametrize("lmax", [1, 2, 3, 4, 6])
def test_native_matches_o3(lmax, dtype):
    v0 = 3.0 * torch.randn(40, 3, dtype=dtype, generator=torch.Generator().manual_seed(lmax))
    nat, ref = _values(v0, lmax, True), _values(v0, lmax, False)
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    for k, (a, b) in enumerate(zip(nat, ref)):
        assert b.abs().max() > 0
        assert _rel(a, b) < tol, (k, _rel(a, b))
    v = v0.clone().requires_grad_(True)
    assert isinstance(edge_harmonics(Irreps.spherical_harmonics(lmax), v).grad_fn, eh.HarmonicsNative._backward_cls)


def test_degree_zero_and_zero_vectors(dtype):
    """l = 0 is its constant; a zero vector gives Y_0 alone and zero first and second derivatives."""
    v = torch.randn(5, 3, dtype=dtype)
    v[2] = 0.0
    torch.testing.assert_close(edge_harmonics("0e", v), torch.ones(5, 1, dtype=dtype))
    nat, ref = _values(v, 3, True), _values(v, 3, False)
    for a, b in zip(nat, ref):
        assert _rel(a, b) < (1e-5 if dtype == torch.float32 else 1e-12)
    assert nat[0][2, 0] == 1 and not nat[0][2, 1:].any() and not nat[1][2].any() and not nat[2][2].any()


def test_gradcheck_gradgradcheck():
    v = torch.randn(7, 3, dtype=torch.float64, requires_grad=True)
    f = lambda v: edge_harmonics(Irreps.spherical_harmonics(3), v)  # noqa: E731
    assert isinstance(f(v).grad_fn, eh.HarmonicsNative._backward_cls)
    assert torch.autograd.gradcheck(f, (v,))
    assert torch.autograd.gradgradcheck(f, (v,))


def test_forces_against_finite_differences(dtype):
    """d/dv of a scalar of the harmonics (float32 and float64) against central differences in float64."""
    v = torch.randn(6, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    r = torch.randn(6, 16, dtype=torch.float64)
    vv = v.to(dtype).requires_grad_(True)
    (g,) = torch.autograd.grad((edge_harmonics("0e+1o+2e+3o", vv) * r.to(dtype)).sum(), vv)
    h, fd = 1e-6, torch.zeros_like(v)
    for k in range(v.numel()):
        e = torch.zeros(v.numel(), dtype=torch.float64)
        e[k] = h
        e = e.view_as(v)
        fd.view(-1)[k] = (
            (edge_harmonics("0e+1o+2e+3o", v + e) * r).sum() - (edge_harmonics("0e+1o+2e+3o", v - e) * r).sum()
        ) / (2 * h)
    assert _rel(g.double(), fd) < (2e-5 if dtype == torch.float32 else 1e-8)


def test_equivariant(dtype):
    """Y(R v) = D(R) Y(v) for rotations and inversions."""
    irreps = Irreps.spherical_harmonics(4)
    v = torch.randn(20, 3, dtype=dtype)
    for R in (rand_matrix(dtype=dtype), -rand_matrix(dtype=dtype)):
        lhs = edge_harmonics(irreps, v @ R.T)
        rhs = edge_harmonics(irreps, v) @ irreps.D_from_matrix(R).T
        assert _rel(lhs, rhs) < (1e-5 if dtype == torch.float32 else 1e-12)


def test_bit_identical_across_thread_counts():
    v0 = torch.randn(3000, 3, dtype=torch.float32)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = _values(v0, 3, True)
        torch.set_num_threads(2)
        with _threads.thread_policy(10):
            assert _threads.kernel_threads() == 2
            two = _values(v0, 3, True)
    finally:
        torch.set_num_threads(before)
    for a, b in zip(one, two):
        assert torch.equal(a, b)


@settings(max_examples=20, deadline=None)
@given(
    xyz=st.lists(st.floats(-1e3, 1e3, allow_nan=False, width=64), min_size=3, max_size=3),
    lmax=st.integers(0, 6),
)
def test_native_equals_o3_for_any_vector(xyz, lmax):
    """Any finite vector (also tiny or zero ones): native values equal o3's (float64)."""
    v = torch.tensor([xyz], dtype=torch.float64)
    irreps = Irreps.spherical_harmonics(lmax)
    torch.testing.assert_close(
        edge_harmonics(irreps, v),
        spherical_harmonics(irreps, v, normalize=True, normalization="component"),
        rtol=1e-11,
        atol=1e-11,
    )


def test_fallbacks_and_third_derivative():
    """Other degree lists take the o3 path; a third derivative through the native kernels raises."""
    v = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    Y = edge_harmonics("0e+2e", v)
    assert not isinstance(Y.grad_fn, eh.HarmonicsNative._backward_cls)
    torch.testing.assert_close(Y, spherical_harmonics("0e+2e", v, normalize=True, normalization="component"))
    with pytest.raises(ValueError):
        edge_harmonics("0e+1o", torch.randn(4, 2))
    (g,) = torch.autograd.grad(edge_harmonics("0e+1o+2e", v).square().sum(), v, create_graph=True)
    (h,) = torch.autograd.grad(g.square().sum(), v, create_graph=True)
    with pytest.raises(RuntimeError, match="third derivatives of edge_harmonics' native kernels"):
        torch.autograd.grad(h.sum(), v)
