"""Neighbour lists with periodic boundaries, through vesin."""

from __future__ import annotations

import numpy as np


def neighbor_list(
    positions: np.ndarray,
    r_max: float,
    cell: np.ndarray | None = None,
    pbc=None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All ordered pairs (j -> i) closer than ``r_max``, including periodic images.

    Parameters
    ----------
    positions : ndarray [N, 3], Å
    r_max : float
        Cutoff in Å (pairs with distance strictly below it).
    cell : ndarray [3, 3], optional
        Rows are lattice vectors; ignored along non-periodic directions.
    pbc : bool or sequence of 3 bools, optional
        Periodicity per lattice direction (default none).

    Returns
    -------
    edge_index : ndarray [2, E] int64
        Row 0 = sender j, row 1 = receiver i (MACE convention), sorted by
        sender then receiver. An atom is never its own neighbour at zero shift;
        its periodic images are neighbours when closer than ``r_max``.
    unit_shifts : ndarray [E, 3] float64
        Integer cell offsets.
    shifts : ndarray [E, 3] float64
        ``unit_shifts @ cell``, Å, so that the edge vector is
        ``positions[i] - positions[j] + shifts``.

    Raises
    ------
    ValueError
        non-positive ``r_max`` or bad shapes.
    """
    import vesin

    positions = np.ascontiguousarray(positions, dtype=np.float64)
    if positions.ndim != 2 or positions.shape[1] != 3:
        raise ValueError(f"positions must have shape [N, 3], got {positions.shape}")
    if not r_max > 0:
        raise ValueError(f"r_max must be positive, got {r_max}")
    cell = np.zeros((3, 3)) if cell is None else np.ascontiguousarray(cell, dtype=np.float64).reshape(3, 3)
    pbc = np.broadcast_to(np.asarray(False if pbc is None else pbc, dtype=bool), (3,))
    n = positions.shape[0]
    if n == 0:
        return np.zeros((2, 0), np.int64), np.zeros((0, 3)), np.zeros((0, 3))
    box = cell if pbc.any() else np.zeros((3, 3))
    # threads only pay off for large systems (and the CPU is often shared)
    nl = vesin.NeighborList(cutoff=float(r_max), full_list=True, sorted=True, n_threads=1 if n < 2000 else 0)
    i, j, S = nl.compute(positions, box, [bool(p) for p in pbc], "ijS")
    # vesin: vector = r[j] - r[i] + S @ cell, so i is the sender and j the receiver.
    edge_index = np.stack([i.astype(np.int64), j.astype(np.int64)])
    unit_shifts = S.astype(np.float64)
    shifts = unit_shifts @ cell
    return edge_index, unit_shifts, shifts
