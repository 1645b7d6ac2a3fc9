"""Haar Monte-Carlo integration on GL+(2) / SL(2) through the polar decomposition (statistical, fixed seeds).

A measure is Haar iff integrals are unchanged by left (and, for these unimodular groups, right) translation.
The test function is smooth on the group and decays in the global chart ``g = exp(S) R`` (a bump in ``S``
times ``1 + cos(angle)``), so its Haar integral is finite (a bump in matrix entries is not: the Haar density
``|det g|^-2`` is not integrable near singular matrices).
"""

import pytest
import torch

from equivar import planar as P

N = 100_000


def _f(g, S0, th0=0.5, w=0.3):
    Pm, R = P.polar(g)
    L = P.spd_logm(Pm)
    return torch.exp(-(L - S0).square().sum((-1, -2)) / (2 * w * w)) * (1 + torch.cos(P.SO2.angle(R) - th0))


def _estimate(values):
    return values.mean().item(), (values.std() / values.numel() ** 0.5).item()


@pytest.fixture(scope="module")
def gl_samples():
    return P.GLPlus2(scale=0.3).sample_haar(N, torch.Generator().manual_seed(0))


S0_GL = torch.tensor([[0.2, 0.1], [0.1, -0.1]], dtype=torch.float64)
H_GL = torch.tensor([[1.8, 0.6], [0.0, 0.7]], dtype=torch.float64)


def _three(hs, weights, S0, h):
    g = hs.g
    return [_estimate(_f(x, S0) * weights) for x in (g, h @ g, g @ h)]


def test_glplus2_haar_left_and_right_invariance(gl_samples):
    (i0, s0), (il, sl), (ir, sr) = _three(gl_samples, gl_samples.log_weight.exp(), S0_GL, H_GL)
    assert s0 < 0.01 * i0  # the test has power: standard error under 1%
    assert abs(il - i0) < 4 * (s0**2 + sl**2) ** 0.5, (i0, il, s0, sl)
    assert abs(ir - i0) < 4 * (s0**2 + sr**2) ** 0.5, (i0, ir, s0, sr)


def test_glplus2_without_the_jacobian_is_not_invariant(gl_samples):
    """Dropping J(S) = sinh(2r)/(2r) from the weights breaks invariance: the test above can fail."""
    hs = gl_samples
    w = (hs.log_weight - P.log_jacobian(P.spd_logm(hs.P))).exp()
    (i0, s0), (il, sl), (ir, sr) = _three(hs, w, S0_GL, H_GL)
    assert max(abs(il - i0) / (s0**2 + sl**2) ** 0.5, abs(ir - i0) / (s0**2 + sr**2) ** 0.5) > 6


def test_haar_estimate_does_not_depend_on_the_sampler(gl_samples):
    """Another sampling scale estimates the same Haar integral (the weights are correct densities)."""
    i0, s0 = _estimate(_f(gl_samples.g, S0_GL) * gl_samples.log_weight.exp())
    hs = P.GLPlus2(scale=0.5).sample_haar(N, torch.Generator().manual_seed(1))
    i1, s1 = _estimate(_f(hs.g, S0_GL) * hs.log_weight.exp())
    assert abs(i1 - i0) < 4 * (s0**2 + s1**2) ** 0.5, (i0, i1)


def test_sl2_haar_invariance():
    hs = P.SL2(scale=0.3).sample_haar(N, torch.Generator().manual_seed(2))
    S0 = torch.tensor([[0.15, 0.1], [0.1, -0.15]], dtype=torch.float64)
    h = torch.tensor([[1.5, 0.5], [0.0, 1 / 1.5]], dtype=torch.float64)
    (i0, s0), (il, sl), (ir, sr) = _three(hs, hs.log_weight.exp(), S0, h)
    assert s0 < 0.01 * i0
    assert abs(il - i0) < 4 * (s0**2 + sl**2) ** 0.5, (i0, il)
    assert abs(ir - i0) < 4 * (s0**2 + sr**2) ** 0.5, (i0, ir)


def test_so2_factor_is_haar_uniform(gl_samples):
    """The rotation factor is uniform (chi^2 over 12 angle bins, 99.9% quantile of 11 degrees of freedom)."""
    ang = P.SO2.angle(gl_samples.R)
    counts = torch.histc(ang, bins=12, min=-torch.pi, max=torch.pi)
    expected = ang.numel() / 12
    assert ((counts - expected) ** 2 / expected).sum().item() < 31.3


def test_equidistant_rotations_are_stratified_and_still_uniform():
    """rgenn's equi_distant sampler: one uniform offset, n angles 2 pi / n apart; each angle is still uniform
    (chi^2 over 12 bins of the first angle of 20,000 sample sets), so the Haar weights stay valid."""
    G = P.SL2(0.2, rotations="equidistant")
    hs = G.sample_haar(8, torch.Generator().manual_seed(0))
    ang = torch.sort(torch.remainder(P.SO2.angle(hs.R), 2 * torch.pi)).values
    torch.testing.assert_close(ang.diff(), torch.full((7,), torch.pi / 4, dtype=torch.float64))
    firsts = torch.stack([P.SO2.angle(G.sample_haar(3, torch.Generator().manual_seed(s)).R)[0] for s in range(20_000)])
    counts = torch.histc(firsts, bins=12, min=-torch.pi, max=torch.pi)
    assert ((counts - 20_000 / 12) ** 2 / (20_000 / 12)).sum().item() < 31.3
    torch.testing.assert_close(torch.linalg.det(hs.g), torch.ones(8, dtype=torch.float64))
    with pytest.raises(ValueError, match="rotations must be 'haar' or 'equidistant', got 'grid'"):
        P.GLPlus2(0.2, rotations="grid")
