"""matplotlib plumbing shared by the layers that draw (train's learning curves, a task's report figures).

No ``equivar`` imports beyond ``_paths`` (below every layer): the non-interactive Agg backend, and
figures written atomically.
"""

from __future__ import annotations

import os

from ._paths import atomic_output


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend (no display needed; an explicit backend choice is kept)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str, dpi: int = 120) -> None:
    """``fig.savefig`` through :func:`equivar._paths.atomic_output` (format from the extension, default PNG)."""
    fmt = os.path.splitext(path)[1].lstrip(".").lower() or "png"
    with atomic_output(path, "wb") as f:
        fig.savefig(f, dpi=dpi, format=fmt)
