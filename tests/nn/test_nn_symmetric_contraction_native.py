"""The native CPU kernels of SymmetricContraction (forward, backward, double backward) against its PyTorch path,
finite differences (gradcheck / gradgradcheck) and across thread counts."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from equivar import _threads
from equivar.nn import SymmetricContraction
from equivar.nn import _symmetric_contraction_native as scn
from equivar.o3 import Irreps
from equivar.testing import assert_equivariant

pytestmark = pytest.mark.skipif(scn.library() is None, reason=f"native kernels unavailable: {scn.native_error()}")

CASES = [  # (irreps_in, irreps_out, correlation): channel counts below, at and above one 16-lane block
    ("3x0e+3x1o+3x2e", "3x0e+3x1o", 3),
    ("8x0e+8x1o+8x2e+8x3o", "8x0e+8x1o", 3),
    ("10x0e+10x1o+10x2e+10x3o", "10x0e", 3),
    ("16x0e+16x1o+16x2e", "16x0e+16x1o+16x2e", 2),
    ("4x0e+4x1o", "4x0e+4x1o", 1),
]


def _force_loss_values(sc, x0, idx, attrs, seed=1):
    """Output, forces-like gradient (create_graph) and the gradients of a force loss w.r.t. x and the weights."""
    sc.zero_grad()
    x = x0.clone().requires_grad_(True)
    y = sc(x, attrs)
    gen = torch.Generator().manual_seed(seed)
    r = torch.randn(y.shape, generator=gen, dtype=x0.dtype)
    e = (y * r).sum() + 0.5 * y.square().sum()
    (g,) = torch.autograd.grad(e, x, create_graph=True)
    f = torch.randn(g.shape, generator=gen, dtype=x0.dtype)
    ((g * f).sum() + e).backward()
    return [y.detach(), g.detach(), x.grad] + [w.grad.clone() for w in sc.weights]


def _rel_err(a, b):
    a, b = a.detach(), b.detach()
    return float((a - b).abs().max() / b.abs().max().clamp_min(torch.finfo(b.dtype).tiny))


@pytest.mark.parametrize("irreps_in,irreps_out,correlation", CASES)
def test_native_matches_pytorch_path(irreps_in, irreps_out, correlation, dtype):
    """Values, input gradients and force-loss gradients (double backward) equal the PyTorch path's."""
    torch.manual_seed(0)
    sc = SymmetricContraction(irreps_in, irreps_out, correlation, 3).to(dtype)
    x0 = Irreps(irreps_in).randn(11, -1, dtype=dtype)
    idx = torch.tensor([0, 1, 2, 1, 0, 2, 2, 0, 1, 1, 2])
    native = _force_loss_values(sc, x0, idx, torch.nn.functional.one_hot(idx, 3).to(dtype))
    assert isinstance(sc(x0.requires_grad_(True), idx).grad_fn, scn.ContractionNative._backward_cls)
    x0 = x0.detach()
    sc.native = False
    ref = _force_loss_values(sc, x0, idx, idx)
    tol = 2e-6 if dtype == torch.float32 else 1e-12
    assert len(native) == len(ref) >= 4
    for k, (a, b) in enumerate(zip(native, ref)):
        assert b.abs().max() > 0, k
        assert _rel_err(a, b) < tol, (k, _rel_err(a, b))


@pytest.mark.parametrize("correlation", [1, 2, 3])
@pytest.mark.parametrize("idx", [[0, 1, 1, 0, 1], [1, 1, 1, 1, 1]])  # both elements / element 0 absent
def test_native_gradcheck_gradgradcheck(correlation, idx):
    """First and second derivatives in x and every weight against finite differences (float64)."""
    torch.manual_seed(0)
    sc = SymmetricContraction("2x0e+2x1o+2x2e", "2x0e+2x1o", correlation, 2).double()
    idx = torch.tensor(idx)
    x = Irreps("2x0e+2x1o+2x2e").randn(5, -1, dtype=torch.float64).requires_grad_(True)
    ws = [w.detach().clone().requires_grad_(True) for w in sc.weights]

    def f(x, *w):
        saved = dict(sc.weights._parameters)
        try:
            for k, wk in zip(list(saved), w):
                sc.weights._parameters[k] = wk
            return sc(x, idx)
        finally:
            sc.weights._parameters.update(saved)

    assert isinstance(f(x, *ws).grad_fn, scn.ContractionNative._backward_cls)
    assert torch.autograd.gradcheck(f, (x, *ws))
    assert torch.autograd.gradgradcheck(f, (x, *ws))


def test_native_forces_finite_differences(dtype):
    """d/dx of a scalar of the output against central differences, float32 and float64."""
    torch.manual_seed(2)
    sc = SymmetricContraction("8x0e+8x1o+8x2e+8x3o", "8x0e+8x1o", 3, 2).double()
    x = Irreps("8x0e+8x1o+8x2e+8x3o").randn(3, -1, dtype=torch.float64)
    idx = torch.tensor([0, 1, 1])
    r = torch.randn(3, sc.irreps_out.dim, dtype=torch.float64)
    sc = sc.to(dtype)
    xx = x.to(dtype).requires_grad_(True)
    (g,) = torch.autograd.grad((sc(xx, idx) * r.to(dtype)).sum(), xx)
    sc = sc.double()
    h = 1e-6
    fd = torch.zeros_like(x)
    for k in range(x.numel()):
        e = torch.zeros_like(x).view(-1)
        e[k] = h
        e = e.view_as(x)
        fd.view(-1)[k] = ((sc(x + e, idx) * r).sum() - (sc(x - e, idx) * r).sum()) / (2 * h)
    assert _rel_err(g.double(), fd) < (1e-5 if dtype == torch.float32 else 1e-8)


def test_native_equivariant(dtype):
    irreps_in, irreps_out = "9x0e+9x1o+9x2e+9x3o", "9x0e+9x1o+9x1e"
    sc = SymmetricContraction(irreps_in, irreps_out, 3, 2).to(dtype)
    x = Irreps(irreps_in).randn(6, -1, dtype=dtype)
    oh = torch.nn.functional.one_hot(torch.tensor([0, 1, 1, 0, 1, 0]), 2).to(dtype)
    assert isinstance(sc(x.requires_grad_(True), oh).grad_fn, scn.ContractionNative._backward_cls)
    assert_equivariant(lambda a, b: sc(a, b), [x.detach(), oh], [irreps_in, None], irreps_out)


@pytest.mark.parametrize("threads", [2, 3])
def test_native_bit_identical_across_thread_counts(threads):
    """Every output row and every weight-gradient sum has one order whatever the kernels' thread count."""
    torch.manual_seed(0)
    sc = SymmetricContraction("40x0e+40x1o+40x2e+40x3o", "40x0e+40x1o", 3, 3)
    x0 = Irreps("40x0e+40x1o+40x2e+40x3o").randn(70, -1)
    idx = torch.randint(0, 3, (70,), generator=torch.Generator().manual_seed(1))
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = _force_loss_values(sc, x0, idx, idx)
        torch.set_num_threads(threads)
        with _threads.thread_policy(10):
            assert _threads.kernel_threads() == threads
            many = _force_loss_values(sc, x0, idx, idx)
    finally:
        torch.set_num_threads(before)
    for k, (a, b) in enumerate(zip(one, many)):
        assert torch.equal(a, b), k


@settings(max_examples=15, deadline=None)
@given(
    n=st.integers(0, 20),
    seed=st.integers(0, 2**16),
    correlation=st.integers(1, 3),
    channels=st.sampled_from([1, 5, 8, 9]),
)
def test_native_equals_pytorch_for_any_batch(n, seed, correlation, channels):
    """Any node count (also 0) and element assignment: the native output equals the PyTorch path (float64)."""
    irreps_in = f"{channels}x0e+{channels}x1o+{channels}x2e"
    sc = SymmetricContraction(irreps_in, f"{channels}x0e+{channels}x1o", correlation, 4).double()
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, Irreps(irreps_in).dim, generator=gen, dtype=torch.float64)
    idx = torch.randint(0, 4, (n,), generator=gen)
    y = sc(x, idx)
    sc.native = False
    torch.testing.assert_close(y, sc(x, idx), rtol=1e-12, atol=1e-12)


def test_native_refuses_out_of_range_elements_and_third_derivatives():
    sc = SymmetricContraction("2x0e+2x1o", "2x0e+2x1o", 2, 2).double()
    with pytest.raises(ValueError, match="element indices must be in 0..1"):
        sc(torch.randn(3, 8, dtype=torch.float64), torch.tensor([0, 2, 1]))
    x = torch.randn(3, 8, dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(sc(x, torch.tensor([0, 1, 1])).square().sum(), x, create_graph=True)
    (h,) = torch.autograd.grad(g.square().sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="third derivatives of SymmetricContraction's native kernels"):
        torch.autograd.grad(h.square().sum(), x)
    sc.native = False  # the PyTorch path differentiates to any order
    (g,) = torch.autograd.grad(sc(x, torch.tensor([0, 1, 1])).square().sum(), x, create_graph=True)
    (h,) = torch.autograd.grad(g.square().sum(), x, create_graph=True)
    assert torch.autograd.grad(h.square().sum(), x)[0].abs().max() > 0
