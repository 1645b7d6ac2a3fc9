"""Values, not just "it ran": what `equivar train | eval` write is checked against independent references.

- the predictions file of ``equivar eval`` holds the model's own energies, forces (sign, eV/Å) and stress,
  as a fresh :class:`~equivar.calculators.EquivarCalculator` computes them, and those forces are minus
  the finite-difference gradient of its energy;
- the error tables (``eval --table``, the training run's ``errors.csv`` and ``metrics.csv``) equal MAE / RMSE
  computed with numpy from the predictions and the reference labels;
- the statistics handed to the model (E0s, shift, scale, average neighbour count) equal values computed by
  hand from the training file with ASE's neighbour list.
"""

import csv

import ase.io
import numpy as np
import pytest
import yaml
from ase.neighborlist import neighbor_list
from helpers import tiny_config_dict, write_tiny_dataset

from equivar.cli.main import main

R_MAX = 4.0
#: the real model (the stand-in potential does not record the statistics it is given), as small as it goes
MACE_TINY = {
    "name": "mace",
    "num_channels": 8,
    "max_L": 0,
    "max_ell": 1,
    "correlation": 2,
    "num_interactions": 1,
    "radial_mlp": [16],
}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One epoch of a tiny MACE (float64) on 16 Cu/Au frames with a fixed validation file."""
    d = tmp_path_factory.mktemp("values")
    train = write_tiny_dataset(str(d / "train.xyz"), n_frames=16)
    valid = write_tiny_dataset(str(d / "valid.xyz"), n_frames=6, with_isolated=False, start=3)
    test = write_tiny_dataset(str(d / "test.xyz"), n_frames=6, with_isolated=False, start=5)
    cfg = tiny_config_dict(train, str(d / "run"), epochs=1)
    cfg["data"]["valid_file"] = valid
    cfg["data"]["r_max"] = R_MAX
    cfg["data"]["test_files"] = {"held_out": test}
    cfg["model"] = dict(MACE_TINY)
    (d / "c.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["train", "--config", str(d / "c.yaml")]) == 0
    return d


def _rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def _numpy_errors(frames):
    """MAE / RMSE in meV units of predicted (the frames' calculator) against REF_* labels, by numpy."""
    de = np.array([a.get_potential_energy() - a.info["REF_energy"] for a in frames])
    n = np.array([len(a) for a in frames])
    df = np.concatenate([(a.get_forces() - a.arrays["REF_forces"]).ravel() for a in frames])
    return {
        "mae_e": 1e3 * np.abs(de).mean(),
        "rmse_e": 1e3 * np.sqrt((de**2).mean()),
        "mae_e_per_atom": 1e3 * np.abs(de / n).mean(),
        "rmse_e_per_atom": 1e3 * np.sqrt(((de / n) ** 2).mean()),
        "mae_f": 1e3 * np.abs(df).mean(),
        "rmse_f": 1e3 * np.sqrt((df**2).mean()),
    }


def _check_rows(rows, frames, set_name):
    """Every row of ``set_name`` (each config_type and 'all') against numpy on the matching frames."""
    mine = [r for r in rows if r["set"] == set_name]
    assert mine, f"no rows for set {set_name!r} in {rows}"
    for r in mine:
        sub = [a for a in frames if r["config_type"] in ("all", a.info["config_type"])]
        assert int(r["n"]) == len(sub)
        ref = _numpy_errors(sub)
        for k, v in ref.items():
            assert float(r[k]) == pytest.approx(v, rel=1e-6, abs=1e-6), (set_name, r["config_type"], k)


def test_eval_predictions_are_the_models_outputs(run, monkeypatch):
    """Sign and units: the predictions file equals a fresh calculator's results, forces = -dE/dx."""
    from equivar.calculators import EquivarCalculator

    monkeypatch.chdir(run)
    assert main(["eval", "--model", "run/model.pt", "--data", "test.xyz", "-o", "p.xyz", "--table", "t.csv"]) == 0
    pred = ase.io.read("p.xyz", ":")
    ref = ase.io.read("test.xyz", ":")
    assert len(pred) == len(ref) == 6
    calc = EquivarCalculator("run/model.pt")
    for p, a in zip(pred, ref):
        np.testing.assert_allclose(p.positions, a.positions, atol=1e-7)
        assert p.info["REF_energy"] == pytest.approx(a.get_potential_energy(), abs=1e-7)
        np.testing.assert_allclose(p.arrays["REF_forces"], a.get_forces(), atol=1e-7)
        a.calc = calc
        assert p.get_potential_energy() == pytest.approx(a.get_potential_energy(), abs=1e-7)
        np.testing.assert_allclose(p.get_forces(), a.get_forces(), atol=1e-7)
        np.testing.assert_allclose(p.get_stress(), a.get_stress(), atol=1e-7)
    # the calculator's forces are -dE/dx (eV/Å): central differences of its energy, two components
    a = ref[0]
    f = a.get_forces()
    h = 1e-4
    for i, k in ((0, 0), (3, 2)):
        e = []
        for s in (+1, -1):
            b = a.copy()
            b.positions[i, k] += s * h
            b.calc = calc
            e.append(b.get_potential_energy())
        assert f[i, k] == pytest.approx(-(e[0] - e[1]) / (2 * h), rel=1e-5, abs=1e-7)
    # the table printed and written by eval: numpy on the predictions file
    _check_rows(_rows("t.csv"), pred, "test")


def test_training_error_tables_match_numpy(run):
    """errors.csv (selected model on train/valid/test) and metrics.csv (epoch 1 validation, EMA weights) against
    numpy on that model's predictions."""
    out = run / "run"
    rows = _rows(out / "errors.csv")
    _check_rows(rows, ase.io.read(out / "predictions_held_out.xyz", ":"), "held_out")
    # the validation set through `equivar eval` (the model predictions as written, checked above), then numpy
    argv = ["eval", "--model", str(out / "model.pt"), "--data", str(run / "valid.xyz"), "-o", str(run / "v.xyz")]
    assert main(argv) == 0
    valid = ase.io.read(run / "v.xyz", ":")
    _check_rows(rows, valid, "valid")
    # one epoch: model.pt holds the EMA weights validated in epoch 1, so metrics.csv's valid_* are these errors
    (last,) = _rows(out / "metrics.csv")
    for k, v in _numpy_errors(valid).items():
        assert float(last[f"valid_{k}"]) == pytest.approx(v, rel=1e-6), k


def test_statistics_handed_to_the_model(run):
    """E0s, shift (mean of (E - sum E0) / N), scale (RMS force) and neighbours per atom, by hand."""
    from equivar.train import load_checkpoint

    frames = ase.io.read(run / "train.xyz", ":")
    iso = {int(a.numbers[0]): a.get_potential_energy() for a in frames if a.info["config_type"] == "IsolatedAtom"}
    md = [a for a in frames if a.info["config_type"] != "IsolatedAtom"]
    assert len(md) == 16 and sorted(iso) == [29, 79]
    shift = np.mean([(a.get_potential_energy() - sum(iso[int(z)] for z in a.numbers)) / len(a) for a in md])
    scale = np.sqrt(np.mean(np.concatenate([a.get_forces().ravel() for a in md]) ** 2))
    avg = sum(len(neighbor_list("i", a, R_MAX)) for a in md) / sum(len(a) for a in md)
    assert abs(shift) > 0.1 and avg > 1 and scale > 0.1  # the checks below can tell the sign and the inverse apart
    hp = load_checkpoint(str(run / "run" / "model.pt"))["hparams"]
    assert hp["atomic_numbers"] == [29, 79]
    np.testing.assert_allclose(hp["atomic_energies"], [iso[29], iso[79]], rtol=1e-12)
    assert hp["shift"] == pytest.approx(shift, rel=1e-10)
    assert hp["scale"] == pytest.approx(scale, rel=1e-10)
    assert hp["avg_num_neighbors"] == pytest.approx(avg, rel=1e-12)
    assert hp["r_max"] == R_MAX
    # and the model uses them: a lone atom (no neighbours) has exactly its E0 (the shift is weighted to 0 there)
    from equivar.calculators import EquivarCalculator

    calc = EquivarCalculator(str(run / "run" / "model.pt"))
    for z in (29, 79):
        atom = ase.Atoms(numbers=[z], positions=[[0.0, 0.0, 0.0]])
        atom.calc = calc
        assert atom.get_potential_energy() == pytest.approx(iso[z], rel=1e-12)
