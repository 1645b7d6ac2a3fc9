"""Errors of imagined frames: overall, on re-entering digits (the memory test), per frame."""

from __future__ import annotations

from collections.abc import Mapping

import torch


class WorldMetrics:
    """``update(pred, batch, loss)``; ``compute() -> {'loss', 'mse', 'reentry_mse', 'reentry_pixels', 'n_structures'}``.

    ``mse``: mean squared error over sequences, imagined frames and pixels.
    ``reentry_mse``: the same over the pixels of the re-entry mask only (ink of
    digits that were seen, left the window and came back:
    :func:`equivar.data.mnist_world`); ``reentry_pixels`` counts them.
    :meth:`per_frame` gives both per imagined frame.
    """

    def __init__(self):
        self.sums = torch.zeros(6, dtype=torch.float64)  # loss, batches, sse, n, re-entry sse, re-entry n
        self.frames: torch.Tensor | None = None  # [4, T_out]: sse, n, re-entry sse, re-entry n
        self.n = 0

    def update(self, pred: Mapping, batch: Mapping, loss: float | None = None) -> None:
        p = pred["frames"].detach()
        se = (p - batch["target"].to(p.dtype)).square().double()  # [B, T, C, w, w]
        m = batch["reentry"].to(se.device).double()
        dims = (0, 2, 3, 4)
        per = torch.stack(
            [se.sum(dims), torch.full_like(se.sum(dims), float(se[:, 0].numel())), (se * m).sum(dims), m.sum(dims)]
        ).cpu()
        if self.frames is None or self.frames.shape != per.shape:
            self.frames = torch.zeros_like(per)
        self.frames += per
        lsum, nb = (float(loss), 1.0) if loss is not None else (0.0, 0.0)
        tot = per.sum(1)
        self.sums += torch.tensor([lsum, nb, *tot.tolist()], dtype=torch.float64)
        self.n += int(p.shape[0])

    def all_reduce(self) -> None:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(self.sums)
            if self.frames is not None:
                dist.all_reduce(self.frames)

    def compute(self) -> dict[str, float]:
        lsum, nb, sse, n, rsse, rn = self.sums.tolist()
        out: dict[str, float] = {}
        if n:
            out = {"mse": sse / n, "reentry_pixels": rn, "n_structures": float(self.n)}
            out["reentry_mse"] = rsse / rn if rn else float("nan")
        if nb:
            out["loss"] = lsum / nb
        return out

    def per_frame(self) -> tuple[list[float], list[float]]:
        """``(mse, reentry_mse)`` per imagined frame (``nan`` where a frame has no re-entry pixel; empty before any
        update)."""
        if self.frames is None:
            return [], []
        f = self.frames
        re = torch.where(f[3] > 0, f[2] / f[3].clamp_min(1), torch.full_like(f[2], float("nan")))
        return (f[0] / f[1]).tolist(), re.tolist()
