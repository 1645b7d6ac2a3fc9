"""``equivar audit`` on dynamics checkpoints: EqMotion (K heads on 2D ETH-UCY scenes lifted to 3D, one prediction
on N-body windows) is equivariant to float64 rounding; a model that breaks rotations is caught."""

import json
import os

import torch

from equivar.cli.main import main
from equivar.models import EqMotion
from equivar.train import model_payload, save_checkpoint

NBODY = {
    "source": "nbody",
    "system": "charged",
    "n_train": 4,
    "n_valid": 4,
    "n_test": 4,
    "n_train_drawn": 4,
    "steps": 2500,
    "past": 10,
    "future": 10,
    "finite_difference_velocities": True,
}


def _checkpoint(tmp_path, model, data):
    path = str(tmp_path / "run" / "model.pt")
    save_checkpoint(path, model_payload(model.double(), {"task": "dynamics", "data": data}))
    return path


def _audit(tmp_path, path, *extra):
    out = tmp_path / "audit"
    rc = main(
        [
            "audit",
            "--model",
            path,
            "--data",
            "test",
            "--out",
            str(out),
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
            *extra,
        ]
    )
    assert rc == 0
    return json.loads((out / "audit.json").read_text()), out


def test_audit_eqmotion_nbody(tmp_path, capsys):
    torch.manual_seed(0)
    model = EqMotion(
        past=10, future=10, hidden_dim=8, channels=4, num_hypotheses=None, num_categories=2, active_categories=None
    )
    path = _checkpoint(tmp_path, model, dict(NBODY, cache_dir=str(tmp_path / "cache")))
    rep, out = _audit(tmp_path, path)
    groups = rep["groups"]
    assert {"SO3", "O3", "translations", "permutations"} <= set(groups)
    worst = max(v["outputs"]["pos"]["max"] for v in groups.values())
    assert worst < 1e-10, groups
    assert rep["meta"]["agents"] == 5 and rep["meta"]["lifted_to_3d"] is False
    assert (out / "groups.png").stat().st_size > 1000
    assert "auditing eqmotion" in capsys.readouterr().out


def test_audit_eqmotion_ethucy_lifted(tmp_path, shared_data):
    torch.manual_seed(0)
    model = EqMotion(hidden_dim=8, channels=4, num_hypotheses=3)
    data = {"source": "ethucy", "root": os.path.join(shared_data, "eth_ucy"), "scene": "zara1", "past": 8, "future": 12}
    rep, _ = _audit(tmp_path, _checkpoint(tmp_path, model, data), "--group", "O3", "translations", "permutations")
    assert rep["meta"]["lifted_to_3d"] is True and rep["meta"]["hypotheses"] == 3 and rep["meta"]["agents"] == 3
    assert max(v["outputs"]["pos"]["max"] for v in rep["groups"].values()) < 1e-10, rep["groups"]


def test_audit_catches_a_broken_model(tmp_path, monkeypatch):
    """The same model with its output's x axis doubled is not rotation-equivariant: the audit must say so."""
    torch.manual_seed(0)
    model = EqMotion(
        past=10, future=10, hidden_dim=8, channels=4, num_hypotheses=None, num_categories=2, active_categories=None
    )
    forward = EqMotion.forward

    def broken(self, batch):
        out = forward(self, batch)
        return {"pos": out["pos"] * torch.tensor([2.0, 1.0, 1.0], dtype=out["pos"].dtype)}

    monkeypatch.setattr(EqMotion, "forward", broken)
    path = _checkpoint(tmp_path, model, dict(NBODY, cache_dir=str(tmp_path / "cache")))
    rep, _ = _audit(tmp_path, path, "--group", "SO3", "permutations")
    assert rep["groups"]["SO3"]["outputs"]["pos"]["max"] > 1e-2
    assert rep["groups"]["permutations"]["outputs"]["pos"]["max"] < 1e-10


def test_audit_dynamics_needs_a_split(tmp_path, capsys):
    torch.manual_seed(0)
    path = _checkpoint(tmp_path, EqMotion(hidden_dim=8, channels=4, num_hypotheses=2), {"source": "ethucy"})
    out = tmp_path / "a"
    assert main(["audit", "--model", path, "--data", "s.xyz", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and path in err and "dynamics model (eqmotion)" in err and "'s.xyz'" in err
    assert not out.exists()
