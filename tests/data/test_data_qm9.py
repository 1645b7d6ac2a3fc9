"""QM9 reader (qm9pack CSV files), the EDM / EQGAT-diff splits, and bonds from SMILES + geometry."""

from __future__ import annotations

import dataclasses
import lzma
import os
import sys

import numpy as np
import pytest

from equivar import data as D

pytest.importorskip("rdkit")

HEADER = "XYZ_file,Index,SMILES,InChi,N_atoms,Stoichiometry,Elements,XYZ_Ang,Mulliken_pop\n"
CH4 = (
    "\"dsgdb9nsd_000001.xyz\",1,\"C\",\"InChI=1S/CH4/h1H4\",5,\"[4,1,0,0,0]\",\"['C','H','H','H','H']\","
    '"[[-0.0126981359,1.0858041578,0.0080009958],[0.002150416,-0.0060313176,0.0019761204],'
    "[1.0117308433,1.4637511618,0.0002765748],[-0.540815069,1.4475266138,-0.8766437152],"
    '[-0.5238136345,1.4379326443,0.9063972942]]","[0,0,0,0,0]"\n'
)
NH3 = (
    '"dsgdb9nsd_000002.xyz",2,"N","x",4,"[3,0,1,0,0]","[\'N\',\'H\',\'H\',\'H\']",'
    '"[[-0.0404260543,1.0241077531,0.0625637998],[0.0172574639,0.0125452063,-0.0273771593],'
    '[0.9157893661,1.3587451948,-0.0287577581],[-0.5202777357,1.3435321258,-0.7755426124]]","[0,0,0,0]"\n'
)


def _write_parts(root, part1_rows, xz=False):
    os.makedirs(root, exist_ok=True)
    for k in (1, 2, 3):
        text = HEADER + ("".join(part1_rows) if k == 1 else "")
        path = os.path.join(root, f"qm9_part{k}.csv" + (".xz" if xz else ""))
        if xz:
            with lzma.open(path, "wt") as f:
                f.write(text)
        else:
            with open(path, "w") as f:
                f.write(text)
    return str(root)


def test_reads_rows_in_gdb_order(tmp_path):
    root = _write_parts(tmp_path / "q", [CH4, NH3], xz=True)
    mols = D.read_qm9(root)
    assert [m.index for m in mols] == [1, 2] and [m.smiles for m in mols] == ["C", "N"]
    assert mols[0].atomic_numbers.tolist() == [6, 1, 1, 1, 1] and mols[1].atomic_numbers.tolist() == [7, 1, 1, 1]
    np.testing.assert_array_equal(mols[1].positions[2], [0.9157893661, 1.3587451948, -0.0287577581])
    assert mols[0].source == "qm9_part1.csv.xz row 1"
    assert len(D.read_qm9(root, limit=1)) == 1


@pytest.mark.parametrize(
    "row, message",
    [
        (CH4.replace("'C','H'", "'Cl','H'"), "qm9_part1.csv row 2: element 'Cl'"),
        (CH4.replace(",5,", ",6,", 1), "qm9_part1.csv row 2: N_atoms = 6 but 5 elements and 5 positions"),
        (CH4.replace("-0.0126981359", "abc"), "qm9_part1.csv row 2: XYZ_Ang is not a list of numbers"),
        (CH4, "qm9_part1.csv row 2: Index 1 does not follow 1"),
        (CH4.replace('1,"C"', '9,""'), "qm9_part1.csv row 2: empty SMILES"),
    ],
)
def test_bad_rows_are_one_line_errors_naming_file_and_row(tmp_path, row, message):
    root = _write_parts(tmp_path / "q", [CH4, row])
    with pytest.raises(ValueError) as e:
        D.read_qm9(root)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_missing_files_and_columns(tmp_path, monkeypatch):
    monkeypatch.delenv("EQUIVAR_QM9_DIR", raising=False)
    with pytest.raises(FileNotFoundError, match="has no qm9_part1.csv"):
        D.qm9_files(str(tmp_path))
    root = _write_parts(tmp_path / "q", [CH4])
    with open(os.path.join(root, "qm9_part1.csv"), "w") as f:
        f.write("Index,SMILES\n1,C\n")
    with pytest.raises(ValueError, match="qm9_part1.csv: no column 'N_atoms'"):
        D.read_qm9(root)


def test_finds_an_installed_qm9pack(tmp_path, monkeypatch):
    pkg = tmp_path / "site" / "qm9pack"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("raise RuntimeError('the reader must not import qm9pack')\n")
    _write_parts(pkg / "data", [CH4, NH3])
    monkeypatch.delenv("EQUIVAR_QM9_DIR", raising=False)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    sys.modules.pop("qm9pack", None)
    assert D.qm9_files() == [str(pkg / "data" / f"qm9_part{k}.csv") for k in (1, 2, 3)]
    assert [m.index for m in D.read_qm9()] == [1, 2]


def test_edm_split_sizes_and_protocol():
    s = D.qm9_split(np.arange(D.QM9_NUM_MOLECULES))
    assert {k: len(v) for k, v in s.items()} == {"train": 100_000, "valid": 17_748, "test": 13_083}
    perm = np.random.RandomState(0).permutation(D.QM9_NUM_MOLECULES)  # EDM: np.random.seed(0); permutation
    np.testing.assert_array_equal(s["train"], perm[:100_000])
    np.testing.assert_array_equal(s["test"], perm[-13_083:])
    # a subset (the first 1000 molecules) keeps each molecule's part
    sub = D.qm9_split(np.arange(1000))
    for k in s:
        np.testing.assert_array_equal(np.sort(sub[k]), np.sort(s[k][s[k] < 1000]))


def test_eqgat_split_drops_the_excluded_molecules():
    gdb = np.arange(1, D.QM9_GDB_SIZE + 1)
    full = D.qm9_split(np.arange(D.QM9_GDB_SIZE), "eqgat", gdb)
    assert {k: len(v) for k, v in full.items()} == {"train": 100_000, "valid": 20_497, "test": 13_388}
    kept = np.setdiff1d(gdb, [5, 7, 100_000])
    s = D.qm9_split(np.arange(kept.size), "eqgat", kept)
    assert sum(len(v) for v in s.values()) == kept.size
    with pytest.raises(ValueError, match="needs the molecules' GDB indices"):
        D.qm9_split(np.arange(3), "eqgat")
    with pytest.raises(ValueError, match="'edm' or 'eqgat', got 'cormorant'"):
        D.qm9_split(np.arange(3), "cormorant")


# --- bonds from SMILES + geometry (the real files) -----------------------------------------------------------
@pytest.fixture(scope="module")
def first_molecules():
    root = os.path.join(os.path.abspath(os.environ.get("EQUIVAR_SHARED_DATA") or _shared()), "qm9")
    if not os.path.isdir(root):
        pytest.skip(f"shared QM9 not found at {root}")
    return root, D.read_qm9(root, limit=1200)


def _shared():
    return os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data")


def test_real_file_first_molecule(first_molecules):
    _, mols = first_molecules
    assert mols[0].index == 1 and mols[0].smiles == "C" and mols[0].atomic_numbers.tolist() == [6, 1, 1, 1, 1]
    np.testing.assert_allclose(mols[0].positions[0], [-0.0126981359, 1.0858041578, 0.0080009958], rtol=0, atol=1e-12)


def test_bonds_charges_and_lengths(first_molecules):
    root, mols = first_molecules
    graphs = D.qm9_graphs(mols, root, cache=False)
    by_index = {g.index: g for g in graphs}
    # glycine zwitterion-like [NH3+]CCC([O-])=O (GDB 271): charges +1 on N and -1 on an O, total 0
    g = by_index[271]
    assert sorted(g.charges.tolist()) == [-1] + [0] * (len(g.charges) - 2) + [1]
    assert g.atomic_numbers[g.charges == 1].tolist() == [7] and g.atomic_numbers[g.charges == -1].tolist() == [8]
    # the cage OC12CN(C1)C2 (GDB 320): 1,3-distances under RDKit's connectivity cut-off; 11 heavy+H bonds, ...
    g = by_index[320]
    ref = D.rdkit_chem().AddHs(D.rdkit_chem().MolFromSmiles("OC12CN(C1)C2"))
    assert len(g.bonds) == ref.GetNumBonds() and g.smiles == "OC12CN(C1)C2"
    # every atom's valence (sum of bond orders + |charge| rules) matches: H 1, C 4, N 3 (+1: 4), O 2 (-1: 1), F 1
    valence = {1: 1, 6: 4, 7: 3, 8: 2, 9: 1}
    for g in graphs:
        v = np.zeros(len(g.atomic_numbers), dtype=np.int64)
        np.add.at(v, g.bonds[:, 0], g.bond_orders)
        np.add.at(v, g.bonds[:, 1], g.bond_orders)
        want = np.array([valence[int(z)] for z in g.atomic_numbers]) + np.where(g.atomic_numbers == 7, g.charges, 0)
        want += np.where(g.atomic_numbers == 8, g.charges, 0)
        np.testing.assert_array_equal(v, want, err_msg=f"GDB {g.index} {g.smiles}")
    # bond orders sit on the right bonds: in molecules without aromatic rings every C=C (C=O) is shorter than
    # every C-C (C-O) not next to a triple bond (a C(sp)-C(sp) single bond is 1.36 A: C#CC#C) or a charge
    for pair, gap in (((6, 6), (1.36, 1.42)), ((6, 8), (1.25, 1.30))):
        _orders_by_length(graphs, pair, gap)


def _orders_by_length(graphs, pair, gap):
    singles, doubles = [], []
    for g in graphs:
        if any(ch.islower() for ch in g.smiles):  # aromatic atoms: Kekule C=C and C-C have the same length
            continue
        d = np.linalg.norm(g.positions[g.bonds[:, 0]] - g.positions[g.bonds[:, 1]], axis=-1)
        zz = np.sort(g.atomic_numbers[g.bonds], axis=1)
        sp = np.zeros(len(g.atomic_numbers), dtype=bool)
        sp[g.bonds[g.bond_orders == 3].flatten()] = True
        sp[g.bonds[(g.charges[g.bonds] != 0).any(1)].flatten()] = True  # and carboxylates: resonance
        cc = (zz[:, 0] == pair[0]) & (zz[:, 1] == pair[1]) & ~sp[g.bonds].any(1)
        singles += d[cc & (g.bond_orders == 1)].tolist()
        doubles += d[cc & (g.bond_orders == 2)].tolist()
    assert len(doubles) > 20 and len(singles) > 20, pair
    assert max(doubles) < gap[0] < gap[1] < min(singles), (pair, max(doubles), min(singles))


def test_smiles_that_does_not_fit_the_geometry():
    z = np.array([6, 1, 1, 1, 1])
    pos = np.array([[0, 0, 0], [0.63, 0.63, 0.63], [-0.63, -0.63, 0.63], [-0.63, 0.63, -0.63], [0.63, -0.63, -0.63]])
    g = D.molecule_graph(z, pos, "C")
    assert g.bonds.tolist() == [[0, 1], [0, 2], [0, 3], [0, 4]] and g.bond_orders.tolist() == [1, 1, 1, 1]
    with pytest.raises(ValueError, match="where: SMILES 'N' has other atoms than the geometry"):
        D.molecule_graph(z, pos, "N", where="where")
    with pytest.raises(ValueError, match="SMILES 'C1' does not parse"):
        D.molecule_graph(z, pos, "C1")


def test_graph_cache_round_trip(first_molecules, tmp_path):
    root, mols = first_molecules
    logs = []
    a = D.qm9_graphs(mols[:40], root, cache_dir=str(tmp_path), log=logs.append)
    assert len(logs) == 1 and "bonds of 40 molecules" in logs[0] and len(list(tmp_path.glob("graphs_*.npz"))) == 1
    logs.clear()
    b = D.qm9_graphs(mols[:40], root, cache_dir=str(tmp_path), log=logs.append)
    assert logs == []  # all from the cache
    for g, h in zip(a, b):
        assert g.index == h.index and g.smiles == h.smiles
        for k in ("charges", "bonds", "bond_orders", "atomic_numbers", "positions"):
            np.testing.assert_array_equal(getattr(g, k), getattr(h, k))


def test_molecule_whose_smiles_does_not_fit_its_relaxed_geometry_is_skipped_on_request(first_molecules, tmp_path):
    """GDB 133,859 (qm9_part3 row 43,588): its relaxed geometry no longer has the SMILES' cage bonds."""
    import lzma

    root, _ = first_molecules
    with lzma.open(os.path.join(root, "qm9_part1.csv.xz"), "rt") as f:
        head = [next(f) for _ in range(3)]  # header, methane, ammonia
    with lzma.open(os.path.join(root, "qm9_part3.csv.xz"), "rt") as f:
        bad = [line for line in f if ",133859," in line]
    assert len(bad) == 1
    (tmp_path / "qm9_part1.csv").write_text("".join(head))
    (tmp_path / "qm9_part2.csv").write_text(head[0])
    (tmp_path / "qm9_part3.csv").write_text(head[0] + bad[0])
    mols = D.read_qm9(str(tmp_path))
    assert [m.index for m in mols] == [1, 2, 133859]
    with pytest.raises(
        ValueError, match=r"qm9_part3.csv row 1: the bond graph of SMILES 'CN1C2C3C4=CCC13C24' does not fit"
    ):
        D.qm9_graphs(mols, str(tmp_path), cache=False)
    got = D.qm9_graphs(mols, str(tmp_path), cache=False, skip_unmatched=True)
    assert got[2] is None and [g.smiles for g in got[:2]] == ["C", "N"]
    # only a graph that does not fit is skipped: a SMILES with other atoms than the geometry still raises
    wrong = dataclasses.replace(mols[0], smiles="N")
    with pytest.raises(ValueError, match="SMILES 'N' has other atoms than the geometry"):
        D.qm9_graphs([wrong], str(tmp_path), cache=False, skip_unmatched=True)
