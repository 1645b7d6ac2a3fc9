"""GeoTDM: E(3) equivariance of the denoiser and the prior (rotations with parity, translations of the observed and
noisy frames together, permutations of particles), equivariance of the sampled distribution under fixed seeds,
the training loss against a NumPy evaluation of the paper's forward process, options and round trips."""

import json

import numpy as np
import pytest
import torch

from equivar.diffusion import DiffusionState, NoiseSource
from equivar.models import build_model
from equivar.models.geotdm import GeoTDM, TemporalAttention, sinusoidal_embedding
from equivar.o3 import rand_matrix
from equivar.testing import Typed, assert_equivariant

TOL = {torch.float32: 2e-5, torch.float64: 1e-11}
PAST, FUTURE = 4, 3


def _scenes(sizes=(3, 5, 2), seed=0):
    """Charged random-walk scenes: positions [n, PAST + FUTURE, 3], charges +-1, pair attributes q_i q_j."""
    g = np.random.default_rng(seed)
    out = []
    for n in sizes:
        x = np.cumsum(g.normal(size=(n, PAST + FUTURE, 3)) * 0.3, axis=1) + g.normal(size=(n, 1, 3)) * 2
        q = g.choice([-1.0, 1.0], size=(n, 1))
        out.append(
            {
                "pos": torch.as_tensor(x[:, :PAST]),
                "vel": torch.zeros(n, PAST, 3, dtype=torch.float64),
                "target": torch.as_tensor(x[:, PAST:]),
                "node_attr": torch.as_tensor(q),
                "pair_attr": torch.as_tensor(q[:, None, :] * q[None, :, :]),
                "target_mask": torch.ones(n, dtype=torch.bool),
            }
        )
    return out


def _batch(dtype, sizes=(3, 5, 2), seed=0):
    from equivar.data import collate_scenes

    b = collate_scenes(_scenes(sizes, seed))
    return {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in b.items()}


def _model(dtype, **kw):
    torch.manual_seed(0)
    kw = {
        "past": PAST,
        "future": FUTURE,
        "hidden_dim": 16,
        "num_layers": 2,
        "prior_layers": 1,
        "time_emb_dim": 8,
        "timesteps": 10,
        "beta_end": 0.005,  # betas 0.01 .. 0.5 over 10 levels
        "sampling_steps": 10,
        "num_samples": 2,
        **kw,
    }
    return GeoTDM(**kw).to(dtype).eval()


def _denoise(model, b, level=6):
    """``(x_cond, x_t) -> eps_hat`` with ``x_t`` the absolute noisy future frames (the paper's convention)."""

    def fn(x_cond, x_t):
        inp = model._inputs(dict(b, pos=x_cond))
        x_ref = model._prior(inp)
        g = inp["num_graphs"]
        state = DiffusionState(x_t - x_ref, inp["batch"], g, torch.full((g,), level), model.gaussian.timesteps)
        return model.denoiser(inp, x_ref)(state)["pos"]

    return fn


@pytest.mark.parametrize("sizes", [(3, 5, 2), (4, 4, 4)], ids=["ragged", "complete-dense"])
def test_denoiser_equivariance(dtype, sizes):
    """O(3) with parity and translations of the observed and noisy frames together: the noise prediction rotates
    and is translation-invariant; the prior mean rotates and translates (ragged scenes: the gather/scatter path;
    equal sizes: the dense path)."""
    model = _model(dtype)
    b = _batch(dtype, sizes)
    g = torch.Generator().manual_seed(1)
    x_t = (b["target"].double() + torch.randn(b["target"].shape, generator=g, dtype=torch.float64)).to(dtype)
    report = assert_equivariant(
        _denoise(model, b),
        [b["pos"], x_t],
        [Typed("positions", nodes=True), Typed("positions", nodes=True)],
        Typed("vector", nodes=True),
        group="O3",
        translations=True,
        tolerance=TOL[dtype],
    )
    assert {k[0] for k in report.errors} >= {"rotation", "improper", "translation"}
    report = assert_equivariant(
        lambda x_cond: model.prior_mean(dict(b, pos=x_cond)),
        [b["pos"]],
        [Typed("positions", nodes=True)],
        Typed("positions", nodes=True),
        group="O3",
        translations=True,
        tolerance=TOL[dtype],
    )
    assert {k[0] for k in report.errors} >= {"rotation", "improper", "translation"}
    # the prediction depends on the observed frames and on the noisy ones (not a constant map)
    eps = _denoise(model, b)(b["pos"], x_t)
    assert float((_denoise(model, b)(b["pos"] * 1.3, x_t) - eps).detach().abs().max()) > 1e-3
    assert float((_denoise(model, b)(b["pos"], x_t * 1.3) - eps).detach().abs().max()) > 1e-3


def _permuted(b, perm):
    """The batch with nodes reordered (new node i = old node perm[i]), edges relabelled, no ptr (nodes of a scene
    are no longer contiguous)."""
    inv = torch.empty_like(perm)
    inv[perm] = torch.arange(len(perm))
    out = {k: b[k][perm] for k in ("pos", "vel", "target", "node_attr", "target_mask", "batch")}
    out["edge_index"] = inv[b["edge_index"]]
    out["edge_attr"] = b["edge_attr"]
    return out


class _Transformed(NoiseSource):
    """Normal draws ``[M, F, 3]`` mapped by ``fn`` (a rotation of the last axis, a permutation of the first)."""

    def __init__(self, seed, fn):
        super().__init__(seed)
        self.fn = fn

    def normal(self, shape, dtype=torch.float64, device=None):
        return self.fn(super().normal(shape, dtype=dtype, device=device))


def test_permutation_equivariance_and_dense_path(dtype):
    """Permuting particles across scenes permutes the noise prediction, the prior and (with permuted draws) the
    samples; the dense complete-graph path equals the gather/scatter path."""
    model = _model(dtype)
    b = _batch(dtype, (4, 4, 4))
    perm = torch.randperm(12, generator=torch.Generator().manual_seed(2))
    pb = _permuted(b, perm)
    x_t = b["target"] * 0.9
    eps = _denoise(model, b)(b["pos"], x_t)
    torch.testing.assert_close(_denoise(model, pb)(pb["pos"], x_t[perm]), eps[perm], rtol=TOL[dtype], atol=TOL[dtype])
    torch.testing.assert_close(model.prior_mean(pb), model.prior_mean(b)[perm], rtol=TOL[dtype], atol=TOL[dtype])
    k, m = 2, 12
    rows = torch.cat([perm + r * m for r in range(k)])  # the draws are [K M, T_f, 3], replica-major
    want = model.sample(b, seed=5)
    got = model.sample(pb, noise=_Transformed(5, lambda z: z[rows]))
    torch.testing.assert_close(got, want[:, perm], rtol=10 * TOL[dtype], atol=10 * TOL[dtype])
    # dense vs general path of the network on the same complete graphs
    inp = model._inputs(b)
    assert inp["size"] == 4
    h = torch.randn(12, PAST, 16, generator=torch.Generator().manual_seed(3), dtype=torch.float64).to(dtype)
    dense = model.net(b["pos"], h, b["edge_index"], b["edge_attr"], size=4)
    general = model.net(b["pos"], h, b["edge_index"], b["edge_attr"], size=None)
    for a, c in zip(dense, general):
        torch.testing.assert_close(a, c, rtol=TOL[dtype], atol=TOL[dtype])


@pytest.mark.parametrize("improper", [False, True], ids=["rotation", "reflection"])
def test_sampled_distribution_is_equivariant(dtype, improper):
    """Same seed: rotating (reflecting) the observed frames and the normal draws rotates the samples, translating
    the observed frames translates them (the draws unchanged); isotropic draws make the distribution equivariant.
    Different seeds give different samples (the check is not vacuous)."""
    model = _model(dtype)
    b = _batch(dtype)
    rot = rand_matrix(generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    if improper:
        rot = -rot
    r = rot.to(dtype)
    base = model.sample(b, seed=11)  # [K, M, T_f, 3]
    assert base.shape == (2, *b["target"].shape) and bool(torch.isfinite(base).all())
    got = model.sample(dict(b, pos=b["pos"] @ r.T), noise=_Transformed(11, lambda z: z @ rot.to(z.dtype).T))
    want = base @ r.T
    scale = float(want.abs().max())
    torch.testing.assert_close(got, want, rtol=20 * TOL[dtype], atol=20 * TOL[dtype] * scale)
    shift = (torch.randn(3, 3, generator=torch.Generator().manual_seed(6), dtype=torch.float64) * 4).to(dtype)
    moved = model.sample(dict(b, pos=b["pos"] + shift[b["batch"]][:, None]), seed=11)
    torch.testing.assert_close(
        moved, base + shift[b["batch"]][None, :, None], rtol=20 * TOL[dtype], atol=20 * TOL[dtype] * scale
    )
    other = model.sample(b, seed=12)
    assert float((other - base).abs().max()) > 1e-2 * scale


def test_loss_matches_numpy_forward_process():
    """The per-scene loss at given levels equals mean |eps - eps_hat|^2 over the scene's entries, with
    x_t = x_ref + sqrt(abar_t) (x_0 - x_ref) + sqrt(1 - abar_t) eps built in NumPy from guided-diffusion's linear
    betas (GeoTDM's schedule, here T = 10) and the same normal draws."""
    model = _model(torch.float64)
    b = _batch(torch.float64)
    t = torch.tensor([1, 7, 10])
    got = model.loss(b, NoiseSource(3), t=t)
    m = b["pos"].shape[0]
    eps = NoiseSource(3).normal((m, FUTURE, 3)).numpy()
    scale = 1000 / 10
    betas = np.linspace(1e-4 * scale, 0.005 * scale, 10)
    abar = np.cumprod(1 - betas)[t.numpy() - 1][b["batch"].numpy()][:, None, None]
    x_ref = model.prior_mean(b).detach().numpy()
    x0 = b["target"].numpy()
    x_t = x_ref + np.sqrt(abar) * (x0 - x_ref) + np.sqrt(1 - abar) * eps
    eps_hat = _denoise(model, b)
    per_level = []
    for g, level in enumerate(t.tolist()):
        fn = _denoise(model, b, level)
        pred = fn(b["pos"], torch.as_tensor(x_t)).detach().numpy()
        sel = b["batch"].numpy() == g
        per_level.append(np.mean((eps[sel] - pred[sel]) ** 2))
    np.testing.assert_allclose(got.detach().numpy(), per_level, rtol=1e-12)
    assert eps_hat is not None and got.shape == (3,) and bool((got > 0).all())
    got.sum().backward()  # the prior and the denoiser both get gradients
    assert float(model.prior.frame_weights.grad.abs().sum()) > 0
    assert float(model.embed.weight.grad.abs().sum()) > 0


def test_temporal_attention_and_embedding_values():
    """The attention update against a direct double loop; sinusoidal features of known integers."""
    torch.manual_seed(0)
    layer = TemporalAttention(6, time_emb_dim=4).double()
    h = torch.randn(2, 5, 6, dtype=torch.float64)
    x = torch.randn(2, 5, 3, dtype=torch.float64)
    h2, x2 = layer(h, x)
    emb = sinusoidal_embedding(torch.tensor([0.0, 1.0, -2.0], dtype=torch.float64), 4)
    w = np.array([1.0, 10000.0**-1.0])
    n = np.array([0.0, 1.0, -2.0])[:, None] * w
    np.testing.assert_allclose(emb.numpy(), np.concatenate([np.sin(n), np.cos(n)], 1), rtol=1e-14)
    for m in range(2):
        q, k, v = layer.q(h[m]), layer.k(h[m]), layer.v(h[m])
        wx = layer.x_head(v)[:, 0]
        for t in range(5):
            r = torch.stack(
                [
                    layer.offset(sinusoidal_embedding(torch.tensor(float(t - s), dtype=torch.float64), 4))
                    for s in range(5)
                ]
            )
            a = torch.softmax((q[t] * (k + r)).sum(-1), 0)
            torch.testing.assert_close(h2[m, t], h[m, t] + (a[:, None] * (v + r)).sum(0), rtol=1e-12, atol=1e-12)
            dx = (a[:, None] * wx[:, None] * (x[m, t] - x[m])).sum(0)
            torch.testing.assert_close(x2[m, t], x[m, t] + dx, rtol=1e-12, atol=1e-12)


def test_options_errors_and_round_trip(tmp_path):
    from equivar.train import load_model, model_payload, save_checkpoint

    model = _model(torch.float64)
    b = _batch(torch.float64)
    hp = json.loads(json.dumps(model.hparams))
    assert hp["name"] == "geotdm" and hp["timesteps"] == 10 and hp["num_samples"] == 2
    clone = build_model(**hp).double()
    clone.load_state_dict(model.state_dict())
    torch.testing.assert_close(clone.sample(b, seed=1), model.sample(b, seed=1), rtol=0, atol=0)
    path = str(tmp_path / "geotdm.pt")
    save_checkpoint(path, model_payload(model, {"task": "dynamics"}))
    loaded = load_model(path).double().eval()
    torch.manual_seed(9)
    a = loaded(b)["pos"]
    torch.manual_seed(9)
    torch.testing.assert_close(model(b)["pos"], a, rtol=0, atol=0)
    assert a.shape == (2, *b["target"].shape)
    assert model.sampling_levels(3) == [10, 7, 3, 0] and model.sampling_levels() == list(range(10, -1, -1))
    with pytest.raises(ValueError, match=r"batch pos must be \[M, past=4, D\], got \(10, 3, 3\)"):
        model.sample(dict(b, pos=b["pos"][:, :3]))
    with pytest.raises(ValueError, match="sampling_steps=20 exceeds timesteps=10"):
        GeoTDM(timesteps=10, sampling_steps=20)
    with pytest.raises(ValueError, match="hidden_dim must be an integer >= 1, got 0"):
        GeoTDM(hidden_dim=0)
    with pytest.raises(ValueError, match="edge_attr must have 1 features, got None"):
        model.loss(dict(b, edge_attr=None), NoiseSource(0))
