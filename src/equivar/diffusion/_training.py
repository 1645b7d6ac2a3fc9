"""One training evaluation of a denoiser: noise a batch at random levels, predict, weigh the losses."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch

from ._categorical import CategoricalDiffusion
from ._gaussian import GaussianDiffusion
from ._noise import NoiseSource
from ._schedules import NoiseSchedule
from ._state import DiffusionState, check_output, check_setup
from ._weighting import loss_weight

__all__ = ["diffusion_losses"]


def diffusion_losses(
    denoiser: Callable[[DiffusionState], Mapping[str, torch.Tensor]],
    *,
    batch: torch.Tensor,
    num_graphs: int,
    source: NoiseSource,
    gaussian: GaussianDiffusion | None = None,
    pos0: torch.Tensor | None = None,
    categorical: Mapping[str, CategoricalDiffusion] | None = None,
    classes0: Mapping[str, torch.Tensor] | None = None,
    index: Mapping[str, torch.Tensor] | None = None,
    cond: Any = None,
    t: torch.Tensor | None = None,
    t_min: int = 1,
    weighting: str = "uniform",
    weighting_schedule: NoiseSchedule | None = None,
    lambdas: Mapping[str, float] | None = None,
) -> dict:
    """Per-graph diffusion losses of ``denoiser`` on clean data, at levels ``t ~ U{t_min..T}`` (one per graph).

    The positions' L2 loss (:meth:`GaussianDiffusion.loss`) and each field's cross-entropy
    (:meth:`CategoricalDiffusion.loss`), each times the time weight ``w(t)``
    (:func:`loss_weight`; EQGAT-diff: ``weighting='snr_t'`` on its atom schedule), and their sum
    weighted by ``lambdas`` (EQGAT-diff's ``lc_*``: ``pos`` 3, ``atoms`` 0.4, ``charges`` 1, and ``bonds`` 1 for
    its 2 x its halved bond term, see :meth:`CategoricalDiffusion.loss`; default 1).

    Parameters
    ----------
    denoiser : callable
        As for :func:`sample`.
    batch, num_graphs : Tensor, int
        ``[N]`` long graph of each node; ``G``.
    source : NoiseSource
        The draws (levels first, then the positions' noise, then each field's uniforms in sorted name order).
    gaussian, pos0 : GaussianDiffusion, Tensor
        The positions' diffusion and clean positions ``[N, *P, D]`` (projected here: centred with ``zero_com``).
    categorical, classes0, index : mappings of str
        Each field's diffusion, clean classes (long ``[M_k]``) and graph of each item (``[M_k]``).
    cond : Any
        Passed to the denoiser.
    t : Tensor, optional
        ``[G]`` long levels to use instead of drawing them.
    t_min : int
        Lowest level drawn (1: EQGAT-diff and EDM's training ``t`` in ``1..T``).
    weighting : str
        One of :data:`LOSS_WEIGHTINGS`.
    weighting_schedule : NoiseSchedule, optional
        The schedule whose SNR the weighting uses (default: the Gaussian's, else the first field's).
    lambdas : mapping of str to float, optional
        Weight of each part (``'pos'`` and the field names) in ``'total'``.

    Returns
    -------
    dict
        ``'pos'`` and each field name -> weighted per-graph loss ``[G]``; ``'total' [G]``; ``'t' [G]``;
        ``'weight' [G]`` (float64). Reduce over graphs as the task wants (EQGAT-diff sums, EDM averages).

    Raises
    ------
    ValueError
        missing data for a part, inconsistent ``T``, ``t_min`` out of ``0..T``, or a bad denoiser output.
    """
    categorical = dict(categorical or {})
    classes0 = dict(classes0 or {})
    index = dict(index or {})
    T = check_setup(gaussian, categorical, index, num_graphs)
    if gaussian is not None and pos0 is None:
        raise ValueError("pos0 (clean positions) is needed with a Gaussian part")
    for name in categorical:
        if name not in classes0:
            raise ValueError(f"categorical field {name!r} has no clean classes in classes0")
    if isinstance(t_min, bool) or not isinstance(t_min, int) or not 0 <= t_min <= T:
        raise ValueError(f"t_min must be an integer in 0..{T}, got {t_min!r}")
    device = batch.device
    if t is None:
        t = source.integers(t_min, T + 1, (num_graphs,), device=device)
    sched = weighting_schedule or (
        gaussian.schedule if gaussian is not None else categorical[sorted(categorical)[0]].schedule
    )
    weight = loss_weight(weighting, sched, t)
    names = sorted(categorical)
    pos_t = eps = None
    if gaussian is not None:
        pos0 = gaussian.project(pos0, batch, num_graphs)
        pos_t, eps = gaussian.q_sample(pos0, t, batch, num_graphs, source)
    classes_t = {n: categorical[n].q_sample(classes0[n], t[index[n]], source) for n in names}
    out = denoiser(DiffusionState(pos_t, batch, num_graphs, t, T, dict(classes_t), index, cond))
    check_output(out, pos_t, classes_t, categorical)
    lambdas = dict(lambdas or {})
    unknown = sorted(set(lambdas) - ({"pos"} if gaussian is not None else set()) - set(names))
    if unknown:
        raise ValueError(
            f"lambdas has no part named {unknown[0]!r} (parts: {['pos'] * (gaussian is not None) + names})"
        )
    losses = {}
    if gaussian is not None:
        losses["pos"] = gaussian.loss(out["pos"], pos0, eps, batch, num_graphs, weight)
    for n in names:
        losses[n] = categorical[n].loss(out[n], classes0[n], index[n], num_graphs, weight)
    total = sum(float(lambdas.get(k, 1.0)) * v for k, v in losses.items())
    return {**losses, "total": total, "t": t, "weight": weight}
