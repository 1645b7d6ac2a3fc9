"""The trainer is task-generic: a task written outside train/ (its forward, loss, metrics) trains through it."""

import math

import pytest
import torch

from equivar.tasks import PotentialTask, Task, available_tasks, build_task, register_task, task_class
from equivar.tasks._registry import _TASKS
from equivar.train import Trainer, TrainingConfig, read_metrics


class Linear(torch.nn.Module):
    """y = w . x (a model of no family: hparams written by hand, as any non-registered module may)."""

    def __init__(self, dim: int = 3):
        super().__init__()
        self.hparams = {"name": f"{__name__}:Linear", "dim": dim}
        self.lin = torch.nn.Linear(dim, 1, dtype=torch.float64)

    def forward(self, x):
        return self.lin(x).squeeze(-1)


class Regression(Task):
    """Mean squared error of a scalar per sample: batch ``{"x": [B, 3], "y": [B]}``."""

    def __init__(self, training=None, *, weight: float = 1.0):
        super().__init__(training)
        self.weight = weight
        self.stage_two = False

    def forward(self, model, batch, training):
        return {"y": model(batch["x"])}

    def loss(self, pred, batch):
        term = (pred["y"] - batch["y"]).pow(2).mean()
        return self.weight * term, {"mse": float(term.detach())}

    def enter_stage_two(self):
        self.stage_two = True
        self.weight = 2.0
        return "weight 2"


class _Sampler:
    def __init__(self, n):
        self.n, self.epoch = n, 0

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __iter__(self):
        return iter(torch.randperm(self.n, generator=torch.Generator().manual_seed(self.epoch)).tolist())

    def __len__(self):
        return self.n


def _loader(n, seed):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, generator=gen, dtype=torch.float64)
    y = x @ torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64) + 0.3
    data = [{"x": x[i], "y": y[i]} for i in range(n)]
    return torch.utils.data.DataLoader(data, batch_size=8, sampler=_Sampler(n))


def test_a_task_defined_outside_train_trains_checkpoints_and_enters_stage_two(tmp_path):
    register_task("regression_test_only")(Regression)
    try:
        assert "regression_test_only" in available_tasks() and task_class("regression_test_only") is Regression
        task = build_task({"name": "regression_test_only", "weight": 1.0})
        cfg = TrainingConfig(epochs=30, lr=0.05, ema_decay=None, stage_two_start=0.5, stage_two_lr=0.01)
        torch.manual_seed(0)
        logs = []
        trainer = Trainer(
            Linear(),
            _loader(64, 0),
            _loader(16, 1),
            cfg,
            str(tmp_path),
            "cpu",
            progress=False,
            task=task,
            log=logs.append,
        )
        history = trainer.fit()
    finally:
        _TASKS.pop("regression_test_only", None)
    assert history[-1]["valid_loss"] < history[0]["valid_loss"] / 100
    assert task.stage_two and any("stage two from step" in s and "weight 2, lr 0.01" in s for s in logs)
    assert (tmp_path / "best_model.pt").exists() and (tmp_path / "checkpoint.pt").exists()
    rows = read_metrics(str(tmp_path / "metrics.csv"))
    assert len(rows) == 30 and math.isclose(float(rows[-1]["valid_loss"]), history[-1]["valid_loss"], rel_tol=1e-6)


def test_potential_task_reads_the_training_weights_and_stage_two():
    cfg = TrainingConfig(energy_weight=3.0, forces_weight=7.0, stress_weight=0.5, stage_two_energy_weight=11.0)
    task = build_task("potential", cfg)
    assert isinstance(task, PotentialTask) and task.name == "potential"
    assert (task.loss_fn.energy_weight, task.loss_fn.forces_weight, task.loss_fn.stress_weight) == (3.0, 7.0, 0.5)
    assert "energy weight 11" in task.enter_stage_two() and task.loss_fn.energy_weight == 11.0
    with pytest.raises(ValueError, match="already registered"):
        register_task("potential")(Regression)


def test_task_options_are_type_checked_against_the_constructor():
    register_task("regression_test_only")(Regression)
    try:
        assert build_task({"name": "regression_test_only", "weight": "1e-1"}).weight == 0.1  # YAML 1.1 string
        with pytest.raises(ValueError, match=r"^task\.weight: expected a number, got 'heavy'$"):
            build_task({"name": "regression_test_only", "weight": "heavy"})
        with pytest.raises(ValueError, match=r"^unknown config key 'task\.wieght'; did you mean 'weight'\?$"):
            build_task({"name": "regression_test_only", "wieght": 2.0})
    finally:
        _TASKS.pop("regression_test_only", None)
