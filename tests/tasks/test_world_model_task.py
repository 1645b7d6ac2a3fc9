"""The ``world_model`` task: MNIST-world sets from IDX files, the re-entry error, ``equivar train`` end to end."""

import csv
import struct

import numpy as np
import pytest
import torch

from equivar.cli.main import main
from equivar.models.world_model import FlowWorldModel
from equivar.tasks import WorldData, WorldMetrics, WorldModelTask, build_task


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
    base = dict(root=root, downsample=2, crop=None, canvas_size=8, window_size=4, num_digits=1, input_frames=3,
                pred_frames=4, n_train=6, n_valid=3, n_test=5, valid_digits=10, seed=5)  # fmt: skip
    return {**base, **kw}


def test_sets_are_seeded_and_split(tiny_mnist):
    data = WorldData.from_mapping(_section(tiny_mnist))
    sets = data.load(log=lambda s: None)
    assert list(sets) == ["train", "valid", "test"]
    item = sets["test"][0]
    assert item["inputs"].shape == (3, 1, 4, 4) and item["target"].shape == (4, 1, 4, 4)
    assert item["actions"].shape == (6, 2) and item["reentry"].dtype == torch.bool
    only = data.load(log=lambda s: None, only=["test"], keep_world=True)["test"]
    assert torch.equal(only.world.frames, sets["test"].world.frames) and only.world.world.shape == (5, 7, 1, 8, 8)
    cropped = WorldData.from_mapping(_section(tiny_mnist, downsample=1, crop=6)).digits("test")[0]
    assert cropped.shape == (12, 6, 6)


def test_config_errors(tiny_mnist):
    with pytest.raises(ValueError, match="unknown config key 'task.data.window'; did you mean 'window_size'"):
        WorldData.from_mapping({"window": 3})
    with pytest.raises(ValueError, match="task.data.window_size must be <= canvas_size \\(8\\), got 9"):
        WorldData.from_mapping({"canvas_size": 8, "window_size": 9})
    with pytest.raises(ValueError, match="task.data.turn_prob must be in \\[0, 1\\], got -0.5"):
        WorldData.from_mapping({"turn_prob": -0.5})
    with pytest.raises(ValueError, match="task.data.n_train: expected int, got 'many'"):
        build_task({"name": "world_model", "data": {"n_train": "many"}})
    with pytest.raises(ValueError, match="no set 'unseen' in this task.data"):
        WorldData.from_mapping(_section(tiny_mnist)).load(log=lambda s: None, only=["unseen"])
    with pytest.raises(ValueError, match="task.data.crop must be <= the pooled digit size 4, got 6"):
        WorldData.from_mapping(_section(tiny_mnist, crop=6)).load(log=lambda s: None)


def test_reentry_error_counts_only_masked_pixels():
    acc = WorldMetrics()
    target = torch.zeros(2, 2, 1, 2, 2)
    mask = torch.zeros(2, 2, 1, 2, 2, dtype=torch.bool)
    mask[0, 1, 0, 0, 0] = True  # one re-entry pixel, in frame 2 of sequence 0
    pred = target.clone()
    pred[0, 1, 0, 0, 0] = 2.0  # wrong there by 2
    pred[1, 0] = 1.0  # and by 1 on all of frame 1 of sequence 1 (no re-entry there)
    acc.update({"frames": pred}, {"target": target, "reentry": mask}, loss=0.25)
    m = acc.compute()
    assert m["reentry_mse"] == 4.0 and m["reentry_pixels"] == 1.0
    assert m["mse"] == pytest.approx((4.0 + 4.0) / 16) and m["loss"] == 0.25 and m["n_structures"] == 2
    mse, re = acc.per_frame()
    assert mse == [0.5, 0.5] and np.isnan(re[0]) and re[1] == 4.0
    with pytest.raises(ValueError, match="must return frames of shape \\(2, 2, 1, 2, 2\\), got \\(2, 1, 1, 2, 2\\)"):
        WorldModelTask().forward(lambda x, a, n: x[:, :1], {"inputs": target, "actions": None, "target": target}, False)


def test_train_writes_a_report_that_matches_the_model(tiny_mnist, tmp_path):
    import yaml

    out = str(tmp_path / "run")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "seed": 0,
                "dtype": "float64",
                "output_dir": out,
                "task": {"name": "world_model", "data": _section(tiny_mnist)},
                "model": {"name": "flow_world_model", "memory_size": 8, "hidden_channels": 2, "v_range": 1},
                "training": {"epochs": 2, "batch_size": 3, "valid_batch_size": 5, "optimizer": "adam", "lr": 0.01},
            }
        )
    )
    assert main(["train", "-c", str(cfg)]) == 0
    rows = {r["set"]: r for r in csv.DictReader(open(f"{out}/errors.csv"))}
    assert set(rows) == {"train", "valid", "test"}
    model = FlowWorldModel(image_size=4, memory_size=8, hidden_channels=2, v_range=1).double()
    model.load_state_dict(torch.load(f"{out}/model.pt", weights_only=True)["state_dict"])
    s = WorldData.from_mapping(_section(tiny_mnist)).load(log=lambda s: None, only=["test"])["test"]
    w = s.world
    with torch.no_grad():
        pred = model(w.frames[:, :3].double(), w.actions, 4)
    se = (pred - w.frames[:, 3:].double()).square()
    assert float(se.mean()) == pytest.approx(float(rows["test"]["mse"]), rel=1e-9)
    m = w.reentry[:, 3:]
    if m.any():
        assert float(se[m].mean()) == pytest.approx(float(rows["test"]["reentry_mse"]), rel=1e-9)
    per_frame = [r for r in csv.DictReader(open(f"{out}/per_frame.csv")) if r["set"] == "test"]
    assert len(per_frame) == 4
    assert (tmp_path / "run" / "rollout.png").stat().st_size > 1000


def test_eval_refuses_a_world_model(tiny_mnist, tmp_path, capsys):
    from equivar.train import model_payload, save_checkpoint

    path = str(tmp_path / "m" / "model.pt")
    model = FlowWorldModel(image_size=4, memory_size=8, hidden_channels=2)
    save_checkpoint(path, model_payload(model, {"task": "world_model", "data": _section(tiny_mnist)}))
    assert main(["eval", "--model", path]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is a world model" in err[0] and "benchmarks/world_model_mnist.py" in err[0]


def test_non_finite_world_is_refused_at_the_data_boundary(tiny_mnist):
    """A world with a NaN frame or a float action of inf is refused once, when the task's set is built, with the
    sequence and index named; the generated (finite, integer-action) world passes."""
    import dataclasses

    from equivar.tasks.world_model._data import WorldSet

    world = WorldData.from_mapping(_section(tiny_mnist)).load(log=lambda s: None, only=["test"])["test"].world
    frames = world.frames.clone()
    frames[3, 5, 0, 2, 1] = float("inf")
    with pytest.raises(ValueError, match=r"^world.frames holds 1 non-finite value\(s\) \(NaN or inf\) of 560, the "
                       r"first inf at sequence 3, index \(3, 5, 0, 2, 1\)$"):  # fmt: skip
        WorldSet(dataclasses.replace(world, frames=frames), 3)
    actions = world.actions.double()
    actions[2, 0, 1] = float("nan")
    with pytest.raises(ValueError, match=r"^world.actions holds 1 non-finite .* first nan at sequence 2, index"):
        WorldSet(dataclasses.replace(world, actions=actions), 3)
    assert len(WorldSet(world, 3)) == 5
