"""``equivar audit`` on image classifiers (MNIST-layout folder): the unanchored ViT breaks under shifts."""

import gzip
import json
import struct

import numpy as np
import pytest

from equivar.cli.main import main


def _idx(arr: np.ndarray) -> bytes:
    return bytes([0, 0, 8, arr.ndim]) + b"".join(struct.pack(">I", d) for d in arr.shape) + arr.tobytes()


@pytest.fixture
def digits(tmp_path):
    rng = np.random.default_rng(0)
    img = np.zeros((2, 28, 28), np.uint8)
    img[:, 6:22, 9:19] = rng.integers(0, 256, (2, 16, 10))  # a blob on a black background, as MNIST
    d = tmp_path / "digits"
    d.mkdir()
    (d / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(_idx(img)))
    (d / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(_idx(np.array([3, 7], np.uint8))))
    return d


def test_audit_image_models(tmp_path, digits, capsys):
    out = tmp_path / "audit"
    rc = main(
        ["audit", "--model", "vit_polyphase,vit", "--data", str(digits), "--max-structures", "1", "--n-elements", "2"]
        + ["--out", str(out), "--group", "planar:shifts", "planar:C4"]
    )
    assert rc == 0
    rep = json.loads((out / "audit.json").read_text())
    anch, twin = rep["models"]["vit_polyphase"], rep["models"]["vit"]
    assert anch["shifts"]["error"]["out"]["max"] < 1e-5 and anch["shifts"]["consistency"]["out"] == 1.0
    assert twin["shifts"]["error"]["out"]["max"] > 1e-3
    assert set(anch["groups"]) == {"planar:shifts", "planar:C4"}
    for f in ("shifts.png", "rotation.png", "scale.png", "shear.png", "groups_vit.png"):
        assert (out / f).stat().st_size > 1000
    assert "consistency over all shifts 100.0%" in capsys.readouterr().out


def test_audit_image_model_errors(tmp_path, digits, capsys):
    rc = main(["audit", "--model", "vitt", "--data", str(digits), "--out", str(tmp_path / "a")])
    err = capsys.readouterr().err.strip()
    assert (
        rc != 0 and err == "equivar audit: error: --model 'vitt': neither a checkpoint file nor a registered model name"
    )


def test_two_checkpoints_are_labelled_by_their_file_names(tmp_path, digits, capsys):
    """Two runs' checkpoints share the name model.pt: each line, plot and report entry names its own file."""
    import torch

    from equivar.models import build_model

    for run, name in (("anchored", "vit_polyphase"), ("twin", "vit")):
        torch.manual_seed(0)
        m = build_model(name)
        (tmp_path / run).mkdir()
        torch.save({"hparams": m.hparams, "state_dict": m.state_dict()}, tmp_path / run / "model.pt")
    out = tmp_path / "audit"
    models = f"{tmp_path / 'anchored' / 'model.pt'},{tmp_path / 'twin' / 'model.pt'}"
    rc = main(
        ["audit", "--model", models, "--data", str(digits), "--max-structures", "1", "--n-elements", "2"]
        + ["--out", str(out), "--group", "planar:shifts"]
    )
    assert rc == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if "consistency over all shifts" in ln]
    assert [ln.split(":")[0] for ln in lines] == ["anchored/model", "twin/model"]
    assert lines[0].startswith("anchored/model: consistency over all shifts 100.0%")
    rep = json.loads((out / "audit.json").read_text())
    assert list(rep["models"]) == ["anchored/model", "twin/model"]
    assert rep["models"]["twin/model"]["shifts"]["error"]["out"]["max"] > 1e-3
    assert (out / "groups_anchored_model.png").is_file() and (out / "groups_twin_model.png").is_file()


def test_model_labels(tmp_path):
    from equivar.cli._audit_images import model_labels

    for p in ("a/model.pt", "b/model.pt", "x.pt", "c/a/model.pt"):
        (tmp_path / p).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / p).touch()
    f = lambda p: str(tmp_path / p)  # noqa: E731
    assert model_labels([f("x.pt"), "vit"]) == ["x", "vit"]
    assert model_labels([f("a/model.pt"), f("b/model.pt")]) == ["a/model", "b/model"]
    assert model_labels([f("a/model.pt"), f("c/a/model.pt")]) == [tmp_path.name + "/a/model", "c/a/model"]
    assert model_labels([f("a/model.pt"), f("a/model.pt")]) == ["model", "model#2"]
    assert model_labels(["vit", "vit"]) == ["vit", "vit#2"]
