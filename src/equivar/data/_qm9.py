"""QM9 (Ramakrishnan et al. 2014) from the CSV files of the PyPI package ``qm9pack``: :func:`read_qm9`, :func:`qm9_split`.

The 130,831 molecules of QM9 that passed the dataset's consistency check (the 3,054 that failed are
not in the files), with explicit hydrogens, elements H, C, N, O, F and their B3LYP/6-31G(2df,p)
geometries in Å. ``qm9pack`` 1.0.3 ships them as ``qm9pack/data/qm9_part{1,2,3}.csv`` (the project's
shared copy is xz-compressed, ``qm9_part*.csv.xz``; both are read). Columns used: ``Index`` (the
GDB-9 index, 1-based), ``SMILES``, ``N_atoms``, ``Elements`` (a Python list literal of symbols) and
``XYZ_Ang`` (a list of ``[x, y, z]`` in Å).

Splits (:func:`qm9_split`):

- ``'edm'`` (default): EDM's (Hoogeboom et al. 2022, ``ehoogeboom/e3_diffusion_for_molecules``,
  ``qm9/data/prepare/qm9.py``, inherited from Cormorant): the 130,831 molecules in GDB order,
  ``np.random.seed(0); np.random.permutation(130831)``, then 100,000 train, 17,748 valid and
  ``int(0.1 * 130831) = 13,083`` test, in that order of the permutation.
- ``'eqgat'``: EQGAT-diff's (Le et al. 2024, ``tuanle618/eqgat-diff``,
  ``experiments/data/qm9/qm9_dataset.py``, inherited from DiGress): all 133,885 GDB-9 molecules
  shuffled by ``DataFrame.sample(frac=1, random_state=42)`` (= ``RandomState(42).permutation(133885)``),
  split 100,000 / 20,497 / 13,388, and the excluded molecules then dropped from each part
  (about 97.7k / 20.0k / 13.1k remain).
"""

from __future__ import annotations

import csv
import importlib.util
import lzma
import os
from dataclasses import dataclass

import numpy as np

__all__ = [
    "QM9_ELEMENTS",
    "QM9_GDB_SIZE",
    "QM9_NUM_MOLECULES",
    "QM9Molecule",
    "qm9_files",
    "qm9_split",
    "read_qm9",
]

#: molecules in the files (GDB-9's 133,885 less the 3,054 that failed the consistency check)
QM9_NUM_MOLECULES = 130_831
#: molecules of GDB-9 (``Index`` runs 1..133885)
QM9_GDB_SIZE = 133_885
#: the elements of QM9, in EDM's and EQGAT-diff's ``atom_decoder`` order
QM9_ELEMENTS = ("H", "C", "N", "O", "F")
_Z = {"H": 1, "C": 6, "N": 7, "O": 8, "F": 9}
_PATTERNS = ("qm9_part{}.csv", "qm9_part{}.csv.xz")
_COLUMNS = ("Index", "SMILES", "N_atoms", "Elements", "XYZ_Ang")
csv.field_size_limit(1 << 28)


@dataclass(frozen=True)
class QM9Molecule:
    """One QM9 molecule.

    Attributes
    ----------
    index : int
        GDB-9 index (the files' ``Index``, 1-based; ``dsgdb9nsd_<index>.xyz``).
    smiles : str
        The files' SMILES (may carry formal charges, e.g. zwitterions).
    atomic_numbers : ndarray
        ``[n]`` int64, in the XYZ file's atom order (heavy atoms first).
    positions : ndarray
        ``[n, 3]`` float64, Å.
    source : str
        ``'<file> row <k>'`` (``k`` counts data rows from 1), for error messages.
    """

    index: int
    smiles: str
    atomic_numbers: np.ndarray
    positions: np.ndarray
    source: str


def _installed_qm9pack() -> str | None:
    try:
        spec = importlib.util.find_spec("qm9pack")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return os.path.join(list(spec.submodule_search_locations)[0], "data")


def qm9_files(root: str | None = None) -> list[str]:
    """The three QM9 part files under ``root`` (``qm9_part{1,2,3}.csv`` or ``.csv.xz``), in order.

    Parameters
    ----------
    root : str, optional
        A folder holding the parts. Default: ``$EQUIVAR_QM9_DIR``, else the ``data`` folder of an
        installed ``qm9pack`` (found without importing it).

    Raises
    ------
    FileNotFoundError
        no folder given or found, or a part missing from it (the message names the folder and the part).
    """
    if root is None:
        root = os.environ.get("EQUIVAR_QM9_DIR") or _installed_qm9pack()
        if root is None:
            raise FileNotFoundError(
                "QM9: no folder given, $EQUIVAR_QM9_DIR unset and qm9pack not installed (pip install qm9pack)"
            )
    if not os.path.isdir(root):
        raise FileNotFoundError(f"QM9 folder {root!r} does not exist")
    out = []
    for k in (1, 2, 3):
        found = [os.path.join(root, p.format(k)) for p in _PATTERNS if os.path.isfile(os.path.join(root, p.format(k)))]
        if not found:
            raise FileNotFoundError(f"QM9 folder {root!r} has no qm9_part{k}.csv or qm9_part{k}.csv.xz")
        out.append(found[0])
    return out


def _open(path: str):
    return lzma.open(path, "rt", newline="") if path.endswith(".xz") else open(path, newline="")


def _floats(text: str, where: str, what: str) -> np.ndarray:
    try:
        return np.array([float(v) for v in text.replace("[", " ").replace("]", " ").split(",")], dtype=np.float64)
    except ValueError:
        raise ValueError(f"{where}: {what} is not a list of numbers: {text[:60]!r}") from None


def _parse(row: dict, where: str) -> QM9Molecule:
    try:
        index, n = int(row["Index"]), int(row["N_atoms"])
    except (TypeError, ValueError):
        raise ValueError(f"{where}: Index {row['Index']!r} / N_atoms {row['N_atoms']!r} are not integers") from None
    symbols = [s.strip().strip("'\"") for s in row["Elements"].strip().strip("[]").split(",")]
    bad = [s for s in symbols if s not in _Z]
    if bad:
        raise ValueError(f"{where}: element {bad[0]!r} is not one of QM9's {', '.join(QM9_ELEMENTS)}")
    xyz = _floats(row["XYZ_Ang"], where, "XYZ_Ang")
    if len(symbols) != n or xyz.size != 3 * n:
        raise ValueError(f"{where}: N_atoms = {n} but {len(symbols)} elements and {xyz.size / 3:g} positions")
    if not np.isfinite(xyz).all():
        raise ValueError(f"{where}: XYZ_Ang holds a non-finite coordinate")
    smiles = row["SMILES"].strip()
    if not smiles:
        raise ValueError(f"{where}: empty SMILES")
    z = np.array([_Z[s] for s in symbols], dtype=np.int64)
    return QM9Molecule(index, smiles, z, xyz.reshape(n, 3), where)


def read_qm9(root: str | None = None, *, limit: int | None = None) -> list[QM9Molecule]:
    """Read the QM9 molecules of ``root``'s part files, in GDB order.

    Parameters
    ----------
    root : str, optional
        The folder of the parts (:func:`qm9_files`).
    limit : int, optional
        Read only the first ``limit`` molecules (tests, small runs); the position of each molecule
        in the list is its position in the full dataset, which :func:`qm9_split` uses.

    Returns
    -------
    list of QM9Molecule
        130,831 molecules without ``limit``.

    Raises
    ------
    FileNotFoundError
        see :func:`qm9_files`.
    ValueError
        a file without the needed columns, a row that does not parse (element outside H, C, N,
        O, F; counts that disagree; non-numbers; an ``Index`` not increasing): one line naming the file and row.
    """
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"limit must be a positive integer or None, got {limit!r}")
    out: list[QM9Molecule] = []
    last = 0
    for path in qm9_files(root):
        name = os.path.basename(path)
        with _open(path) as f:
            reader = csv.DictReader(f)
            missing = [c for c in _COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise ValueError(f"{path}: no column {missing[0]!r} (is this a qm9pack QM9 file?)")
            for k, row in enumerate(reader, start=1):
                if limit is not None and len(out) >= limit:
                    return out
                if None in row or any(row[c] is None for c in _COLUMNS):
                    raise ValueError(f"{name} row {k}: {len(reader.fieldnames)} columns expected, the row differs")
                mol = _parse(row, f"{name} row {k}")
                if mol.index <= last:
                    raise ValueError(f"{name} row {k}: Index {mol.index} does not follow {last} (GDB order expected)")
                last = mol.index
                out.append(mol)
    return out


def qm9_split(positions, protocol: str = "edm", gdb_indices=None) -> dict[str, np.ndarray]:
    """Train / valid / test membership of QM9 molecules by a published protocol (module docstring).

    Parameters
    ----------
    positions : array of int
        Each molecule's position in the full 130,831-molecule list in GDB order (``range(len(read_qm9()))``);
        for ``'eqgat'`` any labels (membership comes from ``gdb_indices``).
    protocol : str
        ``'edm'`` (100,000 / 17,748 / 13,083, exact) or ``'eqgat'`` (EQGAT-diff's shuffle of GDB-9).
    gdb_indices : array of int, optional
        The molecules' GDB-9 indices (``QM9Molecule.index``); needed by ``'eqgat'``.

    Returns
    -------
    dict
        ``'train'``, ``'valid'``, ``'test'`` -> int64 arrays of entries of ``positions`` (in the
        protocol's shuffled order, so ``[:k]`` is a random subset).

    Raises
    ------
    ValueError
        an unknown protocol, an ``'edm'`` position outside 0..130830, ``'eqgat'`` without ``gdb_indices``
        or with one outside 1..133885.
    """
    positions = np.asarray(positions, dtype=np.int64)
    if protocol == "edm":
        if positions.size and (positions.min() < 0 or positions.max() >= QM9_NUM_MOLECULES):
            raise ValueError(
                f"QM9 positions must be in 0..{QM9_NUM_MOLECULES - 1}, got {positions.min()}..{positions.max()}"
            )
        n = QM9_NUM_MOLECULES
        n_train, n_test = 100_000, int(0.1 * n)
        n_valid = n - n_train - n_test
        perm = np.random.RandomState(0).permutation(n)
        keys, order = positions, perm
    elif protocol == "eqgat":
        if gdb_indices is None:
            raise ValueError("the 'eqgat' QM9 split needs the molecules' GDB indices (gdb_indices)")
        keys = np.asarray(gdb_indices, dtype=np.int64) - 1
        if keys.shape != positions.shape:
            raise ValueError(f"gdb_indices has {keys.size} entries for {positions.size} positions")
        if keys.size and (keys.min() < 0 or keys.max() >= QM9_GDB_SIZE):
            raise ValueError(f"GDB indices must be in 1..{QM9_GDB_SIZE}, got {keys.min() + 1}..{keys.max() + 1}")
        n = QM9_GDB_SIZE
        n_train, n_test = 100_000, int(0.1 * n)
        n_valid = n - n_train - n_test
        order = np.random.RandomState(42).permutation(n)
    else:
        raise ValueError(f"QM9 split protocol must be 'edm' or 'eqgat', got {protocol!r}")
    rank = np.full(n, -1, dtype=np.int64)
    rank[order] = np.arange(n)
    r = rank[keys]
    sort = np.argsort(r, kind="stable")
    r, pos = r[sort], positions[sort]
    bounds = (0, n_train, n_train + n_valid, n)
    return {name: pos[(r >= lo) & (r < hi)] for name, lo, hi in zip(("train", "valid", "test"), bounds, bounds[1:])}


def _graph_cache_path(files: list[str], cache_dir: str | None) -> str:
    import hashlib

    root = cache_dir or os.path.join(
        os.environ.get("EQUIVAR_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "equivar"), "qm9"
    )
    key = hashlib.sha256(
        repr([(os.path.basename(f), os.path.getsize(f)) for f in files] + [_GRAPH_VERSION]).encode()
    ).hexdigest()[:16]
    return os.path.join(root, f"graphs_{key}.npz")


_GRAPH_VERSION = 1


def qm9_graphs(
    molecules,
    root: str | None = None,
    cache_dir: str | None = None,
    cache: bool = True,
    log=None,
    skip_unmatched: bool = False,
):
    """Bond graphs of QM9 molecules (:func:`equivar.data.molecule_graph`), cached on disk by GDB index.

    Parameters
    ----------
    molecules : list of QM9Molecule
    root : str, optional
        The folder the molecules were read from (the cache is keyed on its files' names and sizes).
    cache_dir : str, optional
        Default ``$EQUIVAR_CACHE_DIR/qm9``, else ``~/.cache/equivar/qm9``.
    cache : bool
        Read and extend the cache (False: compute every graph).
    log : callable, optional
        Told how many graphs were computed and how long it took.
    skip_unmatched : bool
        A molecule whose SMILES bond graph does not fit its relaxed geometry (QM9 holds a few whose DFT
        relaxation rearranged the bonds, e.g. GDB 133,859's cage ``CN1C2C3C4=CCC13C24``) gets ``None`` in
        the result instead of raising; the caller drops it and says how many it dropped.

    Returns
    -------
    list of MolecularGraph (or None where skipped)
        In the order of ``molecules``.

    Raises
    ------
    ValueError
        a molecule whose SMILES does not fit its geometry, unless ``skip_unmatched`` (naming its file and row).
    """
    import time

    from ._molgraph import MolecularGraph, molecule_graph

    path = _graph_cache_path(qm9_files(root), cache_dir) if cache else None
    known: dict = {}
    if path and os.path.isfile(path):
        with np.load(path, allow_pickle=False) as f:
            idx, c_ptr, b_ptr = f["index"], f["charge_ptr"], f["bond_ptr"]
            charges, bonds, orders, smiles = f["charges"], f["bonds"], f["orders"], f["smiles"]
        for k, g in enumerate(idx.tolist()):
            known[g] = (
                charges[c_ptr[k] : c_ptr[k + 1]],
                bonds[b_ptr[k] : b_ptr[k + 1]],
                orders[b_ptr[k] : b_ptr[k + 1]],
                str(smiles[k]),
            )
    out, new = [], 0
    t0 = time.process_time()
    for m in molecules:
        hit = known.get(m.index)
        if hit is not None and len(hit[0]) == len(m.atomic_numbers):
            c, b, o, s = hit
            out.append(MolecularGraph(m.atomic_numbers, m.positions, c, b, o, s, m.index))
            continue
        try:
            g = molecule_graph(m.atomic_numbers, m.positions, m.smiles, m.index, m.source)
        except ValueError as e:
            if not (skip_unmatched and "does not fit the geometry" in str(e)):
                raise
            out.append(None)
            continue
        known[m.index] = (g.charges, g.bonds, g.bond_orders, g.smiles)
        out.append(g)
        new += 1
    if log is not None and new:
        log(f"QM9: bonds of {new} molecules from SMILES + geometry in {time.process_time() - t0:.1f} CPU-s")
    if path and new:
        from .._paths import atomic_output

        os.makedirs(os.path.dirname(path), exist_ok=True)
        keys = sorted(known)
        lens_c = np.array([len(known[k][0]) for k in keys], dtype=np.int64)
        lens_b = np.array([len(known[k][2]) for k in keys], dtype=np.int64)
        arrays = {
            "index": np.array(keys, dtype=np.int64),
            "charge_ptr": np.concatenate([[0], np.cumsum(lens_c)]),
            "bond_ptr": np.concatenate([[0], np.cumsum(lens_b)]),
            "charges": np.concatenate([known[k][0] for k in keys]).astype(np.int64),
            "bonds": np.concatenate([known[k][1].reshape(-1, 2) for k in keys]).astype(np.int64),
            "orders": np.concatenate([known[k][2] for k in keys]).astype(np.int64),
            "smiles": np.array([known[k][3] for k in keys]),
        }
        with atomic_output(path, "wb") as f:
            np.savez(f, **arrays)
    return out
