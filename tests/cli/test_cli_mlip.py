"""CLI smoke tests on tiny data: equivar train | eval | md | relax, and clear errors for bad input."""
import os

import ase.io
import numpy as np
import pytest
import yaml

from equivar.cli.main import main
from helpers import tiny_config_dict, write_tiny_dataset


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    data = write_tiny_dataset(str(d / "tiny.xyz"))
    test = write_tiny_dataset(str(d / "test.xyz"), n_frames=6, with_isolated=False, start=5)
    cfg = tiny_config_dict(data, str(d / "run"), epochs=1)
    cfg["data"]["test_files"] = {"held_out": test}
    (d / "c.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["train", "--config", str(d / "c.yaml"), "--set", "training.epochs=2", "-s", "training.lr=0.005"]) == 0
    return d


def test_train_outputs(trained):
    run = trained / "run"
    assert (run / "predictions_held_out.xyz").exists()
    assert "held_out" in (run / "errors.md").read_text()
    assert yaml.safe_load((run / "config.yaml").read_text())["training"]["epochs"] == 2


def test_train_resume_extends(trained, capsys):
    assert main(["train", "--resume", "--output-dir", str(trained / "run"), "--set", "training.epochs=3"]) == 0
    assert "resumed from epoch 2" in capsys.readouterr().out
    assert len((trained / "run" / "metrics.csv").read_text().strip().splitlines()) == 1 + 3


def test_eval_writes_predictions(trained, capsys, monkeypatch):
    monkeypatch.chdir(trained)
    assert main(["eval", "--model", "run/model.pt", "--data", "test.xyz", "-o", "p.xyz", "--table", "t.csv"]) == 0
    out = capsys.readouterr().out
    assert "F MAE meV/Å" in out and "test" in out
    frames = ase.io.read("p.xyz", ":")
    assert len(frames) == 6 and "REF_energy" in frames[0].info
    assert np.isfinite(frames[0].get_forces()).all()


def test_md_and_relax(trained, capsys, monkeypatch):
    monkeypatch.chdir(trained)
    assert main(["md", "--model", "run/model.pt", "--structure", "test.xyz", "--steps", "20", "--dt", "1.0",
                 "--trajectory", "md.xyz", "--interval", "5"]) == 0
    out = capsys.readouterr().out
    assert "steps/s" in out and "NVE energy drift" in out
    assert len(ase.io.read("md.xyz", ":")) == 5  # steps 0, 5, ..., 20
    assert main(["md", "--model", "run/model.pt", "--structure", "test.xyz", "--steps", "5",
                 "--integrator", "langevin", "--dtype", "float32"]) == 0
    code = main(["relax", "--model", "run/model.pt", "--structure", "test.xyz", "--optimizer", "fire",
                 "--fmax", "0.05", "--steps", "3", "--cell", "-o", "r.xyz"])
    out = capsys.readouterr().out
    assert "relax (fire, cell, 8 atoms)" in out and "in 3 steps, NOT converged" in out and code == 1
    assert len(ase.io.read("r.xyz", ":")) == 1
    code = main(["relax", "--model", "run/model.pt", "--structure", "test.xyz", "--steps", "100", "--fmax", "0.5"])
    out = capsys.readouterr().out
    assert code == (0 if "NOT converged" not in out else 1)


def test_bad_inputs_give_clear_errors(trained, capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(trained)
    bad = ase.io.read("test.xyz", ":2")
    bad[1].numbers[0] = 8  # oxygen: not in the Cu/Au model
    ase.io.write(tmp_path / "o.xyz", bad)
    assert main(["eval", "--model", "run/model.pt", "--data", str(tmp_path / "o.xyz")]) == 2
    assert "o.xyz:1: element(s) O (Z=8) not in the model's elements [Cu, Au]" in capsys.readouterr().err
    bad[1].numbers[0] = 29
    bad[1].calc = None  # ASE keeps extxyz energy/forces in a calculator: frame 1 loses its labels
    ase.io.write(tmp_path / "e.xyz", bad)
    cfg = tiny_config_dict(str(tmp_path / "e.xyz"), str(tmp_path / "r"))
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["train", "-c", str(tmp_path / "c.yaml")]) == 2
    assert "e.xyz:1: missing energy key 'energy'" in capsys.readouterr().err
    assert main(["train", "-c", str(tmp_path / "c.yaml"), "--set", "training.lrr=1"]) == 2
    assert "did you mean 'lr'" in capsys.readouterr().err
    assert main(["md", "--model", "nope.pt", "--structure", "test.xyz"]) == 2
    assert "nope.pt: no such checkpoint" in capsys.readouterr().err
