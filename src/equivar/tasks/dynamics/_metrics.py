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


def _scene_minima(pred: torch.Tensor, target: torch.Tensor, scene: torch.Tensor) -> tuple[float, float, float]:
    """Sums over scenes of ``min_k mean_{agents of the scene}`` ADE and FDE, and the number of scenes.

    ``pred [K, N, T, D]``, ``target [N, T, D]``, ``scene [N]`` (the scene of each agent; scored agents only).
    """
    ade, fde = displacement_errors(pred, target)  # [K, N]
    ids, inverse = torch.unique(scene, return_inverse=True)
    count = torch.zeros(len(ids), dtype=ade.dtype, device=ade.device).index_add_(0, inverse, torch.ones_like(ade[0]))
    per_scene = [
        torch.zeros(ade.shape[0], len(ids), dtype=ade.dtype, device=ade.device).index_add_(1, inverse, e) / count
        for e in (ade, fde)
    ]
    return float(per_scene[0].min(0).values.sum()), float(per_scene[1].min(0).values.sum()), float(len(ids))


class DynamicsMetrics:
    """Accumulates the loss, the MSE of positions, ADE/FDE (deterministic) or minADE/minFDE (K hypotheses).

    Means are over the scored agents (``target_mask``); the MSE is over their coordinates and
    frames (``torch.nn.MSELoss`` on the scored agents, EGNN's metric). ``compute()`` returns
    ``loss``, ``mse``, ``ade``, ``fde`` (or ``min_ade``, ``min_fde`` with ``k``), ``n_structures``.

    With ``K`` hypotheses it also returns the scene-level (joint) minima ``scene_min_ade`` and
    ``scene_min_fde``: per scene, the mean over its scored agents of each hypothesis's ADE (FDE), the
    minimum over the ``K`` hypotheses, averaged over scenes with a scored agent -- one hypothesis must fit
    every agent of a scene at once (GeoTDM's N-body protocol, ``experiments/nbody_train.py``:
    ``global_mean_pool`` over the scene, then ``min`` over the K samples).
    """

    def __init__(self):
        # loss sum, batches, squared-error sum, coordinates, ade sum, fde sum, agents, scenes,
        # scene-level min ADE sum, scene-level min FDE sum, scenes with a scored agent
        self.sums = torch.zeros(11, dtype=torch.float64)
        self.k = 0

    def update(self, pred: Mapping, batch: Mapping, loss: float | None = None) -> None:
        p = pred["pos"].detach()
        target = batch["target"].to(p.dtype)
        mask = batch["target_mask"]
        s = torch.zeros(11, dtype=torch.float64)
        if loss is not None:
            s[0], s[1] = float(loss), 1.0
        if p.dim() == 4:  # K hypotheses
            self.k = p.shape[0]
            ade, fde = min_over_hypotheses(p[:, mask], target[mask])
            best = ((p[:, mask] - target[mask]) ** 2).mean(dim=(-1, -2)).min(0).values  # per agent
            s[2] = float(best.sum()) * target.shape[-1] * target.shape[-2]
            scene = batch.get("batch")
            if scene is None:  # from the offsets
                ptr = batch["ptr"]
                scene = torch.repeat_interleave(torch.arange(ptr.numel() - 1, device=ptr.device), ptr.diff())
            s[8], s[9], s[10] = _scene_minima(p[:, mask], target[mask], scene[mask])
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
        loss, batches, se, ncoord, ade, fde, agents, scenes, scene_ade, scene_fde, scored = self.sums.tolist()
        out: dict[str, float] = {}
        if batches:
            out["loss"] = loss / batches
        if agents:
            prefix = "min_" if self.k else ""
            out["mse"] = se / ncoord
            out[prefix + "ade"] = ade / agents
            out[prefix + "fde"] = fde / agents
            if self.k and scored:
                out["scene_min_ade"] = scene_ade / scored
                out["scene_min_fde"] = scene_fde / scored
            out["n_structures"] = scenes
        return out
