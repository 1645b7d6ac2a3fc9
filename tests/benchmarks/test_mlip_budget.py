"""benchmarks/mlip_budget.py's data handling: rMD17 npz and extxyz read to eV, one-line errors for bad paths and
labels, the train/test overlap check and the error metrics (the trainings themselves are the benchmark)."""

import importlib.util
import os
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ETHANOL = os.path.join(ROOT, "..", "shared", "data", "rmd17", "rmd17_ethanol_train_01.npz")


def _load():
    spec = importlib.util.spec_from_file_location("mlip_budget", os.path.join(ROOT, "benchmarks", "mlip_budget.py"))
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


mb = _load()


def _write_npz(path, n_frames=4, n_atoms=3, seed=0):
    rng = np.random.default_rng(seed)
    np.savez(
        path,
        nuclear_charges=np.array([6, 1, 8][:n_atoms], dtype=np.uint8),
        coords=rng.normal(size=(n_frames, n_atoms, 3)),
        energies=rng.normal(size=n_frames) * 10 - 1000.0,
        forces=rng.normal(size=(n_frames, n_atoms, 3)),
    )
    return np.load(path)


def _write_xyz(path, frames_spec, energy_key="energy", forces_key="forces"):
    import ase.io
    from ase import Atoms

    frames = []
    for z, pos, e, f in frames_spec:
        a = Atoms(numbers=z, positions=pos)
        if e is not None:
            a.info[energy_key] = e
        if f is not None:
            a.arrays[forces_key] = np.asarray(f)
        frames.append(a)
    ase.io.write(path, frames, format="extxyz")


def test_npz_is_read_in_ev(tmp_path):
    raw = _write_npz(tmp_path / "a.npz")
    d = mb.load_frames(str(tmp_path / "a.npz"))
    assert len(d) == 4 and [list(z) for z in d.z] == [[6, 1, 8]] * 4
    np.testing.assert_allclose(d.energy, raw["energies"] * 0.0433641, rtol=1e-15)
    np.testing.assert_allclose(d.forces[2], raw["forces"][2] * 0.0433641, rtol=1e-15)
    np.testing.assert_array_equal(d.pos[1], raw["coords"][1])


def test_extxyz_keys_and_variable_sizes(tmp_path):
    rng = np.random.default_rng(1)
    spec = [
        ([1, 8, 1], rng.normal(size=(3, 3)), -14.5, rng.normal(size=(3, 3))),
        ([6, 1, 1, 1, 1], rng.normal(size=(5, 3)), -24.25, rng.normal(size=(5, 3))),
    ]
    _write_xyz(tmp_path / "a.xyz", spec, "DFT_energy", "DFT_forces")
    d = mb.load_frames(str(tmp_path / "a.xyz"), "DFT_energy", "DFT_forces")
    np.testing.assert_allclose(d.energy, [-14.5, -24.25])
    np.testing.assert_allclose(d.forces[1], spec[1][3], atol=1e-7)
    assert [len(z) for z in d.z] == [3, 5]
    # plain 'energy'/'forces' keys (ASE moves them to a calculator) are read too
    _write_xyz(tmp_path / "b.xyz", spec)
    np.testing.assert_allclose(mb.load_frames(str(tmp_path / "b.xyz")).energy, [-14.5, -24.25])


@pytest.mark.parametrize(
    "case, match",
    [
        ("missing", r"missing\.npz: no such file$"),
        ("dir", r": not a regular file$"),
        ("npz_key", r"bad\.npz: no key 'forces'"),
        ("no_energy", r"a\.xyz: frame 1 has no energy under key 'energy' \(--energy-key\)$"),
        ("no_forces", r"a\.xyz: frame 0 has no forces under key 'forces' \(--forces-key\)$"),
        ("isolated", r"a\.xyz: frame 0 is an isolated atom"),
        ("garbage", r"g\.xyz: cannot read with ase\.io\.read"),
        ("nan", r"a\.npz: frame 2 has a non-finite energy or force label$"),
    ],
)
def test_bad_data_one_line_error(tmp_path, case, match):
    p = tmp_path / "a.xyz"
    pos = np.zeros((2, 3))
    pos[1, 0] = 1.0
    if case == "missing":
        p = tmp_path / "missing.npz"
    elif case == "dir":
        p = tmp_path
    elif case == "npz_key":
        p = tmp_path / "bad.npz"
        np.savez(p, nuclear_charges=np.array([1]), coords=np.zeros((1, 1, 3)), energies=np.zeros(1))
    elif case == "no_energy":
        _write_xyz(p, [([1, 1], pos, -1.0, np.zeros((2, 3))), ([1, 1], pos, None, np.zeros((2, 3)))])
    elif case == "no_forces":
        _write_xyz(p, [([1, 1], pos, -1.0, None)])
    elif case == "isolated":
        _write_xyz(p, [([1], pos[:1], -1.0, np.zeros((1, 3)))])
    elif case == "garbage":
        p = tmp_path / "g.xyz"
        p.write_text("not\na file\n")
    elif case == "nan":
        p = tmp_path / "a.npz"
        _write_npz(p)
        d = dict(np.load(p))
        d["energies"][2] = np.nan
        np.savez(p, **d)
    with pytest.raises(mb.DataError, match=match) as err:
        mb.load_frames(str(p))
    assert "\n" not in str(err.value)


def test_overlapping_test_frames_are_left_out(tmp_path):
    _write_npz(tmp_path / "tr.npz", n_frames=5, seed=0)
    raw = dict(np.load(tmp_path / "tr.npz"))
    te = {k: v.copy() for k, v in raw.items()}
    te["coords"][[0, 3]] = np.random.default_rng(9).normal(size=(2, 3, 3))  # frames 1, 2, 4 are training frames
    te["coords"][2] += 1e-4  # moved by more than the 1e-6 Å rounding: a different frame
    np.savez(tmp_path / "te.npz", **te)
    keep = mb.held_out_test_indices(mb.load_frames(str(tmp_path / "tr.npz")), mb.load_frames(str(tmp_path / "te.npz")))
    assert keep.tolist() == [0, 2, 3]


def test_errors_per_atom_and_components(tmp_path):
    spec = [
        ([1, 1], np.array([[0, 0, 0], [1, 0, 0.0]]), -1.0, np.zeros((2, 3))),
        ([8, 1, 1, 1], np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1.0]]), -2.0, np.ones((4, 3))),
    ]
    _write_xyz(tmp_path / "a.xyz", spec)
    d = mb.load_frames(str(tmp_path / "a.xyz"))
    e_pred = np.array([-1.002, -1.992])  # errors -2 meV (2 atoms) and +8 meV (4 atoms)
    f_pred = [np.full((2, 3), 0.003), np.ones((4, 3))]
    r = mb.errors(e_pred, f_pred, d, [0, 1])
    assert r["n"] == 2
    assert r["e_mae_mev"] == pytest.approx(5.0)
    assert r["e_mae_mev_per_atom"] == pytest.approx(1.5)  # mean(2/2, 8/4), not 5 meV / 3 atoms
    assert r["e_rmse_mev_per_atom"] == pytest.approx(np.sqrt((1.0 + 4.0) / 2))
    assert r["f_mae_mev_per_a"] == pytest.approx(3.0 * 6 / 18)  # 6 components off by 3 meV/Å, 12 exact
    assert r["f_rmse_mev_per_a"] == pytest.approx(np.sqrt(9.0 * 6 / 18))
    r1 = mb.errors(e_pred, f_pred, d, [1])  # only the kept frames count
    assert r1["n"] == 1 and r1["e_mae_mev"] == pytest.approx(8.0) and r1["f_mae_mev_per_a"] == pytest.approx(0.0)


def test_default_names():
    assert mb.default_name("/x/rmd17/rmd17_ethanol_train_01.npz") == "rmd17_ethanol_01"
    assert mb.default_name("/x/botnet/3bpa/train_300K.xyz") == "3bpa_300K"


def test_bad_path_exits_before_creating_anything(tmp_path, capsys):
    work = tmp_path / "work"
    with pytest.raises(SystemExit, match=r"^error: .*nope\.xyz: no such file$"):
        mb.main(["--train", str(tmp_path / "nope.xyz"), "--workdir", str(work), "--budget-s", "1"])
    assert not work.exists()


@pytest.mark.skipif(not os.path.exists(ETHANOL), reason="rMD17 ethanol not in ../shared/data")
def test_default_data_is_ethanol_split_01():
    d = mb.load_frames(mb.TRAIN_FILE)
    assert os.path.samefile(mb.TRAIN_FILE, ETHANOL) and len(d) == 1000
    assert sorted(d.z[0].tolist()) == [1, 1, 1, 1, 1, 1, 6, 6, 8]
