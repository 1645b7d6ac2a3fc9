"""Nothing lost: a diverging run stops at once with one line naming the epoch and step, and checkpoint.pt keeps the
last good epoch, which --resume continues (with a lower learning rate)."""

import os
import re

import pytest
import torch
import yaml
from helpers import tiny_config_dict

from equivar.cli.main import main
from equivar.train import CHECKPOINT, TrainingDiverged, config_from_dict, load_checkpoint, read_metrics, run_training

STEPS_PER_EPOCH = 5  # 18 training frames (24 - 25 % valid) in batches of 4


def _snapshot(d):
    return {n: open(os.path.join(d, n), "rb").read() for n in ("checkpoint.pt", "best_model.pt", "metrics.csv")}


def test_lr_1e6_stops_in_the_first_epoch_with_one_line(tiny_xyz, tmp_path, capsys):
    cfg = tiny_config_dict(tiny_xyz, str(tmp_path / "run"), epochs=3, lr=1e6)
    cfg["dtype"] = "float32"
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["train", "-c", str(tmp_path / "c.yaml")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("equivar train: error: training diverged at epoch 1, step ")
    assert "no epoch finished, so there is no checkpoint: start again with a lower training.lr (lr is 1e+06)" in err[0]
    assert "outliers in the data" in err[0]
    assert not (tmp_path / "run" / CHECKPOINT).exists()


@pytest.mark.parametrize("at_step", [7, 10])  # mid epoch 2, and its last step (caught by the weight check)
def test_injected_nan_keeps_the_last_good_checkpoint_resumable(tiny_xyz, tmp_path, at_step):
    cfg = config_from_dict(tiny_config_dict(tiny_xyz, str(tmp_path / "run"), epochs=3))
    good = {}

    def poison(event, trainer):
        if event == "epoch_end" and trainer.epoch == 1:
            good.update(_snapshot(cfg.output_dir))
        if event == "step_end" and trainer.step == at_step:
            with torch.no_grad():
                next(trainer.model.parameters()).view(-1)[0] = float("nan")

    with pytest.raises(TrainingDiverged) as e:
        run_training(cfg, callbacks=[poison], log=lambda s: None)
    msg = str(e.value)
    assert "\n" not in msg
    if at_step == 7:
        assert msg.startswith(f"training diverged at epoch 2, step {at_step + 1}: the loss is nan (weights not updated")
    else:
        assert msg.startswith(f"training diverged at epoch 2, step {at_step}: parameter ")
        assert "is not finite after the update" in msg
    assert f"{os.path.join(cfg.output_dir, CHECKPOINT)} still holds the last good state (epoch 1)" in msg
    assert _snapshot(cfg.output_dir) == good  # nothing written after epoch 1
    ck = load_checkpoint(os.path.join(cfg.output_dir, CHECKPOINT))
    assert ck["train_state"]["epoch"] == 1 and all(torch.isfinite(v).all() for v in ck["state_dict"].values())
    res = run_training(cfg, resume=True, log=lambda s: None)
    assert [r["epoch"] for r in read_metrics(os.path.join(cfg.output_dir, "metrics.csv"))] == [1, 2, 3]
    assert all(torch.isfinite(p).all() for p in res.model.parameters())


def test_finite_blow_up_lr_1e6_in_float64_stops_with_one_line(tiny_xyz, tmp_path, capsys):
    """float64 does not overflow at lr 1e6 (the loss goes 12.5 -> 5e26 in one step and on to a dead model, exit 0
    before): the loss above 1e6 x the first step's stops it at step 2."""
    cfg = tiny_config_dict(tiny_xyz, str(tmp_path / "run"), epochs=3)
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["train", "-c", str(tmp_path / "c.yaml"), "--set", "training.lr=1e6"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("equivar train: error: training diverged at epoch 1, step 2: the loss ")
    assert "is over 1e+06 x the first step's loss" in err[0] and "(weights not updated with it)" in err[0]
    assert "no epoch finished, so there is no checkpoint: start again with a lower training.lr (lr is 1e+06)" in err[0]
    assert not (tmp_path / "run" / CHECKPOINT).exists()


@pytest.mark.parametrize(
    "factor, ema, at_step, what",
    [
        (1e6, 0.99, 7, r"epoch 2, step 8: the loss (\S+) is over 1e\+06 x the first step's loss (\S+) "),
        (None, 0.99, 7, r"epoch 2, step 8: the gradient norm (\S+) is beyond the float32 range \((\S+)\) "),
        # the last step of epoch 2, without EMA: the validation (live weights) catches it before the checkpoint
        (1e6, None, 10, r"epoch 2, step 10: the validation loss (\S+) is over 1e\+06 x the first step's loss (\S+) "),
    ],
)
def test_finite_blow_up_keeps_the_last_good_checkpoint_resumable(tiny_xyz, tmp_path, factor, ema, at_step, what):
    """Weights scaled by a large finite number mid-run: the loss (or, with the loss test off, the gradient norm beyond
    float32, or the validation loss) stops training before the blown-up weights are used or saved."""
    cfg = config_from_dict(
        tiny_config_dict(tiny_xyz, str(tmp_path / "run"), epochs=3, divergence_factor=factor, ema_decay=ema)
    )
    good = {}

    def blow_up(event, trainer):
        if event == "epoch_end" and trainer.epoch == 1:
            good.update(_snapshot(cfg.output_dir))
        if event == "step_end" and trainer.step == at_step:
            with torch.no_grad():
                for p in trainer.model.parameters():
                    p.mul_(1e4 if factor else 1e15)

    with pytest.raises(TrainingDiverged) as e:
        run_training(cfg, callbacks=[blow_up], log=lambda s: None)
    msg = str(e.value)
    m = re.match("training diverged at " + what, msg)
    assert "\n" not in msg and m, msg
    value, bound = float(m.group(1)), float(m.group(2))
    assert value > (factor or 1.0) * bound and bound == pytest.approx(3.4028e38 if factor is None else 12.5, rel=1e-3)
    assert f"{os.path.join(cfg.output_dir, CHECKPOINT)} still holds the last good state (epoch 1)" in msg
    assert _snapshot(cfg.output_dir) == good  # nothing written after epoch 1
    res = run_training(cfg, resume=True, log=lambda s: None)
    rows = read_metrics(os.path.join(cfg.output_dir, "metrics.csv"))
    assert [r["epoch"] for r in rows] == [1, 2, 3] and rows[-1]["train_loss"] < rows[0]["train_loss"]
    assert all(torch.isfinite(p).all() for p in res.model.parameters())


def test_divergence_factor_is_checked(tiny_xyz, tmp_path):
    with pytest.raises(ValueError, match="training.divergence_factor must be > 1 or null, got 0.5"):
        config_from_dict(tiny_config_dict(tiny_xyz, str(tmp_path / "run"), divergence_factor=0.5)).validate()


def test_resume_takes_a_new_learning_rate(tiny_xyz, tmp_path):
    cfg = config_from_dict(tiny_config_dict(tiny_xyz, str(tmp_path / "run"), epochs=1, lr=0.01))
    run_training(cfg, log=lambda s: None)
    cfg = config_from_dict(tiny_config_dict(tiny_xyz, str(tmp_path / "run"), epochs=2, lr=0.002))
    lines = []
    run_training(cfg, resume=True, log=lines.append)
    assert "learning rate 0.002 (training.lr changed from 0.01)" in lines
    ck = load_checkpoint(os.path.join(cfg.output_dir, CHECKPOINT))
    assert [g["lr"] for g in ck["train_state"]["optimizer"]["param_groups"]] == [0.002]
    rows = read_metrics(os.path.join(cfg.output_dir, "metrics.csv"))
    assert rows[0]["lr"] == 0.01 and rows[1]["lr"] == 0.002
