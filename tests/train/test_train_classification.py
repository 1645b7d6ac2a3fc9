"""The classification task through equivar train: image folders in, accuracy and shift consistency out."""

import csv
import gzip
import struct

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from equivar.cli.main import main
from equivar.tasks import AccuracyAccumulator, build_task
from equivar.train import load_model


def _idx(arr):
    return bytes([0, 0, 8, arr.ndim]) + b"".join(struct.pack(">I", d) for d in arr.shape) + arr.tobytes()


def _bars(n, rng):
    """8 x 8 images: class 0 a horizontal bar, class 1 a vertical one, anywhere (a shift-invariant label)."""
    x = np.zeros((n, 8, 8), np.uint8)
    y = rng.integers(0, 2, n).astype(np.uint8)
    for i in range(n):
        r, c = rng.integers(0, 8, 2)
        if y[i] == 0:
            x[i, r, max(c - 2, 0) : c + 2] = 200 + rng.integers(0, 55)
        else:
            x[i, max(r - 2, 0) : r + 2, c] = 200 + rng.integers(0, 55)
    return x, y


@pytest.fixture
def bars(tmp_path):
    rng = np.random.default_rng(0)
    d = tmp_path / "bars"
    d.mkdir()
    for split, n in (("train", 240), ("t10k", 60)):
        x, y = _bars(n, rng)
        (d / f"{split}-images-idx3-ubyte.gz").write_bytes(gzip.compress(_idx(x)))
        (d / f"{split}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(_idx(y)))
    return d


def _config(tmp_path, data, name):
    cfg = tmp_path / f"{name}.yaml"
    cfg.write_text(
        f"""seed: 0
dtype: float32
num_threads: 1
progress: false
output_dir: {tmp_path / name}
task: {{name: classification}}
data: {{train_file: {data}, test_files: {{test: {data}}}, valid_fraction: 0.2, max_train: 160}}
model: {{name: {name}, dim: 16, depth: 1, heads: 2, patch_size: 2, sr_ratio: 2}}
training: {{epochs: 6, batch_size: 16, valid_batch_size: 64, optimizer: adam, lr: 0.01, ema_decay: null}}
"""
    )
    return cfg


def test_train_vit_pair_on_image_folder(tmp_path, bars):
    rows = {}
    for name in ("vit_polyphase", "vit"):
        assert main(["train", "-c", str(_config(tmp_path, bars, name))]) == 0
        with open(tmp_path / name / "errors.csv") as fh:
            rows[name] = {r["set"]: r for r in csv.DictReader(fh)}
        assert set(rows[name]) == {"train", "valid", "test"}
        assert int(rows[name]["train"]["images"]) == 160 and int(rows[name]["valid"]["images"]) == 40
    anch = rows["vit_polyphase"]
    assert all(float(r["shift_consistency"]) == 1.0 for r in anch.values())
    assert float(anch["test"]["accuracy"]) > 0.7  # learnable: bars are told apart anywhere in the image
    # the saved model reproduces the reported test accuracy
    model = load_model(str(tmp_path / "vit_polyphase" / "model.pt"))
    from equivar.data import load_image_set

    test = load_image_set(bars, "test")
    with torch.no_grad():
        acc = (model(test.images).argmax(-1) == test.labels).double().mean().item()
    assert acc == pytest.approx(float(anch["test"]["accuracy"]))
    assert model.hparams["image_size"] == 8 and model.hparams["num_classes"] == 2  # completed from the data


def test_classification_task_loss_and_metrics():
    task = build_task({"name": "classification", "label_smoothing": 0.1})
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 3.0]])
    labels = torch.tensor([0, 1])
    loss, parts = task.loss({"logits": logits}, {"labels": labels})
    assert loss.item() == pytest.approx(F.cross_entropy(logits, labels, label_smoothing=0.1).item())
    assert parts["cross_entropy"] == pytest.approx(loss.item())
    acc = AccuracyAccumulator()
    acc.update({"logits": logits}, {"labels": labels}, 1.0)
    acc.update({"logits": logits[:1]}, {"labels": torch.tensor([2])}, 3.0)
    m = acc.compute()
    assert m["accuracy"] == pytest.approx(1 / 3) and m["loss"] == pytest.approx(2.0) and m["n_structures"] == 3
    with pytest.raises(ValueError, match="task.label_smoothing must be in"):
        build_task({"name": "classification", "label_smoothing": 1.5})
    with pytest.raises(ValueError, match="unknown config key 'task.smoothing'"):
        build_task({"name": "classification", "smoothing": 0.1})


def test_classification_needs_an_image_folder(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"task: classification\noutput_dir: {tmp_path / 'o'}\ndata: {{train_file: {tmp_path / 'x.xyz'}}}\n")
    (tmp_path / "x.xyz").write_text("")
    assert main(["train", "-c", str(cfg)]) != 0
    assert "needs an MNIST-layout folder" in capsys.readouterr().err


def test_affnist_option_pads_and_adds_an_affnist_style_twin(tmp_path, bars):
    """task.affnist: 40 x 40 canvases everywhere and a 'test_affnist' set of the same digits under affine maps."""
    from equivar.data import affnist_like, load_image_set

    cfg = tmp_path / "cnn.yaml"
    cfg.write_text(
        f"""seed: 3
dtype: float32
num_threads: 1
progress: false
output_dir: {tmp_path / "cnn"}
task: {{name: classification, affnist: true}}
data: {{train_file: {bars}, test_files: {{test: {bars}}}, valid_fraction: 0.2, max_train: 40}}
model: {{name: cnn, channels: 4, depth: 1}}
training: {{epochs: 1, batch_size: 20, optimizer: adam, lr: 0.01, ema_decay: null}}
"""
    )
    assert main(["train", "-c", str(cfg)]) == 0
    with open(tmp_path / "cnn" / "errors.csv") as fh:
        rows = {r["set"]: r for r in csv.DictReader(fh)}
    assert set(rows) == {"train", "valid", "test", "test_affnist"}
    model = load_model(str(tmp_path / "cnn" / "model.pt"))
    assert model.hparams["image_size"] == 40
    test = load_image_set(bars, "test")
    moved = affnist_like(test.images, seed=3)[0]  # the config's seed
    with torch.no_grad():
        acc = (model(moved).argmax(-1) == test.labels).double().mean().item()
    assert acc == pytest.approx(float(rows["test_affnist"]["accuracy"]))
