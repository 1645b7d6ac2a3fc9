"""FA-GNN: the authors' recipe written out, E(3) x permutation equivariance (equivar.testing, hypothesis), degenerate
PCA, batching, registration."""

import json
import re

import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from equivar.data import collate_scenes, nbody
from equivar.models import build_model
from equivar.models.fagnn import FAGNN
from equivar.testing import Typed, assert_equivariant

TOL = {torch.float32: 1e-5, torch.float64: 1e-10}
IN_TYPES = [
    Typed("positions", nodes=True),
    Typed("vector", nodes=True),
    Typed("0e", nodes=True),
    "index",
    "0e",
    Typed(None, nodes=True),  # the scene of each agent
]
OUT_TYPE = Typed("positions", nodes=True)


def _cast(b, dtype):
    return {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in b.items()}


def _batch(n_scenes=3, seed=0, dtype=torch.float64):
    traj = nbody.simulate(nbody.SimulationParams.recipe("charged", steps=1000), n_scenes, seed=seed)
    ds = nbody.frame_pairs(traj, 2, 6)
    return _cast(collate_scenes([ds[i] for i in range(n_scenes)]), dtype)


def _model(dtype, **kw):
    torch.manual_seed(0)
    return FAGNN(**kw).to(dtype).eval()


def _as_fn(model, b):
    def fn(pos, vel, node_attr, edge_index, edge_attr, scene):
        batch = dict(b, pos=pos, vel=vel, node_attr=node_attr, edge_index=edge_index, edge_attr=edge_attr, batch=scene)
        return model(batch)["pos"]

    return fn


def _args(b):
    return [b["pos"], b["vel"], b["node_attr"], b["edge_index"], b["edge_attr"], b["batch"]]


# ---- the authors' FA_GNN (nbody/n_body_system/model_FA.py), written out scene by scene ----


def _gcl(layer, h, a):
    """EGNN's GCL on the complete graph of one scene, concatenated first edge weight, explicit sums."""
    n = h.shape[0]
    new = []
    for i in range(n):
        agg = torch.zeros_like(h[i])
        for j in range(n):
            if i != j:
                z = torch.cat([h[i], h[j], a[i, j]]) @ layer.edge_in_weight().T + layer.edge_in_bias
                agg = agg + torch.nn.functional.silu(layer.edge_out(torch.nn.functional.silu(z)))
        new.append(h[i] + layer.node_mlp(torch.cat([h[i], agg])))
    return torch.stack(new)


def _sign_frames(cloud):
    """The 8 frames ``F diag(s)`` of the authors' ``create_frame`` (eigenvectors of the centred scatter matrix).

    Axes by decreasing eigenvalue (the authors' ``symeig`` orders them increasing: a fixed relabelling of the
    canonical coordinates, which the learned weights absorb)."""
    c = cloud - cloud.mean(0)
    _, U = torch.linalg.eigh(c.T @ c)
    U = U.flip(1)
    signs = torch.tensor([[a, b, d] for a in (1, -1) for b in (1, -1) for d in (1, -1)], dtype=cloud.dtype)
    return [U * s for s in signs]


def _reference(model, b):
    gnn = model.gnn
    out = []
    for s in range(len(b["ptr"]) - 1):
        lo, hi = int(b["ptr"][s]), int(b["ptr"][s + 1])
        x, v = b["pos"][lo:hi, -1], b["vel"][lo:hi, -1]
        n = hi - lo
        a = torch.zeros(n, n, 2, dtype=x.dtype)
        for e, (j, i) in enumerate(b["edge_index"].T.tolist()):
            if lo <= i < hi:
                a[i - lo, j - lo, 0] = b["edge_attr"][e, 0]
                a[i - lo, j - lo, 1] = ((x[i - lo] - x[j - lo]) ** 2).sum()
        centre = x.mean(0)
        z = 0
        for F in _sign_frames(x):
            h = gnn.embedding(torch.cat([(x - centre) @ F, v @ F], -1))
            h = _gcl(gnn.layers[0], h, a)
            y = gnn.decoder(h) if len(gnn.layers) == 1 else h.reshape(n, -1, 3)
            z = z + (y @ F.T) / 8
        for k in range(1, len(gnn.layers)):
            cloud = z.reshape(-1, 3)
            mean = cloud.mean(0)
            new = 0
            for F in _sign_frames(cloud):
                h = ((z - mean) @ F).reshape(n, -1)
                h = _gcl(gnn.layers[k], h, a)
                y = gnn.decoder(h) if k == len(gnn.layers) - 1 else h.reshape(n, -1, 3)
                new = new + (y @ F.T) / 8
            z = new
        out.append(centre + z)
    return torch.cat(out)


def test_matches_the_authors_recipe_written_out():
    model = _model(torch.float64, hidden_dim=12, num_layers=3)
    b = _batch()
    out = model(b)["pos"][:, 0]
    torch.testing.assert_close(out, _reference(model, b), rtol=1e-12, atol=1e-12)
    assert (out - b["pos"][:, 0]).abs().max() > 1e-2  # not the identity
    assert set(model.fa_stats) <= {"pca", "samples", "frames", "truncated"} and model.fa_stats["pca"] == 3 * 3


def test_recipe_size_and_parameters():
    """The authors' FA_GNN(input_dim=6, hidden_nf=60, n_layers=4): 92,103 parameters."""
    model = build_model("fagnn")
    assert sum(p.numel() for p in model.parameters()) == 92103


# ---- equivariance through equivar.testing ----


@pytest.mark.parametrize("frames", ["layerwise", "global"])
def test_equivariance_e3_permutations(dtype, frames):
    model = _model(dtype, hidden_dim=30, num_layers=3, frames=frames)
    b = _batch(dtype=dtype)
    report = assert_equivariant(
        _as_fn(model, b),
        _args(b),
        IN_TYPES,
        OUT_TYPE,
        group="O3",
        translations=True,
        permutations=True,
        tolerance=TOL[dtype],
    )
    assert report.max <= TOL[dtype]
    assert model.fa_stats["pca"] > 0


def test_se3_is_rotation_but_not_reflection_equivariant():
    model = _model(torch.float64, hidden_dim=12, num_layers=2, group="SE3")
    b = _batch()
    fn = _as_fn(model, b)
    assert_equivariant(fn, _args(b), IN_TYPES, OUT_TYPE, group="SO3", translations=True, tolerance=1e-10)
    with pytest.raises(AssertionError, match="improper"):
        assert_equivariant(fn, _args(b), IN_TYPES, OUT_TYPE, group="O3", translations=False, tolerance=1e-3)


def _scene(x, v, q):
    n = x.shape[0]
    return {
        "pos": x[:, None],
        "vel": v[:, None],
        "node_attr": q,
        "pair_attr": (q @ q.T)[..., None],
        "target": x[:, None],
        "target_mask": torch.ones(n, dtype=torch.bool),
    }


def _min_gap(x):
    """Smallest relative eigenvalue gap of the centred covariance of ``x [n, 3]``."""
    c = x - x.mean(0)
    lam = torch.linalg.eigvalsh(c.T @ c).flip(0)
    return float(min(lam[0] - lam[1], lam[1] - lam[2]) / lam[0])


@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    sizes=st.lists(st.integers(3, 7), min_size=1, max_size=3),
    scale=st.floats(0.1, 10.0),
    shift=st.floats(-50.0, 50.0),
)
def test_equivariance_random_scenes_hypothesis(seed, sizes, scale, shift):
    """Any scenes of 3-7 particles (mixed sizes in one batch) away from degenerate PCA: exact E(3) equivariance."""
    g = torch.Generator().manual_seed(seed)
    scenes = []
    for n in sizes:
        x = torch.randn(n, 3, generator=g, dtype=torch.float64) * scale + shift
        assume(_min_gap(x) > 0.05)
        q = torch.randint(0, 2, (n, 1), generator=g).double() * 2 - 1
        scenes.append(_scene(x, torch.randn(n, 3, generator=g, dtype=torch.float64), q))
    b = collate_scenes(scenes)
    for dtype in (torch.float64, torch.float32):
        model = _model(dtype, hidden_dim=12, num_layers=2)
        bd = _cast(b, dtype)
        assert_equivariant(
            _as_fn(model, bd),
            _args(bd),
            IN_TYPES,
            OUT_TYPE,
            group="O3",
            translations=True,
            permutations=True,
            tolerance=TOL[dtype],
        )


# ---- degenerate PCA ----


def _pentagon_batch():
    """A regular pentagon (two equal covariance eigenvalues) with random velocities and charges."""
    g = torch.Generator().manual_seed(3)
    t = torch.arange(5, dtype=torch.float64) * 2 * torch.pi / 5
    x = torch.stack([torch.cos(t), torch.sin(t), torch.zeros(5, dtype=torch.float64)], -1) * 1.7
    x = x @ torch.linalg.qr(torch.randn(3, 3, generator=g, dtype=torch.float64))[0].T + 0.3
    q = torch.tensor([[1.0], [-1.0], [1.0], [1.0], [-1.0]], dtype=torch.float64)
    return collate_scenes([_scene(x, torch.randn(5, 3, generator=g, dtype=torch.float64), q)])


def test_degenerate_pca_is_deterministic_and_equivariant():
    model = _model(torch.float64, hidden_dim=12, num_layers=2)
    b = _pentagon_batch()
    out = model(b)["pos"]
    assert torch.isfinite(out).all()
    assert model.fa_stats["axis+points"] >= 1  # the positions' frame came from the in-plane points
    torch.testing.assert_close(model(b)["pos"], out, rtol=0, atol=0)  # same input, same frames, same output
    report = assert_equivariant(
        _as_fn(model, b),
        _args(b),
        IN_TYPES,
        OUT_TYPE,
        group="O3",
        translations=True,
        permutations=True,
        tolerance=1e-10,
    )
    assert report.max <= 1e-10


def test_coincident_particles_give_finite_output():
    model = _model(torch.float64, hidden_dim=12, num_layers=2)
    b = _pentagon_batch()
    b["pos"] = torch.zeros_like(b["pos"]) + 2.0
    out = model(b)["pos"]
    assert torch.isfinite(out).all() and model.fa_stats["isotropic"] >= 1


# ---- batching, training plumbing ----


def test_batch_of_scenes_equals_scenes_alone():
    model = _model(torch.float64, hidden_dim=12, num_layers=2)
    traj = nbody.simulate(nbody.SimulationParams.recipe("charged", steps=1000), 3, seed=4)
    ds = nbody.frame_pairs(traj, 2, 6)
    both = model(_cast(collate_scenes([ds[0], ds[1], ds[2]]), torch.float64))["pos"]
    alone = [model(_cast(collate_scenes([ds[i]]), torch.float64))["pos"] for i in range(3)]
    torch.testing.assert_close(both, torch.cat(alone), rtol=1e-13, atol=1e-13)


def test_gradients_reach_every_parameter():
    model = FAGNN(hidden_dim=12, num_layers=3).double().train()
    b = _batch()
    loss = ((model(b)["pos"] - b["target"]) ** 2).mean()
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().max() > 0, name


def test_hparams_and_checkpoint_round_trip(tmp_path):
    from equivar.train import load_model, model_payload, save_checkpoint

    model = _model(torch.float64, hidden_dim=9, num_layers=2, frames="global")
    b = _batch()
    hp = json.loads(json.dumps(model.hparams))
    assert hp["name"] == "fagnn" and hp["hidden_dim"] == 9 and hp["frames"] == "global"
    clone = build_model(**hp).double()
    clone.load_state_dict(model.state_dict())
    torch.testing.assert_close(clone(b)["pos"], model(b)["pos"], rtol=0, atol=0)
    path = str(tmp_path / "fagnn.pt")
    save_checkpoint(path, model_payload(model))
    loaded = load_model(path)
    torch.testing.assert_close(loaded(b)["pos"], model(b)["pos"], rtol=0, atol=0)


def test_bad_batches_are_refused():
    model = FAGNN(hidden_dim=6, num_layers=1)
    b = _batch(n_scenes=1, dtype=torch.float32)
    with pytest.raises(ValueError, match="positions must be 3D .* got D=2"):
        model(dict(b, pos=b["pos"][..., :2], vel=b["vel"][..., :2]))
    with pytest.raises(ValueError, match="complete graph of each scene"):
        model(dict(b, edge_index=b["edge_index"][:, 1:], edge_attr=b["edge_attr"][1:]))
    with pytest.raises(ValueError, match="edge_attr has 3 features, the model was built for 1"):
        model(dict(b, edge_attr=torch.zeros(b["edge_index"].shape[1], 3)))


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("hidden_dim", 0, "an integer >= 1"),
        ("hidden_dim", 2.5, "an integer >= 1"),
        ("hidden_dim", 10, "a multiple of 3 with frames='layerwise'"),
        ("num_layers", True, "an integer >= 1"),
        ("edge_attr_dim", -1, "an integer >= 0"),
        ("residual", "yes", "true or false"),
        ("frames", "local", "'layerwise' or 'global'"),
        ("group", "O3", "'E3' or 'SE3'"),
    ],
)
def test_constructor_options_are_validated(key, value, message):
    with pytest.raises(ValueError, match=rf"^{key} must be {re.escape(message)}, got {re.escape(repr(value))}$"):
        FAGNN(**{key: value})


def test_equivar_audit_on_a_fagnn_checkpoint(tmp_path):
    """``equivar audit --data test`` on an FA-GNN checkpoint: every group at float64 rounding."""
    from equivar.cli.main import main
    from equivar.train import model_payload, save_checkpoint

    data = {"source": "nbody", "system": "charged", "n_train": 4, "n_valid": 4, "n_test": 4, "n_train_drawn": 4}
    path = str(tmp_path / "run" / "model.pt")
    save_checkpoint(
        path, model_payload(_model(torch.float64, hidden_dim=12, num_layers=2), {"task": "dynamics", "data": data})
    )
    out = tmp_path / "audit"
    args = [
        "--max-structures",
        "3",
        "--n-elements",
        "2",
        "--n-angles",
        "8",
        "--disc-angles",
        "90",
        "--disc-resolution",
        "3",
    ]
    assert main(["audit", "--model", path, "--data", "test", "--out", str(out), *args]) == 0
    report = json.loads((out / "audit.json").read_text())
    errors = {g: report["groups"][g]["outputs"]["pos"]["max"] for g in ("SO3", "O3", "translations", "permutations")}
    assert max(errors.values()) < 1e-10, errors
