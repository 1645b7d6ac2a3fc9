"""K-hypothesis outputs in the dynamics task: best-of-K loss and minADE/minFDE against EqMotion's NumPy formulas,
the ETH test-time rescaling, the ADE loss, and the shipped EqMotion configs."""

import os

import numpy as np
import pytest
import torch
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from equivar.data import TrajectoryDataset
from equivar.models import build_model
from equivar.tasks import DynamicsTask, build_task
from equivar.tasks.dynamics import DynamicsMetrics
from equivar.train import config_from_dict

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _eqmotion_numpy(pred, target, mask):
    """EqMotion's test() of main_eth_diverse.py on the scored agents: pred [K, N, T, D] -> (minADE, minFDE)."""
    p = np.moveaxis(pred[:, mask], 0, 1)[:, None]  # [B, 1, K, T, D] (their [:, 0:1] ego axis)
    t = target[mask][:, None, None]  # [B, 1, 1, T, D]
    ade = np.mean(np.min(np.mean(np.linalg.norm(p - t, axis=-1), axis=3), axis=2))
    fde = np.mean(np.min(np.mean(np.linalg.norm(p[..., -1:, :] - t[..., -1:, :], axis=-1), axis=3), axis=2))
    return ade, fde


@settings(max_examples=25, deadline=None)
@given(
    k=st.integers(1, 6),
    n=st.integers(1, 7),
    t=st.integers(1, 12),
    d=st.sampled_from([2, 3]),
    seed=st.integers(0, 2**31 - 1),
)
def test_min_over_k_matches_eqmotion_numpy(k, n, t, d, seed):
    g = np.random.default_rng(seed)
    pred, target = g.normal(size=(k, n, t, d)), g.normal(size=(n, t, d))
    mask = g.random(n) < 0.6
    mask[g.integers(n)] = True
    b = {"target": torch.as_tensor(target), "target_mask": torch.as_tensor(mask), "ptr": torch.tensor([0, n])}
    out = {"pos": torch.as_tensor(pred)}
    loss, _ = DynamicsTask().loss(out, b)
    acc = DynamicsMetrics()
    acc.update(out, b, float(loss))
    m = acc.compute()
    ade, fde = _eqmotion_numpy(pred, target, mask)
    # EqMotion's training loss is its minADE (main_eth_diverse.train: torch.min over the K axis of the mean norm)
    assert float(loss) == pytest.approx(ade, rel=1e-12)
    assert m["min_ade"] == pytest.approx(ade, rel=1e-12) and m["min_fde"] == pytest.approx(fde, rel=1e-12)
    best = ((pred[:, mask] - target[mask]) ** 2).mean(axis=(-1, -2)).min(0)
    assert m["mse"] == pytest.approx(best.mean(), rel=1e-12)


def test_best_of_k_gradient_reaches_only_the_best_hypothesis():
    target = torch.zeros(1, 3, 2)
    pred = torch.stack([torch.full((1, 3, 2), 1.0), torch.full((1, 3, 2), 0.1)]).requires_grad_(True)
    b = {"target": target, "target_mask": torch.tensor([True]), "ptr": torch.tensor([0, 1])}
    loss, _ = DynamicsTask().loss({"pos": pred}, b)
    loss.backward()
    assert float(pred.grad[0].abs().max()) == 0.0 and float(pred.grad[1].abs().max()) > 0


def test_ade_loss_and_option():
    target = torch.zeros(2, 2, 2)
    pred = torch.tensor([[[3.0, 4.0], [0.0, 0.0]], [[0.0, 1.0], [0.0, 0.0]]])
    b = {"target": target, "target_mask": torch.tensor([True, True]), "ptr": torch.tensor([0, 2])}
    loss, _ = DynamicsTask(loss="ade").loss({"pos": pred}, b)
    assert float(loss) == pytest.approx((5.0 + 0.0 + 1.0 + 0.0) / 4)
    loss, _ = DynamicsTask().loss({"pos": pred}, b)
    assert float(loss) == pytest.approx((9 + 16 + 1) / 8)
    with pytest.raises(ValueError, match="task.loss must be 'mse' or 'ade', got 'l1'"):
        build_task({"name": "dynamics", "loss": "l1"})
    with pytest.raises(ValueError, match="task.data.test_scale applies to source 'ethucy' only"):
        build_task({"name": "dynamics", "data": {"test_scale": 1.6}})


class _Shift(torch.nn.Module):
    """Predicts the last observed position plus a fixed offset for every frame, K = 2 hypotheses."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(()))

    def forward(self, batch):
        last = batch["pos"][:, -1:]
        base = last.expand(-1, batch["target"].shape[1], -1) + self.w
        return {"pos": torch.stack([base + 0.5, base])}


def test_test_scale_reports_errors_in_metres():
    """ETH's test-time rescaling (EqMotion: coordinates / 1.6, errors x 1.6): for a model whose error does not
    scale with the data (a fixed 0.5 m offset), the reported errors change; for a scale-free one they do not."""
    g = np.random.default_rng(0)
    pos = [g.normal(size=(2, 8, 2)) * 4 for _ in range(5)]
    fut = [p[:, -1:] + 0.5 + 0.05 * g.normal(size=(2, 12, 2)) for p in pos]  # the +0.5 hypothesis wins
    mask = [np.array([True, False])] * 5

    def dataset(scale):
        ds = TrajectoryDataset(
            pos=[p / scale for p in pos],
            vel=[np.zeros_like(p) for p in pos],
            target=[f / scale for f in fut],
            target_mask=mask,
        )
        ds.length_scale = scale
        return ds

    task, model = DynamicsTask(), _Shift().double()
    m1, m16 = task.evaluate(model, dataset(1.0)), task.evaluate(model, dataset(1.6))
    # the hypothesis "last position" is scale-free: its errors come back in metres exactly
    last = [np.linalg.norm(f[0] - p[0, -1], axis=-1) for p, f in zip(pos, fut)]
    want_ade = np.mean(
        [min(a.mean(), np.linalg.norm(f[0] - p[0, -1] - 0.5, axis=-1).mean()) for a, p, f in zip(last, pos, fut)]
    )
    assert m1["min_ade"] == pytest.approx(want_ade, rel=1e-12)
    # the +0.5 hypothesis is 0.5 in the scaled frame, 0.8 m after multiplying back: the numbers differ
    assert m16["min_ade"] != pytest.approx(m1["min_ade"], rel=1e-6)
    want16 = np.mean(
        [min(a.mean(), np.linalg.norm(f[0] - p[0, -1] - 0.8, axis=-1).mean()) for a, p, f in zip(last, pos, fut)]
    )
    assert m16["min_ade"] == pytest.approx(want16, rel=1e-12)


@pytest.mark.parametrize("name", ["ethucy_eqmotion", "nbody_eqmotion"])
def test_shipped_eqmotion_configs_build(name):
    with open(os.path.join(ROOT, "configs", f"{name}.yaml")) as fh:
        d = yaml.safe_load(fh)
    cfg = config_from_dict(d)
    cfg.validate()
    task = build_task(cfg.task)
    model = build_model(**cfg.model)
    assert model.past == task.data.past and model.future == task.data.future
    if name == "ethucy_eqmotion":
        assert model.num_hypotheses == 20 and task.data.source == "ethucy" and task.data.test_scale == 1.6
        assert cfg.training.lr == 1e-3 and cfg.training.batch_size == 100 and cfg.training.epochs == 60
    else:
        assert model.num_hypotheses is None and task.loss_kind == "ade" and task.data.finite_difference_velocities
        assert cfg.training.lr == 5e-4 and cfg.training.epochs == 200


def test_equivar_eval_applies_test_scale_like_the_task():
    """``equivar eval``'s predict_dynamics reports the same metres as the task (ETH's test_scale multiplied back)."""
    from equivar.cli._eval_dynamics import predict_dynamics

    g = np.random.default_rng(1)
    pos = [g.normal(size=(2, 8, 2)) * 4 for _ in range(4)]
    fut = [p[:, -1:] + 0.5 + 0.05 * g.normal(size=(2, 12, 2)) for p in pos]
    ds = TrajectoryDataset(
        pos=[p / 1.6 for p in pos],
        vel=[np.zeros_like(p) for p in pos],
        target=[f / 1.6 for f in fut],
        target_mask=[np.array([True, False])] * 4,
    )
    ds.length_scale = 1.6
    task, model = DynamicsTask(), _Shift().double()
    arrays, metrics = predict_dynamics(task, model, ds, 3, "cpu")
    want = task.evaluate(model, ds)
    assert metrics["min_ade"] == pytest.approx(want["min_ade"], rel=1e-12)
    assert metrics["min_fde"] == pytest.approx(want["min_fde"], rel=1e-12)
    np.testing.assert_allclose(arrays["target"][::2], np.stack([f[0] for f in fut]), rtol=1e-12)
