"""The trajectory_diffusion task: GeoTDM's scene-level minADE/minFDE against NumPy, a tiny training run through
``equivar train`` whose report equals ``equivar eval`` on the saved model, one-line errors."""

import csv

import numpy as np
import pytest
import torch
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from equivar.cli.main import main
from equivar.tasks import DynamicsMetrics, TrajectoryDiffusionTask, build_task


def _geotdm_numpy(pred, target, mask, scene):
    """GeoTDM's nbody_train.py: per scene, mean over (scored) particles of the displacement per frame, ADE the mean
    over frames, FDE the last; min over the K samples per scene; mean over scenes."""
    ades, fdes = [], []
    for s in np.unique(scene[mask]):
        sel = mask & (scene == s)
        dist = np.sqrt(((pred[:, sel] - target[sel]) ** 2).sum(-1)).mean(1)  # [K, T]
        ades.append(dist.mean(-1).min())
        fdes.append(dist[:, -1].min())
    return float(np.mean(ades)), float(np.mean(fdes))


@settings(max_examples=25, deadline=None)
@given(
    k=st.integers(1, 5),
    sizes=st.lists(st.integers(1, 4), min_size=1, max_size=4),
    t=st.integers(1, 6),
    seed=st.integers(0, 2**31 - 1),
)
def test_scene_min_ade_fde_match_geotdm_numpy(k, sizes, t, seed):
    g = np.random.default_rng(seed)
    n = sum(sizes)
    pred, target = g.normal(size=(k, n, t, 3)), g.normal(size=(n, t, 3))
    scene = np.repeat(np.arange(len(sizes)), sizes)
    mask = g.random(n) < 0.7
    mask[g.integers(n)] = True
    ptr = np.concatenate([[0], np.cumsum(sizes)])
    b = {
        "target": torch.as_tensor(target),
        "target_mask": torch.as_tensor(mask),
        "ptr": torch.as_tensor(ptr),
        "batch": torch.as_tensor(scene),
    }
    acc = DynamicsMetrics()
    acc.update({"pos": torch.as_tensor(pred)}, b, 0.0)
    m = acc.compute()
    ade, fde = _geotdm_numpy(pred, target, mask, scene)
    assert m["scene_min_ade"] == pytest.approx(ade, rel=1e-12)
    assert m["scene_min_fde"] == pytest.approx(fde, rel=1e-12)
    # with scenes of one size, all agents scored: the per-agent minima never exceed the joint (scene-level) ones
    if mask.all() and len(set(sizes)) == 1:
        assert m["min_ade"] <= m["scene_min_ade"] + 1e-12


def test_tiny_run_report_equals_eval(tmp_path, capsys):
    cfg = {
        "seed": 0,
        "dtype": "float64",
        "output_dir": str(tmp_path / "run"),
        "task": {
            "name": "trajectory_diffusion",
            "report_sets": ["test"],
            "sample_seed": 3,
            "data": {
                "source": "nbody",
                "system": "charged",
                "n_train": 6,
                "n_valid": 3,
                "n_test": 4,
                "n_train_drawn": 6,
                "data_seed": 5,
                "steps": 1000,
                "sample_every": 100,
                "past": 4,
                "future": 5,
                "cache_dir": str(tmp_path / "cache"),
            },
        },
        "model": {
            "name": "geotdm",
            "past": 4,
            "future": 5,
            "hidden_dim": 8,
            "num_layers": 1,
            "prior_layers": 1,
            "time_emb_dim": 4,
            "timesteps": 10,
            "beta_end": 0.005,
            "num_samples": 3,
            "sampling_steps": 5,
        },
        "training": {"epochs": 2, "batch_size": 3, "valid_batch_size": 4, "lr": 1e-3, "ema_decay": None},
    }
    path = tmp_path / "geotdm.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert main(["train", "-c", str(path)]) == 0
    report = next(csv.DictReader(open(tmp_path / "run" / "errors.csv")))
    rows = list(csv.DictReader(open(tmp_path / "run" / "metrics.csv")))
    assert len(rows) == 2 and float(rows[-1]["valid_loss"]) > 0
    table = str(tmp_path / "eval.csv")
    assert (
        main(
            ["eval", "--model", str(tmp_path / "run" / "model.pt"), "--split", "test", "--seed", "3", "--table", table]
        )
        == 0
    )
    row = next(csv.DictReader(open(table)))
    assert int(row["k"]) == 3 and int(row["scenes"]) == 4
    for key in ("min_ade", "min_fde", "scene_min_ade", "scene_min_fde"):
        assert float(row[key]) == pytest.approx(float(report[key]), rel=1e-9), key
    assert float(report["scene_min_ade"]) >= float(report["min_ade"])


def test_options_are_checked():
    with pytest.raises(ValueError, match="task.report_sets: unknown set 'tests'"):
        build_task({"name": "trajectory_diffusion", "report_sets": ["tests"]})
    task = build_task({"name": "trajectory_diffusion", "data": {"past": 10, "future": 20}})
    assert isinstance(task, TrajectoryDiffusionTask) and task.data.future == 20
    with pytest.raises(ValueError, match="has no loss"):
        task.forward(torch.nn.Linear(2, 2), {}, True)


def test_sample_metrics_script_agrees_with_the_task_metrics(tmp_path):
    """scripts/trajectory_sample_metrics.py on a predictions file: its minima equal DynamicsMetrics', its
    aveADE is the mean over samples (a hand-made case: two samples at distance 1 and 3 from the truth)."""
    import importlib.util
    import os

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    spec = importlib.util.spec_from_file_location("tsm", os.path.join(root, "scripts", "trajectory_sample_metrics.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    g = np.random.default_rng(0)
    pred, target = g.normal(size=(4, 7, 5, 3)), g.normal(size=(7, 5, 3))
    ptr, mask = np.array([0, 3, 7]), np.array([1, 1, 0, 1, 1, 1, 1], dtype=bool)
    out = mod.sample_metrics(pred, target, mask, ptr)
    acc = DynamicsMetrics()
    b = {"target": torch.as_tensor(target), "target_mask": torch.as_tensor(mask), "ptr": torch.as_tensor(ptr)}
    acc.update({"pos": torch.as_tensor(pred)}, b, 0.0)
    m = acc.compute()
    for mine, theirs in (
        ("scene_min_ade", "scene_min_ade"),
        ("scene_min_fde", "scene_min_fde"),
        ("agent_min_ade", "min_ade"),
        ("agent_min_fde", "min_fde"),
    ):
        assert out[mine] == pytest.approx(m[theirs], rel=1e-12), mine
    one = np.zeros((2, 1, 2, 3))
    one[0, :, :, 0], one[1, :, :, 0] = 1.0, 3.0
    hand = mod.sample_metrics(one, np.zeros((1, 2, 3)), np.ones(1, dtype=bool), np.array([0, 1]))
    assert (hand["scene_min_ade"], hand["scene_ave_ade"], hand["scene_ave_fde"]) == (1.0, 2.0, 2.0)
    np.savez(tmp_path / "p.npz", pred=pred, target=target, target_mask=mask, ptr=ptr)
    assert mod.main([str(tmp_path / "p.npz"), "--json", str(tmp_path / "m.json")]) == 0
    # a deterministic model's [N, T, D] predictions are K = 1: minima = means = its ADE / FDE (scene means of
    # the per-agent errors; equal to DynamicsMetrics' per-agent ade / fde when every scene has as many agents)
    det = mod.sample_metrics(pred[0], target, mask, ptr)
    assert det == mod.sample_metrics(pred[:1], target, mask, ptr) and det["k"] == 1
    assert (det["scene_min_ade"], det["scene_min_fde"]) == (det["scene_ave_ade"], det["scene_ave_fde"])
    acc = DynamicsMetrics()
    acc.update({"pos": torch.as_tensor(pred[0])}, b, 0.0)
    assert det["agent_min_ade"] == pytest.approx(acc.compute()["ade"], rel=1e-12)
    even = np.ones(7, dtype=bool)
    ptr_even = np.array([0, 7])
    det = mod.sample_metrics(pred[0], target, even, ptr_even)
    acc = DynamicsMetrics()
    acc.update(
        {"pos": torch.as_tensor(pred[0])},
        {**b, "target_mask": torch.as_tensor(even), "ptr": torch.as_tensor(ptr_even)},
        0.0,
    )
    m = acc.compute()
    assert (det["scene_min_ade"], det["scene_min_fde"]) == (
        pytest.approx(m["ade"], rel=1e-12),
        pytest.approx(m["fde"], rel=1e-12),
    )
    np.savez(tmp_path / "d.npz", pred=pred[0], target=target, target_mask=mask, ptr=ptr)
    assert mod.main([str(tmp_path / "d.npz")]) == 0
    np.savez(tmp_path / "bad.npz", pred=pred[0, 0], target=target, target_mask=mask, ptr=ptr)
    assert mod.main([str(tmp_path / "bad.npz")]) == 2
