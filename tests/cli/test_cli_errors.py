"""Bad command-line input ends in one line naming the problem, not a traceback."""

import os

import pytest

import equivar.data
from equivar.cli.main import main

EMBEDDED = os.path.join(os.path.dirname(equivar.data.__file__), "embedded", "cuau_emt.xyz")


def test_malformed_yaml(tmp_path, capsys):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("training: [1, 2\n")
    assert main(["train", "-c", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "invalid YAML" in err and "bad.yaml" in err and "Traceback" not in err


def test_unavailable_device(tmp_path, capsys):
    import torch

    if torch.cuda.is_available():  # pragma: no cover - CPU CI
        pytest.skip("CUDA present: cuda:7 may exist")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"device: cuda:7\ndata:\n  train_file: {EMBEDDED}\n")
    assert main(["train", "-c", str(cfg), "--set", f"output_dir={tmp_path / 'run'}"]) == 2
    assert "cuda:7" in capsys.readouterr().err


def test_not_a_device(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"device: tpu\ndata:\n  train_file: {EMBEDDED}\n")
    assert main(["train", "-c", str(cfg), "--set", f"output_dir={tmp_path / 'run'}"]) == 2
    assert "'tpu' is not a torch device" in capsys.readouterr().err


def test_bad_output_dir_fails_before_the_data_are_read(tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"data:\n  train_file: {tmp_path / 'not_read_yet.xyz'}\n")
    assert main(["train", "-c", str(cfg), "--set", f"output_dir={blocker / 'run'}"]) == 2
    err = capsys.readouterr().err
    assert f"output_dir {blocker / 'run'}: cannot create the directory" in err and "Traceback" not in err, err


def test_section_override_with_a_scalar_is_one_line(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"data:\n  train_file: {EMBEDDED}\n")
    assert main(["train", "-c", str(cfg), "--set", "training=null", "--print-config"]) == 2
    assert "training is a config section, not a value" in capsys.readouterr().err


def test_set_takes_several_overrides_per_flag(tmp_path, capsys):
    import yaml

    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"data:\n  train_file: {EMBEDDED}\n")
    assert (
        main(
            [
                "train",
                "-c",
                str(cfg),
                "--set",
                "training.lr=0.005",
                "num_threads=1",
                "--set",
                "seed=3",
                "--print-config",
            ]
        )
        == 0
    )
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["training"]["lr"] == 0.005 and printed["num_threads"] == 1 and printed["seed"] == 3


def test_corrupt_checkpoint_on_resume_fails_before_the_data_are_read(tmp_path, capsys):
    import torch

    run = tmp_path / "run"
    run.mkdir()
    torch.save({"format": "x", "w": torch.zeros(4096)}, run / "checkpoint.pt")
    blob = (run / "checkpoint.pt").read_bytes()
    (run / "checkpoint.pt").write_bytes(blob[: len(blob) // 2])  # truncated, as by a full disk or a killed copy
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"data:\n  train_file: {tmp_path / 'not_read_yet.xyz'}\n")
    assert main(["train", "-c", str(cfg), "--resume", "--set", f"output_dir={run}"]) == 2
    err = capsys.readouterr().err.strip()
    assert f"{run / 'checkpoint.pt'}: not a readable checkpoint" in err, err
    assert "not_read_yet" not in err and "miniz" not in err and "\n" not in err and len(err) < 300, err


def test_non_yaml_config_file_is_one_short_line(capsys):
    assert main(["train", "-c", EMBEDDED]) == 2
    err = capsys.readouterr().err.strip()
    assert f"{EMBEDDED}: expected a YAML mapping" in err and "\n" not in err and len(err) < 200 + len(EMBEDDED), err


def test_print_config_runs_the_model_range_checks(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"data:\n  train_file: {EMBEDDED}\n")
    assert main(["train", "-c", str(cfg), "--set", "model.max_L=-1", "--print-config"]) == 2
    err = capsys.readouterr().err
    assert "model.max_L" in err and "Traceback" not in err, err


def test_too_large_max_L_names_the_keys(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"data:\n  train_file: {EMBEDDED}\n")
    assert main(["train", "-c", str(cfg), "--set", "model.max_L=100", "--print-config"]) == 2
    err = capsys.readouterr().err
    assert "max_L + max_ell must be at most 64" in err and "max_L=100" in err and "Traceback" not in err, err


def test_threads_flag_sets_num_threads(tmp_path, capsys):
    import yaml

    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"num_threads: 1\ndata:\n  train_file: {EMBEDDED}\n")
    assert main(["train", "-c", str(cfg), "--threads", "2", "--print-config"]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["num_threads"] == 2
    assert main(["train", "-c", str(cfg), "--threads", "0", "--print-config"]) == 2
    err = capsys.readouterr().err
    assert "--threads must be >= 1, got 0" in err and "Traceback" not in err, err
