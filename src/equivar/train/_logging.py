"""Per-epoch metrics: a CSV file, and TensorBoard when it is installed."""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence


class MetricsLog:
    """Writes ``output_dir/metrics.csv`` (one row per epoch; the whole file is rewritten, so a resumed run has no duplicate rows)
    and, if ``tensorboard`` is importable, event files under ``output_dir/tensorboard``."""

    def __init__(self, output_dir: str):
        self.path = os.path.join(output_dir, "metrics.csv")
        os.makedirs(output_dir, exist_ok=True)
        self.writer = None
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(os.path.join(output_dir, "tensorboard"))
        except Exception:  # tensorboard not installed
            self.writer = None

    def rewrite(self, history: Sequence[dict]) -> None:
        keys: list[str] = []
        for row in history:
            keys += [k for k in row if k not in keys]
        from .._paths import atomic_output

        with atomic_output(self.path, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=keys)
            w.writeheader()
            for row in history:
                w.writerow(row)

    def write(self, row: dict, history: Sequence[dict]) -> None:
        self.rewrite(history)
        if self.writer is not None:
            for k, v in row.items():
                if k != "epoch" and isinstance(v, (int, float)):
                    self.writer.add_scalar(k.replace("_", "/", 1), v, row["epoch"])
            self.writer.flush()


def read_metrics(path: str) -> list[dict]:
    """Rows of a ``metrics.csv`` as dicts of floats."""
    with open(path) as f:
        return [{k: float(v) for k, v in r.items() if v not in ("", None)} for r in csv.DictReader(f)]
