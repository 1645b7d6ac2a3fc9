"""Gaussian diffusion in the zero-CoM subspace: noise, forward marginals, posterior, losses, KL on (N-1)*3 dims."""

import math

import pytest
import torch

from equivar.diffusion import (
    GaussianDiffusion,
    NoiseSource,
    cosine_schedule,
    graph_mean,
    polynomial_schedule,
    remove_mean,
    subspace_dim,
)


def _batch(sizes):
    return torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes))


def _basis(n):
    """Orthonormal basis [n, n-1] of {v in R^n : sum v = 0} (independent of remove_mean)."""
    c = torch.eye(n, dtype=torch.float64) - 1.0 / n
    q, r = torch.linalg.qr(c)
    keep = r.diagonal().abs() > 1e-10
    return q[:, keep]


@pytest.mark.parametrize("pos_shape", [(3,), (4, 3), (2,)])
def test_noise_is_com_free_per_graph(dtype, pos_shape):
    """Ragged graphs (sizes 1, 2, 5, 3), nodes interleaved; also trajectories [N, F, 3] and 2-D points."""
    batch = torch.tensor([2, 0, 2, 1, 2, 3, 1, 2, 3, 2, 3])
    gd = GaussianDiffusion(cosine_schedule(10))
    eps = gd.noise((11,) + pos_shape, batch, 4, NoiseSource(3), dtype=dtype)
    assert eps.dtype == dtype and eps.shape == (11,) + pos_shape
    scale = 1e-6 if dtype == torch.float32 else 1e-14
    assert graph_mean(eps, batch, 4).abs().max() < scale
    if len(pos_shape) == 1:
        assert eps[batch == 0].abs().max() < scale  # a lone atom has no free coordinate (a lone trajectory has)
    assert eps[batch == 2].abs().max() > 0.1
    assert subspace_dim(eps, batch, 4).tolist() == [
        (p * math.prod(pos_shape[:-1]) - 1) * pos_shape[-1] if p else 0 for p in (1, 2, 5, 3)
    ]


def test_forward_marginals_in_the_subspace():
    """x_t = alpha_t x0 + sigma_t eps: mean alpha_t x0, covariance sigma_t^2 (I - 11^T / n) per coordinate."""
    n, reps, level = 4, 6000, 140
    sch = cosine_schedule(200, nu=1.0)
    gd = GaussianDiffusion(sch)
    x0 = torch.tensor([[1.0, 0.0, 0.5], [-0.3, 2.0, 0.0], [0.0, -1.0, 1.0], [0.7, 0.2, -0.4]], dtype=torch.float64)
    x0 = x0 - x0.mean(0)
    batch = _batch([n] * reps)
    t = torch.full((reps,), level)
    xt, eps = gd.q_sample(x0.repeat(reps, 1), t, batch, reps, NoiseSource(11))
    a, s = float(sch.alpha(t[:1])), float(sch.sigma(t[:1]))
    assert 0.3 < a < 0.9  # a level where signal and noise both matter
    xt = xt.view(reps, n, 3)
    mean = xt.mean(0)
    se = s * math.sqrt((1 - 1 / n) / reps)
    assert (mean - a * x0).abs().max() < 5 * se
    dev = xt - mean
    cov = torch.einsum("rid,rjd->ij", dev, dev) / (3 * (reps - 1))  # node-node covariance, pooled over x, y, z
    want = s**2 * (torch.eye(n, dtype=torch.float64) - 1 / n)
    assert (cov - want).abs().max() < 0.05 * s**2  # off-diagonal -s^2/n = -0.25 s^2: a fixed-size noise would give 0
    torch.testing.assert_close(xt.view(-1, 3), a * x0.repeat(reps, 1) + s * eps)


def test_posterior_is_gaussian_conditioning():
    """q(x_s | x_t, x0) from the joint of (x_s, x_t) given x0: cov = alpha_{t|s} sigma_s^2, var(x_t) = sigma_t^2."""
    sch = polynomial_schedule(50)
    gd = GaussianDiffusion(sch)
    batch = _batch([3, 4])
    src = NoiseSource(5)
    x0 = remove_mean(src.normal((7, 3)), batch, 2)
    xt = remove_mean(src.normal((7, 3)), batch, 2)
    s, t = torch.tensor([3, 10]), torch.tensor([20, 11])
    mean, std = gd.posterior(xt, x0, s, t, batch, 2)
    for g in range(2):
        ab_s, ab_t = float(sch.alpha_bar(s[g : g + 1])), float(sch.alpha_bar(t[g : g + 1]))
        a_ts = math.sqrt(ab_t / ab_s)
        cov, var_t, var_s = a_ts * (1 - ab_s), 1 - ab_t, 1 - ab_s
        m = math.sqrt(ab_s) * x0[batch == g] + cov / var_t * (xt[batch == g] - math.sqrt(ab_t) * x0[batch == g])
        torch.testing.assert_close(mean[batch == g], m, rtol=1e-12, atol=1e-12)
        assert float(std[batch == g][0, 0]) == pytest.approx(math.sqrt(var_s - cov**2 / var_t), rel=1e-12)
    with pytest.raises(ValueError, match="needs s < t"):
        gd.posterior(xt, x0, t, t, batch, 2)


def test_vlb_term_is_the_kl_of_two_posteriors():
    sch = cosine_schedule(30, nu=2.5, clip_min=0.05)
    gd = GaussianDiffusion(sch)
    batch = _batch([5, 2, 3])
    src = NoiseSource(8)
    x0, x0_hat, xt = (src.normal((10, 3)) for _ in range(3))
    s, t = torch.tensor([0, 12, 28]), torch.tensor([1, 13, 29])
    m1, std = gd.posterior(xt, x0, s, t, batch, 3)
    m2, _ = gd.posterior(xt, x0_hat, s, t, batch, 3)
    kl = torch.zeros(3, dtype=torch.float64).index_add_(0, batch, ((m1 - m2) ** 2).sum(-1) / (2 * std[:, 0] ** 2))
    torch.testing.assert_close(gd.vlb_term(x0, x0_hat, s, t, batch, 3), kl, rtol=1e-10, atol=0)


def test_kl_prior_and_log_prior_count_n_minus_1_times_3_dimensions():
    """Against torch.distributions in the coordinates of an orthonormal basis of the subspace."""
    sch = cosine_schedule(10, clip_min=0.05)  # a far-from-zero alpha_bar_T makes the KL's x0 term visible
    gd = GaussianDiffusion(sch)
    sizes = [2, 4, 3]
    batch = _batch(sizes)
    x0 = NoiseSource(2).normal((9, 3)) * 3 + 5  # not centred: the methods centre it
    kl, logp = gd.kl_prior(x0, batch, 3), gd.log_prior(x0, batch, 3)
    T = torch.tensor([10])
    a, sig = float(sch.alpha(T)), float(sch.sigma(T))
    for g, n in enumerate(sizes):
        y = (_basis(n).T @ x0[batch == g]).reshape(-1)  # [(n-1)*3] subspace coordinates
        d = y.numel()
        assert d == (n - 1) * 3
        q = torch.distributions.MultivariateNormal(a * y, sig**2 * torch.eye(d, dtype=torch.float64))
        p = torch.distributions.MultivariateNormal(
            torch.zeros(d, dtype=torch.float64), torch.eye(d, dtype=torch.float64)
        )
        assert float(kl[g]) == pytest.approx(float(torch.distributions.kl_divergence(q, p)), rel=1e-10)
        assert float(logp[g]) == pytest.approx(float(p.log_prob(y)), rel=1e-12)


def test_loss_true_x0_is_zero_and_zero_prediction_is_analytic():
    sch = cosine_schedule(40)
    batch = _batch([3, 5])
    src = NoiseSource(4)
    x0 = remove_mean(src.normal((8, 3)), batch, 2)
    t = torch.tensor([10, 30])
    gx = GaussianDiffusion(sch, "x0")
    xt, eps = gx.q_sample(x0, t, batch, 2, src)
    assert gx.loss(x0, x0, eps, batch, 2).abs().max() < 1e-30
    zero = gx.loss(torch.zeros_like(x0), x0, eps, batch, 2)
    torch.testing.assert_close(zero, torch.stack([(x0[batch == g] ** 2).mean() for g in range(2)]))
    w = torch.tensor([0.5, 2.0], dtype=torch.float64)
    torch.testing.assert_close(gx.loss(torch.zeros_like(x0), x0, eps, batch, 2, w), zero * w)
    ge = GaussianDiffusion(sch, "eps")
    assert ge.loss(eps, x0, eps, batch, 2).abs().max() < 1e-30
    torch.testing.assert_close(ge.to_x0(eps, xt, t, batch, 2), x0, rtol=1e-10, atol=1e-10)


def test_eps_loss_of_a_zero_prediction_has_expectation_n_minus_1_over_n():
    """E ||eps||^2 / (n * 3) = (n - 1) / n for CoM-free noise (1 for noise that was not projected)."""
    n, reps = 4, 3000
    gd = GaussianDiffusion(cosine_schedule(20), "eps")
    batch = _batch([n] * reps)
    x0 = torch.zeros(n * reps, 3, dtype=torch.float64)
    t = torch.full((reps,), 7)
    xt, eps = gd.q_sample(x0, t, batch, reps, NoiseSource(9))
    per_graph = gd.loss(torch.zeros_like(x0), x0, eps, batch, reps)
    se = math.sqrt(2 * (n - 1) * 3) / (n * 3) / math.sqrt(reps)  # chi^2 with (n-1)*3 dof, scaled
    assert float(per_graph.mean()) == pytest.approx((n - 1) / n, abs=5 * se)


def test_float32_positions_stay_float32():
    gd = GaussianDiffusion(cosine_schedule(20))
    batch = _batch([3, 2])
    x0 = torch.randn(5, 3, generator=torch.Generator().manual_seed(0))
    xt, eps = gd.q_sample(x0, torch.tensor([4, 9]), batch, 2, NoiseSource(1))
    x_s = gd.step(xt, x0, torch.tensor([3, 8]), torch.tensor([4, 9]), batch, 2, NoiseSource(2))
    assert xt.dtype == eps.dtype == x_s.dtype == torch.float32
    assert graph_mean(x_s, batch, 2).abs().max() < 1e-6


def test_gaussian_errors():
    with pytest.raises(ValueError, match="parameterization must be 'x0' or 'eps', got 'v'"):
        GaussianDiffusion(cosine_schedule(5), "v")
    with pytest.raises(ValueError, match=r"batch must be a long tensor \[N\] with N = 3"):
        remove_mean(torch.zeros(3, 3), torch.zeros(4, dtype=torch.long), 1)
    with pytest.raises(ValueError, match=r"batch values must be in 0..1, got 0..2"):
        remove_mean(torch.zeros(3, 3), torch.tensor([0, 1, 2]), 2)
