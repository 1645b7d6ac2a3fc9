"""Checks on configurations; every failure is a ``ValueError`` naming the source and frame."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from ._configuration import Configuration

#: Atoms closer than this (Å) are reported as overlapping.
MIN_DISTANCE = 0.1


def check_finite(config: Configuration) -> None:
    """Raise ``ValueError`` if positions, cell or any label holds NaN or inf."""
    for name in ("positions", "cell", "forces", "stress", "virials"):
        v = getattr(config, name)
        if v is None:
            continue
        bad = ~np.isfinite(v)
        if bad.any():
            where = np.argwhere(bad)[0]
            raise ValueError(f"{config.source}: non-finite value in {name!r} at index {tuple(int(i) for i in where)}")
    if config.energy is not None and not np.isfinite(config.energy):
        raise ValueError(f"{config.source}: non-finite energy ({config.energy})")


def check_shapes(config: Configuration) -> None:
    """Raise ``ValueError`` if forces do not match the number of atoms or the cell is degenerate under PBC."""
    n = config.num_atoms
    if n == 0:
        raise ValueError(f"{config.source}: configuration has no atoms")
    if config.forces is not None and config.forces.shape != (n, 3):
        raise ValueError(f"{config.source}: forces have shape {config.forces.shape}, expected ({n}, 3)")
    if config.pbc.any():
        rows = config.cell[config.pbc]
        if np.linalg.matrix_rank(rows, tol=1e-8) < rows.shape[0]:
            raise ValueError(
                f"{config.source}: periodic cell is degenerate (pbc={config.pbc.tolist()}, cell={config.cell.tolist()})"
            )


def check_overlaps(config: Configuration, min_distance: float = MIN_DISTANCE) -> None:
    """Raise ``ValueError`` if two atoms (or an atom and a periodic image) are closer than ``min_distance`` Å."""
    if config.num_atoms < 2 and not config.pbc.any():
        return
    from ._neighbors import neighbor_list

    # a tiny cutoff makes cell lists huge; search at >= 1 Å and filter
    edge_index, _, shifts = neighbor_list(config.positions, max(1.0, min_distance), config.cell, config.pbc)
    if edge_index.shape[1] == 0:
        return
    j, i = edge_index
    d = np.linalg.norm(config.positions[i] - config.positions[j] + shifts, axis=1)
    close = np.flatnonzero(d < min_distance)
    if close.size:
        k = close[0]
        raise ValueError(
            f"{config.source}: overlapping atoms {int(j[k])} and {int(i[k])} (distance {d[k]:.3g} Å < {min_distance} Å)"
        )


def validate(config: Configuration, min_distance: float = MIN_DISTANCE) -> Configuration:
    """Run all checks on one configuration and return it."""
    check_shapes(config)
    check_finite(config)
    check_overlaps(config, min_distance)
    return config


def check_elements(configs: Iterable[Configuration], allowed: Sequence[int]) -> None:
    """Raise ``ValueError`` naming the first configuration holding an element not in ``allowed``.

    Used at inference: a model cannot predict for elements it was not trained on.
    """
    allowed_set = set(int(z) for z in allowed)
    for c in configs:
        extra = sorted(set(c.atomic_numbers.tolist()) - allowed_set)
        if extra:
            from ase.data import chemical_symbols

            names = ", ".join(f"{chemical_symbols[z]} (Z={z})" for z in extra)
            known = ", ".join(chemical_symbols[z] for z in sorted(allowed_set))
            raise ValueError(f"{c.source}: element(s) {names} not in the model's elements [{known}]")
