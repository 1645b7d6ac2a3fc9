"""Scenes of interacting agents (particles, pedestrians) and their batches.

A *scene* is a set of ``N`` agents observed for ``T_in`` frames whose next
``T_out`` frames are to be predicted. Scenes of any size are batched into one
graph per scene, fully connected (every ordered pair ``i != j``), flattened
over agents: the *dynamics batch* of ``docs/contracts.md``.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

#: keys of one scene (numpy or torch arrays); ``pair_attr`` and ``target_mask`` are optional
SCENE_KEYS = ("pos", "vel", "node_attr", "target", "pair_attr", "target_mask")


class TrajectoryDataset(Dataset):
    """Scenes stored as arrays, indexed like a list.

    Parameters
    ----------
    pos : array [S, N, T_in, D] or list of S arrays [N_s, T_in, D]
        Observed positions of each scene's agents (float64 kept).
    vel : same layout as ``pos``
        Observed velocities.
    target : array [S, N, T_out, D] or list
        Positions to predict.
    node_attr : array [S, N, F] or list, optional
        Invariant per-agent attributes (charges); ``F = 0`` when omitted.
    pair_attr : array [S, N, N, F_e] or list, optional
        Invariant pair attributes (``q_i q_j``); gathered onto the edges.
    target_mask : array [S, N] or list of bool, optional
        Agents whose prediction is scored (default all; ETH-UCY scores the
        ego agent only).

    Raises
    ------
    ValueError
        Inconsistent scene counts or shapes (the message names the key and scene).
    """

    def __init__(self, pos, vel, target, node_attr=None, pair_attr=None, target_mask=None):
        self.pos = list(pos)
        s = len(self.pos)
        self.vel = list(vel)
        self.target = list(target)
        n = [int(p.shape[0]) for p in self.pos]
        self.node_attr = list(node_attr) if node_attr is not None else [np.zeros((k, 0)) for k in n]
        self.pair_attr = list(pair_attr) if pair_attr is not None else [np.zeros((k, k, 0)) for k in n]
        self.target_mask = list(target_mask) if target_mask is not None else [np.ones(k, dtype=bool) for k in n]
        for key in ("vel", "target", "node_attr", "pair_attr", "target_mask"):
            if len(getattr(self, key)) != s:
                raise ValueError(f"{key}: {len(getattr(self, key))} scenes, pos has {s}")
        for i in range(s):
            p = self.pos[i]
            if p.ndim != 3:
                raise ValueError(f"pos of scene {i}: shape {tuple(p.shape)}, expected [N, T_in, D]")
            if tuple(self.vel[i].shape) != tuple(p.shape):
                raise ValueError(f"vel of scene {i}: shape {tuple(self.vel[i].shape)} != pos {tuple(p.shape)}")
            t = self.target[i]
            if t.ndim != 3 or t.shape[0] != p.shape[0] or t.shape[2] != p.shape[2]:
                raise ValueError(
                    f"target of scene {i}: shape {tuple(t.shape)}, expected [{p.shape[0]}, T_out, {p.shape[2]}]"
                )
            if self.node_attr[i].shape[0] != p.shape[0]:
                raise ValueError(f"node_attr of scene {i}: {self.node_attr[i].shape[0]} agents, pos has {p.shape[0]}")
            if tuple(self.pair_attr[i].shape[:2]) != (p.shape[0], p.shape[0]):
                raise ValueError(f"pair_attr of scene {i}: shape {tuple(self.pair_attr[i].shape)}, expected [N, N, F]")
            if self.target_mask[i].shape != (p.shape[0],):
                raise ValueError(f"target_mask of scene {i}: shape {tuple(self.target_mask[i].shape)}")

        self._stacked = None
        if s and len({int(p.shape[0]) for p in self.pos}) == 1 and len({tuple(t.shape) for t in self.target}) == 1:
            # every scene has the same agents and lengths (N-body): batches are built by indexing stacked tensors
            self._stacked = {
                "pos": torch.as_tensor(np.stack(self.pos)),
                "vel": torch.as_tensor(np.stack(self.vel)),
                "target": torch.as_tensor(np.stack(self.target)),
                "node_attr": torch.as_tensor(np.stack(self.node_attr)),
                "pair_attr": torch.as_tensor(np.stack(self.pair_attr)),
                "target_mask": torch.as_tensor(np.stack(self.target_mask), dtype=torch.bool),
            }

    def __len__(self) -> int:
        return len(self.pos)

    def __getitems__(self, indices) -> list | dict:
        """A whole batch at once (``DataLoader`` calls this when defined): the collated batch for scenes
        of one size (:func:`collate_scenes` passes it through), else the list of scenes."""
        if self._stacked is None:
            return [self[i] for i in indices]
        idx = torch.as_tensor(list(indices), dtype=torch.long)
        st = self._stacked
        b, n = idx.numel(), st["pos"].shape[1]
        local, edge_index, batch, ptr = _batch_graph(b, n)
        out = {k: st[k][idx].flatten(0, 1) for k in ("pos", "vel", "target", "node_attr", "target_mask")}
        out["batch"] = batch.clone()
        out["ptr"] = ptr.clone()
        out["edge_index"] = edge_index.clone()
        out["edge_attr"] = st["pair_attr"][idx][:, local[1], local[0]].flatten(0, 1)
        return out

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {
            "pos": torch.as_tensor(self.pos[i]),
            "vel": torch.as_tensor(self.vel[i]),
            "target": torch.as_tensor(self.target[i]),
            "node_attr": torch.as_tensor(self.node_attr[i]),
            "pair_attr": torch.as_tensor(self.pair_attr[i]),
            "target_mask": torch.as_tensor(self.target_mask[i], dtype=torch.bool),
        }


@functools.lru_cache(maxsize=8)
def _batch_graph(b: int, n: int) -> tuple[torch.Tensor, ...]:
    """``(local edges [2, n(n-1)], edge_index [2, b n(n-1)], batch [b n], ptr [b+1])`` of ``b`` scenes of ``n``
    agents (cached: every batch of a dataset has the same; callers copy what they hand out)."""
    local = fully_connected_edges(n)
    offsets = (torch.arange(b) * n).repeat_interleave(local.shape[1])
    return local, local.repeat(1, b) + offsets, torch.arange(b).repeat_interleave(n), torch.arange(b + 1) * n


def fully_connected_edges(n: int) -> torch.Tensor:
    """``[2, n(n-1)]`` edges of the complete directed graph on ``n`` nodes.

    Row 0 is the sender ``j``, row 1 the receiver ``i`` (the atomic batch's
    convention); edges are ordered by receiver, then sender (EGNN's order).
    """
    i, j = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
    keep = i != j
    return torch.stack([j[keep], i[keep]])


def collate_scenes(
    scenes: Sequence[Mapping[str, torch.Tensor]] | Mapping[str, torch.Tensor],
) -> dict[str, torch.Tensor]:
    """Batch scenes into the dynamics batch of ``docs/contracts.md``.

    Returns
    -------
    dict
        ``pos`` [N, T_in, D], ``vel`` [N, T_in, D], ``target`` [N, T_out, D],
        ``node_attr`` [N, F], ``target_mask`` [N] bool, ``batch`` [N],
        ``ptr`` [G+1], ``edge_index`` [2, E] (complete graph per scene,
        row 0 sender), ``edge_attr`` [E, F_e] (``pair_attr[i, j]`` of edge
        j -> i).

    Raises
    ------
    ValueError
        Empty list, or scenes whose T_in, T_out or D differ (named).
    """
    if isinstance(scenes, Mapping):  # already a batch (TrajectoryDataset.__getitems__)
        return dict(scenes)
    if len(scenes) == 0:
        raise ValueError("cannot collate an empty list of scenes")
    first = scenes[0]
    for k, s in enumerate(scenes):
        for key in ("pos", "vel", "target", "node_attr"):
            if s[key].shape[1:] != first[key].shape[1:]:
                raise ValueError(f"scene {k}: {key} shape {tuple(s[key].shape)} differs from {tuple(first[key].shape)}")
        if s["pair_attr"].shape[2:] != first["pair_attr"].shape[2:]:
            raise ValueError(f"scene {k}: pair_attr features {tuple(s['pair_attr'].shape[2:])} differ")
    sizes = [int(s["pos"].shape[0]) for s in scenes]
    ptr = torch.zeros(len(scenes) + 1, dtype=torch.long)
    ptr[1:] = torch.cumsum(torch.tensor(sizes, dtype=torch.long), 0)
    edges, edge_attr = [], []
    for k, s in enumerate(scenes):
        e = fully_connected_edges(sizes[k])
        edges.append(e + ptr[k])
        edge_attr.append(s["pair_attr"][e[1], e[0]])
    out = {key: torch.cat([s[key] for s in scenes]) for key in ("pos", "vel", "target", "node_attr", "target_mask")}
    out["batch"] = torch.repeat_interleave(torch.arange(len(scenes)), torch.tensor(sizes))
    out["ptr"] = ptr
    out["edge_index"] = torch.cat(edges, dim=1)
    out["edge_attr"] = torch.cat(edge_attr)
    return out
