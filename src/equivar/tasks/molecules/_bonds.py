"""EDM's bond orders from interatomic distances and its valence table (atom and molecule stability).

Hoogeboom et al., "Equivariant Diffusion for Molecule Generation in 3D", ICML 2022, code
``ehoogeboom/e3_diffusion_for_molecules``, ``qm9/bond_analyze.py`` (``bonds1``, ``bonds2``,
``bonds3``, ``margin1, margin2, margin3 = 10, 5, 3``, ``allowed_bonds``, ``get_bond_order``) and
``qm9/analyze.py`` (``check_stability``). Typical bond lengths in pm (single, double, triple); a pair
at distance ``d`` (pm) is bonded if ``d < single + 10``, doubly if also ``d < double + 5`` (when the
pair has a double-bond length), triply if also ``d < triple + 3`` (when it has a triple-bond
length). An atom is stable when the sum of its bond orders equals its valence (H 1, C 4, N 3, O 2,
F 1; formal charges are not used); a molecule when all its atoms are. Only the entries for QM9's
elements are kept here.
"""

from __future__ import annotations

import numpy as np

__all__ = ["EDM_ALLOWED_BONDS", "EDM_BOND_LENGTHS", "EDM_MARGINS", "edm_bond_orders", "edm_stability"]

#: (single, double, triple) typical lengths in pm for QM9's element pairs (0 = no such bond), EDM's tables
EDM_BOND_LENGTHS = {
    ("H", "H"): (74, 0, 0),
    ("H", "C"): (109, 0, 0),
    ("H", "N"): (101, 0, 0),
    ("H", "O"): (96, 0, 0),
    ("H", "F"): (92, 0, 0),
    ("C", "C"): (154, 134, 120),
    ("C", "N"): (147, 129, 116),
    ("C", "O"): (143, 120, 113),
    ("C", "F"): (135, 0, 0),
    ("N", "N"): (145, 125, 110),
    ("N", "O"): (140, 121, 0),
    ("N", "F"): (136, 0, 0),
    ("O", "O"): (148, 121, 0),
    ("O", "F"): (142, 0, 0),
    ("F", "F"): (142, 0, 0),
}
#: margins added to the single, double and triple lengths (pm), EDM's ``margin1, margin2, margin3``
EDM_MARGINS = (10, 5, 3)
#: the valence an atom must have to be stable, EDM's ``allowed_bonds``
EDM_ALLOWED_BONDS = {"H": 1, "C": 4, "N": 3, "O": 2, "F": 1}
_SYMBOLS = ("H", "C", "N", "O", "F")
_Z = {1: 0, 6: 1, 7: 2, 8: 3, 9: 4}


def _thresholds() -> np.ndarray:
    t = np.full((3, 5, 5), -np.inf)
    for (a, b), lengths in EDM_BOND_LENGTHS.items():
        i, j = _SYMBOLS.index(a), _SYMBOLS.index(b)
        for k, (length, margin) in enumerate(zip(lengths, EDM_MARGINS)):
            if length:
                t[k, i, j] = t[k, j, i] = length + margin
    return t


_THR = _thresholds()


def _types(atomic_numbers) -> np.ndarray:
    z = np.asarray(atomic_numbers, dtype=np.int64).reshape(-1)
    bad = [int(v) for v in z if int(v) not in _Z]
    if bad:
        raise ValueError(f"EDM's bond table covers H, C, N, O, F only; got atomic number {bad[0]}")
    return np.array([_Z[int(v)] for v in z], dtype=np.int64)


def edm_bond_orders(atomic_numbers, positions) -> np.ndarray:
    """Bond order of every atom pair from its distance, EDM's ``get_bond_order``: ``[n, n]`` int64, 0 on the diagonal.

    Parameters
    ----------
    atomic_numbers : array ``[n]`` of int (1, 6, 7, 8, 9)
    positions : array ``[n, 3]`` float, Å

    Raises
    ------
    ValueError
        an element outside H, C, N, O, F, or shapes that disagree.
    """
    t = _types(atomic_numbers)
    x = np.asarray(positions, dtype=np.float64)
    if x.shape != (len(t), 3):
        raise ValueError(f"positions must be [{len(t)}, 3] for {len(t)} atoms, got {x.shape}")
    d = 100.0 * np.linalg.norm(x[:, None, :] - x[None, :, :], axis=-1)  # pm, as EDM
    t1, t2, t3 = (_THR[k][t[:, None], t[None, :]] for k in range(3))
    single = d < t1
    double = single & (d < t2)
    order = single.astype(np.int64) + double + (double & (d < t3))
    np.fill_diagonal(order, 0)
    return order


def edm_stability(atomic_numbers, positions) -> tuple[np.ndarray, np.ndarray]:
    """EDM's ``check_stability``: ``(stable [n] bool, valence [n] int64)`` from :func:`edm_bond_orders`.

    The molecule is stable when ``stable.all()``.
    """
    t = _types(atomic_numbers)
    valence = edm_bond_orders(atomic_numbers, positions).sum(1)
    want = np.array([EDM_ALLOWED_BONDS[_SYMBOLS[k]] for k in t], dtype=np.int64)
    return valence == want, valence
