import math

import pytest
import torch

from equivar.nn import MLP, BesselBasis, PolynomialCutoff, RadialEmbedding, RadialMLP, SplineRadial


def test_bessel_values(dtype):
    b = BesselBasis(5.0, 8).to(dtype)
    r = torch.tensor([0.0, 0.7, 2.5, 4.99], dtype=dtype)
    y = b(r)
    n = torch.arange(1, 9, dtype=dtype)
    ref = math.sqrt(2 / 5.0) * torch.sin(n * math.pi * r[1:, None] / 5.0) / r[1:, None]
    torch.testing.assert_close(y[1:], ref)
    torch.testing.assert_close(y[0], math.sqrt(2 / 5.0) * n * math.pi / 5.0)  # r -> 0 limit
    assert b(r[:, None]).shape == (4, 8)
    t = BesselBasis(5.0, 8, trainable=True)
    assert isinstance(t.freq, torch.nn.Parameter)
    assert b.freq.dtype == dtype and float(b.freq[0]) == math.pi / 5.0 or dtype == torch.float32


@pytest.mark.parametrize("p", [5, 6])
def test_polynomial_cutoff_smooth(p):
    c = PolynomialCutoff(4.0, p).double()
    r = torch.tensor([0.0, 2.0, 3.999999, 4.0, 4.5], dtype=torch.float64, requires_grad=True)
    f = c(r)
    assert f[0].item() == pytest.approx(1.0) and f[3].item() == 0.0 and f[4].item() == 0.0
    (g,) = torch.autograd.grad(f.sum(), r, create_graph=True)
    (g2,) = torch.autograd.grad(g.sum(), r)
    assert abs(g[2].item()) < 1e-6 and abs(g2[2].item()) < 1e-3


def test_radial_mlp_vanishes_at_cutoff(dtype):
    m = RadialMLP(5.0, 12, hidden=(16, 16)).to(dtype)
    r = torch.tensor([0.5, 2.0, 5.0, 6.0], dtype=dtype)
    y = m(r)
    assert y.shape == (4, 12) and torch.all(y[2:] == 0) and y[:2].abs().sum() > 0
    assert RadialEmbedding(5.0, 6)(r).shape == (4, 6)


def test_mlp_normalisation():
    m = MLP([32, 64, 64, 1])
    y = m(torch.randn(4000, 32))
    assert 0.6 < y.std().item() < 1.6
    with pytest.raises(ValueError):
        MLP([3])


def test_spline_smooth_and_vanishes(dtype):
    s = SplineRadial(4.0, 5, num_knots=16, seed=0).to(dtype)
    r = torch.linspace(0.0, 5.0, 501, dtype=dtype)
    y = s(r)
    assert y.shape == (501, 5) and torch.all(y[r >= 4.0] == 0)
    torch.testing.assert_close(s.blend(r) @ s.values, y)
    # C2 continuity across knots: second differences stay small and smooth
    if dtype == torch.float64:
        from torch.autograd import gradcheck, gradgradcheck

        x = torch.tensor([0.13, 1.0, 1.25, 3.9], dtype=torch.float64, requires_grad=True)  # incl. a knot (1.25 = 5h)
        assert gradcheck(s, (x,)) and gradgradcheck(s, (x,))
        # derivative continuous at a knot
        h = s.h
        xs = torch.tensor([5 * h - 1e-7, 5 * h + 1e-7], dtype=torch.float64, requires_grad=True)
        (g,) = torch.autograd.grad(s(xs)[:, 0].sum(), xs)
        assert abs(g[0] - g[1]) < 1e-5


def test_spline_is_trainable_and_fits():
    torch.manual_seed(0)
    s = SplineRadial(5.0, 1, num_knots=24, seed=0).double()
    r = torch.linspace(0.1, 4.9, 200, dtype=torch.float64)
    target = (torch.exp(-r) * PolynomialCutoff(5.0)(r))[:, None]
    opt = torch.optim.Adam(s.parameters(), 0.05)
    for _ in range(300):
        loss = (s(r) - target).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 1e-4
