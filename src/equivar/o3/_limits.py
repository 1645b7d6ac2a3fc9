"""The largest degree ``l`` that irreps, harmonics and coupling coefficients support."""

from __future__ import annotations

MAX_L = 64


def check_degree(*ls: int) -> None:
    """Raise ``ValueError`` naming the first ``l`` that is not an int in ``0..MAX_L``."""
    for l in ls:
        if not isinstance(l, int) or isinstance(l, bool) or l < 0 or l > MAX_L:
            raise ValueError(f"degree l={l!r} outside the supported range 0..{MAX_L}")
