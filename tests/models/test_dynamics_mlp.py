"""DynamicsMLP: the scene-flattening MLP baseline (values by hand, not equivariant, errors, checkpoint)."""

import pytest
import torch

from equivar.data import collate_scenes, nbody
from equivar.models import build_model
from equivar.models.mlp import DynamicsMLP


def _batch(n_scenes=3):
    traj = nbody.simulate(nbody.SimulationParams.recipe("charged", steps=1000), n_scenes, seed=2)
    ds = nbody.frame_pairs(traj, 2, 6)
    return collate_scenes([ds[i] for i in range(n_scenes)])


def test_values_by_hand():
    torch.manual_seed(0)
    model = DynamicsMLP(hidden_dim=16).double()
    b = _batch()
    out = model(b)["pos"]
    assert out.shape == (15, 1, 3)
    s = 1  # the second scene, by hand
    rows = slice(5 * s, 5 * s + 5)
    z = torch.cat([b["pos"][rows, -1], b["vel"][rows, -1], b["node_attr"][rows]], dim=1).reshape(-1)
    expect = b["pos"][rows, -1:] + model.mlp(z).reshape(5, 1, 3)
    torch.testing.assert_close(out[rows], expect, rtol=1e-14, atol=1e-14)


def test_not_equivariant():
    """The baseline breaks rotations, translations and permutations (what the audit shows)."""
    torch.manual_seed(0)
    model = DynamicsMLP(hidden_dim=16).double()
    b = _batch()
    out = model(b)["pos"]
    R = torch.linalg.qr(torch.randn(3, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1)))[0]
    rotated = model(dict(b, pos=b["pos"] @ R.T, vel=b["vel"] @ R.T))["pos"]
    moved = model(dict(b, pos=b["pos"] + 2.0))["pos"]
    perm = torch.tensor([1, 0, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14])
    permuted = model(dict(b, pos=b["pos"][perm], vel=b["vel"][perm], node_attr=b["node_attr"][perm]))["pos"]
    for name, got, expect in (
        ("rotation", rotated, out @ R.T),
        ("translation", moved, out + 2.0),
        ("permutation", permuted, out[perm]),
    ):
        assert float((got - expect).norm() / expect.norm()) > 1e-3, name


def test_errors_and_rebuild():
    model = build_model("dynamics_mlp", hidden_dim=8)
    assert isinstance(model, DynamicsMLP) and model.hparams["hidden_dim"] == 8
    b = {k: (v.float() if v.is_floating_point() else v) for k, v in _batch().items()}
    with pytest.raises(ValueError, match=r"built for scenes of 4 agents, got scenes of \[5\]"):
        DynamicsMLP(n_agents=4)(b)
    with pytest.raises(ValueError, match="node_attr has 1 features, the model was built for 2"):
        DynamicsMLP(node_attr_dim=2)(b)
    with pytest.raises(ValueError, match=r"built for 2 observed frames in 3D, got pos \(15, 1, 3\)"):
        DynamicsMLP(in_frames=2)(b)
    with pytest.raises(ValueError, match="num_layers must be an integer >= 2, got 1"):
        DynamicsMLP(num_layers=1)
    clone = build_model(**model.hparams)
    clone.load_state_dict(model.state_dict())
    torch.testing.assert_close(clone(b)["pos"], model(b)["pos"], rtol=0, atol=0)
