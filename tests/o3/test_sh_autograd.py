"""The analytic backward of the spherical harmonics: first and second derivatives."""

import pytest
import torch

from equivar import o3
from equivar.o3._spherical_harmonics import _sh_reference


@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("ls", [[0, 1, 2, 3], [2, 5], [0, 1, 2, 3, 4, 5]])
def test_gradcheck_and_gradgradcheck(normalize, ls):
    x = torch.randn(3, 3, dtype=torch.float64, requires_grad=True)
    f = lambda v: o3.spherical_harmonics(ls, v, normalize=normalize, normalization="norm")  # noqa: E731
    assert torch.autograd.gradcheck(f, (x,))
    assert torch.autograd.gradgradcheck(f, (x,))


@pytest.mark.parametrize("normalize", [True, False])
def test_second_derivatives_match_plain_autograd(dtype, normalize):
    L = 6
    x = torch.randn(20, 3, dtype=dtype, requires_grad=True)
    w = torch.randn((L + 1) ** 2, dtype=dtype)

    def forces_then_loss(Y):
        e = (Y @ w).pow(2).sum()
        (g,) = torch.autograd.grad(e, x, create_graph=True)
        (gg,) = torch.autograd.grad(g.pow(2).sum(), x)
        return g, gg

    g1, gg1 = forces_then_loss(o3.spherical_harmonics(list(range(L + 1)), x, normalize=normalize))
    g2, gg2 = forces_then_loss(_sh_reference(L, x, normalize))
    tol = 1e-4 if dtype == torch.float32 else 1e-10
    assert (g1 - g2).norm() / g2.norm() < tol
    assert (gg1 - gg2).norm() / gg2.norm() < tol


def test_leading_batch_shape_and_empty():
    x = torch.randn(2, 4, 3)
    assert o3.spherical_harmonics([0, 1, 2], x).shape == (2, 4, 9)
    assert o3.spherical_harmonics([0, 1, 2], torch.zeros(0, 3)).shape == (0, 9)
    y = torch.zeros(0, 3, requires_grad=True)
    o3.spherical_harmonics([0, 1, 2], y).sum().backward()
    assert y.grad.shape == (0, 3)


@pytest.mark.parametrize("n", [0, 1, 2])
def test_input_never_modified_and_double_backward_small(n):
    """Regression: one or zero vectors (whose transpose is contiguous) must not be normalised in place."""
    v = torch.randn(n, 3, dtype=torch.float64) * 3
    v0 = v.clone()
    v.requires_grad_()
    e = (o3.spherical_harmonics([0, 1, 2], v) ** 2).sum()
    assert torch.equal(v.detach(), v0)
    (g,) = torch.autograd.grad(e, v, create_graph=True)
    g.sum().backward()
    assert v.grad.shape == (n, 3)


def test_compiled_fullgraph_second_derivatives_match_eager():
    """Under torch.compile the harmonics are plain autograd ops (traceable with fullgraph, any order)."""
    from equivar.o3 import spherical_harmonics

    v = torch.randn(7, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64, requires_grad=True)

    def f(x):
        return spherical_harmonics(3, x, normalize=True, normalization="component")

    res = []
    for m in (f, torch.compile(f, backend="eager", fullgraph=True)):
        (g,) = torch.autograd.grad((m(v) ** 3).sum(), v, create_graph=True)
        res.append(torch.autograd.grad((g**2).sum(), v)[0])
    torch.testing.assert_close(res[1], res[0], rtol=1e-10, atol=1e-10)
