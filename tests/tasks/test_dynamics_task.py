"""The dynamics task: metrics and losses against hand computations, typed options, training through equivar train."""

import csv
import os

import pytest
import torch

from equivar.data import collate_scenes, nbody
from equivar.tasks import DynamicsData, DynamicsTask, build_task
from equivar.tasks.dynamics import DynamicsMetrics, displacement_errors, min_over_hypotheses
from equivar.train import config_from_dict, load_model, run_training


def _batch():
    # two scenes: 2 agents (first scored only) and 1 agent; T_out = 2, D = 2
    target = torch.tensor([[[0.0, 0.0], [1.0, 0.0]], [[5.0, 5.0], [5.0, 5.0]], [[0.0, 0.0], [0.0, 2.0]]])
    return {
        "target": target,
        "target_mask": torch.tensor([True, False, True]),
        "ptr": torch.tensor([0, 2, 3]),
    }


def test_displacement_errors_by_hand():
    b = _batch()
    pred = b["target"].clone()
    pred[0, 1] = torch.tensor([1.0, 3.0])  # final step 3 off
    pred[2, 0] = torch.tensor([4.0, 0.0])  # first step 4 off
    ade, fde = displacement_errors(pred, b["target"])
    torch.testing.assert_close(ade, torch.tensor([1.5, 0.0, 2.0]))
    torch.testing.assert_close(fde, torch.tensor([3.0, 0.0, 0.0]))
    # two hypotheses: the best ADE and the best FDE come from different hypotheses
    other = b["target"].clone()
    other[0, 0] = torch.tensor([0.0, 2.0])  # ADE 1, FDE 0 for agent 0
    mins = min_over_hypotheses(torch.stack([pred, other]), b["target"])
    torch.testing.assert_close(mins[0], torch.tensor([1.0, 0.0, 0.0]))
    torch.testing.assert_close(mins[1], torch.tensor([0.0, 0.0, 0.0]))


def test_loss_and_metrics_respect_the_mask():
    task = DynamicsTask()
    b = _batch()
    pred = b["target"].clone()
    pred[0, 1, 1] += 3.0
    pred[1] += 100.0  # not scored
    loss, parts = task.loss({"pos": pred}, b)
    assert float(loss) == pytest.approx(9.0 / 8)  # one error of 3 among 2 scored agents x 2 frames x 2 coords
    acc = DynamicsMetrics()
    acc.update({"pos": pred}, b, float(loss))
    m = acc.compute()
    assert m["mse"] == pytest.approx(9.0 / 8) and m["ade"] == pytest.approx(0.75) and m["fde"] == pytest.approx(1.5)
    assert m["n_structures"] == 2
    # K hypotheses: EqMotion's loss = mean over scored agents of the smallest ADE
    k = torch.stack([pred, b["target"] + torch.tensor([0.0, 1.0])])
    loss_k, _ = task.loss({"pos": k}, b)
    assert float(loss_k) == pytest.approx((1.0 + 0.0) / 2)  # agent 0: min(ADE 1.5, 1); agent 2: min(0, 1)
    acc = DynamicsMetrics()
    acc.update({"pos": k}, b, float(loss_k))
    m = acc.compute()
    assert m["min_ade"] == pytest.approx((1.0 + 0.0) / 2) and m["min_fde"] == pytest.approx((1.0 + 0.0) / 2)


def test_options_are_typed_and_named():
    with pytest.raises(ValueError, match=r"unknown config key 'task.data.n_trian'; did you mean 'n_train'"):
        build_task({"name": "dynamics", "data": {"n_trian": 5}})
    with pytest.raises(ValueError, match=r"task.data.n_train: expected int, got 'many'"):
        DynamicsData.from_mapping({"n_train": "many"})
    with pytest.raises(ValueError, match="task.data.source must be 'nbody' or 'ethucy'"):
        DynamicsData.from_mapping({"source": "md17"})
    with pytest.raises(ValueError, match="data.train_file is not used by task 'dynamics'"):
        config_from_dict({"task": "dynamics", "data": {"train_file": "x.xyz"}, "model": {"name": "egnn"}}).validate()


def test_forward_checks_the_model_output():
    task = DynamicsTask()
    b = _batch()
    with pytest.raises(ValueError, match=r"must return \{'pos'.*got pos \(3, 1, 2\)"):
        task.forward(lambda batch: {"pos": torch.zeros(3, 1, 2)}, b, False)


def test_equivar_train_on_nbody(tmp_path):
    data = {"source": "nbody", "n_train": 60, "n_valid": 20, "n_test": 20, "n_train_drawn": 60, "steps": 1000}
    data.update({"input_frame": 2, "target_frame": 6, "cache_dir": str(tmp_path / "cache")})
    cfg = config_from_dict(
        {
            "seed": 0,
            "dtype": "float32",
            "num_threads": 1,
            "progress": False,
            "output_dir": str(tmp_path / "run"),
            "task": {"name": "dynamics", "data": data},
            "model": {"name": "egnn", "hidden_dim": 16, "num_layers": 2},
            "training": {"epochs": 3, "batch_size": 20, "valid_batch_size": 50, "optimizer": "adam", "lr": 1e-3},
        }
    ).validate()
    res = run_training(cfg, log=lambda s: None)
    losses = [r["train_loss"] for r in res.history]
    assert losses[-1] < losses[0]
    with open(os.path.join(cfg.output_dir, "errors.csv")) as fh:
        rows = {r["set"]: r for r in csv.DictReader(fh)}
    # the reported test MSE is the saved model's MSE on the test trajectories, recomputed here
    model = load_model(os.path.join(cfg.output_dir, "model.pt"))
    splits = nbody.load_nbody(
        nbody.NBodyDatasetConfig(
            simulation=nbody.SimulationParams.recipe("charged", steps=1000),
            n_train=60,
            n_valid=20,
            n_test=20,
            n_train_drawn=60,
        ),
        str(tmp_path / "cache"),
    )
    assert splits.from_cache
    ds = nbody.frame_pairs(splits.test, 2, 6)
    b = collate_scenes([ds[i] for i in range(len(ds))])
    b = {k: (v.float() if v.is_floating_point() else v) for k, v in b.items()}
    with torch.no_grad():
        mse = torch.nn.functional.mse_loss(model(b)["pos"], b["target"])
    assert float(rows["test"]["mse"]) == pytest.approx(float(mse), rel=1e-5)
    assert int(rows["test"]["scenes"]) == 20 and int(rows["train"]["scenes"]) == 60


def test_shipped_nbody_config_is_egnns_recipe():
    from equivar.train import load_config

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    cfg = load_config(os.path.join(root, "configs", "nbody_egnn.yaml"))
    task = build_task(cfg.task, cfg.training)
    d = task.data
    assert (d.source, d.system, d.n_train, d.n_valid, d.n_test, d.data_seed) == (
        "nbody",
        "charged",
        3000,
        2000,
        2000,
        43,
    )
    assert (d.input_frame, d.target_frame, d.past) == (30, 40, None)
    t = cfg.training
    assert (t.optimizer, t.lr, t.weight_decay, t.batch_size, t.ema_decay, t.clip_grad_norm) == (
        "adam",
        5e-4,
        1e-12,
        100,
        None,
        None,
    )
    m = cfg.model
    assert (m["name"], m["hidden_dim"], m["num_layers"], m["velocity"], m["coords_aggregation"]) == (
        "egnn",
        64,
        4,
        True,
        "mean",
    )
