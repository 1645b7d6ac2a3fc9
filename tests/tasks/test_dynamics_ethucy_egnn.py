"""configs/ethucy_egnn.yaml: EGNN with 8 observed -> 12 predicted frames, trained by `equivar train` on the real
ETH-UCY reader (zara1 held out, up to 3 agents per sample), its reported errors checked against the saved model."""

import csv
import os

import torch

from equivar.cli.main import main
from equivar.data import collate_scenes
from equivar.tasks import DynamicsData
from equivar.train import load_config, load_model

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _ade(pred, b):
    m = b["target_mask"]
    return float((pred.double() - b["target"]).norm(dim=-1).mean(-1)[m].mean())


def test_shipped_config_is_the_trajectory_egnn():
    cfg = load_config(os.path.join(ROOT, "configs", "ethucy_egnn.yaml"))
    m = cfg.model
    assert (m["name"], m["past"], m["future"], m["edge_attr_dim"], m["node_attr_dim"]) == ("egnn", 8, 12, 0, 0)
    d = cfg.task["data"]
    assert (d["source"], d["past"], d["future"], cfg.task["loss"]) == ("ethucy", 8, 12, "ade")


def test_equivar_train_ethucy_egnn(tmp_path, shared_data):
    out = tmp_path / "run"
    args = ["train", "-c", os.path.join(ROOT, "configs", "ethucy_egnn.yaml"), "--set"]
    args += [
        f"task.data.root={os.path.join(shared_data, 'eth_ucy')}",
        "task.data.scene=zara1",
        "task.data.test_scale=1.0",
    ]
    args += ["model.hidden_dim=16", "model.num_layers=2", "training.epochs=1", f"output_dir={out}", "progress=false"]
    assert main(args) == 0
    with open(out / "errors.csv") as fh:
        rows = {r["set"]: r for r in csv.DictReader(fh)}
    model = load_model(str(out / "model.pt"))
    assert (model.past, model.future) == (8, 12)
    sets = DynamicsData(source="ethucy", root=os.path.join(shared_data, "eth_ucy"), scene="zara1").load(log=print)
    results = {}
    for name in ("valid", "test"):
        b = collate_scenes([sets[name][i] for i in range(len(sets[name]))])
        with torch.no_grad():
            pred = model({k: (v.float() if v.is_floating_point() else v) for k, v in b.items()})["pos"]
        assert pred.shape == b["target"].shape
        tau = torch.arange(1, 13, dtype=torch.float64)[None, :, None]
        results[name] = (_ade(pred, b), _ade(b["pos"][:, -1:] + tau * b["vel"][:, -1:], b))
    # the report is the saved model's ADE on the held-out scene, in metres
    assert abs(float(rows["test"]["ade"]) - results["test"][0]) < 1e-5 * results["test"][0]
    assert int(rows["test"]["scenes"]) == len(sets["test"])
    # one epoch of training beats the constant-velocity start on the validation scenes
    ade, constant_velocity = results["valid"]
    assert ade < 0.99 * constant_velocity, (ade, constant_velocity)
