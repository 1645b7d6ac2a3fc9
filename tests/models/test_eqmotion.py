"""EqMotion: E(3) (equivar.testing) and E(2) equivariance with reflections, translations, permutations of agents,
batching, the authors' DCT and angle conventions, options, hparams round trip."""

import math
import os

import numpy as np
import pytest
import torch

from equivar.data import collate_scenes, ethucy_dataset, nbody
from equivar.models import EqMotion, build_model
from equivar.models.eqmotion._model import dct_matrix, turning_angle
from equivar.testing import Typed, assert_equivariant

TOL = {torch.float32: 1e-5, torch.float64: 1e-10}


def _scenes(dim=3, sizes=(3, 1, 4), past=8, future=12, seed=0):
    """Random-walk scenes of the given agent counts (velocities as finite differences, EqMotion's loaders)."""
    g = np.random.default_rng(seed)
    scenes = []
    for n in sizes:
        steps = g.normal(size=(n, past + future, dim)) * 0.3 + g.normal(size=(n, 1, dim))
        x = np.cumsum(steps, axis=1) + g.normal(size=(n, 1, dim)) * 3
        pos = x[:, :past]
        vel = np.zeros_like(pos)
        vel[:, 1:] = pos[:, 1:] - pos[:, :-1]
        vel[:, 0] = vel[:, 1]
        mask = np.zeros(n, dtype=bool)
        mask[0] = True
        scenes.append(
            {
                "pos": torch.as_tensor(pos),
                "vel": torch.as_tensor(vel),
                "target": torch.as_tensor(x[:, past:]),
                "node_attr": torch.zeros(n, 0, dtype=torch.float64),
                "pair_attr": torch.zeros(n, n, 0, dtype=torch.float64),
                "target_mask": torch.as_tensor(mask),
            }
        )
    return scenes


def _batch(dtype, **kw):
    b = collate_scenes(_scenes(**kw))
    return {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in b.items()}


def _model(dtype, **kw):
    torch.manual_seed(0)
    kw = {"hidden_dim": 16, "channels": 8, "num_hypotheses": 3, **kw}
    return EqMotion(**kw).to(dtype).eval()


def _fn(model, b):
    def fn(pos, vel, batch):
        return model(dict(b, pos=pos, vel=vel, batch=batch))["pos"]

    return fn


@pytest.mark.parametrize("heads", [3, None])
def test_equivariance_3d(dtype, heads):
    """O(3) (rotations and reflections), translations and permutations of agents (across scenes) in 3D."""
    kw = {} if heads else {"num_categories": 2, "active_categories": None}
    model = _model(dtype, num_hypotheses=heads, **kw)
    b = _batch(dtype)
    out_axis = 1 if heads else 0
    report = assert_equivariant(
        _fn(model, b),
        [b["pos"], b["vel"], b["batch"]],
        [Typed("positions", nodes=True), Typed("vector", nodes=True), Typed(None, nodes=True)],
        Typed("positions", nodes=True, node_axis=out_axis),
        group="O3",
        translations=True,
        permutations=True,
        tolerance=TOL[dtype],
    )
    assert report.max <= TOL[dtype]
    assert {k[0] for k in report.errors} == {"rotation", "improper", "translation", "permutation"}


def _orthogonal_2d(theta, reflect, dtype):
    c, s = math.cos(theta), math.sin(theta)
    r = torch.tensor([[c, -s], [s, c]], dtype=torch.float64)
    if reflect:
        r = r @ torch.diag(torch.tensor([1.0, -1.0], dtype=torch.float64))
    return r.to(dtype)


def test_equivariance_2d(dtype, shared_data):
    """E(2) with reflections and permutations, on real ETH-UCY scenes (zara1: up to 3 agents), K = 20 heads."""
    ds = ethucy_dataset(os.path.join(shared_data, "eth_ucy"), "zara1", "test")
    b = collate_scenes([ds[i] for i in range(0, 600, 20)])
    b = {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in b.items()}
    model = _model(dtype, num_hypotheses=20).requires_grad_(False)
    out = model(b)["pos"]  # [K, N, T, 2]
    assert out.shape == (20, *b["target"].shape)
    g = torch.Generator().manual_seed(3)
    worst = 0.0
    for reflect in (False, True):
        for _ in range(3):
            r = _orthogonal_2d(float(torch.rand((), generator=g)) * 2 * math.pi, reflect, dtype)
            t = (torch.randn(2, generator=g, dtype=torch.float64) * 5).to(dtype)
            perm = torch.randperm(b["pos"].shape[0], generator=g)
            moved = dict(b, pos=(b["pos"] @ r.T + t)[perm], vel=(b["vel"] @ r.T)[perm], batch=b["batch"][perm])
            got = model(moved)["pos"].double()
            want = (out.double() @ r.double().T + t.double())[:, perm]
            worst = max(worst, float((got - want).norm() / want.norm()))
    assert worst < TOL[dtype], worst
    # and the prediction depends on the geometry (not a constant or the input repeated)
    assert float((out - b["pos"][None, :, -1:]).abs().max()) > 1e-2


def test_interactions_matter_and_padding_does_not():
    """A neighbour changes the ego's prediction; a batch of scenes equals each scene alone."""
    model = _model(torch.float64)
    scenes = _scenes(sizes=(3, 1, 4), dim=2)
    both = model(collate_scenes(scenes))["pos"]
    alone = torch.cat([model(collate_scenes([s]))["pos"] for s in scenes], dim=1)
    torch.testing.assert_close(both, alone, rtol=1e-12, atol=1e-12)
    ego_only = dict(scenes[0], **{k: scenes[0][k][:1] for k in ("pos", "vel", "target", "node_attr", "target_mask")})
    ego_only["pair_attr"] = scenes[0]["pair_attr"][:1, :1]
    solo = model(collate_scenes([ego_only]))["pos"][:, 0]
    assert float((solo - both[:, 0]).abs().max()) > 1e-6


def test_dct_and_turning_angle():
    """The orthonormal DCT-II of the authors' get_dct_matrix; angles of known vectors, in 2D and 3D."""
    n = 8
    m = dct_matrix(n)
    torch.testing.assert_close(m @ m.T, torch.eye(n, dtype=torch.float64), rtol=0, atol=1e-14)
    i = np.arange(n)
    ref = np.array([np.sqrt((1 if k == 0 else 2) / n) * np.cos(np.pi * (i + 0.5) * k / n) for k in range(n)])
    np.testing.assert_allclose(m.numpy(), ref, rtol=0, atol=1e-15)
    a = torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 1.0], [2.0, 0.0], [0.0, 0.0]], dtype=torch.float64)
    b = torch.tensor([[0.0, 3.0], [-1.0, 0.0], [1.0, -1.0], [5.0, 0.0], [1.0, 0.0]], dtype=torch.float64)
    want = torch.tensor([math.pi / 2, math.pi, math.pi / 2, 0.0, 0.0], dtype=torch.float64)
    torch.testing.assert_close(turning_angle(a, b), want, rtol=0, atol=1e-15)
    g = torch.Generator().manual_seed(0)
    a3, b3 = torch.randn(50, 3, generator=g, dtype=torch.float64), torch.randn(50, 3, generator=g, dtype=torch.float64)
    cos = (a3 * b3).sum(-1) / (a3.norm(dim=-1) * b3.norm(dim=-1))
    torch.testing.assert_close(turning_angle(a3, b3), torch.acos(cos), rtol=0, atol=1e-12)


def test_nbody_windows_and_gradients_are_finite():
    """The N-body model (no heads) on simulated windows; a training step gives finite gradients
    (standing agents and padded pairs have zero distances)."""
    traj = nbody.simulate(nbody.SimulationParams.recipe("charged", steps=2500), 3, seed=1)
    ds = nbody.windows(traj, past=10, future=10, finite_difference_velocities=True)
    b = {k: (v.float() if v.is_floating_point() else v) for k, v in collate_scenes([ds[i] for i in range(3)]).items()}
    model = EqMotion(
        past=10, future=10, hidden_dim=16, channels=8, num_hypotheses=None, num_categories=2, active_categories=None
    )
    b["vel"][0] = 0.0  # a particle at rest
    out = model(b)["pos"]
    assert out.shape == b["target"].shape
    ((out - b["target"]) ** 2).mean().backward()
    grads = [p.grad for p in model.parameters()]
    assert all(gr is not None and torch.isfinite(gr).all() for gr in grads)
    assert sum(float(gr.abs().sum()) for gr in grads) > 0


def test_registered_options_and_errors():
    model = build_model("eqmotion", hidden_dim=8, channels=4, num_layers=2, num_hypotheses=5)
    assert isinstance(model, EqMotion) and len(model.layers) == 1 and model.heads is not None
    b = _batch(torch.float32, dim=2, past=6)
    with pytest.raises(ValueError, match=r"pos and vel must be \[N, past=8, D\], got pos \(8, 6, 2\)"):
        model(b)
    with pytest.raises(ValueError, match="num_layers must be an integer >= 2, got 1"):
        EqMotion(num_layers=1)
    with pytest.raises(ValueError, match="hidden_dim must be even"):
        EqMotion(hidden_dim=7)
    with pytest.raises(ValueError, match=r"active_categories must be an integer in 1..4 or null, got 5"):
        EqMotion(active_categories=5)
    with pytest.raises(ValueError, match="num_hypotheses must be an integer >= 1 or null, got 0"):
        EqMotion(num_hypotheses=0)


def test_hparams_and_checkpoint_round_trip(tmp_path):
    import json

    from equivar.train import load_model, model_payload, save_checkpoint

    model = _model(torch.float64, num_hypotheses=4)
    b = _batch(torch.float64, dim=2)
    hp = json.loads(json.dumps(model.hparams))
    assert hp["name"] == "eqmotion" and hp["num_hypotheses"] == 4 and hp["channels"] == 8
    clone = build_model(**hp).double()
    clone.load_state_dict(model.state_dict())
    torch.testing.assert_close(clone(b)["pos"], model(b)["pos"], rtol=0, atol=0)
    path = str(tmp_path / "eqmotion.pt")
    save_checkpoint(path, model_payload(model, {"task": "dynamics"}))
    loaded = load_model(path).double().eval()
    torch.testing.assert_close(loaded(b)["pos"], model(b)["pos"], rtol=0, atol=0)
