"""Bond lengths and bond angles of generated molecules against a reference set (EQGAT-diff's / MiDi's W1 distances).

EQGAT-diff (``tuanle618/eqgat-diff``, ``experiments/sampling/utils.py``: ``bond_length_distance``,
``angle_distance``) compares, per bond order, the distribution of bond lengths (Å) of the samples with
the training set's by the 1-D Wasserstein-1 distance (on 0.01 Å histograms there; exact here,
``scipy.stats.wasserstein_distance``) and weights the orders by their frequency; likewise the angles
(degrees) at each kind of central atom, weighted by how often the reference has angles at that
element. The bonds are each molecule's own (model-predicted) or, without them, EDM's from the distances.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ._bonds import edm_bond_orders

__all__ = ["bond_angles", "bond_lengths", "geometry_distances"]


def _orders(mol) -> np.ndarray:
    return np.asarray(mol.bonds if mol.bonds is not None else edm_bond_orders(mol.atomic_numbers, mol.positions))


def bond_lengths(molecules: Sequence) -> dict:
    """``{order: lengths}`` (Å, float64 arrays) over all bonds of ``molecules`` (orders 1, 2, 3)."""
    out = {1: [], 2: [], 3: []}
    for m in molecules:
        b = _orders(m)
        x = np.asarray(m.positions, dtype=np.float64)
        i, j = np.nonzero(np.triu(b, 1))
        d = np.linalg.norm(x[i] - x[j], axis=-1)
        for o in out:
            out[o].append(d[b[i, j] == o])
    return {o: np.concatenate(v) if v else np.zeros(0) for o, v in out.items()}


def bond_angles(molecules: Sequence) -> dict:
    """``{Z: angles}`` (degrees) of every pair of bonds at a central atom of element ``Z``."""
    out: dict = {}
    for m in molecules:
        b = _orders(m) > 0
        x = np.asarray(m.positions, dtype=np.float64)
        for a in range(len(x)):
            nb = np.flatnonzero(b[a])
            if len(nb) < 2:
                continue
            u = x[nb] - x[a]
            u = u / np.linalg.norm(u, axis=-1, keepdims=True).clip(min=1e-12)
            i, j = np.triu_indices(len(nb), 1)
            cos = np.clip((u[i] * u[j]).sum(-1), -1.0, 1.0)
            out.setdefault(int(m.atomic_numbers[a]), []).append(np.degrees(np.arccos(cos)))
    return {z: np.concatenate(v) for z, v in sorted(out.items())}


def _weighted_w1(gen: dict, ref: dict) -> tuple[float, dict]:
    from scipy.stats import wasserstein_distance

    per, weights = {}, {}
    for k, r in ref.items():
        if len(r) == 0:
            continue
        g = gen.get(k, np.zeros(0))
        per[k] = float(wasserstein_distance(g, r)) if len(g) else float("nan")
        weights[k] = len(r)
    known = {k: w for k, w in weights.items() if not np.isnan(per[k])}
    total = sum(known.values())
    value = sum(per[k] * w for k, w in known.items()) / total if total else float("nan")
    return value, per


def geometry_distances(generated: Sequence, reference: Sequence) -> dict:
    """W1 distances of bond lengths and angles between ``generated`` and ``reference`` molecules.

    Returns ``{'bond_length_w1': Å, 'bond_angle_w1': degrees, 'bond_length_w1_per_order': {1: .., 2: .., 3: ..},
    'bond_angle_w1_per_element': {Z: ..}}``; the totals weight each class by its count in the reference
    (classes the samples lack are NaN per class and left out of the total).
    """
    lw, lper = _weighted_w1(bond_lengths(generated), bond_lengths(reference))
    aw, aper = _weighted_w1(bond_angles(generated), bond_angles(reference))
    return {
        "bond_length_w1": lw,
        "bond_angle_w1": aw,
        "bond_length_w1_per_order": lper,
        "bond_angle_w1_per_element": aper,
    }
