import pytest
import torch

from equivar.nn import ElementLinear, Linear
from equivar.o3 import Irreps
from equivar.testing import assert_equivariant

CASES = [("4x0e+2x1o+3x0e+1x2e+2x1e", "3x0e+1x1o+2x1o+5x3o+2x1e"), ("8x0e+8x1o", "8x0e+8x1o")]


@pytest.mark.parametrize("irreps_in,irreps_out", CASES)
def test_linear_equivariant(irreps_in, irreps_out, dtype):
    lin = Linear(irreps_in, irreps_out, biases=True).to(dtype)
    x = Irreps(irreps_in).randn(7, -1, dtype=dtype)
    assert_equivariant(lin, [x], [irreps_in], irreps_out)


@pytest.mark.parametrize("irreps_in,irreps_out", CASES)
def test_linear_matches_e3nn(irreps_in, irreps_out, dtype, tol):
    o3 = pytest.importorskip("e3nn.o3")
    ref = o3.Linear(irreps_in, irreps_out).to(dtype)
    lin = Linear(irreps_in, irreps_out).to(dtype)
    assert lin.weight_numel == ref.weight.numel()
    with torch.no_grad():
        lin.weight.copy_(ref.weight)
    x = Irreps(irreps_in).randn(5, -1, dtype=dtype)
    torch.testing.assert_close(lin(x), ref(x), rtol=tol * 10, atol=tol * 10)


def test_linear_normalization_and_errors():
    lin = Linear("64x0e+64x1o", "64x0e+64x1o")
    x = Irreps("64x0e+64x1o").randn(2000, -1)
    assert 0.85 < lin(x).pow(2).mean().item() < 1.15  # unit second moment at init
    y = Linear("3x0e", "2x0e+1x1o")(torch.randn(4, 3))
    assert torch.all(y[:, 2:] == 0)  # no path: zeros
    with pytest.raises(ValueError, match="expected last dim 3"):
        Linear("3x0e", "1x0e")(torch.randn(4, 5))


def test_element_linear(dtype):
    irreps_in, irreps_out = "4x0e+2x1o", "3x0e+2x1o"
    el = ElementLinear(irreps_in, irreps_out, 3).to(dtype)
    x = Irreps(irreps_in).randn(6, -1, dtype=dtype)
    idx = torch.tensor([0, 1, 2, 2, 1, 0])
    oh = torch.nn.functional.one_hot(idx, 3).to(dtype)
    torch.testing.assert_close(el(x, oh), el(x, idx))
    # row n equals the Linear of its element
    full = el.linear(x).reshape(6, -1)
    y = el(x, idx)
    for e in range(3):
        sel = idx == e
        ref = torch.cat([full[sel][:, 0:9].reshape(-1, 3, 3)[:, e], full[sel][:, 9:].reshape(-1, 3, 6)[:, e]], -1)
        torch.testing.assert_close(y[sel], ref)
    assert_equivariant(lambda x, a: el(x, a), [x, oh], [irreps_in, None], irreps_out)
