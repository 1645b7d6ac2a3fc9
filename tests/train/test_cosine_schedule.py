"""training.scheduler: cosine (PONITA's CosineWarmupScheduler): the learning rate of every step, and the config checks."""

import math

import pytest

from equivar.train import run_training


def _expected(lr, epoch, i, n, epochs, warmup):
    """lr of step i (0-based) of epoch ``epoch`` (0-based) with n steps per epoch."""
    f = (epoch + i / n) / epochs
    factor = 0.5 * (1.0 + math.cos(math.pi * f))
    if warmup:
        factor *= min(1.0, (epoch + i / n + 1.0 / n) / warmup)
    return lr * factor


def test_cosine_with_warmup_sets_every_step(tiny_cfg):
    t = tiny_cfg.training
    t.scheduler, t.warmup_epochs, t.epochs, t.lr = "cosine", 2, 5, 0.01
    res = run_training(tiny_cfg, log=lambda s: None)
    n = res.history[0]["step"]
    assert n >= 2
    for epoch, row in enumerate(res.history):  # the row's lr is that of the epoch's last step
        assert row["lr"] == pytest.approx(_expected(0.01, epoch, n - 1, n, 5, 2), rel=1e-12)
    # the first epoch is inside the warm-up, the last near the end of the cosine
    assert res.history[0]["lr"] < 0.006 and res.history[-1]["lr"] < 0.001


def test_cosine_follows_the_cpu_budget(tiny_cfg):
    """With a budget that ends the run first, the schedule is a fraction of the budget: lr is 0 at its end."""
    t = tiny_cfg.training
    t.scheduler, t.epochs, t.max_cpu_s = "cosine", 1000, 1e-9
    res = run_training(tiny_cfg, log=lambda s: None)
    assert res.history[-1]["step"] == 1 and res.history[-1]["lr"] == pytest.approx(0.0, abs=1e-15)


def test_scheduler_config_errors(tiny_cfg):
    tiny_cfg.training.scheduler = "step"
    with pytest.raises(ValueError, match="training.scheduler must be plateau or cosine, got 'step'"):
        tiny_cfg.validate()
    tiny_cfg.training.scheduler = "cosine"
    tiny_cfg.training.stage_two_start = 0.5
    with pytest.raises(ValueError, match="cosine and training.stage_two_start cannot be combined"):
        tiny_cfg.validate()
    tiny_cfg.training.stage_two_start = None
    tiny_cfg.training.warmup_epochs = -1
    with pytest.raises(ValueError, match="training.warmup_epochs must be >= 0, got -1"):
        tiny_cfg.validate()
