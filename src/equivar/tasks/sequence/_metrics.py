"""Prediction errors of frame sequences: mean squared error overall and per predicted frame."""

from __future__ import annotations

from collections.abc import Mapping

import torch


class SequenceMetrics:
    """``update(pred, batch, loss)``; ``compute() -> {'loss', 'mse', 'n_structures'}`` and ``per_frame()``.

    ``mse`` is the mean over sequences, predicted frames and pixels (FERNN's
    ``nn.MSELoss`` on the predicted frames); :meth:`per_frame` the mean per
    predicted frame ``[T_out]`` (its Figure 3 / length-generalization curves).
    """

    def __init__(self):
        self.sums = torch.zeros(4, dtype=torch.float64)  # loss sum, batches, squared-error sum, elements
        self.frame_sums: torch.Tensor | None = None
        self.frame_counts = 0.0
        self.n = 0

    def update(self, pred: Mapping, batch: Mapping, loss: float | None = None) -> None:
        p = pred["frames"].detach()
        se = (p - batch["target"].to(p.dtype)).square().double()  # [B, T, C, H, W]
        per_frame = se.sum(dim=(0, 2, 3, 4)).cpu()
        if self.frame_sums is None or self.frame_sums.shape != per_frame.shape:
            self.frame_sums, self.frame_counts = torch.zeros_like(per_frame), 0.0
        self.frame_sums += per_frame
        self.frame_counts += float(se[:, 0].numel())
        lsum, nb = (float(loss), 1.0) if loss is not None else (0.0, 0.0)
        self.sums += torch.tensor([lsum, nb, float(per_frame.sum()), float(se.numel())], dtype=torch.float64)
        self.n += int(p.shape[0])

    def all_reduce(self) -> None:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(self.sums)
            if self.frame_sums is not None:
                dist.all_reduce(self.frame_sums)

    def compute(self) -> dict[str, float]:
        lsum, nb, sse, n = self.sums.tolist()
        out = {"mse": sse / n, "n_structures": float(self.n)} if n else {}
        if nb:
            out["loss"] = lsum / nb
        return out

    def per_frame(self) -> list[float]:
        """Mean squared error of each predicted frame (empty before any update)."""
        if self.frame_sums is None:
            return []
        return (self.frame_sums / self.frame_counts).tolist()
