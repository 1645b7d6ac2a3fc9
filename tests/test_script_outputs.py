"""The scripts under ``scripts/`` never replace an existing output file unless ``--overwrite`` is given: one line
naming the flag and the path, the file left as it was; with ``--overwrite`` the file is written (atomically)."""

from __future__ import annotations

import importlib.util
import json
import os

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PNG = b"\x89PNG\r\n\x1a\n"


def _script(name):
    spec = importlib.util.spec_from_file_location(f"script_{name}", os.path.join(ROOT, "scripts", f"{name}.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _refused(capsys, mod, argv, flag, path):
    assert mod.main(argv) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"error: {flag} {path}: already exists; pass --overwrite to replace it", err


@pytest.fixture
def predictions(tmp_path):
    g = np.random.default_rng(0)
    path = str(tmp_path / "p.npz")
    np.savez(path, pred=g.normal(size=(3, 4, 5, 2)), target=g.normal(size=(4, 5, 2)),
             target_mask=np.ones(4, bool), ptr=np.array([0, 2, 4]))  # fmt: skip
    return path


def test_trajectory_sample_metrics_json(predictions, tmp_path, capsys):
    mod = _script("trajectory_sample_metrics")
    out = tmp_path / "m.json"
    out.write_text("old")
    _refused(capsys, mod, [predictions, "--json", str(out)], "--json", out)
    assert out.read_text() == "old"
    assert mod.main([predictions, "--json", str(out), "--overwrite"]) == 0
    assert json.loads(out.read_text())["k"] == 3 and json.loads(out.read_text())["scenes"] == 2
    assert mod.main([predictions, "--json", predictions, "--overwrite"]) == 2  # never the input, even so
    assert "is the input predictions file" in capsys.readouterr().err


def test_plot_trajectory_samples_out(predictions, tmp_path, capsys):
    mod = _script("plot_trajectory_samples")
    out = tmp_path / "s.png"
    out.write_bytes(b"old")
    _refused(capsys, mod, [predictions, "--scenes", "0", "--out", str(out)], "--out", out)
    assert out.read_bytes() == b"old"
    assert mod.main([predictions, "--scenes", "0", "1", "--out", str(out), "--overwrite"]) == 0
    assert out.read_bytes()[:8] == PNG
    before = open(predictions, "rb").read()
    observed = str(tmp_path / "obs.npz")
    np.savez(observed, pos=np.zeros((4, 3, 2)))
    link = str(tmp_path / "link.npz")
    os.symlink(predictions, link)
    for argv, flag in (([predictions, "--out", predictions], "predictions"), ([predictions, "--out", link], "predictions"),
                       ([predictions, "--observed", observed, "--out", observed], "--observed")):  # fmt: skip
        assert mod.main([*argv, "--scenes", "0", "--overwrite"]) == 2  # never an input, even so
        err = capsys.readouterr().err
        assert f"is the input {flag} file" in err and len(err.strip().splitlines()) == 1, err
    assert open(predictions, "rb").read() == before and os.path.islink(link)


def test_plot_audit_comparison_out(tmp_path, capsys):
    mod = _script("plot_audit_comparison")
    out = tmp_path / "a.png"
    out.write_bytes(b"old")
    _refused(capsys, mod, ["--audit", f"A={tmp_path}", "--out", str(out)], "--out", out)
    assert out.read_bytes() == b"old"
    audit = tmp_path / "audit.json"
    audit.write_text("{}")
    assert mod.main(["--audit", f"A={tmp_path}", "--out", str(audit), "--overwrite"]) == 2  # never an input
    err = capsys.readouterr().err
    assert f"--out {audit}: is the input --audit file" in err and len(err.strip().splitlines()) == 1, err
    assert audit.read_text() == "{}"


def test_plot_molecules_out(tmp_path, capsys):
    pytest.importorskip("rdkit")
    from equivar.tasks.molecules import GeneratedMolecule
    from equivar.tasks.molecules._task import write_sdf

    mod = _script("plot_molecules")
    sdf, out = str(tmp_path / "m.sdf"), tmp_path / "m.png"
    write_sdf(sdf, [GeneratedMolecule(np.array([1, 1]), np.array([[0.0, 0, 0], [0.74, 0, 0]]))])
    out.write_bytes(b"old")
    _refused(capsys, mod, [sdf, "--out", str(out)], "--out", out)
    assert out.read_bytes() == b"old"
    assert mod.main([sdf, "--out", str(out), "--overwrite"]) == 0
    assert out.read_bytes()[:8] == PNG
    before = open(sdf).read()
    other = str(tmp_path / "o.sdf")
    write_sdf(other, [GeneratedMolecule(np.array([1, 1]), np.array([[0.0, 0, 0], [0.75, 0, 0]]))])
    for argv, path in (([sdf, "--out", sdf], sdf), ([sdf, other, "--out", other], other)):
        assert mod.main([*argv, "--overwrite"]) == 2  # never an input SDF, even so
        err = capsys.readouterr().err
        assert f"--out {path}: is the input sdf file" in err and len(err.strip().splitlines()) == 1, err
    assert open(sdf).read() == before
