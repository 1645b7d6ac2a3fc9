"""Trainer: overfitting, outputs, loss masking, EMA, early stopping, atomic checkpoints, resume after a crash."""

import math
import os

import numpy as np
import pytest
import torch
from helpers import tiny_config_dict

from equivar import data as D
from equivar.train import (
    BEST_MODEL,
    CHECKPOINT,
    ExponentialMovingAverage,
    WeightedLoss,
    config_from_dict,
    load_checkpoint,
    load_model,
    read_metrics,
    run_training,
    save_checkpoint,
)


def test_overfits_ten_frames(tiny_xyz, tmp_path):
    cfg = config_from_dict(
        tiny_config_dict(
            tiny_xyz, str(tmp_path / "r"), epochs=40, batch_size=5, lr=0.02, ema_decay=None, stress_weight=0.0
        )
    )
    cfg.data.valid_fraction = 0.5
    cfg.data.max_train = 10
    res = run_training(cfg, log=lambda s: None)
    hist = res.history
    assert len(hist) == 40 and hist[-1]["step"] == 80
    assert hist[-1]["train_loss"] < 0.05 * hist[0]["train_loss"]
    assert hist[-1]["train_mae_f"] < 0.3 * hist[0]["train_mae_f"]
    train_row = next(r for r in res.rows if r["set"] == "train" and r["config_type"] in ("all", "md_300K"))
    assert train_row["mae_f"] < 150  # meV/Å, from ~600 at init


def test_outputs_and_refusal_to_overwrite(tiny_cfg):
    res = run_training(tiny_cfg, log=lambda s: None)
    out = tiny_cfg.output_dir
    for f in (
        "config.yaml",
        "metrics.csv",
        CHECKPOINT,
        BEST_MODEL,
        "model.pt",
        "errors.md",
        "errors.csv",
        "learning_curves.png",
        "parity.png",
    ):
        assert os.path.getsize(os.path.join(out, f)) > 0, f
    rows = read_metrics(os.path.join(out, "metrics.csv"))
    assert [r["epoch"] for r in rows] == [1, 2]
    for k in ("train_loss", "valid_mae_e_per_atom", "valid_rmse_e", "valid_mae_f", "valid_rmse_f", "valid_mae_s", "lr"):
        assert k in rows[-1] and math.isfinite(rows[-1][k])
    types = {(r["set"], r["config_type"]) for r in res.rows}
    assert {("train", "md_300K"), ("train", "md_900K"), ("valid", "all")} <= types
    ck = load_checkpoint(os.path.join(out, CHECKPOINT))
    assert ck["train_state"]["epoch"] == 2 and "optimizer" in ck["train_state"]
    assert ck["metadata"]["e0s"] == {29: 3.51, 79: 3.8}  # from the IsolatedAtom frames
    m = load_model(os.path.join(out, "model.pt"))
    assert not m.training and m.equivar_metadata["atomic_numbers"] == [29, 79]
    with pytest.raises(ValueError, match="already holds a run"):
        run_training(tiny_cfg, log=lambda s: None)


def test_float32_and_time_budget(tiny_cfg):
    tiny_cfg.dtype = "float32"
    tiny_cfg.training.max_time_s = 0.0
    res = run_training(tiny_cfg, log=lambda s: None)
    assert res.history[-1]["step"] == 1 and len(res.history) == 1  # stopped after the first step
    assert next(res.model.parameters()).dtype == torch.float32


class Crash(RuntimeError):
    pass


def test_resume_after_crash_matches_uninterrupted(tiny_xyz, tmp_path):
    ref = run_training(config_from_dict(tiny_config_dict(tiny_xyz, str(tmp_path / "a"), epochs=3)), log=lambda s: None)
    cfg = config_from_dict(tiny_config_dict(tiny_xyz, str(tmp_path / "b"), epochs=3))

    def crash(event, trainer):
        if event == "step_end" and trainer.step == 7:  # mid epoch 2 (5 steps per epoch)
            raise Crash

    with pytest.raises(Crash):
        run_training(cfg, callbacks=[crash], log=lambda s: None)
    ck = load_checkpoint(os.path.join(cfg.output_dir, CHECKPOINT))
    assert ck["train_state"]["epoch"] == 1
    res = run_training(cfg, resume=True, log=lambda s: None)
    assert [r["epoch"] for r in read_metrics(os.path.join(cfg.output_dir, "metrics.csv"))] == [1, 2, 3]
    assert ref.live_state.keys() == res.live_state.keys()
    for k in ref.live_state:
        torch.testing.assert_close(res.live_state[k], ref.live_state[k], rtol=0, atol=0)
    assert res.history[-1]["valid_loss"] == ref.history[-1]["valid_loss"]


def test_early_stopping(tiny_cfg, monkeypatch):
    from equivar.train import Trainer

    losses = iter([1.0, 0.5, 0.6, 0.7, 0.8, 0.9])
    monkeypatch.setattr(Trainer, "validate", lambda self, loader=None: {"loss": next(losses)})
    tiny_cfg.training.epochs = 6
    tiny_cfg.training.early_stopping_patience = 2
    res = run_training(tiny_cfg, log=lambda s: None)
    assert len(res.history) == 4  # best at epoch 2, two bad epochs -> stop after epoch 4
    assert load_checkpoint(os.path.join(tiny_cfg.output_dir, BEST_MODEL))["metadata"]["epoch"] == 2


def test_atomic_checkpoint_write(tmp_path, monkeypatch):
    path = str(tmp_path / "c.pt")
    save_checkpoint(path, {"format": "equivar-checkpoint", "x": torch.ones(2)})

    def broken(obj, f, *a, **k):
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken)
    with pytest.raises(OSError):
        save_checkpoint(path, {"format": "equivar-checkpoint", "x": torch.zeros(2)})
    monkeypatch.undo()
    assert torch.equal(load_checkpoint(path)["x"], torch.ones(2))
    assert os.listdir(tmp_path) == ["c.pt"]


def _batch(pbc):
    cs = [
        D.Configuration(
            [6, 6],
            [[0, 0, 0], [0, 0, 1.2]],
            cell=np.eye(3) * 5 if p else np.zeros((3, 3)),
            pbc=p,
            energy=-1.0,
            forces=np.ones((2, 3)),
            stress=np.eye(3) if p else None,
        )
        for p in pbc
    ]
    return D.collate([D.config_to_graph(c, 3.0) for c in cs])


def test_loss_weights_mask_graphs():
    b = _batch([True, False])
    pred = {
        "energy": torch.tensor([-1.0, 5.0], dtype=torch.float64),
        "forces": b["forces"].clone(),
        "stress": torch.stack([torch.eye(3), torch.full((3, 3), float("nan"))]).double(),
    }
    loss_fn = WeightedLoss(energy_weight=1.0, forces_weight=1.0, stress_weight=1.0)
    loss, parts = loss_fn(pred, b)
    assert parts["energy"] == pytest.approx(0.5 * (6.0 / 2) ** 2) and parts["forces"] == 0 and parts["stress"] == 0
    b["energy_weight"][1] = 0.0
    assert float(loss_fn(pred, b)[0]) == 0.0  # masked graph ignored; NaN stress of the open graph never enters


def test_ema_average_and_restore():
    lin = torch.nn.Linear(2, 1)
    ema = ExponentialMovingAverage(lin, decay=0.5, use_num_updates=False)
    w0 = lin.weight.detach().clone()
    with torch.no_grad():
        lin.weight.add_(1.0)
    ema.update()
    with ema.average_parameters():
        torch.testing.assert_close(lin.weight, w0 + 0.5)
    torch.testing.assert_close(lin.weight, w0 + 1.0)


def test_resume_refuses_other_model(tiny_cfg):
    tiny_cfg.training.epochs = 1
    run_training(tiny_cfg, log=lambda s: None)
    tiny_cfg.model["hidden"] = 8
    with pytest.raises(ValueError, match=r"hyperparameters differ from the checkpoint's in \['hidden'\]"):
        run_training(tiny_cfg, resume=True, log=lambda s: None)


def test_stage_two_switches_weights_and_lr_and_resumes(tiny_xyz, tmp_path):
    """Stage two (MACE's swa recipe) starts at the configured fraction of the epochs, and survives a crash/resume."""

    def cfg_for(name):
        cfg = config_from_dict(tiny_config_dict(tiny_xyz, str(tmp_path / name), epochs=4))
        t = cfg.training
        t.stage_two_start, t.stage_two_lr, t.stage_two_energy_weight, t.stage_two_forces_weight = 0.5, 1e-4, 77.0, 3.0
        return cfg

    seen = []

    def watch(event, trainer):
        if event == "step_end":
            seen.append(
                (
                    trainer.epoch,
                    trainer.task.loss_fn.energy_weight,
                    trainer.task.loss_fn.forces_weight,
                    trainer.optimizer.param_groups[0]["lr"],
                    trainer.in_stage_two,
                )
            )

    ref = run_training(cfg_for("a"), callbacks=[watch], log=lambda s: None)
    first = {e: (we, wf, lr, st) for e, we, wf, lr, st in seen}
    base = cfg_for("a").training
    assert first[0] == (base.energy_weight, base.forces_weight, base.lr, False)
    assert first[1] == (base.energy_weight, base.forces_weight, base.lr, False)
    assert first[2][:2] == (77.0, 3.0) and first[2][3] and first[2][2] <= 1e-4
    assert [r["stage"] for r in ref.history] == [1, 1, 2, 2]

    cfg = cfg_for("b")

    def crash(event, trainer):
        if event == "step_end" and trainer.step == 17:  # mid epoch 4, in stage two
            raise Crash

    with pytest.raises(Crash):
        run_training(cfg, callbacks=[crash], log=lambda s: None)
    res = run_training(cfg, resume=True, log=lambda s: None)
    for k in ref.live_state:
        torch.testing.assert_close(res.live_state[k], ref.live_state[k], rtol=0, atol=0)


def test_cpu_budget_stops_training(tiny_cfg):
    tiny_cfg.training.max_cpu_s = 0.0
    res = run_training(tiny_cfg, log=lambda s: None)
    assert res.history[-1]["step"] == 1 and len(res.history) == 1
    tiny_cfg.training.max_cpu_s = -1.0
    with pytest.raises(ValueError, match="training.max_cpu_s"):
        tiny_cfg.validate()
