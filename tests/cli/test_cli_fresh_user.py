"""What a fresh user ran into: a partly labelled eval file, failed runs leaving empty output directories, an MD
time step far too large (energy not conserved, no warning)."""

import ase.io
import numpy as np
import pytest
import yaml
from helpers import tiny_config_dict, write_tiny_dataset

from equivar.cli.main import main


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    d = tmp_path_factory.mktemp("fresh")
    data = write_tiny_dataset(str(d / "tiny.xyz"))
    write_tiny_dataset(str(d / "test.xyz"), n_frames=6, with_isolated=False, start=5)
    cfg = tiny_config_dict(data, str(d / "run"), epochs=1)
    (d / "c.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["train", "--config", str(d / "c.yaml")]) == 0
    return d


def test_eval_with_a_frame_lacking_its_energy(trained, capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(trained)
    frames = ase.io.read("test.xyz", ":")
    del frames[3].calc.results["energy"]  # ASE keeps an extxyz 'energy' on a single-point calculator
    frames[3].calc.results.pop("free_energy", None)
    ase.io.write(tmp_path / "partial.xyz", frames, format="extxyz")
    assert "energy" not in ase.io.read(tmp_path / "partial.xyz", "3").calc.results
    table = tmp_path / "t.csv"
    assert (
        main(["eval", "--model", "run/model.pt", "--data", str(tmp_path / "partial.xyz"), "--table", str(table)]) == 0
    )
    out = capsys.readouterr().out
    warnings = [line for line in out.splitlines() if "warning" in line]
    assert len(warnings) == 1, out  # once
    assert warnings[0].endswith(
        "warning: 1 of 6 frames lack energy ('energy'), frames 3; energy errors use the other 5"
    )
    # the energy errors are those of the 5 labelled frames: compare with the predictions written
    pred = ase.io.read(trained / "run" / "partial_predictions.xyz", ":")
    ref = ase.io.read(tmp_path / "partial.xyz", ":")
    de = [
        1e3 * (p.get_potential_energy() - r.get_potential_energy()) for i, (p, r) in enumerate(zip(pred, ref)) if i != 3
    ]
    import csv

    row = next(csv.DictReader(open(table)))
    assert float(row["mae_e"]) == pytest.approx(np.mean(np.abs(de)), rel=1e-6)


@pytest.mark.parametrize("command", ["train", "eval", "relax"])
def test_a_failed_run_leaves_no_empty_output_directory(trained, capsys, tmp_path, command):
    bad = tmp_path / "bad.xyz"
    bad.write_text("this is not an extxyz file\n")
    out = tmp_path / "new" / "deeper"
    if command == "train":
        cfg = tiny_config_dict(str(bad), str(out))
        (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
        argv = ["train", "--config", str(tmp_path / "c.yaml")]
    elif command == "eval":
        argv = ["eval", "--model", str(trained / "run" / "model.pt"), "--data", str(bad), "--out-dir", str(out)]
    else:
        argv = ["relax", "--model", str(trained / "run" / "model.pt"), "--structure", str(bad), "--out-dir", str(out)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"equivar {command}: error:") and "\n" not in err
    assert not (tmp_path / "new").exists()  # neither the directory nor the parent it created


def test_a_failed_run_keeps_directories_that_existed_or_hold_files(trained, capsys, tmp_path):
    bad = tmp_path / "bad.xyz"
    bad.write_text("this is not an extxyz file\n")
    existing = tmp_path / "existing"
    existing.mkdir()
    assert main(["eval", "--model", str(trained / "run" / "model.pt"), "--data", str(bad), "--out-dir", str(existing)])
    assert existing.is_dir()
    # a successful run keeps the directory it created
    out = tmp_path / "made"
    model = str(trained / "run" / "model.pt")
    assert main(["eval", "--model", model, "--data", str(trained / "test.xyz"), "--out-dir", str(out)]) == 0
    assert (out / "test_predictions.xyz").is_file()


def test_md_warns_once_when_energy_is_not_conserved(trained, capsys, tmp_path):
    model = str(trained / "run" / "model.pt")
    argv = ["md", "--model", model, "--structure", str(trained / "test.xyz"), "--steps", "40", "--temperature", "300"]
    assert main(argv + ["--dt", "0.5"]) == 0
    assert "warning" not in capsys.readouterr().err
    assert main(argv + ["--dt", "100"]) == 0
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1, err
    assert err[0].startswith("equivar md: warning: energy is not conserved: at step ")
    assert "the time step (dt = 100 fs) is likely too large" in err[0]
