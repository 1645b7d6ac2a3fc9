"""Readers: extxyz keys, weights, config types, rMD17 units, and clear errors for bad input."""

import os

import ase
import ase.io
import numpy as np
import pytest

from equivar import data


def _frame(n=3, seed=0, energy=-1.0, **info):
    rng = np.random.default_rng(seed)
    a = ase.Atoms("H2O"[:n] if n <= 3 else "C" * n, positions=rng.normal(size=(n, 3)) * 1.5)
    a.info["REF_energy"] = energy
    a.arrays["REF_forces"] = rng.normal(size=(n, 3))
    a.info.update(info)
    return a


KEYS = data.DataKeys(energy="REF_energy", forces="REF_forces", stress="REF_stress")


def test_extxyz_custom_keys_weights_and_types(tmp_path):
    frames = [_frame(seed=i, energy=-1.0 - i) for i in range(3)]
    frames[1].info["config_type"] = "md"
    frames[1].info["config_weight"] = 2.5
    frames[1].info["config_forces_weight"] = 0.0
    frames[2].cell = np.eye(3) * 8.0
    frames[2].pbc = True
    frames[2].info["REF_stress"] = np.arange(6, dtype=float)  # Voigt xx yy zz yz xz xy
    path = str(tmp_path / "x.xyz")
    ase.io.write(path, frames, format="extxyz")
    cs = data.read_ase(path, keys=KEYS)
    assert len(cs) == 3 and cs[0].source == f"{path}, frame 0"
    assert cs[1].energy == pytest.approx(-2.0)
    np.testing.assert_allclose(cs[0].forces, frames[0].arrays["REF_forces"])
    assert (cs[1].config_type, cs[1].weight, cs[1].forces_weight) == ("md", 2.5, 0.0)
    assert cs[0].config_type == "Default" and cs[0].weight == 1.0
    assert cs[2].pbc.all() and cs[2].stress[1, 2] == 3.0 and cs[2].stress[0, 1] == 5.0 and cs[2].stress[2, 2] == 2.0
    assert cs[0].positions.dtype == np.float64


def test_ase_calculator_results_are_found(tmp_path):
    """ASE moves 'energy'/'forces' of extxyz into a SinglePointCalculator; the default keys still find them."""
    from ase.calculators.singlepoint import SinglePointCalculator

    a = ase.Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.8]])
    a.calc = SinglePointCalculator(a, energy=-3.0, forces=np.ones((2, 3)))
    path = str(tmp_path / "calc.xyz")
    ase.io.write(path, a, format="extxyz")
    (c,) = data.read_dataset(path)
    assert c.energy == -3.0 and np.all(c.forces == 1.0)


@pytest.mark.parametrize("missing", ["REF_energy", "REF_forces"])
def test_missing_label_names_key_and_frame(tmp_path, missing):
    frames = [_frame(seed=i) for i in range(3)]
    store = frames[2].info if missing == "REF_energy" else frames[2].arrays
    del store[missing]
    path = str(tmp_path / "m.xyz")
    ase.io.write(path, frames, format="extxyz")
    with pytest.raises(ValueError, match=rf"m\.xyz, frame 2: missing .*'{missing}'"):
        data.read_ase(path, keys=KEYS)
    # not required -> label is None and the graph masks it
    cs = data.read_ase(path, keys=KEYS, require_energy=False, require_forces=False)
    assert getattr(cs[2], "energy" if missing == "REF_energy" else "forces") is None


@pytest.mark.parametrize("where", ["positions", "energy", "forces"])
def test_non_finite_values_rejected(tmp_path, where):
    frames = [_frame(seed=i) for i in range(2)]
    if where == "positions":
        frames[1].positions[1, 2] = np.nan
    elif where == "energy":
        frames[1].info["REF_energy"] = np.inf
    else:
        frames[1].arrays["REF_forces"][0, 0] = np.inf
    path = str(tmp_path / "nan.xyz")
    ase.io.write(path, frames, format="extxyz")
    with pytest.raises(ValueError, match=rf"nan\.xyz, frame 1: non-finite .*{where}"):
        data.read_ase(path, keys=KEYS)


def test_empty_and_missing_files(tmp_path):
    p = tmp_path / "empty.xyz"
    p.write_text("")
    with pytest.raises(ValueError, match="empty"):
        data.read_dataset(str(p))
    with pytest.raises(FileNotFoundError):
        data.read_dataset(str(tmp_path / "nope.xyz"))


def test_overlapping_atoms_rejected_also_through_pbc(tmp_path):
    a = _frame()
    a.positions[1] = a.positions[0] + [0.05, 0, 0]
    path = str(tmp_path / "o.xyz")
    ase.io.write(path, [_frame(seed=5), a], format="extxyz")
    with pytest.raises(ValueError, match=r"o\.xyz, frame 1: overlapping atoms 0 and 1"):
        data.read_ase(path, keys=KEYS)
    # atom 0 at x=0.02 and atom 1 at x=9.97 in a 10 Å periodic box are 0.05 Å apart
    c = data.Configuration([1, 1], [[0.02, 0, 0], [9.97, 0, 0]], cell=np.eye(3) * 10, pbc=True, source="pbc")
    with pytest.raises(ValueError, match="overlapping"):
        data.validate(c)
    data.validate(data.Configuration([1, 1], [[0.02, 0, 0], [9.97, 0, 0]], source="open"))  # no PBC: fine


def test_isolated_atoms_without_forces_and_far_atom(tmp_path):
    iso = ase.Atoms("O", positions=[[0, 0, 0]])
    iso.info["REF_energy"] = -5.0
    iso.info["config_type"] = "IsolatedAtom"
    far = _frame()
    far.positions[2] += [50.0, 0, 0]  # no neighbour within any r_max: fine
    path = str(tmp_path / "iso.xyz")
    ase.io.write(path, [iso, far], format="extxyz")
    cs = data.read_ase(path, keys=KEYS)
    assert cs[0].is_isolated_atom and np.all(cs[0].forces == 0)
    g = data.config_to_graph(cs[1], r_max=5.0)
    assert not (g["edge_index"] == 2).any()  # atom 2 has no edges
    assert data.e0s_from_isolated_atoms(cs) == {8: -5.0}


def test_check_elements_message():
    c = data.Configuration([1, 8, 29], np.eye(3) * 2, source="f.xyz, frame 4")
    with pytest.raises(
        ValueError, match=r"f\.xyz, frame 4: element\(s\) Cu \(Z=29\) not in the model's elements \[H, O\]"
    ):
        data.check_elements([c], [1, 8])


def test_rmd17_units_and_errors(tmp_path):
    rng = np.random.default_rng(0)
    z = np.array([6, 1, 8], np.uint8)
    coords = rng.normal(size=(4, 3, 3)) * 1.5
    e = rng.normal(size=4) * 10
    f = rng.normal(size=(4, 3, 3))
    path = str(tmp_path / "r.npz")
    np.savez(path, nuclear_charges=z, coords=coords, energies=e, forces=f)
    cs = data.read_dataset(path)
    assert len(cs) == 4 and data.KCAL_MOL_TO_EV == 0.0433641
    assert cs[3].energy == pytest.approx(e[3] * 0.0433641, rel=1e-14)
    np.testing.assert_allclose(cs[1].forces, f[1] * 0.0433641, rtol=1e-14)
    np.savez(path, nuclear_charges=z, coords=coords, energies=e)
    with pytest.raises(ValueError, match=r"r\.npz: missing rMD17 key 'forces'"):
        data.read_rmd17(path)
    coords[2, 0, 0] = np.nan
    np.savez(path, nuclear_charges=z, coords=coords, energies=e, forces=f)
    with pytest.raises(ValueError, match=r"r\.npz, frame 2: non-finite"):
        data.read_rmd17(path)


def test_real_rmd17_and_3bpa(shared_data):
    path = os.path.join(shared_data, "rmd17", "rmd17_ethanol_test_01.npz")
    raw = np.load(path)
    cs = data.read_dataset(path, indices=range(5))
    assert cs[0].atomic_numbers.tolist() == raw["nuclear_charges"].tolist()
    assert cs[4].energy == pytest.approx(raw["energies"][4] * 0.0433641)
    iso = data.read_dataset(os.path.join(shared_data, "botnet", "3bpa", "iso_atoms.xyz"))
    e0 = data.e0s_from_isolated_atoms(iso)
    assert sorted(e0) == [1, 6, 7, 8] and e0[1] == pytest.approx(-13.587222780835477)


def test_every_reader_names_frames_the_same_way(tmp_path):
    """'file.xyz, frame 3', never 'file.xyz:3' (which reads like a line number)."""
    xyz = str(tmp_path / "x.xyz")
    ase.io.write(xyz, [ase.Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.7 + 0.1 * i]]) for i in range(3)])
    assert [c.source for c in data.read_ase(xyz, require_energy=False, require_forces=False)] == [
        f"{xyz}, frame {i}" for i in range(3)
    ]
    npz = str(tmp_path / "r.npz")
    np.savez(
        npz,
        nuclear_charges=np.array([1, 1]),
        coords=np.array([[[0, 0, 0], [0, 0, 0.7]]] * 2),
        energies=np.zeros(2),
        forces=np.zeros((2, 2, 3)),
    )
    assert [c.source for c in data.read_rmd17(npz)] == [f"{npz}, frame 0", f"{npz}, frame 1"]
    assert data.frame_source("a.xyz", 3) == "a.xyz, frame 3"
