"""Samplers: seeded, E(3)-equivariant in distribution (exact coupling), exact on Gaussian / categorical toys; losses."""

import math

import pytest
import torch

from equivar.diffusion import (
    CategoricalDiffusion,
    GaussianDiffusion,
    NoiseSource,
    complete_graph_pairs,
    cosine_schedule,
    diffusion_losses,
    graph_mean,
    polynomial_schedule,
    remove_mean,
    sample,
    subspace_dim,
)
from equivar.models import EGNN
from equivar.o3 import rand_matrix

PRIOR = torch.tensor([0.4, 0.35, 0.25], dtype=torch.float64)


def _batch(sizes):
    return torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes))


class RotatedNoise(NoiseSource):
    """The same draws as NoiseSource(seed), every normal vector rotated by R (uniforms untouched)."""

    def __init__(self, seed, R):
        super().__init__(seed)
        self.R = R.to(torch.float64)

    def normal(self, shape, dtype=torch.float64, device=None):
        return (super().normal(shape) @ self.R.T).to(dtype=dtype, device=device)


def _toy_denoiser(state):
    """x0_hat = c(t) x_t + 0.7 (cond - its centre); type logits from the invariant |x_t|^2 (E(3)-equivariant)."""
    c = 0.2 + 0.5 * state.time(state.pos.dtype)[state.batch].unsqueeze(-1)
    ref = remove_mean(state.cond, state.batch, state.num_graphs)
    r2 = (state.pos**2).sum(-1, keepdim=True)
    logits = torch.cat([r2, -r2, torch.ones_like(r2)], -1) + 0.3 * state.classes["atoms"].unsqueeze(-1).to(r2.dtype)
    return {"pos": c * state.pos + 0.7 * ref, "atoms": logits}


def _setup(T=20, dtype=torch.float64):
    batch = _batch([3, 5, 4])
    gd = GaussianDiffusion(cosine_schedule(T, nu=2.5, clip_min=0.05), "x0")
    cd = CategoricalDiffusion(PRIOR, cosine_schedule(T, nu=1.0, clip_min=0.05))
    cond = torch.randn(12, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64).to(dtype)
    return batch, gd, cd, cond


def _run(denoiser, batch, gd, cd, cond, noise, dtype=torch.float64):
    return sample(
        denoiser, batch=batch, num_graphs=3, gaussian=gd, categorical={"atoms": cd}, index={"atoms": batch},
        cond=cond, noise=noise, dtype=dtype,
    )  # fmt: skip


def test_sample_is_seeded_and_com_free():
    batch, gd, cd, cond = _setup()
    a = _run(_toy_denoiser, batch, gd, cd, cond, NoiseSource(5))
    b = _run(_toy_denoiser, batch, gd, cd, cond, NoiseSource(5))
    c = _run(_toy_denoiser, batch, gd, cd, cond, NoiseSource(6))
    assert torch.equal(a.pos, b.pos) and torch.equal(a.classes["atoms"], b.classes["atoms"])
    assert (a.pos - c.pos).abs().max() > 1e-3 and not torch.equal(a.classes["atoms"], c.classes["atoms"])
    assert graph_mean(a.pos, batch, 3).abs().max() < 1e-14
    same = sample(_toy_denoiser, batch=batch, num_graphs=3, gaussian=gd, categorical={"atoms": cd},
                  index={"atoms": batch}, cond=cond, seed=5)  # fmt: skip
    assert torch.equal(same.pos, a.pos)


@pytest.mark.parametrize("reflect", [False, True])
def test_sampler_is_e3_equivariant_under_the_same_seed(reflect):
    """Rotated (reflected) condition and noise -> rotated samples, same classes; translated condition -> same samples."""
    batch, gd, cd, cond = _setup()
    R = rand_matrix(generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    if reflect:
        R = -R
    base = _run(_toy_denoiser, batch, gd, cd, cond, NoiseSource(7))
    rot = _run(_toy_denoiser, batch, gd, cd, cond @ R.T, RotatedNoise(7, R))
    torch.testing.assert_close(rot.pos, base.pos @ R.T, rtol=0, atol=1e-10)
    assert torch.equal(rot.classes["atoms"], base.classes["atoms"])
    assert (base.pos - base.pos @ R.T).abs().max() > 0.1  # the samples are not trivially invariant
    shifted = _run(_toy_denoiser, batch, gd, cd, cond + torch.tensor([3.0, -1.0, 2.0], dtype=torch.float64)[None],
                   NoiseSource(7))  # fmt: skip
    torch.testing.assert_close(shifted.pos, base.pos, rtol=0, atol=1e-12)


def test_sampler_with_an_egnn_denoiser_is_equivariant(dtype):
    """A small EGNN (x_t as positions, the centred condition as velocities) as the denoiser; float32 and float64."""
    torch.manual_seed(0)
    batch, gd, cd, cond = _setup(T=12, dtype=dtype)
    net = EGNN(hidden_dim=16, num_layers=2, edge_attr_dim=0).to(dtype)
    pairs = complete_graph_pairs(batch, 3)
    edge_index = torch.cat([pairs, pairs.flip(0)], dim=1)

    def denoiser(state):
        vel = remove_mean(state.cond, state.batch, state.num_graphs)
        out = net({"pos": state.pos[:, None], "vel": vel[:, None], "edge_index": edge_index})["pos"][:, 0]
        r2 = ((out - state.pos) ** 2).sum(-1, keepdim=True)
        return {"pos": out, "atoms": torch.cat([r2, -r2, torch.zeros_like(r2)], -1)}

    R = rand_matrix(generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    base = _run(denoiser, batch, gd, cd, cond, NoiseSource(2), dtype=dtype)
    rot = _run(denoiser, batch, gd, cd, cond @ R.T.to(dtype), RotatedNoise(2, R), dtype=dtype)
    assert base.pos.dtype == dtype
    scale = float(base.pos.abs().max())
    tol = 1e-10 if dtype == torch.float64 else 1e-4
    assert float((rot.pos - base.pos @ R.T.to(dtype)).abs().max()) < tol * scale
    assert torch.equal(rot.classes["atoms"], base.classes["atoms"])


def _sampler_variance(ab, v):
    """Output variance of the ancestral sampler with the exact x0 predictor (every map is linear): a scalar recursion."""
    var = 1.0
    for t in range(len(ab) - 1, 0, -1):
        ab_t, ab_s = ab[t], ab[t - 1]
        r = ab_t / ab_s
        c_t, c_0 = math.sqrt(r) * (1 - ab_s) / (1 - ab_t), math.sqrt(ab_s) * (1 - r) / (1 - ab_t)
        k = math.sqrt(ab_t) * v / (ab_t * v + 1 - ab_t)
        var = (c_t + c_0 * k) ** 2 * var + (1 - r) * (1 - ab_s) / (1 - ab_t)
    return var, ab[0] * v + 1 - ab[0]  # and the true variance at level 0


def test_sampler_with_the_exact_denoiser_recovers_a_gaussian_variance():
    """Data x0 ~ N(0, v I) on each graph's subspace; E[x0 | x_t] = alpha_t v / (alpha_t^2 v + sigma_t^2) x_t.

    The samples' variance, counted over (n - 1) * 3 degrees of freedom per graph (ragged sizes 2, 3, 6),
    matches the sampler's analytic variance (5 sigma), which converges to the data's as T grows
    (3.5% low at T = 200, 0.8% at T = 1000: the first-order bias of plug-in ancestral steps).
    """
    v, T = 0.3, 200
    sch = cosine_schedule(T)
    gd = GaussianDiffusion(sch, "x0")
    sizes = [2, 3, 6] * 500
    batch = _batch(sizes)
    G = len(sizes)

    def exact(state):
        a2 = sch.alpha_bar(state.t)
        k = a2.sqrt() * v / (a2 * v + 1 - a2)
        return {"pos": k[state.batch].unsqueeze(-1) * state.pos}

    out = sample(exact, batch=batch, num_graphs=G, gaussian=gd, seed=1)
    var, truth = _sampler_variance(sch.alpha_bar_table.tolist(), v)
    assert 0.95 < var / truth < 0.975
    fine, fine_truth = _sampler_variance(cosine_schedule(1000).alpha_bar_table.tolist(), v)
    assert abs(fine / fine_truth - 1) < 0.01
    dof = int(subspace_dim(out.pos, batch, G).sum())
    assert dof == 500 * (3 + 6 + 15)
    est = float((out.pos**2).sum()) / dof
    assert est == pytest.approx(var, rel=5 * math.sqrt(2 / dof))


def test_sample_categorical_only_with_the_exact_denoiser():
    T, n = 20, 12000
    cd = CategoricalDiffusion(PRIOR, cosine_schedule(T, clip_min=0.05))
    p_data = torch.tensor([0.1, 0.2, 0.7], dtype=torch.float64)
    index = torch.zeros(n, dtype=torch.long)

    def exact(state):
        x = state.classes["types"]
        post = p_data * cd.marginal(torch.arange(3), state.t[:1].expand(3))[:, x].T
        return {"types": post.log()}

    out = sample(exact, batch=torch.zeros(1, dtype=torch.long), num_graphs=1, categorical={"types": cd},
                 index={"types": index}, seed=4)  # fmt: skip
    assert out.pos is None
    freq = torch.bincount(out.classes["types"], minlength=3).double() / n
    ab0 = float(cd.schedule.alpha_bar(torch.tensor([0])))
    want = ab0 * p_data + (1 - ab0) * PRIOR
    assert ((freq - want).abs() < 5 * (want * (1 - want) / n).sqrt()).all(), (freq, want)


def test_strided_levels_and_trajectory():
    batch, gd, cd, cond = _setup(T=20)
    seen = []

    def spy(state):
        seen.append(int(state.t[0]))
        return _toy_denoiser(state)

    out = sample(spy, batch=batch, num_graphs=3, gaussian=gd, categorical={"atoms": cd}, index={"atoms": batch},
                 cond=cond, levels=[20, 15, 10, 5, 0], keep_trajectory=True)  # fmt: skip
    assert seen == [20, 15, 10, 5]
    assert [lv for lv, _, _ in out.trajectory] == [20, 15, 10, 5, 0]
    assert torch.equal(out.trajectory[-1][1], out.pos)
    with pytest.raises(ValueError, match="levels must decrease strictly"):
        sample(spy, batch=batch, num_graphs=3, gaussian=gd, cond=cond, levels=[20, 20, 0])


def test_sample_errors_name_the_problem():
    batch, gd, cd, cond = _setup(T=20)
    cd10 = CategoricalDiffusion(PRIOR, cosine_schedule(10))
    with pytest.raises(ValueError, match="same number of steps T"):
        sample(
            _toy_denoiser, batch=batch, num_graphs=3, gaussian=gd, categorical={"atoms": cd10}, index={"atoms": batch}
        )
    with pytest.raises(ValueError, match="'atoms' has no index"):
        sample(_toy_denoiser, batch=batch, num_graphs=3, gaussian=gd, categorical={"atoms": cd})
    with pytest.raises(ValueError, match=r"denoiser output 'pos' has shape \(12, 2\), expected \(12, 3\)"):
        sample(lambda s: {"pos": s.pos[:, :2]}, batch=batch, num_graphs=3, gaussian=gd)
    with pytest.raises(ValueError, match="no logits for 'atoms'"):
        sample(lambda s: {"pos": s.pos}, batch=batch, num_graphs=3, gaussian=gd, categorical={"atoms": cd},
               index={"atoms": batch})  # fmt: skip


def test_diffusion_losses_weighting_and_reduction():
    """The true x0 gives zero; zeros give the per-graph mean of x0^2 times w(t); lambdas weigh the total."""
    T = 50
    batch = _batch([3, 4, 2])
    gd = GaussianDiffusion(polynomial_schedule(T), "x0")
    cd = CategoricalDiffusion(PRIOR, cosine_schedule(T, clip_min=0.05))
    src = NoiseSource(0)
    pos0 = remove_mean(src.normal((9, 3)), batch, 3)
    types0 = torch.tensor([0, 1, 2, 2, 1, 0, 0, 1, 2])
    truth = {"pos": pos0, "atoms": torch.nn.functional.one_hot(types0, 3).double() * 60}
    common = dict(batch=batch, num_graphs=3, gaussian=gd, pos0=pos0, categorical={"atoms": cd},
                  classes0={"atoms": types0}, index={"atoms": batch})  # fmt: skip
    perfect = diffusion_losses(lambda s: truth, source=NoiseSource(1), weighting="snr_t", **common)
    assert perfect["pos"].abs().max() < 1e-28 and perfect["atoms"].max() < 1e-20
    t = torch.tensor([1, 25, 50])
    zeros = diffusion_losses(
        lambda s: {"pos": torch.zeros_like(s.pos), "atoms": torch.zeros(9, 3)},
        source=NoiseSource(1), t=t, weighting="snr_t", weighting_schedule=cd.schedule,
        lambdas={"pos": 3.0, "atoms": 0.4}, **common,
    )  # fmt: skip
    w = cd.schedule.snr(t).clamp(0.05, 1.5)
    assert w[0] == 1.5 and w[2] == 0.05
    torch.testing.assert_close(zeros["weight"], w)
    torch.testing.assert_close(zeros["pos"], w * torch.stack([(pos0[batch == g] ** 2).mean() for g in range(3)]))
    torch.testing.assert_close(zeros["atoms"], (w * math.log(3)).float())  # the logits' dtype
    torch.testing.assert_close(zeros["total"], 3.0 * zeros["pos"] + 0.4 * zeros["atoms"])
    drawn = diffusion_losses(lambda s: truth, source=NoiseSource(1), **common)["t"]
    assert drawn.min() >= 1 and drawn.max() <= T
    with pytest.raises(ValueError, match="lambdas has no part named 'bonds'"):
        diffusion_losses(lambda s: truth, source=NoiseSource(1), lambdas={"bonds": 2.0}, **common)


@pytest.mark.parametrize("bad", ["pos", "atoms"])
def test_non_finite_denoiser_output_is_named(bad):
    """A denoiser that returns NaN stops the sampler with one line naming the field and the level."""
    T = 10
    gd = GaussianDiffusion(polynomial_schedule(T), "x0")
    cd = CategoricalDiffusion(PRIOR, cosine_schedule(T))
    batch = _batch([3, 2])

    def nan_at_level_7(state):
        out = dict(_toy_denoiser(state))
        if int(state.t[0]) == 7:
            out[bad] = out[bad].clone()
            out[bad][1, 0] = float("nan")
        return out

    cond = torch.randn(5, 3, dtype=torch.float64)
    with pytest.raises(ValueError, match=rf"non-finite values in '{bad}' at level t = 7$"):
        sample(
            nan_at_level_7,
            batch=batch,
            num_graphs=2,
            gaussian=gd,
            categorical={"atoms": cd},
            index={"atoms": batch},
            cond=cond,
            seed=0,
        )
