"""What a denoiser sees (:class:`DiffusionState`) and the checks shared by training and sampling."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from ._categorical import CategoricalDiffusion
from ._gaussian import GaussianDiffusion

__all__ = ["DiffusionState"]


@dataclass
class DiffusionState:
    """The noisy batch a denoiser gets at one level (the denoiser contract, ``docs/contracts.md``).

    Attributes
    ----------
    pos : Tensor or None
        ``[N, *P, D]`` noisy positions ``x_t``, zero-CoM per graph (``None`` without a Gaussian part).
    batch : Tensor
        ``[N]`` long, the graph of each node.
    num_graphs : int
        ``G``.
    t : Tensor
        ``[G]`` long, each graph's level in ``0..T``.
    timesteps : int
        ``T``.
    classes : dict of str to Tensor
        Each categorical field's noisy classes, long ``[M_k]``.
    index : dict of str to Tensor
        Each categorical field's graph of each item, long ``[M_k]``.
    cond : Any
        Whatever conditions the model (observed frames, pair lists, properties); passed through.
    """

    pos: torch.Tensor | None
    batch: torch.Tensor
    num_graphs: int
    t: torch.Tensor
    timesteps: int
    classes: dict = field(default_factory=dict)
    index: dict = field(default_factory=dict)
    cond: Any = None

    def time(self, dtype: torch.dtype = torch.float64) -> torch.Tensor:
        """Continuous time ``t / T`` in ``[0, 1]``, ``[G]`` (EQGAT-diff's time embedding input)."""
        return self.t.to(dtype) / self.timesteps


def check_setup(
    gaussian: GaussianDiffusion | None,
    categorical: Mapping[str, CategoricalDiffusion],
    index: Mapping[str, torch.Tensor],
    num_graphs: int,
) -> int:
    """One ``T`` for every part, an ``index`` for every categorical field; returns ``T``. One-line ``ValueError`` otherwise."""
    if gaussian is None and not categorical:
        raise ValueError("nothing to diffuse: give a GaussianDiffusion and/or categorical fields")
    if isinstance(num_graphs, bool) or not isinstance(num_graphs, int) or num_graphs < 1:
        raise ValueError(f"num_graphs must be an integer >= 1, got {num_graphs!r}")
    steps = {} if gaussian is None else {"pos": gaussian.timesteps}
    for name, diff in categorical.items():
        if not isinstance(diff, CategoricalDiffusion):
            raise TypeError(f"categorical[{name!r}] must be a CategoricalDiffusion, got {type(diff).__name__}")
        if name == "pos":
            raise ValueError("'pos' is the positions' key; name the categorical field otherwise")
        if name not in index:
            raise ValueError(f"categorical field {name!r} has no index (graph of each item)")
        idx = index[name]
        if idx.dim() != 1 or idx.dtype != torch.long:
            raise ValueError(f"index[{name!r}] must be a 1-D long tensor, got {idx.dtype} {tuple(idx.shape)}")
        if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= num_graphs):
            raise ValueError(f"index[{name!r}] values must be in 0..{num_graphs - 1}")
        steps[name] = diff.timesteps
    if len(set(steps.values())) > 1:
        raise ValueError(f"every part must have the same number of steps T, got {steps}")
    return next(iter(steps.values()))


def check_output(out, pos: torch.Tensor | None, classes: Mapping[str, torch.Tensor], categorical) -> None:
    """The denoiser returned ``pos`` of the positions' shape and ``[M_k, K_k]`` logits for each field."""
    if not isinstance(out, Mapping):
        raise TypeError(f"the denoiser must return a mapping of predictions, got {type(out).__name__}")
    if pos is not None:
        if "pos" not in out:
            raise ValueError("the denoiser output has no 'pos' prediction")
        if tuple(out["pos"].shape) != tuple(pos.shape):
            raise ValueError(f"denoiser output 'pos' has shape {tuple(out['pos'].shape)}, expected {tuple(pos.shape)}")
    for name, diff in categorical.items():
        if name not in out:
            raise ValueError(f"the denoiser output has no logits for {name!r}")
        want = (classes[name].shape[0], diff.num_classes)
        if tuple(out[name].shape) != want:
            raise ValueError(f"denoiser output {name!r} has shape {tuple(out[name].shape)}, expected {want}")
