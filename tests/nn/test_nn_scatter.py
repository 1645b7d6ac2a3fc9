"""scatter_sum / gather: values equal index_add / index_select; adjoint pair differentiable to any order."""

import pytest
import torch

from equivar.nn import gather, scatter_sum


def _data(dtype):
    g = torch.Generator().manual_seed(0)
    index = torch.randint(0, 6, (20,), generator=g)
    index[:6] = torch.arange(6)  # every node receives
    src = torch.randn(20, 3, 2, generator=g, dtype=dtype)
    x = torch.randn(6, 3, 2, generator=g, dtype=dtype)
    return index, src, x


def test_values_match_index_add_and_index_select(dtype):
    index, src, x = _data(dtype)
    torch.testing.assert_close(scatter_sum(src, index, 7), torch.zeros(7, 3, 2, dtype=dtype).index_add(0, index, src))
    torch.testing.assert_close(gather(x, index), x.index_select(0, index))


def test_adjoint():
    """<scatter_sum(s), x> == <s, gather(x)> for all s, x."""
    index, src, x = _data(torch.float64)
    lhs = (scatter_sum(src, index, 6) * x).sum()
    rhs = (src * gather(x, index)).sum()
    torch.testing.assert_close(lhs, rhs)


@pytest.mark.parametrize("fn", ["scatter", "gather"])
def test_gradcheck_and_gradgradcheck(fn):
    index, src, x = _data(torch.float64)
    # a non-linear wrapper so the second derivative is not identically zero
    if fn == "scatter":
        f = lambda s: scatter_sum(s.sin(), index, 6).cos()  # noqa: E731
        inp = src.clone().requires_grad_()
    else:
        f = lambda v: gather(v.sin(), index).cos()  # noqa: E731
        inp = x.clone().requires_grad_()
    assert torch.autograd.gradcheck(f, (inp,))
    assert torch.autograd.gradgradcheck(f, (inp,))


def test_bad_index_raises():
    _, src, x = _data(torch.float32)
    with pytest.raises((IndexError, RuntimeError)):
        scatter_sum(src, torch.full((20,), 9), 6)
    with pytest.raises((IndexError, RuntimeError)):
        gather(x, torch.tensor([0, 6]))


def test_compiled_second_derivatives_match_eager():
    index, _, x = _data(torch.float64)
    x = x.clone().requires_grad_()

    def h(v):
        return scatter_sum(gather(v, index).sin(), index, 6).cos()

    res = []
    for m in (h, torch.compile(h, backend="eager", fullgraph=True)):
        (g,) = torch.autograd.grad(m(x).sum(), x, create_graph=True)
        res.append(torch.autograd.grad((g**2).sum(), x)[0])
    torch.testing.assert_close(res[1], res[0], rtol=1e-10, atol=1e-10)


def test_gather_of_a_scalar_is_a_clear_error():
    with pytest.raises(ValueError, match="0-d"):
        gather(torch.tensor(1.0), torch.tensor([0]))
