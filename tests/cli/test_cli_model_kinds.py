"""Commands meeting a model of the wrong task (dynamics EGNN, classification ViT) refuse in one line naming the
file and its task, before anything is written."""

import os

import ase
import ase.io
import numpy as np
import pytest
import torch
from standin import PairPotential

from equivar.cli._model_kind import checkpoint_task
from equivar.cli.main import main
from equivar.models import EGNN, build_model
from equivar.train import model_payload, save_checkpoint


@pytest.fixture
def egnn_pt(tmp_path):
    torch.manual_seed(0)
    path = str(tmp_path / "egnn_run" / "model.pt")
    save_checkpoint(path, model_payload(EGNN(hidden_dim=4, num_layers=1), {"task": "dynamics"}))
    return path


@pytest.fixture
def vit_pt(tmp_path):
    torch.manual_seed(0)
    m = build_model("vit_polyphase", image_size=8, patch_size=2, dim=8, depth=1, heads=2, sr_ratio=2)
    path = str(tmp_path / "vit_run" / "model.pt")
    save_checkpoint(path, model_payload(m, {"task": "classification", "image_shape": [1, 8, 8], "num_classes": 10}))
    return path


@pytest.fixture
def potential_pt(tmp_path):
    torch.manual_seed(0)
    model = PairPotential([1, 6, 8], [1.0, 1.5, 1.4], r_max=4.0, hidden=4).double()
    path = str(tmp_path / "pot" / "model.pt")
    save_checkpoint(path, model_payload(model, {"r_max": 4.0, "atomic_numbers": [1, 6, 8]}))
    return path


@pytest.fixture
def structures(tmp_path):
    rng = np.random.default_rng(0)
    frames = [ase.Atoms("CH2O", positions=rng.normal(size=(4, 3)) + np.arange(4)[:, None] * 1.2) for _ in range(2)]
    path = str(tmp_path / "s.xyz")
    ase.io.write(path, frames, format="extxyz")
    return path


@pytest.fixture
def image_folder(tmp_path):
    d = tmp_path / "mnist"
    d.mkdir()
    (d / "t10k-images-idx3-ubyte").write_bytes(b"")  # the layout is recognised by name; never read here
    return str(d)


def test_checkpoint_task(egnn_pt, vit_pt, potential_pt, tmp_path):
    assert checkpoint_task(egnn_pt) == ("dynamics", "egnn")
    assert checkpoint_task(vit_pt) == ("classification", "vit_polyphase")
    assert checkpoint_task(potential_pt)[0] == "potential"  # no task recorded: a Potential subclass
    (tmp_path / "junk.pt").write_bytes(b"junk")
    assert checkpoint_task(str(tmp_path / "junk.pt")) == (None, "?")


@pytest.mark.parametrize("command", ["eval", "md", "relax"])
def test_truncated_checkpoint_is_a_one_line_error(command, potential_pt, structures, tmp_path, capsys):
    cut = tmp_path / "cut.pt"
    data = open(potential_pt, "rb").read()
    cut.write_bytes(data[:1000] + data[-22:])  # cut in the middle: the end record points past the file
    assert checkpoint_task(str(cut)) == (None, "?")
    flag = "--data" if command == "eval" else "--structure"
    out = {"eval": ["--out-dir", str(tmp_path / "o")], "md": ["--trajectory", str(tmp_path / "t.xyz")],
           "relax": ["--output", str(tmp_path / "r.xyz")]}[command]  # fmt: skip
    assert main([command, "--model", str(cut), flag, structures, *out]) == 2
    err = _err_line(capsys)
    assert str(cut) in err and "not a readable checkpoint" in err
    assert not any((tmp_path / n).exists() for n in ("o", "t.xyz", "r.xyz"))


@pytest.mark.parametrize(
    "command,out_flag,victim",
    [("eval", "--output", "model"), ("eval", "--output", "data"), ("eval", "--table", "model"),
     ("md", "--trajectory", "data"), ("md", "--log", "model"), ("relax", "--output", "model")],
)  # fmt: skip
def test_an_output_that_is_an_input_is_refused(command, out_flag, victim, potential_pt, structures, tmp_path, capsys):
    path = {"model": potential_pt, "data": structures}[victim]
    before = open(path, "rb").read()
    flag = "--data" if command == "eval" else "--structure"
    args = [command, "--model", potential_pt, flag, structures, out_flag, path]
    if command == "md":
        args += ["--steps", "1"] + (["--trajectory", str(tmp_path / "t.xyz")] if out_flag == "--log" else [])
    assert main(args) == 2
    err = _err_line(capsys)
    assert f"{out_flag} {path}: is the input" in err and "overwritten" in err
    assert open(path, "rb").read() == before


def _err_line(capsys):
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


def test_audit_dynamics_model_on_structures(egnn_pt, structures, tmp_path, capsys):
    out = tmp_path / "audit_out"
    assert main(["audit", "--model", egnn_pt, "--data", structures, "--out", str(out)]) == 2
    err = _err_line(capsys)
    assert egnn_pt in err and "dynamics" in err and structures in err
    assert not out.exists()


def test_audit_potential_on_images(potential_pt, image_folder, tmp_path, capsys):
    out = tmp_path / "audit_out"
    assert main(["audit", "--model", potential_pt, "--data", image_folder, "--out", str(out)]) == 2
    err = _err_line(capsys)
    assert potential_pt in err and "'potential'" in err and image_folder in err
    assert not out.exists()


def test_audit_classifier_on_structures(vit_pt, structures, tmp_path, capsys):
    out = tmp_path / "audit_out"
    assert main(["audit", "--model", vit_pt, "--data", structures, "--out", str(out)]) == 2
    err = _err_line(capsys)
    assert vit_pt in err and "classification" in err
    assert not out.exists()


@pytest.mark.parametrize("which", ["egnn_pt", "vit_pt"])
@pytest.mark.parametrize("command", ["md", "relax", "eval"])
def test_md_relax_eval_refuse_non_potentials(which, command, structures, tmp_path, capsys, request):
    model = request.getfixturevalue(which)
    task = {"egnn_pt": "dynamics", "vit_pt": "classification"}[which]
    args = {
        "md": ["md", "--model", model, "--structure", structures, "--steps", "1",
               "--trajectory", str(tmp_path / "o" / "t.xyz")],
        "relax": ["relax", "--model", model, "--structure", structures, "--output", str(tmp_path / "o" / "r.xyz")],
        "eval": ["eval", "--model", model, "--data", structures, "--out-dir", str(tmp_path / "o")],
    }[command]  # fmt: skip
    assert main(args) == 2
    err = _err_line(capsys)
    assert model in err and f"is a {task} model" in err
    if (which, command) == ("egnn_pt", "eval"):  # eval takes dynamics models, on the data their checkpoint records
        assert "--data" in err and "the data its checkpoint records" in err
    else:
        assert f"equivar {command} takes interatomic potentials" in err
    assert not os.path.exists(tmp_path / "o" / "t.xyz") and not os.path.exists(tmp_path / "o" / "r.xyz")


@pytest.mark.parametrize("ext", ["", ".xyz", ".npz"])
def test_read_dataset_directory(tmp_path, ext):
    from equivar.data import read_dataset

    d = tmp_path / f"frames{ext}"
    d.mkdir()
    with pytest.raises(ValueError, match=r"frames[.a-z]*: is a directory, expected a file$"):
        read_dataset(str(d))


@pytest.mark.parametrize("command", ["eval", "md", "relax", "audit", "train"])
def test_directory_as_data_file(command, potential_pt, tmp_path, capsys):
    d = tmp_path / "frames"
    d.mkdir()
    out = str(tmp_path / "o")
    cfg = tmp_path / "c.yaml"
    cfg.write_text("training:\n  epochs: 1\n")
    args = {
        "eval": ["eval", "--model", potential_pt, "--data", str(d), "--out-dir", out],
        "md": ["md", "--model", potential_pt, "--structure", str(d), "--trajectory", str(tmp_path / "t.xyz")],
        "relax": ["relax", "--model", potential_pt, "--structure", str(d), "--output", str(tmp_path / "r.xyz")],
        "audit": ["audit", "--model", potential_pt, "--data", str(d), "--out", out],
        "train": ["train", "-c", str(cfg), "--set", f"data.train_file={d}", "--set", f"output_dir={out}"],
    }[command]  # fmt: skip
    assert main(args) == 2
    err = _err_line(capsys)
    assert f"{d}: is a directory, expected a file" in err


def test_audit_bad_data_or_model_name_leaves_no_out_directory(potential_pt, image_folder, tmp_path, capsys):
    out = tmp_path / "audit_out"
    bad = tmp_path / "bad.xyz"
    bad.write_text("not an xyz file\n")
    assert main(["audit", "--model", potential_pt, "--data", str(bad), "--out", str(out)]) == 2
    assert str(bad) in _err_line(capsys) and not out.exists()
    assert main(["audit", "--model", "vit_nope", "--data", image_folder, "--out", str(out)]) == 2
    assert "'vit_nope'" in _err_line(capsys) and not out.exists()
    (tmp_path / "a_file").write_text("")
    assert main(["audit", "--model", potential_pt, "--data", str(bad), "--out", str(tmp_path / "a_file")]) == 2
    assert "--out" in _err_line(capsys)
