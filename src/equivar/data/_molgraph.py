"""Bonds and formal charges of a molecule from its SMILES and 3D geometry, with RDKit: :func:`molecule_graph`.

The SMILES fixes the chemistry (bond orders, formal charges), the geometry the atom order: the
SMILES's molecule (hydrogens added, Kekulé form, as EQGAT-diff's ``mol_to_torch_geometric``) is
mapped onto the atoms of the XYZ frame by a graph match. Fast path: RDKit's distance connectivity
(``rdDetermineBonds.DetermineConnectivity``, covalent radii x 1.3) and
``AssignBondOrdersFromTemplate``. Strained cages (bicyclo[1.1.1]pentanes, bicyclobutanes) have
1,3-distances within that cut-off, so when the fast path fails the SMILES graph is matched as a
subgraph of the distance graph and, among all matches, the one with the shortest total bond length
is kept. Every result is checked: its canonical SMILES (no stereo) must equal the file's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["MolecularGraph", "canonical_smiles", "molecule_graph", "rdkit_chem"]

_SYMBOL = {1: "H", 6: "C", 7: "N", 8: "O", 9: "F"}


def rdkit_chem():
    """``rdkit.Chem`` with RDKit's logging silenced; one-line ``ImportError`` telling how to install it."""
    try:
        from rdkit import Chem, RDLogger
    except ImportError:
        raise ImportError("molecules need RDKit: pip install rdkit") from None
    RDLogger.DisableLog("rdApp.*")
    return Chem


@dataclass(frozen=True)
class MolecularGraph:
    """A molecule with its bond graph.

    Attributes
    ----------
    atomic_numbers : ndarray ``[n]`` int64
    positions : ndarray ``[n, 3]`` float64, Å
    charges : ndarray ``[n]`` int64, formal charges
    bonds : ndarray ``[B, 2]`` int64, atom pairs ``i < j``
    bond_orders : ndarray ``[B]`` int64, 1 single, 2 double, 3 triple (Kekulé form)
    smiles : str
        Canonical SMILES without stereo (RDKit), the key of novelty checks.
    index : int
        The source's index (QM9: GDB-9 index), -1 if none.
    """

    atomic_numbers: np.ndarray
    positions: np.ndarray
    charges: np.ndarray
    bonds: np.ndarray
    bond_orders: np.ndarray
    smiles: str
    index: int = -1


def canonical_smiles(mol) -> str:
    """RDKit canonical SMILES without stereo and without explicit hydrogens."""
    Chem = rdkit_chem()
    return Chem.MolToSmiles(Chem.RemoveHs(mol, sanitize=False), isomericSmiles=False)


def _plain(mol):
    Chem = rdkit_chem()
    m = Chem.RWMol(mol)
    for a in m.GetAtoms():
        a.SetFormalCharge(0)
        a.SetIsAromatic(False)
        a.SetNoImplicit(True)
        a.SetNumExplicitHs(0)
    for b in m.GetBonds():
        b.SetBondType(Chem.BondType.SINGLE)
        b.SetIsAromatic(False)
    return m


def _xyz_mol(z: np.ndarray, pos: np.ndarray):
    Chem = rdkit_chem()
    block = f"{len(z)}\n\n" + "\n".join(f"{_SYMBOL[int(a)]} {x:.10f} {y:.10f} {w:.10f}" for a, (x, y, w) in zip(z, pos))
    return Chem.MolFromXYZBlock(block)


def molecule_graph(atomic_numbers, positions, smiles: str, index: int = -1, where: str = "") -> MolecularGraph:
    """Bonds and formal charges of the atoms at ``positions`` from ``smiles`` (module docstring).

    Parameters
    ----------
    atomic_numbers : array ``[n]`` of int (H, C, N, O, F)
    positions : array ``[n, 3]`` float, Å
    smiles : str
    index : int
        Stored in the result.
    where : str
        Names the input in errors (``'qm9_part1.csv.xz row 12'``).

    Raises
    ------
    ValueError
        the SMILES does not parse, its atoms differ from ``atomic_numbers``, or no mapping of its
        graph onto the geometry exists (one line naming ``where`` and the SMILES).
    ImportError
        RDKit missing.
    """
    Chem = rdkit_chem()
    from rdkit.Chem import rdDetermineBonds

    z = np.asarray(atomic_numbers, dtype=np.int64)
    x = np.asarray(positions, dtype=np.float64)
    tag = f"{where}: " if where else ""
    ref = Chem.MolFromSmiles(smiles)
    if ref is None:
        raise ValueError(f"{tag}SMILES {smiles!r} does not parse")
    Chem.Kekulize(ref, clearAromaticFlags=True)
    tmpl = Chem.AddHs(ref)
    if sorted(a.GetAtomicNum() for a in tmpl.GetAtoms()) != sorted(z.tolist()):
        raise ValueError(f"{tag}SMILES {smiles!r} has other atoms than the geometry")
    geo = _xyz_mol(z, x)
    conn = Chem.Mol(geo)
    rdDetermineBonds.DetermineConnectivity(conn)
    heavy = np.flatnonzero(z > 1)
    theavy = [a.GetIdx() for a in tmpl.GetAtoms() if a.GetAtomicNum() > 1]
    if len(theavy) != len(heavy):
        raise ValueError(f"{tag}SMILES {smiles!r} has other atoms than the geometry")
    sub = Chem.RWMol(_plain(conn))  # heavy atoms of the geometry, distance bonds
    for k in sorted(np.flatnonzero(z == 1).tolist(), reverse=True):
        sub.RemoveAtom(int(k))
    tsub = Chem.RWMol(_plain(tmpl))
    for k in sorted((a.GetIdx() for a in tmpl.GetAtoms() if a.GetAtomicNum() == 1), reverse=True):
        tsub.RemoveAtom(k)
    tb = [(b.GetBeginAtomIdx(), b.GetEndAtomIdx(), int(b.GetBondType())) for b in tmpl.GetBonds()]
    if any(t not in (1, 2, 3) for _, _, t in tb):
        raise ValueError(f"{tag}SMILES {smiles!r} has a bond that is not single, double or triple after kekulization")
    hb = [(i, j, t) for i, j, t in tb if i in theavy and j in theavy]
    tpos = {t: k for k, t in enumerate(theavy)}  # template atom -> heavy-subgraph atom
    mapping = {}
    if hb:
        matches = sub.GetSubstructMatches(tsub, uniquify=False, maxMatches=20000)
        if not matches:
            raise ValueError(f"{tag}the bond graph of SMILES {smiles!r} does not fit the geometry")
        m = heavy[np.array(matches, dtype=np.int64)]  # [K, heavy] geometry atom of each heavy template atom
        ia = np.array([tpos[i] for i, _, _ in hb])
        ja = np.array([tpos[j] for _, j, _ in hb])
        w = np.array([int(t) for _, _, t in hb], dtype=np.float64)
        length = np.linalg.norm(x[m[:, ia]] - x[m[:, ja]], axis=-1)  # [K, B]
        best = np.lexsort(((length * w).sum(-1), np.round(length.sum(-1), 6)))[0]
        mapping = {t: int(m[best, tpos[t]]) for t in theavy}
    else:
        mapping = {theavy[0]: int(heavy[0])} if len(heavy) else {}
    # each hydrogen of the geometry goes to its nearest heavy atom; the counts must be the SMILES's
    hyd = np.flatnonzero(z == 1)
    if len(heavy):
        d = np.linalg.norm(x[hyd][:, None] - x[heavy][None], axis=-1)
        owner = heavy[np.argmin(d, axis=1)] if len(hyd) else np.zeros(0, dtype=np.int64)
    else:  # H2
        owner = np.array([hyd[1], hyd[0]]) if len(hyd) == 2 else np.zeros(0, dtype=np.int64)
    inv = {g: t for t, g in mapping.items()}
    free = {}
    for i, j, _ in tb:
        for a, b in ((i, j), (j, i)):
            if tmpl.GetAtomWithIdx(b).GetAtomicNum() == 1 and tmpl.GetAtomWithIdx(a).GetAtomicNum() > 1:
                free.setdefault(a, []).append(b)
    if len(heavy):
        for h, o in zip(hyd.tolist(), owner.tolist()):
            slot = free.get(inv[o], [])
            if not slot:
                raise ValueError(
                    f"{tag}hydrogen {h} of the geometry sits at a heavy atom that SMILES {smiles!r} gives no more H"
                )
            mapping[slot.pop()] = h
    else:
        th = [a.GetIdx() for a in tmpl.GetAtoms()]
        mapping.update({t: int(g) for t, g in zip(th, hyd.tolist())})
    if len(mapping) != len(z):
        raise ValueError(f"{tag}the atoms of SMILES {smiles!r} do not all map onto the geometry")
    charges = np.zeros(len(z), dtype=np.int64)
    for k, a in enumerate(tmpl.GetAtoms()):
        charges[mapping[k]] = a.GetFormalCharge()
    bonds, orders = [], []
    for i, j, t in tb:
        bonds.append(tuple(sorted((mapping[i], mapping[j]))))
        orders.append(int(t))
    out = Chem.RWMol(geo)
    for (i, j), o in zip(bonds, orders):
        out.AddBond(int(i), int(j), {1: Chem.BondType.SINGLE, 2: Chem.BondType.DOUBLE, 3: Chem.BondType.TRIPLE}[o])
    for k, c in enumerate(charges):
        out.GetAtomWithIdx(k).SetFormalCharge(int(c))
    out = out.GetMol()
    try:
        Chem.SanitizeMol(out)
    except ValueError as e:  # RDKit's sanitization errors derive from ValueError
        raise ValueError(f"{tag}the bonds of SMILES {smiles!r} on the geometry do not sanitize: {e}") from None
    got, want = canonical_smiles(out), canonical_smiles(Chem.MolFromSmiles(smiles))
    if got != want:
        raise ValueError(f"{tag}bonds from the geometry give {got!r}, the SMILES says {want!r}")
    srt = np.lexsort((np.array([j for _, j in bonds]), np.array([i for i, _ in bonds]))) if bonds else []
    return MolecularGraph(
        atomic_numbers=z,
        positions=x,
        charges=charges,
        bonds=np.array(bonds, dtype=np.int64).reshape(-1, 2)[srt],
        bond_orders=np.array(orders, dtype=np.int64)[srt],
        smiles=want,
        index=int(index),
    )
