"""Accuracy and mean cross-entropy over batches (reducible over DDP ranks)."""

from __future__ import annotations

from collections.abc import Mapping

import torch


class AccuracyAccumulator:
    """``update(pred, batch, loss)``; ``compute() -> {'loss', 'accuracy', 'n_structures'}`` (loss per batch mean)."""

    def __init__(self):
        self.sums = torch.zeros(4, dtype=torch.float64)  # loss sum, batches, correct, images

    def update(self, pred: Mapping, batch: Mapping, loss: float | None = None) -> None:
        logits, labels = pred["logits"].detach(), batch["labels"]
        correct = float((logits.argmax(-1) == labels.to(logits.device)).sum())
        lsum, nb = (float(loss), 1.0) if loss is not None else (0.0, 0.0)
        self.sums += torch.tensor([lsum, nb, correct, float(labels.shape[0])], dtype=torch.float64)

    def all_reduce(self) -> None:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(self.sums)

    def compute(self) -> dict[str, float]:
        lsum, nb, correct, n = self.sums.tolist()
        out = {"accuracy": correct / n, "n_structures": n} if n else {}
        if nb:
            out["loss"] = lsum / nb
        return out
