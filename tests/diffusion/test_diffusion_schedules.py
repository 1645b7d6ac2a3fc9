"""Noise schedules: EDM's polynomial and cosine, EQGAT-diff's clipped cosine with exponent nu."""

import math

import pytest
import torch

from equivar.diffusion import (
    NoiseSchedule,
    cosine_alpha_bar,
    cosine_schedule,
    loss_weight,
    polynomial_alpha_bar,
    polynomial_schedule,
)


def test_polynomial_schedule_hand_values():
    """T = 4, power 2: (1 - u^2)^2 on u = t/4, the last step ratio (0) clipped at 0.001, then (1-2s) a + s."""
    s = 1e-5
    raw = [1.0, (1 - 1 / 16) ** 2, (1 - 1 / 4) ** 2, (1 - 9 / 16) ** 2]
    raw.append(raw[-1] * 0.001)
    want = torch.tensor([(1 - 2 * s) * a + s for a in raw], dtype=torch.float64)
    got = polynomial_schedule(4, power=2.0, s=s).alpha_bar_table
    torch.testing.assert_close(got, want, rtol=1e-14, atol=0)


def test_discrete_polynomial_is_the_continuous_one_where_the_clip_does_not_bind():
    sch = polynomial_schedule(50, power=2.0, s=1e-5)
    u = torch.arange(51, dtype=torch.float64) / 50
    torch.testing.assert_close(sch.alpha_bar_table[:-1], polynomial_alpha_bar(u[:-1], 2.0, 1e-5), rtol=1e-13, atol=0)
    assert sch.alpha_bar_table[0] == pytest.approx(1 - 1e-5, abs=1e-15)
    last = 0.001 * (1 - (49 / 50) ** 2) ** 2  # the clipped last step
    assert sch.alpha_bar_table[-1] == pytest.approx((1 - 2e-5) * last + 1e-5, rel=1e-13)


def test_cosine_schedule_grid_and_clip():
    """alpha_bar_t = f(u_{t+1}) / f(0) on u_i = i / (T + 1) until a step ratio falls below clip_min."""
    T = 3
    u = torch.arange(T + 2, dtype=torch.float64) / (T + 1)
    f = [math.cos(math.pi / 2 * (float(v) + 0.008) / 1.008) ** 2 for v in u]
    ratios = [max(f[i + 1] / f[i], 0.05) for i in range(T + 1)]
    want = torch.tensor(ratios, dtype=torch.float64).cumprod(0)
    got = cosine_schedule(T, clip_min=0.05).alpha_bar_table
    torch.testing.assert_close(got, want, rtol=1e-14, atol=0)
    assert f[-1] / f[-2] < 0.05  # the clip binds at the last step (f(1) = 0)
    assert float(got[-1]) == pytest.approx(0.05 * float(got[-2]), rel=1e-14)
    # EDM's cosine (clip 0.001) equals EQGAT-diff's where neither clip binds
    edm = cosine_schedule(T).alpha_bar_table
    torch.testing.assert_close(edm[:-1], got[:-1], rtol=1e-14, atol=0)
    assert float(edm[-1]) == pytest.approx(0.001 * float(edm[-2]), rel=1e-14)


def test_cosine_exponent_nu_slows_early_noising():
    """EQGAT-diff's nu = 2.5 for coordinates keeps more signal at every interior level than nu = 1."""
    a1 = cosine_schedule(100, nu=1.0, clip_min=0.05).alpha_bar_table
    a25 = cosine_schedule(100, nu=2.5, clip_min=0.05).alpha_bar_table
    assert (a25[1:-1] > a1[1:-1]).all()
    u = torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64)
    torch.testing.assert_close(cosine_alpha_bar(u, nu=2.5)[0], torch.tensor(1.0, dtype=torch.float64))
    assert float(cosine_alpha_bar(u)[2]) < 1e-30


def test_schedule_quantities_are_consistent():
    sch = cosine_schedule(20, nu=1.5)
    t = torch.arange(21)
    ab = sch.alpha_bar(t)
    torch.testing.assert_close(sch.alpha(t) ** 2 + sch.sigma(t) ** 2, torch.ones(21, dtype=torch.float64))
    torch.testing.assert_close(sch.snr(t), ab / (1 - ab))
    torch.testing.assert_close(sch.gamma(t), -torch.log(sch.snr(t)))
    assert (torch.diff(ab) < 0).all() and (torch.diff(sch.snr(t)) < 0).all()
    s = torch.tensor([0, 3, 7])
    torch.testing.assert_close(sch.alpha_bar_ratio(s, torch.tensor([5, 3, 20])), ab[[5, 3, 20]] / ab[s])
    assert sch.alpha(t, dtype=torch.float32).dtype == torch.float32
    # continuous time -> level (EDM's round(t T))
    assert sch.index(torch.tensor([0.0, 0.024, 0.026, 1.0])).tolist() == [0, 0, 1, 20]


def test_schedule_errors_name_the_value():
    with pytest.raises(ValueError, match=r"alpha_bar\[2\] = 0.95 > alpha_bar\[1\]"):
        NoiseSchedule([0.99, 0.9, 0.95])
    with pytest.raises(ValueError, match=r"alpha_bar\[1\] = 1.0 is outside"):
        NoiseSchedule([0.99, 1.0])
    with pytest.raises(ValueError, match="timesteps must be an integer >= 1, got 0"):
        cosine_schedule(0)
    with pytest.raises(ValueError, match="s must be < 0.5"):
        polynomial_schedule(10, s=0.6)
    sch = cosine_schedule(10)
    with pytest.raises(ValueError, match=r"levels t must be in 0..10, got values in 0..11"):
        sch.alpha_bar(torch.tensor([0, 11]))
    with pytest.raises(TypeError, match="long tensor"):
        sch.alpha_bar(torch.tensor([0.5]))
    with pytest.raises(ValueError, match=r"continuous times must be in \[0, 1\]"):
        sch.index(torch.tensor([1.5]))


def test_loss_weightings_of_eqgat_diff():
    sch = cosine_schedule(500, nu=1.0, clip_min=0.05)
    t = torch.tensor([1, 100, 250, 400, 500])
    snr = sch.snr(t)
    torch.testing.assert_close(loss_weight("snr_t", sch, t), snr.clamp(0.05, 1.5))
    w = loss_weight("snr_t", sch, t)
    assert w[0] == 1.5 and w[-1] == 0.05 and 0.05 < float(w[2]) < 1.5  # both clamps bind, the middle is the SNR
    assert float(w[2]) == pytest.approx(float(snr[2]), rel=1e-14)
    torch.testing.assert_close(loss_weight("snr_s_t", sch, t), (sch.snr(t - 1) - snr).clamp(0.05, 1.5))
    torch.testing.assert_close(
        loss_weight("exp_t", sch, t),
        torch.tensor([math.exp(-1 / 200), math.exp(-0.5), math.exp(-1.25), math.exp(-2), 0.1], dtype=torch.float64),
    )  # exp(-500 / 200) = 0.082 is clipped at 0.1
    assert loss_weight("uniform", sch, t).tolist() == [1.0] * 5
    with pytest.raises(ValueError, match="loss weighting must be one of .* got 'snr'"):
        loss_weight("snr", sch, t)
    with pytest.raises(ValueError, match="needs levels t >= 1"):
        loss_weight("snr_s_t", sch, torch.tensor([0]))
