"""Seeded train/validation splits."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import numpy as np

T = TypeVar("T")


def random_split(
    items: Sequence[T], valid_fraction: float, seed: int = 0, max_train: int | None = None
) -> tuple[list[T], list[T]]:
    """Shuffle with ``numpy.random.default_rng(seed)`` and split off a validation set.

    Parameters
    ----------
    items : sequence to split
    valid_fraction : float in (0, 1)
        ``round(valid_fraction * len(items))`` items (at least 1) go to validation.
    seed : int
    max_train : int, optional
        Keep at most this many training items (taken after the split).

    Returns
    -------
    (train, valid) : lists; the same seed gives the same split.

    Raises
    ------
    ValueError
        fraction outside (0, 1) or a split that leaves no training item.
    """
    if not 0.0 < valid_fraction < 1.0:
        raise ValueError(f"valid_fraction must be in (0, 1), got {valid_fraction}")
    n = len(items)
    n_valid = max(1, int(round(valid_fraction * n)))
    if n - n_valid < 1:
        raise ValueError(f"cannot split {n} configurations with valid_fraction={valid_fraction}: no training data left")
    perm = np.random.default_rng(seed).permutation(n)
    train = [items[i] for i in perm[: n - n_valid]]
    valid = [items[i] for i in perm[n - n_valid :]]
    if max_train is not None:
        train = train[: int(max_train)]
    return train, valid
