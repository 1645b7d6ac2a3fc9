"""``equivar sample``: molecules from a molecule_diffusion checkpoint -> SDF + metrics; refusals."""

from __future__ import annotations

import csv
import os

import pytest
import torch

pytest.importorskip("rdkit")

from equivar.cli.main import main  # noqa: E402
from equivar.data import rdkit_chem  # noqa: E402
from equivar.models import EGNN, EQGATDiff  # noqa: E402
from equivar.tasks import build_task  # noqa: E402
from equivar.tasks.molecules import encode_graphs, marginals  # noqa: E402
from equivar.train import model_payload, save_checkpoint  # noqa: E402


@pytest.fixture(autouse=True)
def _keep_threads():
    n = torch.get_num_threads()  # --threads sets the process's torch threads
    yield
    torch.set_num_threads(n)


@pytest.fixture
def checkpoint(tmp_path, shared_data):
    data = {"root": os.path.join(shared_data, "qm9"), "limit": 60, "cache_dir": str(tmp_path)}
    task = build_task({"name": "molecule_diffusion", "timesteps": 20, "data": data})
    pri = marginals(encode_graphs(task.data.load(log=lambda s: None)["train"]))
    torch.manual_seed(0)
    model = EQGATDiff(s_dim=8, v_dim=2, edge_dim=4, num_layers=1)
    meta = {"task": "molecule_diffusion", "method": "eqgat_diff", "timesteps": 20, "priors": pri, "data": data}
    path = str(tmp_path / "model.pt")
    save_checkpoint(path, model_payload(model, meta))
    return path


def test_sample_writes_sdf_and_table(checkpoint, tmp_path, capsys):
    sdf, table = str(tmp_path / "m.sdf"), str(tmp_path / "m.csv")
    assert (
        main(
            ["sample", "--model", checkpoint, "-n", "4", "--steps", "5", "-o", sdf, "--table", table, "--threads", "1"]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "atom_stability" in out and "wrote" in out
    mols = list(rdkit_chem().SDMolSupplier(sdf, sanitize=False, removeHs=False))
    assert len(mols) == 4 and all(m.GetNumConformers() == 1 for m in mols)
    with open(table) as f:
        (row,) = list(csv.DictReader(f))
    assert int(row["molecules"]) == 4 and 0.0 <= float(row["atom_stability"]) <= 1.0
    # the seed fixes the molecules
    sdf2 = str(tmp_path / "m2.sdf")
    assert (
        main(["sample", "--model", checkpoint, "-n", "4", "--steps", "5", "-o", sdf2, "--no-novelty", "--threads", "1"])
        == 0
    )
    assert open(sdf).read() == open(sdf2).read()


def test_sample_refusals(checkpoint, tmp_path, capsys):
    assert main(["sample", "--model", checkpoint, "-n", "2", "-o", checkpoint]) == 2
    assert "is the input --model file" in capsys.readouterr().err
    other = str(tmp_path / "egnn.pt")
    save_checkpoint(other, model_payload(EGNN(hidden_dim=4, num_layers=1), {"task": "dynamics"}))
    assert main(["sample", "--model", other, "-n", "2", "-o", str(tmp_path / "x.sdf")]) == 2
    assert "not a molecule_diffusion model (its task is 'dynamics')" in capsys.readouterr().err
    assert main(["sample", "--model", checkpoint, "-n", "0", "-o", str(tmp_path / "x.sdf")]) == 2


def test_sample_checks_flags_and_outputs_before_sampling(checkpoint, tmp_path, capsys):
    sdf = str(tmp_path / "m.sdf")
    for threads in ("0", "-3"):
        assert main(["sample", "--model", checkpoint, "-n", "2", "-o", sdf, "--threads", threads]) == 2
        err = capsys.readouterr().err
        assert f"--threads must be >= 1, got {threads}" in err and "Traceback" not in err, err
    missing = str(tmp_path / "no_such_dir" / "t.csv")
    assert main(["sample", "--model", checkpoint, "-n", "2", "-o", sdf, "--table", missing, "--no-novelty"]) == 2
    err = capsys.readouterr().err
    assert "--table" in err and "does not exist" in err and "Traceback" not in err, err
    assert not os.path.exists(sdf)  # refused before sampling: nothing written
    assert main(["sample", "--model", checkpoint, "-n", "2", "-o", str(tmp_path)]) == 2
    assert "is a directory" in capsys.readouterr().err
    # --steps above the model's T: the sampler runs T steps and the report says T
    assert main(["sample", "--model", checkpoint, "-n", "2", "--steps", "1000", "-o", sdf, "--no-novelty"]) == 0
    assert "(20 steps," in capsys.readouterr().out


def test_sample_refuses_to_replace_existing_outputs_without_overwrite(checkpoint, tmp_path, capsys):
    """An existing -o or --table file is one line naming the flag and the path, refused before sampling and left
    as it was; --overwrite replaces it (atomically, a whole SDF)."""
    sdf, table = tmp_path / "m.sdf", tmp_path / "m.csv"
    sdf.write_text("keep me")
    base = ["sample", "--model", checkpoint, "-n", "2", "--steps", "2", "--no-novelty", "--threads", "1"]
    assert main([*base, "-o", str(sdf)]) == 2
    err = capsys.readouterr().err
    assert f"-o {sdf}: already exists; pass --overwrite to replace it" in err and "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1 and sdf.read_text() == "keep me"
    table.write_text("keep me too")
    assert main([*base, "-o", str(tmp_path / "new.sdf"), "--table", str(table)]) == 2
    assert f"--table {table}: already exists" in capsys.readouterr().err
    assert not (tmp_path / "new.sdf").exists() and table.read_text() == "keep me too"
    assert main([*base, "-o", str(sdf), "--table", str(table), "--overwrite"]) == 0
    mols = list(rdkit_chem().SDMolSupplier(str(sdf), sanitize=False, removeHs=False))
    assert len(mols) == 2 and all(m is not None for m in mols)
    with open(table) as f:
        assert int(next(csv.DictReader(f))["molecules"]) == 2


def test_sample_never_replaces_the_checkpoint_through_a_link(checkpoint, tmp_path, capsys):
    """-o / --table naming the --model checkpoint by another path (a symbolic or hard link) is refused, even with
    --overwrite, and the checkpoint stays as it was."""
    before = open(checkpoint, "rb").read()
    link, hard = str(tmp_path / "link.pt"), str(tmp_path / "hard.pt")
    os.symlink(checkpoint, link)
    os.link(checkpoint, hard)
    base = ["sample", "-n", "2", "--steps", "2", "--no-novelty", "--threads", "1", "--overwrite"]
    for model, flag, out in ((link, "-o", checkpoint), (checkpoint, "-o", link), (hard, "--table", checkpoint)):
        extra = ["-o", str(tmp_path / "m.sdf"), "--table", out] if flag == "--table" else ["-o", out]
        assert main([*base, "-m", model, *extra]) == 2
        err = capsys.readouterr().err
        assert f"{flag} {out}" in err and "is the input --model file" in err and "Traceback" not in err, err
        assert len(err.strip().splitlines()) == 1
    assert open(checkpoint, "rb").read() == before and os.path.islink(link)
    assert not (tmp_path / "m.sdf").exists()


@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]])
@pytest.mark.parametrize("exists", [False, True])
def test_sample_refuses_the_same_file_for_sdf_and_table(checkpoint, tmp_path, capsys, overwrite, exists):
    """-o and --table naming one file (the same name, or a link to it) would lose the molecules: refused, one line
    naming both flags, before sampling."""
    sdf, link = tmp_path / "x.sdf", str(tmp_path / "link.csv")
    if exists:
        sdf.write_text("keep me")
    os.symlink(str(sdf), link)
    base = ["sample", "--model", checkpoint, "-n", "2", "--steps", "2", "--no-novelty", "--threads", "1", *overwrite]
    for table in (str(sdf), link):
        assert main([*base, "-o", str(sdf), "--table", table]) == 2
        err = capsys.readouterr().err
        assert f"-o {sdf} and --table {table}: the same file" in err and "Traceback" not in err, err
        assert len(err.strip().splitlines()) == 1
    assert (sdf.read_text() == "keep me") if exists else not sdf.exists()


def test_qm9_limit_zero_is_refused_not_read_as_all():
    with pytest.raises(ValueError, match=r"task.data.limit must be an integer >= 1 or null \(all\), got 0"):
        build_task({"name": "molecule_diffusion", "data": {"limit": 0}})
    with pytest.raises(ValueError, match=r"max_valid must be an integer >= 0"):
        build_task({"name": "molecule_diffusion", "data": {"max_valid": -1}})


def test_eval_on_a_molecule_diffusion_model_points_to_sample(checkpoint, capsys):
    assert main(["eval", "--model", checkpoint]) == 2
    err = capsys.readouterr().err
    assert "is a molecule-diffusion model" in err and "equivar sample" in err and "Traceback" not in err, err


def test_audit_names_what_it_takes_for_a_molecule_diffusion_model(checkpoint, tmp_path, capsys):
    assert main(["audit", "--model", checkpoint, "--data", "test", "--out", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err
    assert "is a molecule-diffusion model" in err and "equivar audit takes potentials" in err, err
    assert "Traceback" not in err and "holds atomic structures" not in err, err


def _relative_run(tmp_path, shared_data):
    """A checkpoint at proj/runs/q/model.pt of a run trained in proj/ (output_dir runs/q) whose task.data names the
    QM9 folder and the bond cache relative to proj/, as an older checkpoint recorded them."""
    proj = tmp_path / "proj"
    (proj / "runs" / "q").mkdir(parents=True)
    data = {"root": os.path.relpath(os.path.join(shared_data, "qm9"), proj), "limit": 60, "cache_dir": "cache"}
    absolute = {**data, "root": os.path.join(shared_data, "qm9"), "cache_dir": str(tmp_path / "abs_cache")}
    task = build_task({"name": "molecule_diffusion", "timesteps": 20, "data": absolute})
    pri = marginals(encode_graphs(task.data.load(log=lambda s: None)["train"]))
    torch.manual_seed(0)
    model = EQGATDiff(s_dim=8, v_dim=2, edge_dim=4, num_layers=1)
    meta = {"task": "molecule_diffusion", "method": "eqgat_diff", "timesteps": 20, "priors": pri, "data": data,
            "config": {"output_dir": "runs/q"}}  # fmt: skip
    path = proj / "runs" / "q" / "model.pt"
    save_checkpoint(str(path), model_payload(model, meta))
    return proj, path


def test_sample_resolves_a_relative_data_root_as_train_read_it(tmp_path, shared_data, monkeypatch, capsys):
    """Run from another directory, `equivar sample` finds the training molecules (novelty) under the QM9 root and
    writes the bond cache where the relative paths pointed when training ran in proj/, not under the cwd."""
    proj, model = _relative_run(tmp_path, shared_data)
    elsewhere = tmp_path / "elsewhere" / "deeper"
    elsewhere.mkdir(parents=True)
    monkeypatch.chdir(elsewhere)
    argv = ["sample", "--model", str(model), "-n", "2", "--steps", "2", "-o", "m.sdf", "--threads", "1"]
    assert main(argv) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "novelty" in out and (elsewhere / "m.sdf").is_file()
    assert any((proj / "cache").iterdir()) and not (elsewhere / "cache").exists()
    # the helper: absolute paths kept; a checkpoint whose training directory cannot be told keeps them as given
    from equivar.cli.sample import training_data_paths

    meta = {"config": {"output_dir": "runs/q"}}
    d = {"root": "../data/qm9", "cache_dir": None}
    assert training_data_paths(d, meta, str(model))["root"] == os.path.normpath(proj / ".." / "data" / "qm9")
    assert training_data_paths(d, {"config": {"output_dir": "."}}, str(model))["root"] == os.path.normpath(
        proj / "runs" / "q" / ".." / "data" / "qm9"
    )
    for other in ({"config": {"output_dir": "runs/other"}}, {"config": {"output_dir": "/abs/q"}}, {}):
        assert training_data_paths(d, other, str(model)) == d
    assert training_data_paths({"root": "/x/qm9"}, meta, str(model)) == {"root": "/x/qm9"}


def test_training_records_the_data_paths_it_read(tmp_path, shared_data, monkeypatch):
    """The molecule task's checkpoint metadata holds root and cache_dir absolute (resolved against the directory
    training ran in), so that a sample from anywhere reads the same files."""
    import types

    proj = tmp_path / "proj"
    proj.mkdir()
    monkeypatch.chdir(proj)
    root = os.path.relpath(os.path.join(shared_data, "qm9"), proj)
    task = build_task({"name": "molecule_diffusion", "timesteps": 20, "data": {"root": root, "limit": 60,
                                                                               "cache_dir": "cache"}})  # fmt: skip
    cfg = types.SimpleNamespace(seed=0, dtype="float32", to_dict=lambda: {"output_dir": "runs/q"})
    data = task.load_data(cfg, log=lambda s: None).metadata["data"]
    assert data["root"] == os.path.join(shared_data, "qm9") and data["cache_dir"] == str(proj / "cache")
    assert data["limit"] == 60 and data["split"] == "edm"
