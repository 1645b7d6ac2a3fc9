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
