"""The ``sequence`` task: Translating MNIST sets from IDX files (seen / unseen velocities, longer rollouts), MSE per
frame, ``equivar train`` and ``equivar eval`` on FERNN, one-line errors."""

import csv
import struct

import numpy as np
import pytest
import torch

from equivar.cli.main import main
from equivar.models.fernn import FERNN
from equivar.tasks import SequenceData, SequenceMetrics, SequenceTask, build_task


def _write_idx(path, array):
    a = np.ascontiguousarray(array, dtype=np.uint8)
    with open(path, "wb") as f:
        f.write(bytes([0, 0, 0x08, a.ndim]) + b"".join(struct.pack(">I", n) for n in a.shape) + a.tobytes())


@pytest.fixture
def tiny_mnist(tmp_path):
    """An MNIST-layout folder of 8 x 8 'digits' (a bright 4 x 3 block with random texture): 30 train, 12 test."""
    rng = np.random.default_rng(0)
    d = tmp_path / "mnist"
    d.mkdir()
    for split, n in (("train", 30), ("t10k", 12)):
        x = np.zeros((n, 8, 8), np.uint8)
        x[:, 2:6, 3:6] = rng.integers(100, 256, (n, 4, 3))
        _write_idx(d / f"{split}-images-idx3-ubyte", x)
        _write_idx(d / f"{split}-labels-idx1-ubyte", np.arange(n) % 10)
    return str(d)


def _section(root, **kw):
    base = dict(root=root, num_digits=1, input_frames=3, pred_frames=2, long_pred_frames=4, train_v_range=1,
                unseen_v_range=2, n_train=6, n_valid=3, n_test=4, valid_digits=10, seed=5)  # fmt: skip
    return {**base, **kw}


def test_sets_velocities_and_lengths(tiny_mnist):
    data = SequenceData.from_mapping(_section(tiny_mnist))
    sets = data.load(log=lambda s: None)
    assert list(sets) == ["train", "valid", "test", "unseen", "long"]
    assert sets["train"].frames.shape == (6, 5, 1, 8, 8) and sets["long"].frames.shape == (4, 7, 1, 8, 8)
    item = sets["test"][0]
    assert item["inputs"].shape == (3, 1, 8, 8) and item["target"].shape == (2, 1, 8, 8)
    for name in ("train", "valid", "test", "long"):
        assert sets[name].velocities.abs().max() <= 1
    u = sets["unseen"].velocities
    assert bool((u.abs().amax(-1) == 2).all())  # every unseen velocity has a component of magnitude 2
    many = SequenceData.from_mapping(_section(tiny_mnist, n_test=60)).load(log=lambda s: None, only=["unseen"])
    drawn = {tuple(v) for v in many["unseen"].velocities.reshape(-1, 2).tolist()}
    assert all(max(abs(a), abs(b)) == 2 for a, b in drawn) and len(drawn) >= 12  # of the 16 unseen velocities
    # each digit follows its flow exactly: the target is the last observed frame moved on by its velocity
    s = sets["unseen"]
    for i in range(len(s)):
        v = s.velocities[i, 0].tolist()
        last = s[i]["inputs"][-1]
        for k in range(2):
            assert torch.equal(s[i]["target"][k], torch.roll(last, ((k + 1) * v[0], (k + 1) * v[1]), dims=(-2, -1)))
    # a set is the same whichever others are generated (its own seed)
    only = data.load(log=lambda s: None, only=["unseen"])
    assert list(only) == ["unseen"] and torch.equal(only["unseen"].frames, s.frames)
    # downsampling pools the digits before drawing them
    pooled = SequenceData.from_mapping(_section(tiny_mnist, downsample=2)).load(log=lambda s: None, only=["test"])
    assert pooled["test"].frames.shape[-2:] == (4, 4)


def test_config_errors(tiny_mnist):
    with pytest.raises(ValueError, match="unknown config key 'task.data.n_tests'; did you mean 'n_test'"):
        SequenceData.from_mapping({"n_tests": 3})
    with pytest.raises(ValueError, match="task.data.unseen_v_range must exceed train_v_range \\(2\\) or be 0, got 2"):
        SequenceData.from_mapping({"train_v_range": 2, "unseen_v_range": 2})
    with pytest.raises(ValueError, match="task.data.input_frames must be >= 1, got 0"):
        SequenceData.from_mapping({"input_frames": 0})
    with pytest.raises(ValueError, match="task.data.n_train: expected int, got 'many'"):
        build_task({"name": "sequence", "data": {"n_train": "many"}})
    with pytest.raises(FileNotFoundError, match="nowhere"):
        SequenceData.from_mapping({"root": "nowhere"}).load(log=lambda s: None)
    with pytest.raises(ValueError, match="no set 'unseen' in this task.data"):
        SequenceData.from_mapping(_section(tiny_mnist, unseen_v_range=0)).load(log=lambda s: None, only=["unseen"])


def test_metrics_per_frame_and_task_shape_check():
    acc = SequenceMetrics()
    target = torch.zeros(2, 3, 1, 2, 2)
    pred = target.clone()
    pred[:, 1] = 1.0  # frame 2 wrong by 1 everywhere
    pred[0, 2] = 2.0  # frame 3 wrong by 2 in one of two sequences
    acc.update({"frames": pred}, {"target": target}, loss=0.5)
    assert acc.per_frame() == [0.0, 1.0, 2.0]  # (4 + 0) / 2
    m = acc.compute()
    assert m["mse"] == pytest.approx(1.0) and m["loss"] == 0.5 and m["n_structures"] == 2
    task = SequenceTask()
    with pytest.raises(ValueError, match="must return frames of shape \\(2, 3, 1, 2, 2\\), got \\(2, 2, 1, 2, 2\\)"):
        task.forward(lambda x, n: x[:, :2], {"inputs": target, "target": target}, False)


def test_train_then_eval_reproduces_the_report(tiny_mnist, tmp_path):
    out = str(tmp_path / "run")
    cfg = tmp_path / "c.yaml"
    import yaml

    cfg.write_text(
        yaml.safe_dump(
            {
                "seed": 0,
                "dtype": "float64",
                "output_dir": out,
                "task": {"name": "sequence", "data": _section(tiny_mnist)},
                "model": {"name": "fernn", "hidden_channels": 3, "v_range": 1},
                "training": {"epochs": 2, "batch_size": 3, "valid_batch_size": 4, "optimizer": "adam", "lr": 0.01},
            }
        )
    )
    assert main(["train", "-c", str(cfg)]) == 0
    trained = {r["set"]: float(r["mse"]) for r in csv.DictReader(open(f"{out}/errors.csv"))}
    assert set(trained) == {"train", "valid", "test", "unseen", "long"}
    per_frame = list(csv.DictReader(open(f"{out}/per_frame.csv")))
    long = [float(r["mse"]) for r in per_frame if r["set"] == "long"]
    assert len(long) == 4 and np.mean(long) == pytest.approx(trained["long"], rel=1e-9)
    table = str(tmp_path / "ev.csv")
    assert main(["eval", "--model", f"{out}/model.pt", "--out-dir", str(tmp_path / "ev"), "--table", table]) == 0
    again = {r["set"]: float(r["mse"]) for r in csv.DictReader(open(table))}
    assert set(again) == {"test", "unseen", "long"}
    for k, v in again.items():
        assert v == pytest.approx(trained[k], rel=1e-12)
    # the MSE is the model's: recompute one set by hand
    model = FERNN(image_size=8, hidden_channels=3, v_range=1).double()
    model.load_state_dict(torch.load(f"{out}/model.pt", weights_only=True)["state_dict"])
    s = SequenceData.from_mapping(_section(tiny_mnist)).load(log=lambda s: None, only=["test"])["test"]
    x, y = s.frames[:, :3].double(), s.frames[:, 3:].double()
    with torch.no_grad():
        assert float((model(x, 2) - y).square().mean()) == pytest.approx(again["test"], rel=1e-9)
    assert (tmp_path / "ev" / "frames.png").stat().st_size > 1000
    # without --out-dir: written to run/eval/, the training run's report is not touched
    before = {f: open(f"{out}/{f}", "rb").read() for f in ("errors.md", "errors.csv", "per_frame.csv")}
    assert main(["eval", "--model", f"{out}/model.pt"]) == 0
    assert {f: open(f"{out}/{f}", "rb").read() for f in before} == before
    rows = {r["set"]: float(r["mse"]) for r in csv.DictReader(open(f"{out}/eval/errors.csv"))}
    assert rows == pytest.approx(again, rel=1e-12)


def test_eval_refuses_data_files_for_a_sequence_model(tiny_mnist, tmp_path, capsys):
    from equivar.train import model_payload, save_checkpoint

    path = str(tmp_path / "m" / "model.pt")
    save_checkpoint(
        path, model_payload(FERNN(image_size=8, hidden_channels=2), {"task": "sequence", "data": _section(tiny_mnist)})
    )
    assert main(["eval", "--model", path, "--data", "x.xyz"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is a sequence model" in err[0] and "--set KEY=VALUE" in err[0]


@pytest.mark.parametrize("task_cls", ["sequence", "world_model"])
def test_training_loss_is_the_frame_mse(task_cls):
    """Both frame tasks train on the mean squared error over frames and pixels (a NumPy sum by hand)."""
    from equivar.tasks import WorldModelTask

    task = SequenceTask() if task_cls == "sequence" else WorldModelTask()
    g = torch.Generator().manual_seed(0)
    pred = torch.rand(2, 3, 1, 4, 4, generator=g, dtype=torch.float64)
    target = torch.rand(2, 3, 1, 4, 4, generator=g, dtype=torch.float64)
    loss, logs = task.loss({"frames": pred}, {"target": target})
    want = float(np.sum((pred.numpy() - target.numpy()) ** 2) / pred.numel())
    assert float(loss) == pytest.approx(want, rel=1e-12) and logs["mse"] == pytest.approx(want, rel=1e-12)
