"""Trajectory errors: MSE of positions, ADE/FDE, and minADE/minFDE over K hypotheses."""

from __future__ import annotations

from collections.abc import Mapping

import torch


def displacement_errors(pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Average and final displacement errors per agent (per hypothesis).

    Parameters
    ----------
    pred : Tensor [..., N, T, D]
        Predicted positions (a leading hypothesis axis ``K`` allowed).
    target : Tensor [N, T, D]

    Returns
    -------
    ade, fde : Tensor [..., N]
        ``mean_t |pred_t - target_t|`` and ``|pred_T - target_T|`` (Euclidean norms, the data's units).
    """
    dist = (pred - target).norm(dim=-1)  # [..., N, T]
    return dist.mean(-1), dist[..., -1]


def min_over_hypotheses(pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """minADE and minFDE per agent over ``K`` hypotheses ``pred [K, N, T, D]`` -> ``[N]`` each.

    Each minimum is taken separately (the best hypothesis for ADE need not be the best for
    FDE), as Social-GAN, AgentFormer and EqMotion evaluate.
    """
    ade, fde = displacement_errors(pred, target)
    return ade.min(0).values, fde.min(0).values


class DynamicsMetrics:
    """Accumulates the loss, the MSE of positions, ADE/FDE (deterministic) or minADE/minFDE (K hypotheses).

    Means are over the scored agents (``target_mask``); the MSE is over their coordinates and
    frames (``torch.nn.MSELoss`` on the scored agents, EGNN's metric). ``compute()`` returns
    ``loss``, ``mse``, ``ade``, ``fde`` (or ``min_ade``, ``min_fde`` with ``k``), ``n_structures``.
    """

    def __init__(self):
        # loss sum, batches, squared-error sum, coordinates, ade sum, fde sum, agents, scenes
        self.sums = torch.zeros(8, dtype=torch.float64)
        self.k = 0

    def update(self, pred: Mapping, batch: Mapping, loss: float | None = None) -> None:
        p = pred["pos"].detach()
        target = batch["target"].to(p.dtype)
        mask = batch["target_mask"]
        s = torch.zeros(8, dtype=torch.float64)
        if loss is not None:
            s[0], s[1] = float(loss), 1.0
        if p.dim() == 4:  # K hypotheses
            self.k = p.shape[0]
            ade, fde = min_over_hypotheses(p[:, mask], target[mask])
            best = ((p[:, mask] - target[mask]) ** 2).mean(dim=(-1, -2)).min(0).values  # per agent
            s[2] = float(best.sum()) * target.shape[-1] * target.shape[-2]
        else:
            ade, fde = displacement_errors(p[mask], target[mask])
            s[2] = float(((p[mask] - target[mask]) ** 2).sum())
        s[3] = float(mask.sum()) * target.shape[-1] * target.shape[-2]
        s[4], s[5], s[6] = float(ade.sum()), float(fde.sum()), float(mask.sum())
        s[7] = float(batch["ptr"].numel() - 1)
        self.sums += s

    def all_reduce(self) -> None:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(self.sums)

    def compute(self) -> dict[str, float]:
        loss, batches, se, ncoord, ade, fde, agents, scenes = self.sums.tolist()
        out: dict[str, float] = {}
        if batches:
            out["loss"] = loss / batches
        if agents:
            prefix = "min_" if self.k else ""
            out["mse"] = se / ncoord
            out[prefix + "ade"] = ade / agents
            out[prefix + "fde"] = fde / agents
            out["n_structures"] = scenes
        return out
