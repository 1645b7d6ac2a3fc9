"""Metrics of generated molecules: stability (EDM), validity, connectivity, uniqueness, novelty (RDKit).

- ``atom_stability``, ``mol_stability``: EDM's (:func:`edm_stability`, bonds from distances), the
  fraction of all atoms and of molecules whose valences are right.
- ``validity``: EDM's (``qm9/rdkit_functions.py``, ``BasicMolecularMetrics.compute_validity``): the
  RDKit molecule (atoms and bonds; bonds from the distances unless the molecule carries its own,
  formal charges when given) sanitizes; its largest fragment's canonical SMILES is kept.
- ``validity_connected``: EQGAT-diff's (``tuanle618/eqgat-diff``,
  ``experiments/sampling/analyze.py``, ``compute_validity``): sanitizes *and* is one fragment.
- ``connected``: the fraction of molecules with one fragment (EQGAT-diff's ``connected_components``).
- ``uniqueness``: distinct canonical SMILES among the valid (EDM's), ``novelty``: of those, the
  fraction not among the training SMILES (EDM's).

Canonical SMILES here: RDKit's, without stereo and hydrogens (:func:`equivar.data.canonical_smiles`),
the form the training SMILES take too.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from ...data import canonical_smiles, rdkit_chem
from ._bonds import edm_bond_orders, edm_stability

__all__ = ["GeneratedMolecule", "molecule_metrics", "rdkit_molecule"]

_SYMBOL = {1: "H", 6: "C", 7: "N", 8: "O", 9: "F"}


@dataclass
class GeneratedMolecule:
    """A molecule to score.

    Attributes
    ----------
    atomic_numbers : array ``[n]`` int
    positions : array ``[n, 3]`` float, Å
    charges : array ``[n]`` int, optional
        Formal charges (EQGAT-diff predicts them); ``None``: all 0.
    bonds : array ``[n, n]`` int, optional
        Bond orders predicted by the model (0 none, 1, 2, 3; symmetric); ``None``: EDM's from the distances.
    """

    atomic_numbers: np.ndarray
    positions: np.ndarray
    charges: np.ndarray | None = None
    bonds: np.ndarray | None = None


def rdkit_molecule(mol: GeneratedMolecule):
    """The RDKit molecule (not sanitized) of ``mol``: its atoms, charges, and bonds (its own or EDM's from distances)."""
    Chem = rdkit_chem()
    z = np.asarray(mol.atomic_numbers, dtype=np.int64)
    orders = mol.bonds if mol.bonds is not None else edm_bond_orders(z, mol.positions)
    orders = np.asarray(orders, dtype=np.int64)
    if orders.shape != (len(z), len(z)):
        raise ValueError(f"bonds must be [{len(z)}, {len(z)}], got {orders.shape}")
    types = {1: Chem.BondType.SINGLE, 2: Chem.BondType.DOUBLE, 3: Chem.BondType.TRIPLE}
    rw = Chem.RWMol()
    charges = np.zeros(len(z), dtype=np.int64) if mol.charges is None else np.asarray(mol.charges, dtype=np.int64)
    for a, c in zip(z.tolist(), charges.tolist()):
        atom = Chem.Atom(_SYMBOL[a])
        atom.SetFormalCharge(int(c))
        rw.AddAtom(atom)
    i, j = np.nonzero(np.triu(orders, 1))
    for a, b in zip(i.tolist(), j.tolist()):
        o = int(orders[a, b])
        if o not in types:
            raise ValueError(f"bond order {o} between atoms {a} and {b} is not 1, 2 or 3")
        rw.AddBond(a, b, types[o])
    return rw.GetMol()


def _validity(mol) -> tuple[str | None, int]:
    """(canonical SMILES of the largest fragment if the molecule sanitizes else None, number of fragments)."""
    Chem = rdkit_chem()
    frags = Chem.GetMolFrags(mol, asMols=True, sanitizeFrags=False)
    m = Chem.Mol(mol)
    try:
        Chem.SanitizeMol(m)
    except Exception:  # noqa: BLE001 - RDKit raises several sanitization exception types
        return None, len(frags)
    largest = max(Chem.GetMolFrags(m, asMols=True), key=lambda f: f.GetNumAtoms())
    return canonical_smiles(largest), len(frags)


def molecule_metrics(molecules: Sequence[GeneratedMolecule], train_smiles: Iterable[str] | None = None) -> dict:
    """Stability, validity, connectivity, uniqueness and novelty of ``molecules`` (module docstring).

    Parameters
    ----------
    molecules : sequence of GeneratedMolecule
        Non-empty.
    train_smiles : iterable of str, optional
        Canonical SMILES of the training set (:func:`equivar.data.canonical_smiles` form); ``None``: no novelty.

    Returns
    -------
    dict
        ``molecules``, ``atoms`` (counts), ``atom_stability``, ``mol_stability``, ``validity``,
        ``validity_connected``, ``connected``, ``uniqueness`` (of the valid; NaN without valid ones),
        ``novelty`` (of the unique valid; NaN without them or without ``train_smiles``), and
        ``smiles`` (the valid molecules' largest-fragment SMILES, in order).

    Raises
    ------
    ValueError
        no molecules, an element outside H, C, N, O, F, or a bad bond matrix.
    """
    if not len(molecules):
        raise ValueError("molecule_metrics needs at least one molecule")
    stable_atoms = n_atoms = stable_mols = valid = valid_conn = connected = 0
    smiles = []
    for mol in molecules:
        stable, _ = edm_stability(mol.atomic_numbers, mol.positions)
        stable_atoms += int(stable.sum())
        n_atoms += len(stable)
        stable_mols += int(stable.all())
        smi, n_frags = _validity(rdkit_molecule(mol))
        connected += int(n_frags == 1)
        if smi is not None:
            valid += 1
            valid_conn += int(n_frags == 1)
            smiles.append(smi)
    n = len(molecules)
    unique = set(smiles)
    nan = float("nan")
    novelty = nan
    if train_smiles is not None and unique:
        train = set(train_smiles)
        novelty = sum(s not in train for s in unique) / len(unique)
    return {
        "molecules": n,
        "atoms": n_atoms,
        "atom_stability": stable_atoms / max(n_atoms, 1),
        "mol_stability": stable_mols / n,
        "validity": valid / n,
        "validity_connected": valid_conn / n,
        "connected": connected / n,
        "uniqueness": len(unique) / len(smiles) if smiles else nan,
        "novelty": novelty,
        "smiles": smiles,
    }
