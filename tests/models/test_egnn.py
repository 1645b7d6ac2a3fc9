"""EGNN: the paper's equations, E(n) x permutation equivariance (3D through equivar.testing, 2D by hand), batching."""

import math
import os
import re

import pytest
import torch

from equivar.data import collate_scenes, ethucy_dataset, nbody
from equivar.models import EGNN, build_model
from equivar.testing import Typed, assert_equivariant

TOL = {torch.float32: 1e-5, torch.float64: 1e-10}


def _batch(n_scenes=3, dim=3, seed=0, steps=1000):
    traj = nbody.simulate(nbody.SimulationParams.recipe("charged", steps=steps), n_scenes, seed=seed)
    if dim == 2:
        traj.positions = traj.positions[..., :2].copy()
        traj.velocities = traj.velocities[..., :2].copy()
    ds = nbody.frame_pairs(traj, 2, 6)
    return collate_scenes([ds[i] for i in range(n_scenes)])


def _model(dtype, **kw):
    torch.manual_seed(0)
    model = EGNN(**kw).to(dtype)
    # the last position layer starts at gain 0.001; scale it up so the test sees non-trivial position messages
    with torch.no_grad():
        for layer in model.layers:
            layer.coord_mlp[2].weight.mul_(300.0)
    return model.eval()


def _reference(model, b):
    """EGNN_vel's equations written out with concatenated edge inputs and explicit per-node means."""
    pos, vel = b["pos"][:, -1], b["vel"][:, -1]
    send, recv = b["edge_index"]
    n = pos.shape[0]
    h = model.embedding(vel.norm(dim=-1, keepdim=True))
    a0 = torch.cat([b["edge_attr"], ((pos[recv] - pos[send]) ** 2).sum(-1, keepdim=True)], -1)
    x = pos
    for layer in model.layers:
        diff = x[recv] - x[send]
        r = (diff**2).sum(-1, keepdim=True)
        z = torch.cat([h[recv], h[send], r, a0], -1) @ layer.edge_in_weight().T + layer.edge_in_bias
        m = torch.nn.functional.silu(layer.edge_out(torch.nn.functional.silu(z)))
        trans = diff * layer.coord_mlp(m)
        x_new = x.clone()
        for i in range(n):
            x_new[i] = x[i] + trans[recv == i].mean(0)
        x_new = x_new + layer.coord_mlp_vel(h) * vel
        agg = torch.zeros_like(h).index_add_(0, recv, m)
        h = h + layer.node_mlp(torch.cat([h, agg], -1))
        x = x_new
    return x


def test_matches_paper_equations():
    model = _model(torch.float64)
    b = {k: (v.double() if v.is_floating_point() else v) for k, v in _batch().items()}
    out = model(b)["pos"][:, 0]
    torch.testing.assert_close(out, _reference(model, b), rtol=1e-12, atol=1e-12)
    assert (out - b["pos"][:, 0]).abs().max() > 1e-2  # the layers move the particles


def _as_fn(model, b):
    def fn(pos, vel, node_attr, edge_index, edge_attr):
        batch = dict(b, pos=pos, vel=vel, node_attr=node_attr, edge_index=edge_index, edge_attr=edge_attr)
        return model(batch)["pos"]

    return fn


def test_equivariance_3d(dtype):
    model = _model(dtype)
    b = {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in _batch().items()}
    args = [b["pos"], b["vel"], b["node_attr"], b["edge_index"], b["edge_attr"]]
    in_types = [
        Typed("positions", nodes=True),
        Typed("vector", nodes=True),
        Typed("0e", nodes=True),
        "index",
        "0e",
    ]
    report = assert_equivariant(
        _as_fn(model, b),
        args,
        in_types,
        Typed("positions", nodes=True),
        group="O3",
        translations=True,
        permutations=True,
        tolerance=TOL[dtype],
    )
    assert report.max <= TOL[dtype]


def test_equivariance_2d_rotation_reflection_translation():
    model = _model(torch.float64)
    b = {k: (v.double() if v.is_floating_point() else v) for k, v in _batch(dim=2).items()}
    out = model(b)["pos"]
    g = torch.Generator().manual_seed(1)
    for reflect in (False, True):
        theta = torch.rand((), generator=g, dtype=torch.float64) * 6.283
        c, s = torch.cos(theta), torch.sin(theta)
        R = torch.stack([torch.stack([c, -s]), torch.stack([s, c])])
        if reflect:
            R = R @ torch.diag(torch.tensor([1.0, -1.0], dtype=torch.float64))
        t = torch.randn(2, generator=g, dtype=torch.float64) * 3
        moved = dict(b, pos=b["pos"] @ R.T + t, vel=b["vel"] @ R.T)
        expect = out @ R.T + t
        err = (model(moved)["pos"] - expect).norm() / expect.norm()
        assert err < 1e-12, (reflect, err)


def test_batch_of_scenes_equals_scenes_alone():
    model = _model(torch.float64)
    traj = nbody.simulate(nbody.SimulationParams.recipe("charged", steps=1000), 2, seed=4)
    ds = nbody.frame_pairs(traj, 2, 6)
    both = model({k: (v.double() if v.is_floating_point() else v) for k, v in collate_scenes([ds[0], ds[1]]).items()})
    alone = [model(collate_scenes([ds[i]]))["pos"] for i in range(2)]
    torch.testing.assert_close(both["pos"], torch.cat(alone), rtol=1e-13, atol=1e-13)


def test_registered_and_errors():
    model = build_model("egnn", hidden_dim=16, num_layers=2)
    assert isinstance(model, EGNN) and len(model.layers) == 2
    b = _batch(n_scenes=1)
    b["edge_attr"] = torch.zeros(b["edge_index"].shape[1], 3)
    with pytest.raises(ValueError, match="edge_attr has 3 features, the model was built for 1"):
        model({k: (v.float() if v.is_floating_point() else v) for k, v in b.items()})
    with pytest.raises(ValueError, match="num_layers must be an integer >= 1, got 0"):
        EGNN(num_layers=0)
    with pytest.raises(ValueError, match="coords_aggregation must be .mean. or .sum., got .max."):
        EGNN(coords_aggregation="max")


def test_hparams_and_checkpoint_round_trip(tmp_path):
    import json

    from equivar.train import load_model, model_payload, save_checkpoint

    model = _model(torch.float64, hidden_dim=8, num_layers=2, coords_aggregation="sum")
    b = {k: (v.double() if v.is_floating_point() else v) for k, v in _batch().items()}
    hp = json.loads(json.dumps(model.hparams))
    assert hp["name"] == "egnn" and hp["hidden_dim"] == 8 and hp["coords_aggregation"] == "sum"
    clone = build_model(**hp).double()
    clone.load_state_dict(model.state_dict())
    torch.testing.assert_close(clone(b)["pos"], model(b)["pos"], rtol=0, atol=0)
    path = str(tmp_path / "egnn.pt")
    save_checkpoint(path, model_payload(model))
    loaded = load_model(path)
    assert next(loaded.parameters()).dtype == torch.float64
    torch.testing.assert_close(loaded(b)["pos"], model(b)["pos"], rtol=0, atol=0)


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("hidden_dim", 0, "an integer >= 1"),
        ("hidden_dim", -3, "an integer >= 1"),
        ("hidden_dim", 2.5, "an integer >= 1"),
        ("num_layers", 0, "an integer >= 1"),
        ("num_layers", True, "an integer >= 1"),
        ("edge_attr_dim", -1, "an integer >= 0"),
        ("node_attr_dim", "2", "an integer >= 0"),
        ("residual", "yes", "true or false"),
        ("velocity", 1, "true or false"),
        ("coords_aggregation", "max", "'mean' or 'sum'"),
    ],
)
def test_constructor_options_are_validated_naming_the_config_key(key, value, message):
    """``--set model.hidden_dim=0`` used to train a zero-width model: each option is checked, the error names
    ``model.KEY`` (through the trainer's build_model) and the value."""
    from equivar.train import build_model as train_build_model

    with pytest.raises(ValueError, match=rf"^model\.{key} must be {re.escape(message)}, got {re.escape(repr(value))}$"):
        train_build_model({"name": "egnn", key: value})
    with pytest.raises(ValueError, match=rf"^{key} must be"):
        EGNN(**{key: value})
    EGNN(hidden_dim=1, num_layers=1, edge_attr_dim=0, node_attr_dim=0)  # the smallest valid settings build


def test_complete_graph_fast_paths_are_the_same_function(dtype):
    """The fused complete-graph path (default on N-body batches), the dense autograd path and the general
    gather/scatter path (no ``ptr``): outputs and parameter gradients agree to round-off."""
    model = _model(dtype).train()
    b = {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in _batch(n_scenes=4).items()}
    tol = {torch.float32: 1e-5, torch.float64: 1e-12}[dtype]
    calls = {}

    def run(fused, ptr):
        model.fused = fused
        model.zero_grad()
        out = model(dict(b, ptr=ptr))["pos"]
        ((out - b["target"]) ** 2).mean().backward()
        grads = {
            k: (p.grad.clone() if p.grad is not None else torch.zeros_like(p)) for k, p in model.named_parameters()
        }
        return out.detach(), grads

    import equivar.nn._egcl_fused as fused_module

    real = fused_module._DenseEGCL.apply

    def counting(*a):
        calls["fused"] = calls.get("fused", 0) + 1
        return real(*a)

    fused_module._DenseEGCL.apply = counting
    try:
        results = {"fused": run(True, b["ptr"]), "dense": run(False, b["ptr"]), "general": run(True, None)}
    finally:
        fused_module._DenseEGCL.apply = real
    assert calls["fused"] == len(model.layers)  # only the first run took the fused path
    ref_out, ref_grads = results["general"]
    for name in ("fused", "dense"):
        out, grads = results[name]
        assert float((out - ref_out).norm() / ref_out.norm()) < tol, name
        for k, g in ref_grads.items():
            assert float((grads[k] - g).norm()) <= tol * max(float(g.norm()), 1e-30), (name, k)


# ---- trajectories: past frames in, future frames out (configs/ethucy_egnn.yaml) ---------------------------------


def _windows(n_scenes=3, past=4, future=3, seed=2):
    traj = nbody.simulate(nbody.SimulationParams.recipe("charged", steps=2000), n_scenes, seed=seed)
    ds = nbody.windows(traj, past, future)
    return collate_scenes([ds[i] for i in range(n_scenes)])


def _trajectory_model(dtype, past=4, future=3, **kw):
    model = _model(dtype, past=past, future=future, **kw)
    with torch.no_grad():  # away from the constant-velocity start, so every term of the readout is exercised
        model.readout.weight.normal_(0.0, 0.3, generator=torch.Generator().manual_seed(4))
    return model


def test_trajectory_equivariance_3d(dtype):
    """O(3), translations and permutations (edge indices relabelled by the kit) with 4 past and 3 future frames."""
    model = _trajectory_model(dtype)
    b = {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in _windows().items()}
    out = model(b)["pos"]
    assert out.shape == b["target"].shape == (15, 3, 3)
    args = [b["pos"], b["vel"], b["node_attr"], b["edge_index"], b["edge_attr"]]
    in_types = [Typed("positions", nodes=True), Typed("vector", nodes=True), Typed("0e", nodes=True), "index", "0e"]
    report = assert_equivariant(
        _as_fn(model, b),
        args,
        in_types,
        Typed("positions", nodes=True),
        group="O3",
        translations=True,
        permutations=True,
        tolerance=TOL[dtype],
    )
    assert report.max <= TOL[dtype]
    assert {k[0] for k in report.errors} == {"rotation", "improper", "translation", "permutation"}


def _orthogonal_2d(theta, reflect):
    c, s = math.cos(theta), math.sin(theta)
    r = torch.tensor([[c, -s], [s, c]], dtype=torch.float64)
    return r @ torch.diag(torch.tensor([1.0, -1.0], dtype=torch.float64)) if reflect else r


def test_trajectory_equivariance_2d_on_ethucy(dtype, shared_data):
    """E(2) with reflections, translations and permutations of agents on real ETH-UCY scenes (zara1: 1 to 3 agents
    per scene, so messages flow), 8 observed and 12 predicted frames."""
    ds = ethucy_dataset(os.path.join(shared_data, "eth_ucy"), "zara1", "test")
    b = collate_scenes([ds[i] for i in range(0, 600, 20)])
    b = {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in b.items()}
    assert b["edge_index"].shape[1] > 0
    model = _trajectory_model(dtype, past=8, future=12, edge_attr_dim=0).requires_grad_(False)
    out = model(b)["pos"]
    assert out.shape == b["target"].shape
    g = torch.Generator().manual_seed(3)
    n = b["pos"].shape[0]
    worst = 0.0
    for reflect in (False, True):
        for _ in range(3):
            r = _orthogonal_2d(float(torch.rand((), generator=g)) * 2 * math.pi, reflect).to(dtype)
            t = (torch.randn(2, generator=g, dtype=torch.float64) * 5).to(dtype)
            perm = torch.randperm(n, generator=g)  # new agent k is old agent perm[k]
            inv = torch.empty_like(perm)
            inv[perm] = torch.arange(n)
            moved = dict(
                b,
                pos=(b["pos"] @ r.T + t)[perm],
                vel=(b["vel"] @ r.T)[perm],
                edge_index=inv[b["edge_index"]],
                ptr=None,  # the relabelled graph is no longer in batch order: the general path
            )
            got = model(moved)["pos"].double()
            want = (out.double() @ r.double().T + t.double())[perm]
            worst = max(worst, float((got - want).norm() / want.norm()))
    assert worst < TOL[dtype], worst
    # the neighbours matter: the same agents without edges predict differently
    alone = model(dict(b, edge_index=b["edge_index"][:, :0], edge_attr=b["edge_attr"][:0], ptr=None))["pos"]
    assert float((alone - out).abs().max()) > 1e-4


def test_trajectory_model_starts_at_constant_velocity_and_paths_agree(dtype):
    """With the readout's weights at zero the prediction is x_0 + tau v_T exactly (the bias's start); the fused
    complete-graph path (all layers updating h for the readout) and the general path are the same function."""
    model = _trajectory_model(dtype).requires_grad_(False)
    b = {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in _windows().items()}
    fused = model(b)["pos"]
    general = model(dict(b, ptr=None))["pos"]
    assert float((fused - general).norm() / general.norm()) < TOL[dtype]
    with torch.no_grad():
        model.readout.weight.zero_()
    tau = torch.arange(1, 4, dtype=dtype)[None, :, None]
    want = b["pos"][:, -1:] + tau * b["vel"][:, -1:]
    torch.testing.assert_close(model(b)["pos"], want, rtol=TOL[dtype], atol=TOL[dtype])


def test_trajectory_input_is_checked():
    model = EGNN(past=8, future=12, edge_attr_dim=0)
    b = _windows(n_scenes=1, past=4, future=3)
    b = {k: (v.float() if v.is_floating_point() else v) for k, v in b.items()}
    with pytest.raises(ValueError, match=r"EGNN: pos and vel must be \[N, past=8, D\], got pos \(5, 4, 3\)"):
        model(dict(b, edge_attr=b["edge_attr"][:, :0]))
    with pytest.raises(ValueError, match="past must be an integer >= 1, got 0"):
        EGNN(past=0)


def test_trajectory_readout_of_the_layers_displacement_is_the_frame_pair_model(dtype):
    """Readout set to pick only ``x_L - x_0`` (coefficient 1 for every future frame) and an embedding that reads
    only the last observed speed: every predicted frame is the frame-pair model's output with the same layers."""
    traj_model = _trajectory_model(dtype).requires_grad_(False)
    pair_model = _model(dtype).requires_grad_(False)
    pair_model.load_state_dict(
        {k: v for k, v in traj_model.state_dict().items() if k in pair_model.state_dict()}
        | {
            "embedding.weight": traj_model.embedding.weight[:, -1:].clone(),
            "embedding.bias": traj_model.embedding.bias.clone(),
        }
    )
    with torch.no_grad():
        traj_model.embedding.weight[:, :-1].zero_()
        traj_model.readout.weight.zero_()
        traj_model.readout.bias.copy_(torch.tensor([0.0, 0.0, 0.0, 0.0, 1.0]).repeat(3))
    b = {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in _windows().items()}
    want = pair_model(b)["pos"]  # [N, 1, 3]: x_L
    got = traj_model(b)["pos"]
    assert float((want[:, 0] - b["pos"][:, -1]).abs().max()) > 1e-3  # the layers move the agents
    torch.testing.assert_close(got, want.expand_as(got), rtol=TOL[dtype], atol=TOL[dtype])
