"""The molecule batch (``docs/contracts.md``, 'molecule_diffusion'): QM9 graphs as classes, collated with every atom pair."""

from __future__ import annotations

import dataclasses
import difflib
import os
from collections.abc import Mapping

import numpy as np
import torch

from ... import data as D
from ...diffusion import complete_graph_pairs

__all__ = ["ATOM_Z", "CHARGES", "MoleculeData", "MoleculeSet", "collate_molecules", "encode_graphs", "marginals"]

#: atom classes (EDM's / EQGAT-diff's QM9 ``atom_decoder``), their atomic numbers
ATOM_Z = (1, 6, 7, 8, 9)
#: formal-charge classes (QM9 has -1, 0, +1)
CHARGES = (-1, 0, 1)
#: bond classes: 0 none, 1 single, 2 double, 3 triple (Kekule form; QM9 has no other)
NUM_BOND_TYPES = 4


@dataclasses.dataclass
class MoleculeData:
    """The ``task.data`` section of a molecule config.

    Attributes
    ----------
    root : str or None
        QM9 folder (:func:`equivar.data.qm9_files`; None: ``$EQUIVAR_QM9_DIR`` or an installed ``qm9pack``).
    split : str
        ``'edm'`` (100,000 / 17,748 / 13,083) or ``'eqgat'`` (:func:`equivar.data.qm9_split`).
    limit : int or None
        Read only the first ``limit`` molecules of the files (tests; their split membership is kept).
    max_train, max_valid, max_test : int or None
        Keep the first this many of each part, in the split's shuffled order (a random subset).
    cache_dir : str or None
        Where the bond graphs are cached (default ``~/.cache/equivar/qm9``).
    """

    root: str | None = None
    split: str = "edm"
    limit: int | None = None
    max_train: int | None = None
    max_valid: int | None = 1000
    max_test: int | None = 0
    cache_dir: str | None = None

    @classmethod
    def from_mapping(cls, d, key: str = "task.data") -> MoleculeData:
        """Parse a config mapping; unknown keys raise ``ValueError`` naming ``task.data.KEY``."""
        if d is None:
            return cls()
        if isinstance(d, MoleculeData):
            return d
        if not isinstance(d, Mapping):
            raise ValueError(f"{key} must be a mapping, got {type(d).__name__}")
        names = [f.name for f in dataclasses.fields(cls)]
        for k in d:
            if k not in names:
                close = difflib.get_close_matches(str(k), names, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else f"; known: {', '.join(names)}"
                raise ValueError(f"unknown config key '{key}.{k}'{hint}")
        out = cls(**dict(d))
        if out.split not in ("edm", "eqgat"):
            raise ValueError(f"{key}.split must be 'edm' or 'eqgat', got {out.split!r}")
        for k in ("limit", "max_train", "max_valid", "max_test"):
            v, low = getattr(out, k), 1 if k == "limit" else 0  # limit 0 would read nothing, not "all" (null)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < low):
                raise ValueError(f"{key}.{k} must be an integer >= {low} or null (all), got {v!r}")
        return out

    def load(self, log=print) -> dict:
        """``{'train', 'valid', 'test'}`` -> list of :class:`~equivar.data.MolecularGraph` (bonds computed or cached)."""
        mols = D.read_qm9(self.root, limit=self.limit)
        parts = D.qm9_split(np.arange(len(mols)), self.split, [m.index for m in mols])
        caps = {"train": self.max_train, "valid": self.max_valid, "test": self.max_test}
        chosen = {k: v[: caps[k]] if caps[k] is not None else v for k, v in parts.items()}
        wanted = sorted({int(i) for v in chosen.values() for i in v})
        found = D.qm9_graphs([mols[i] for i in wanted], self.root, self.cache_dir, log=log, skip_unmatched=True)
        graphs = dict(zip(wanted, found))
        src = os.path.dirname(D.qm9_files(self.root)[0])
        dropped = [mols[i].index for i, g in graphs.items() if g is None]
        log(
            f"QM9 from {src}: {len(mols)} molecules read, split '{self.split}'"
            + (
                f"; {len(dropped)} left out whose SMILES bond graph does not fit the relaxed geometry "
                f"(GDB {', '.join(map(str, dropped[:5]))}{', ...' if len(dropped) > 5 else ''})"
                if dropped
                else ""
            )
        )
        return {k: [graphs[int(i)] for i in v if graphs[int(i)] is not None] for k, v in chosen.items()}


class MoleculeSet(torch.utils.data.Dataset):
    """Encoded molecules (:func:`encode_graphs`), one dict of tensors per molecule."""

    def __init__(self, items: list, smiles: list[str]):
        self.items, self.smiles = items, smiles

    def __len__(self):
        return len(self.items)

    def __getitem__(self, k):
        return self.items[k]


def encode_graphs(graphs) -> MoleculeSet:
    """Molecular graphs -> items ``{pos [n, 3] float64 Å, atoms [n], charges [n], bonds [n, n] long, index}``.

    Raises
    ------
    ValueError
        an element outside H, C, N, O, F or a charge outside -1..1 (naming the molecule's index).
    """
    zmap = {z: k for k, z in enumerate(ATOM_Z)}
    cmap = {c: k for k, c in enumerate(CHARGES)}
    items = []
    for g in graphs:
        try:
            atoms = torch.tensor([zmap[int(z)] for z in g.atomic_numbers])
            charges = torch.tensor([cmap[int(c)] for c in g.charges])
        except KeyError as e:
            raise ValueError(f"molecule {g.index}: atomic number or charge {e.args[0]} has no class") from None
        n = len(atoms)
        bonds = torch.zeros(n, n, dtype=torch.long)
        if len(g.bonds):
            b = torch.as_tensor(g.bonds)
            o = torch.as_tensor(g.bond_orders)
            bonds[b[:, 0], b[:, 1]] = o
            bonds[b[:, 1], b[:, 0]] = o
        pos = torch.as_tensor(g.positions, dtype=torch.float64)
        items.append({"pos": pos - pos.mean(0), "atoms": atoms, "charges": charges, "bonds": bonds, "index": g.index})
    return MoleculeSet(items, [g.smiles for g in graphs])


def collate_molecules(items: list) -> dict:
    """Batch molecules: ``pos [N, 3]``, ``atoms``, ``charges``, ``batch [N]``, ``ptr [G+1]``, ``pairs [2, M]``
    (every unordered pair ``i < j`` of a molecule, :func:`~equivar.diffusion.complete_graph_pairs`),
    ``pair_batch [M]``, ``bonds [M]`` (bond class of each pair), ``mol_index [G]``."""
    sizes = torch.tensor([len(it["atoms"]) for it in items])
    ptr = torch.cat([torch.zeros(1, dtype=torch.long), sizes.cumsum(0)])
    batch = torch.repeat_interleave(torch.arange(len(items)), sizes)
    pairs = complete_graph_pairs(batch, len(items))
    dense = torch.zeros(int(ptr[-1]), int(ptr[-1]), dtype=torch.long)
    for k, it in enumerate(items):
        a, b = int(ptr[k]), int(ptr[k + 1])
        dense[a:b, a:b] = it["bonds"]
    return {
        "pos": torch.cat([it["pos"] for it in items]),
        "atoms": torch.cat([it["atoms"] for it in items]),
        "charges": torch.cat([it["charges"] for it in items]),
        "batch": batch,
        "ptr": ptr,
        "pairs": pairs,
        "pair_batch": batch[pairs[0]],
        "bonds": dense[pairs[0], pairs[1]],
        "mol_index": torch.tensor([int(it["index"]) for it in items]),
    }


def marginals(dataset: MoleculeSet) -> dict:
    """Training-set class frequencies (the categorical priors, EQGAT-diff's) and the histogram of atom counts.

    Returns ``{'atoms': [5], 'charges': [3], 'bonds': [4]}`` (lists of float, over atoms / all atom pairs) and
    ``'num_atoms': {n: count}``.
    """
    atoms = torch.zeros(len(ATOM_Z), dtype=torch.float64)
    charges = torch.zeros(len(CHARGES), dtype=torch.float64)
    bonds = torch.zeros(NUM_BOND_TYPES, dtype=torch.float64)
    sizes: dict = {}
    for it in dataset.items:
        atoms += torch.bincount(it["atoms"], minlength=len(ATOM_Z))
        charges += torch.bincount(it["charges"], minlength=len(CHARGES))
        n = len(it["atoms"])
        iu = torch.triu_indices(n, n, 1)
        bonds += torch.bincount(it["bonds"][iu[0], iu[1]], minlength=NUM_BOND_TYPES)
        sizes[n] = sizes.get(n, 0) + 1
    return {
        "atoms": (atoms / atoms.sum()).tolist(),
        "charges": (charges / charges.sum()).tolist(),
        "bonds": (bonds / bonds.sum()).tolist(),
        "num_atoms": {int(k): int(v) for k, v in sorted(sizes.items())},
    }
