"""The linear (DDPM / GeoTDM) schedule against guided-diffusion's formula, and the full-space Gaussian process
(``zero_com=False``): marginals, dimensions, the analytic loss, and DDPM's noise-free last step."""

import numpy as np
import pytest
import torch

from equivar.diffusion import GaussianDiffusion, NoiseSchedule, NoiseSource, diffusion_losses, linear_schedule, sample


@pytest.mark.parametrize("T", [1000, 250])
def test_linear_schedule_is_guided_diffusions(T):
    """alphas_cumprod of get_named_beta_schedule('linear', T) at index t - 1 is our level t; level 0 is clean."""
    s = linear_schedule(T)
    scale = 1000 / T
    ref = np.cumprod(1 - np.linspace(1e-4 * scale, 0.02 * scale, T))
    np.testing.assert_allclose(s.alpha_bar_table[1:].numpy(), ref, rtol=1e-13)
    assert float(s.alpha_bar_table[0]) == 1.0 and s.timesteps == T
    assert float(s.sigma(torch.tensor([0]))) == 0.0
    with pytest.raises(ValueError, match="must satisfy start <= end < 1"):
        linear_schedule(10)  # betas scaled by 100: 0.01 .. 2.0
    with pytest.raises(ValueError, match=r"alpha_bar\[1\] = 1.0 is outside"):
        NoiseSchedule([1.0, 1.0, 0.5])  # only level 0 may be clean


def test_full_space_marginals_and_dims():
    """q(x_t | x_0) = N(alpha_t x_0, sigma_t^2 I) without projection: the graph means are not removed (their
    variance is sigma^2 / n per coordinate), and the dimension counts every coordinate."""
    gd = GaussianDiffusion(linear_schedule(100), zero_com=False)
    batch = torch.tensor([0, 0, 0, 1, 1])
    x0 = torch.arange(5 * 2 * 3, dtype=torch.float64).reshape(5, 2, 3) / 10
    src = NoiseSource(0)
    t = torch.tensor([40, 90])
    draws = torch.stack([gd.q_sample(x0, t, batch, 2, src)[0] for _ in range(4000)])
    alpha, sigma = gd.schedule.alpha(t)[batch], gd.schedule.sigma(t)[batch]
    mean = draws.mean(0)
    std = draws.std(0)
    torch.testing.assert_close(mean, alpha[:, None, None] * x0, rtol=0, atol=4 * float(sigma.max()) / 4000**0.5)
    assert float((std / sigma[:, None, None] - 1).abs().max()) < 0.06
    graph_mean = draws[:, :3].mean(dim=(1, 2)) - alpha[0] * x0[:3].mean(dim=(0, 1))
    assert abs(float(graph_mean.var(0).mean()) / (float(sigma[0]) ** 2 / 6) - 1) < 0.1  # n * F = 6 points
    assert gd.dims(x0, batch, 2).tolist() == [18, 12]
    assert GaussianDiffusion(linear_schedule(100)).dims(x0, batch, 2).tolist() == [15, 9]


def test_full_space_eps_loss_is_analytic_and_last_step_is_clean():
    """eps-loss of a zero predictor is each graph's mean of eps^2 (the draws replayed); sampling with an
    x0-predictor of a fixed target ends exactly on it (abar_0 = 1: the last step has no noise), uncentred."""
    gd = GaussianDiffusion(linear_schedule(50), parameterization="eps", zero_com=False)
    batch = torch.tensor([0, 0, 1])
    x0 = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [-1.0, 0.5, 2.0]], dtype=torch.float64)
    out = diffusion_losses(
        lambda s: {"pos": torch.zeros_like(s.pos)},
        batch=batch,
        num_graphs=2,
        source=NoiseSource(7),
        gaussian=gd,
        pos0=x0,
        t=torch.tensor([3, 30]),
    )
    eps = NoiseSource(7).normal((3, 3))
    want = torch.stack([(eps[:2] ** 2).mean(), (eps[2:] ** 2).mean()])
    torch.testing.assert_close(out["pos"], want, rtol=1e-14, atol=0)
    target = x0 + 10.0  # far from the origin: a centred process could not end here
    gx = GaussianDiffusion(linear_schedule(50), parameterization="x0", zero_com=False)
    res = sample(lambda s: {"pos": target.expand_as(s.pos)}, batch=batch, num_graphs=2, gaussian=gx, seed=3)
    torch.testing.assert_close(res.pos, target, rtol=0, atol=1e-12)
