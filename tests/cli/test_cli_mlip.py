"""CLI smoke tests on tiny data: equivar train | eval | md | relax, and clear errors for bad input."""

import os

import ase.io
import numpy as np
import pytest
import yaml
from helpers import tiny_config_dict, write_tiny_dataset

from equivar.cli.main import main


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
    assert (
        main(
            [
                "md",
                "--model",
                "run/model.pt",
                "--structure",
                "test.xyz",
                "--steps",
                "20",
                "--dt",
                "1.0",
                "--trajectory",
                "md.xyz",
                "--interval",
                "5",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "steps/s" in out and "NVE energy drift" in out
    assert len(ase.io.read("md.xyz", ":")) == 5  # steps 0, 5, ..., 20
    assert (
        main(
            [
                "md",
                "--model",
                "run/model.pt",
                "--structure",
                "test.xyz",
                "--steps",
                "5",
                "--integrator",
                "langevin",
                "--dtype",
                "float32",
            ]
        )
        == 0
    )
    code = main(
        [
            "relax",
            "--model",
            "run/model.pt",
            "--structure",
            "test.xyz",
            "--optimizer",
            "fire",
            "--fmax",
            "0.05",
            "--steps",
            "3",
            "--cell",
            "-o",
            "r.xyz",
        ]
    )
    out = capsys.readouterr().out
    assert "relax (fire, cell, 8 atoms)" in out and "in 3 steps, NOT converged" in out and code == 1
    assert len(ase.io.read("r.xyz", ":")) == 1
    code = main("relax --model run/model.pt --structure test.xyz --steps 200 --fmax 0.05 -o c.xyz".split())
    out = capsys.readouterr().out
    assert code == 0 and "converged" in out and "NOT converged" not in out, out
    # the written structure is relaxed: a fresh calculator finds every force below --fmax
    from equivar.calculators import EquivarCalculator

    relaxed = ase.io.read("c.xyz")
    start = ase.io.read("test.xyz", 0)
    relaxed.calc = EquivarCalculator("run/model.pt")
    start.calc = relaxed.calc
    assert np.linalg.norm(relaxed.get_forces(), axis=1).max() < 0.05
    assert np.linalg.norm(start.get_forces(), axis=1).max() > 0.05  # it had to move
    assert relaxed.get_potential_energy() < start.get_potential_energy()


def test_bad_inputs_give_clear_errors(trained, capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(trained)
    bad = ase.io.read("test.xyz", ":2")
    bad[1].numbers[0] = 8  # oxygen: not in the Cu/Au model
    ase.io.write(tmp_path / "o.xyz", bad)
    assert main(["eval", "--model", "run/model.pt", "--data", str(tmp_path / "o.xyz")]) == 2
    assert "o.xyz, frame 1: element(s) O (Z=8) not in the model's elements [Cu, Au]" in capsys.readouterr().err
    bad[1].numbers[0] = 29
    bad[1].calc = None  # ASE keeps extxyz energy/forces in a calculator: frame 1 loses its labels
    ase.io.write(tmp_path / "e.xyz", bad)
    cfg = tiny_config_dict(str(tmp_path / "e.xyz"), str(tmp_path / "r"))
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["train", "-c", str(tmp_path / "c.yaml")]) == 2
    assert "e.xyz, frame 1: missing energy key 'energy'" in capsys.readouterr().err
    assert main(["train", "-c", str(tmp_path / "c.yaml"), "--set", "training.lrr=1"]) == 2
    assert "did you mean 'lr'" in capsys.readouterr().err
    assert main(["md", "--model", "nope.pt", "--structure", "test.xyz"]) == 2
    assert "nope.pt: no such checkpoint" in capsys.readouterr().err


def _with_oxygen(src, dst):
    frames = ase.io.read(src, ":3")
    frames[1].numbers[0] = 8  # oxygen: not in the Cu/Au model
    ase.io.write(dst, frames)
    return str(dst)


def test_unknown_element_errors_name_file_and_frame(trained, capsys, tmp_path):
    model = str(trained / "run" / "model.pt")
    bad = _with_oxygen(trained / "test.xyz", tmp_path / "o.xyz")
    msg = f"{bad}, frame 1: element(s) O (Z=8) not in the model's elements [Cu, Au]"
    assert main(["md", "--model", model, "--structure", bad, "--index", "1", "--steps", "2"]) == 2
    assert msg in capsys.readouterr().err
    assert main(["relax", "--model", model, "--structure", bad, "--index", "1", "-o", str(tmp_path / "r.xyz")]) == 2
    assert msg in capsys.readouterr().err
    assert (
        main(
            [
                "audit",
                "--model",
                model,
                "--data",
                bad,
                "--out",
                str(tmp_path / "a"),
                "--n-angles",
                "4",
                "--disc-angles",
                "",
                "--group",
                "SO3",
            ]
        )
        == 2
    )
    assert msg in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["md", "--index", "7"], "test.xyz: --index 7 is out of range: the file has 6 frames (--index 0..5"),
        (["md", "--index", "-7"], "test.xyz: --index -7 is out of range: the file has 6 frames"),
        (["md", "--index", "0:2"], "--index must be one frame number"),
        (["md", "--temperature", "-5"], "--temperature must be >= 0 K, got -5.0"),
        (["md", "--steps", "0"], "--steps must be >= 1, got 0"),
        (["md", "--dt", "-1"], "--dt must be a positive time step in fs, got -1.0"),
        (["md", "--interval", "0"], "--interval must be >= 1, got 0"),
        (["md", "--trajectory", "no/such/dir/t.xyz"], "--trajectory no/such/dir/t.xyz: directory"),
        (["relax", "--fmax", "-1"], "--fmax must be a positive force threshold in eV/Å, got -1.0"),
        (["relax", "--steps", "0"], "--steps must be >= 1, got 0"),
        (["relax", "--index", "9"], "--index 9 is out of range: the file has 6 frames"),
        (["relax", "-o", "no/such/dir/r.xyz"], "--output no/such/dir/r.xyz: directory"),
        (["eval", "--batch-size", "0"], "--batch-size must be >= 1, got 0"),
        (["eval", "--device", "gpu"], "--device 'gpu' is not a torch device"),
        (["md", "--device", "cuda:99"], "--device 'cuda:99'"),
        (["relax", "--device", "gpu"], "--device 'gpu' is not a torch device"),
        (["relax", "--threads", "0"], "--threads must be >= 1, got 0"),
        (["md", "--threads", "-1"], "--threads must be >= 1, got -1"),
        (["audit", "--max-structures", "0"], "--max-structures must be >= 1, got 0"),
        (["audit", "--n-angles", "-4"], "--n-angles must be >= 0 (0 skips the sweeps), got -4"),
        (["audit", "--disc-angles", "45,ninety"], "--disc-angles must be comma-separated degrees"),
        (["audit", "--out", "test.xyz"], "--out test.xyz: exists and is not a directory"),
    ],
)
def test_bad_flags_fail_early_naming_the_flag(trained, capsys, monkeypatch, argv, message):
    monkeypatch.chdir(trained)
    cmd = argv[0]
    base = {
        "md": ["--structure", "test.xyz"],
        "relax": ["--structure", "test.xyz"],
        "eval": ["--data", "test.xyz"],
        "audit": ["--data", "test.xyz"],
    }[cmd]
    import time

    t0 = time.perf_counter()
    assert main([cmd, "--model", "run/model.pt", *base, *argv[1:]]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err, err
    assert time.perf_counter() - t0 < 30


def test_eval_and_relax_write_next_to_the_model_by_default(trained, capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # nothing may land in the working directory
    run = trained / "run"
    data = str(trained / "test.xyz")
    assert main(["eval", "--model", str(run / "model.pt"), "--data", data]) == 0
    assert (run / "test_predictions.xyz").exists()
    assert main(["relax", "--model", str(run / "model.pt"), "--structure", data, "--index", "2", "--steps", "2"]) in (
        0,
        1,
    )
    assert (run / "test_frame2_relaxed.xyz").exists()
    assert f"relaxed structure -> {run / 'test_frame2_relaxed.xyz'}" in capsys.readouterr().out
    assert os.listdir(tmp_path) == []
    out = tmp_path / "out"
    assert main(["eval", "--model", str(run / "model.pt"), "--data", data, "--out-dir", str(out)]) == 0
    assert main(
        ["relax", "--model", str(run / "model.pt"), "--structure", data, "--steps", "2", "--out-dir", str(out)]
    ) in (0, 1)
    assert sorted(os.listdir(out)) == ["test_frame0_relaxed.xyz", "test_predictions.xyz"]
    assert main(["eval", "--model", str(run / "model.pt"), "--data", data, data, "-o", "p.xyz"]) == 2
    assert "--output names one predictions file but 2 --data files" in capsys.readouterr().err
    for cmd in ("eval", "relax"):
        help_ = _help(cmd)
        assert "--out-dir" in help_ and "model's directory" in help_


def _help(cmd):
    import argparse
    import importlib

    p = argparse.ArgumentParser(prog=f"equivar {cmd}")
    importlib.import_module(f"equivar.cli.{cmd}").add_arguments(p)
    return " ".join(p.format_help().split())


def test_bad_model_file_is_one_line(trained, capsys, tmp_path):
    import torch

    pickled = tmp_path / "module.pt"
    torch.save(torch.nn.Linear(2, 2), pickled)
    junk = tmp_path / "junk.pt"
    junk.write_text("not a model")
    test = str(trained / "test.xyz")
    for path, message in (
        (pickled, "not an equivar checkpoint (it holds pickled Python objects such as torch.nn.modules.linear.Linear"),
        (junk, "not a readable checkpoint"),
    ):
        for argv in (["md", "--structure", test], ["eval", "--data", test, "--out-dir", str(tmp_path)]):
            assert main([argv[0], "--model", str(path), *argv[1:]]) == 2
            err = capsys.readouterr().err
            assert f"{path}: {message}" in err, err
            assert "weights_only" not in err and len(err.strip().splitlines()) == 1, err


def test_md_on_a_single_atom_cell_has_no_nan(trained, capsys, monkeypatch):
    """One atom: removing the centre-of-mass motion leaves no kinetic energy to rescale (was a division by zero)."""
    monkeypatch.chdir(trained)
    one = ase.io.read("test.xyz", 0)[:1]
    ase.io.write("one.xyz", one)
    assert (
        main(["md", "--model", "run/model.pt", "--structure", "one.xyz", "--steps", "5", "--temperature", "300"]) == 0
    )
    out = capsys.readouterr().out
    assert "nan" not in out.lower() and "steps/s" in out, out


def test_md_messages_for_short_runs_and_cellless_repeat(trained, capsys, monkeypatch):
    monkeypatch.chdir(trained)
    assert main(["md", "--model", "run/model.pt", "--structure", "test.xyz", "--steps", "1"]) == 0
    out = capsys.readouterr().out
    assert "NVE energy drift: n/a" in out and "nan" not in out.lower(), out
    mol = ase.io.read("test.xyz", 0)
    mol.pbc, mol.cell = False, None
    ase.io.write("mol.xyz", mol)
    assert main(["md", "--model", "run/model.pt", "--structure", "mol.xyz", "--repeat", "2,1,1"]) == 2
    err = capsys.readouterr().err
    assert "--repeat 2,1,1" in err and "no cell vector along axis 0" in err and "Traceback" not in err, err


def test_resume_without_an_earlier_run_is_one_line(tmp_path, capsys):
    assert main(["train", "--resume", "-o", str(tmp_path / "nodir")]) == 2
    err = capsys.readouterr().err
    assert "no earlier run there" in err and "Traceback" not in err, err
