"""``equivar eval`` on dynamics checkpoints: the metrics equal a NumPy computation on the written predictions, the
predictions are the model's, K-sample minADE/minFDE for a stochastic model, one-line errors."""

import csv

import numpy as np
import pytest
import torch

from equivar.cli.main import main
from equivar.data import collate_scenes, nbody
from equivar.models import EGNN, register_model
from equivar.train import model_payload, save_checkpoint


def _data_section(tmp_path):
    return {
        "source": "nbody",
        "system": "charged",
        "n_train": 3,
        "n_valid": 3,
        "n_test": 5,
        "n_train_drawn": 3,
        "data_seed": 11,
        "steps": 1000,
        "sample_every": 100,
        "input_frame": 2,
        "target_frame": 6,
        "cache_dir": str(tmp_path / "cache"),
    }


@pytest.fixture
def egnn_run(tmp_path):
    torch.manual_seed(0)
    model = EGNN(hidden_dim=8, num_layers=2).double()
    with torch.no_grad():
        for layer in model.layers:
            layer.coord_mlp[2].weight.mul_(300.0)
    path = str(tmp_path / "run" / "model.pt")
    save_checkpoint(path, model_payload(model, {"task": "dynamics", "data": _data_section(tmp_path)}))
    return path, model


def _row(table, split):
    return next(r for r in csv.DictReader(open(table)) if r["set"] == split)


def test_metrics_equal_numpy_on_the_model_predictions(egnn_run, tmp_path, capsys):
    path, model = egnn_run
    table = str(tmp_path / "errors.csv")
    assert main(["eval", "--model", path, "--split", "all", "--table", table, "--batch-size", "2"]) == 0
    out = capsys.readouterr().out
    assert "| set | scenes | k | loss | mse | ade | fde |" in out
    splits = nbody.load_nbody(
        nbody.NBodyDatasetConfig(
            simulation=nbody.SimulationParams.recipe("charged", steps=1000, sample_every=100),
            n_train=3,
            n_valid=3,
            n_test=5,
            n_train_drawn=3,
            seed=11,
        ),
        str(tmp_path / "cache"),
    )
    for split, n in (("train", 3), ("valid", 3), ("test", 5)):
        z = np.load(str(tmp_path / "run" / f"{split}_predictions.npz"))
        pred, target, mask = z["pred"], z["target"], z["target_mask"]
        assert pred.shape == (5 * n, 1, 3) and mask.all() and list(z["ptr"]) == list(range(0, 5 * n + 1, 5))
        # the predictions are the model's on the recorded split
        ds = nbody.frame_pairs(splits.split(split), 2, 6)
        b = collate_scenes([ds[i] for i in range(n)])
        with torch.no_grad():
            direct = model(b)["pos"].numpy()
        np.testing.assert_allclose(pred, direct, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(target, b["target"].numpy(), rtol=0, atol=0)
        dist = np.linalg.norm(pred - target, axis=-1)  # [N, T]
        row = _row(table, split)
        assert int(row["scenes"]) == n and int(row["k"]) == 1
        np.testing.assert_allclose(float(row["mse"]), np.mean((pred - target) ** 2), rtol=1e-12)
        np.testing.assert_allclose(float(row["ade"]), dist.mean(-1).mean(), rtol=1e-12)
        np.testing.assert_allclose(float(row["fde"]), dist[:, -1].mean(), rtol=1e-12)
        assert float(row["mse"]) > 1e-4  # not a trivial model


class NoisyStandin(torch.nn.Module):
    """A stochastic dynamics model: the last observed position plus Gaussian noise."""

    def __init__(self, sigma: float = 0.3, out_frames: int = 1):
        super().__init__()
        self.sigma = torch.nn.Parameter(torch.tensor(float(sigma)))
        self.out_frames = out_frames

    def forward(self, batch):
        pos = batch["pos"][:, -1:].expand(-1, self.out_frames, -1)
        return {"pos": pos + self.sigma * torch.randn_like(pos)}


register_model("test_noisy_dynamics", NoisyStandin)


def test_k_samples_min_ade_fde_of_a_stochastic_model(tmp_path, capsys):
    model = NoisyStandin().double()
    path = str(tmp_path / "noisy" / "model.pt")
    save_checkpoint(path, model_payload(model, {"task": "dynamics", "data": _data_section(tmp_path)}))
    table = str(tmp_path / "k.csv")
    assert main(["eval", "--model", path, "--samples", "6", "--seed", "3", "--table", table]) == 0
    z = np.load(str(tmp_path / "noisy" / "test_predictions.npz"))
    pred, target = z["pred"], z["target"]
    assert pred.shape == (6, 25, 1, 3)
    assert not np.allclose(pred[0], pred[1])  # the samples differ
    dist = np.linalg.norm(pred - target[None], axis=-1)  # [K, N, T]
    row = _row(table, "test")
    assert int(row["k"]) == 6 and "ade" not in row
    np.testing.assert_allclose(float(row["min_ade"]), dist.mean(-1).min(0).mean(), rtol=1e-12)
    np.testing.assert_allclose(float(row["min_fde"]), dist[..., -1].min(0).mean(), rtol=1e-12)
    assert float(row["min_ade"]) < dist.mean(-1).mean()  # best of 6 beats the average sample
    # the same seed gives the same samples
    assert main(["eval", "--model", path, "--samples", "6", "--seed", "3", "--table", table]) == 0
    np.testing.assert_array_equal(np.load(str(tmp_path / "noisy" / "test_predictions.npz"))["pred"], pred)


def test_deterministic_model_with_samples_says_so(egnn_run, capsys):
    path, _ = egnn_run
    assert main(["eval", "--model", path, "--samples", "2"]) == 0
    assert "the 2 samples are identical (the model is deterministic)" in capsys.readouterr().out


def _err_line(capsys):
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--set", "bogus=1"], "unknown config key 'task.data.bogus'"),
        (["--set", "n_test=many"], "task.data.n_test: expected int, got 'many'"),
        (["--set", "novalue"], "--set 'novalue': expected KEY=VALUE"),
        (["--samples", "0"], "--samples must be >= 1, got 0"),
        (["--batch-size", "0"], "--batch-size must be >= 1, got 0"),
        (["--data", "x.xyz"], "the data its checkpoint records"),
    ],
)
def test_one_line_errors(egnn_run, tmp_path, capsys, extra, message):
    path, _ = egnn_run
    assert main(["eval", "--model", path, "--out-dir", str(tmp_path / "o"), *extra]) == 2
    assert message in _err_line(capsys)


def test_windows_ade_fde_over_several_frames(tmp_path):
    """Past/future windows (4 predicted frames): ADE averages over frames, FDE takes the last one."""
    model = NoisyStandin(out_frames=4).double()
    data = {**_data_section(tmp_path), "past": 2, "future": 4, "start": 0}
    path = str(tmp_path / "win" / "model.pt")
    save_checkpoint(path, model_payload(model, {"task": "dynamics", "data": data}))
    table = str(tmp_path / "w.csv")
    assert main(["eval", "--model", path, "--table", table]) == 0
    z = np.load(str(tmp_path / "win" / "test_predictions.npz"))
    pred, target = z["pred"], z["target"]
    assert pred.shape == target.shape and pred.shape[1] == 4
    dist = np.linalg.norm(pred - target, axis=-1)  # [N, T]
    row = _row(table, "test")
    np.testing.assert_allclose(float(row["ade"]), dist.mean(-1).mean(), rtol=1e-12)
    np.testing.assert_allclose(float(row["fde"]), dist[:, -1].mean(), rtol=1e-12)
    np.testing.assert_allclose(float(row["mse"]), np.mean((pred - target) ** 2), rtol=1e-12)
    assert abs(float(row["ade"]) - float(row["fde"])) > 1e-3


def test_loss_column_is_the_training_loss(egnn_run, tmp_path):
    """A model trained with ``task.loss: ade`` gets ``loss`` = ADE in eval's table (it was the MSE)."""
    path, model = egnn_run
    meta = {
        "task": "dynamics",
        "data": _data_section(tmp_path),
        "config": {"task": {"name": "dynamics", "loss": "ade"}},
    }
    ade_path = str(tmp_path / "run_ade" / "model.pt")
    save_checkpoint(ade_path, model_payload(model, meta))
    tables = {}
    for name, p in (("mse", path), ("ade", ade_path)):
        tables[name] = str(tmp_path / f"{name}.csv")
        assert main(["eval", "--model", p, "--table", tables[name], "--out-dir", str(tmp_path / name)]) == 0
    mse_row, ade_row = _row(tables["mse"], "test"), _row(tables["ade"], "test")
    assert float(mse_row["loss"]) == pytest.approx(float(mse_row["mse"]), rel=1e-12)
    assert float(ade_row["loss"]) == pytest.approx(float(ade_row["ade"]), rel=1e-6)
    assert float(ade_row["ade"]) == pytest.approx(float(mse_row["ade"]), rel=1e-12)
    assert abs(float(ade_row["loss"]) - float(ade_row["mse"])) > 1e-3


def test_eval_without_data_on_a_file_that_is_no_checkpoint(tmp_path, capsys):
    """An SDF passed as --model is not called an interatomic potential (the message used to say it was)."""
    sdf = tmp_path / "mols.sdf"
    sdf.write_text("not a checkpoint\n$$$$\n")
    assert main(["eval", "--model", str(sdf)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "is an interatomic potential" not in err
    assert f"name the structure file(s) to evaluate {sdf} on" in err
