"""Nothing lost: models with non-finite weights are refused at load, a refused --resume leaves the run untouched."""

import os

import pytest
import torch
import yaml
from helpers import tiny_config_dict, write_tiny_dataset

from equivar.cli.main import main
from equivar.train import load_checkpoint, save_checkpoint


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    d = tmp_path_factory.mktemp("refusals")
    data = write_tiny_dataset(str(d / "tiny.xyz"), n_frames=8)
    (d / "c.yaml").write_text(yaml.safe_dump(tiny_config_dict(data, str(d / "run"), epochs=1)))
    assert main(["train", "--config", str(d / "c.yaml")]) == 0
    return d


def _snapshot(directory):
    return {
        os.path.relpath(os.path.join(r, f), directory): open(os.path.join(r, f), "rb").read()
        for r, _, fs in os.walk(directory)
        for f in fs
    }


def _poison(src, dst, key=None):
    """Copy checkpoint ``src`` to ``dst`` with one weight set to NaN; returns the parameter name."""
    payload = load_checkpoint(str(src))
    key = key or next(k for k, v in payload["state_dict"].items() if v.is_floating_point() and v.numel() > 1)
    payload["state_dict"][key] = payload["state_dict"][key].clone()
    payload["state_dict"][key].view(-1)[1] = float("nan")
    save_checkpoint(str(dst), payload)
    return key


def test_refused_resume_changes_nothing(run, capsys):
    before = _snapshot(run / "run")
    assert main(["train", "--resume", "-o", str(run / "run"), "--set", "model.hidden=32"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "the model hyperparameters differ from the checkpoint's in ['hidden']" in err[0]
    assert _snapshot(run / "run") == before  # config.yaml included
    # the documented way to continue still works afterwards
    assert main(["train", "--resume", "-o", str(run / "run"), "--set", "training.epochs=2"]) == 0
    assert "resumed from epoch 1" in capsys.readouterr().out


def test_nan_weights_refused_at_load(run, tmp_path, capsys):
    bad = tmp_path / "bad.pt"
    key = _poison(run / "run" / "model.pt", bad)
    data = str(run / "tiny.xyz")
    msg = f"{bad}: parameter {key!r} has 1 non-finite value(s) (NaN/inf) of"
    for argv in (
        ["eval", "--model", str(bad), "--data", data, "-o", str(tmp_path / "p.xyz")],
        ["md", "--model", str(bad), "--structure", data, "--index", "3", "--steps", "2"],
        ["relax", "--model", str(bad), "--structure", data, "--index", "3", "-o", str(tmp_path / "r.xyz")],
    ):
        assert main(argv) == 2, argv[0]
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and msg in err[0], (argv[0], err)
    assert not (tmp_path / "p.xyz").exists() and not (tmp_path / "r.xyz").exists()


def test_calculator_refuses_a_nan_model():
    from standin import PairPotential

    from equivar.calculators import EquivarCalculator

    m = PairPotential([29], [3.5], r_max=4.0, hidden=4)
    with torch.no_grad():
        m.mlp[0].weight[0, 0] = float("inf")
    with pytest.raises(ValueError, match=r"EquivarCalculator: model parameter 'mlp.0.weight' has 1 non-finite"):
        EquivarCalculator(m)


def test_resume_from_nan_checkpoint_refused_untouched(run, tmp_path, capsys):
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(run / "run", copy)
    cfg = yaml.safe_load((copy / "config.yaml").read_text())
    cfg["output_dir"] = str(copy)
    (copy / "config.yaml").write_text(yaml.safe_dump(cfg))
    key = _poison(copy / "checkpoint.pt", copy / "checkpoint.pt")
    before = _snapshot(copy)
    assert main(["train", "--resume", "-o", str(copy), "--set", "training.epochs=3"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"cannot resume {copy / 'checkpoint.pt'}: parameter {key!r} has 1 non-finite" in err[0]
    assert _snapshot(copy) == before
