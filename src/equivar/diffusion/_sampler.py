"""Ancestral sampling of positions and classes with any denoiser: :func:`sample`.

Starting from the prior (zero-CoM standard Gaussian positions, classes drawn from each field's
marginal prior ``m``), each step from level ``t`` to ``s < t`` calls the denoiser once and draws
``x_s ~ q(x_s | x_t, x0_hat)`` (EDM's ``sample_p_zs_given_zt``; EQGAT-diff's ``sample_reverse``
with ``param='data'``) and ``c_s ~ sum_k p(c_0 = k | state) q(c_s | c_t, k)`` (D3PM eq. 4). The
last level is 0 (EQGAT-diff returns that state; EDM adds a final ``N(x0_hat, sigma_0 / alpha_0)``
draw, negligible at its ``alpha_bar_0 = 1 - 1e-5``).

Seeding: every draw comes from one :class:`NoiseSource` in a fixed order (initial positions, then
each field's initial classes in sorted name order; at each step the positions' noise, then each
field's uniforms in sorted name order), so a seed fixes the samples on any device. Equivariance:
with a denoiser whose ``pos`` output is E(3)-equivariant and whose logits are invariant, rotating
the condition and every normal draw rotates the samples exactly (the step maps are equivariant
and the projections commute with rotations); isotropic noise being rotation-invariant, the
sampled distribution is equivariant. Translations never enter: every state is zero-CoM.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from ._categorical import CategoricalDiffusion
from ._com import check_batch
from ._gaussian import GaussianDiffusion
from ._noise import NoiseSource
from ._state import DiffusionState, check_output, check_setup

__all__ = ["SampleOutput", "sample"]


@dataclass
class SampleOutput:
    """What :func:`sample` returns.

    Attributes
    ----------
    pos : Tensor or None
        ``[N, *P, D]`` positions at level 0, zero-CoM per graph (unless ``gaussian.zero_com`` is False).
    classes : dict of str to Tensor
        Long ``[M_k]`` classes at level 0 per categorical field.
    trajectory : list of (int, Tensor or None, dict)
        ``(level, pos, classes)`` after each step (and the start) when ``keep_trajectory``, else empty.
    """

    pos: torch.Tensor | None
    classes: dict
    trajectory: list = field(default_factory=list)


def _levels(levels, T: int) -> list[int]:
    if levels is None:
        return list(range(T, -1, -1))
    out = [int(v) for v in levels]
    if len(out) < 2 or out[-1] != 0 or any(a <= b for a, b in zip(out, out[1:])) or out[0] > T:
        raise ValueError(f"levels must decrease strictly from at most T = {T} to 0, got {list(levels)[:8]}...")
    return out


def sample(
    denoiser: Callable[[DiffusionState], Mapping[str, torch.Tensor]],
    *,
    batch: torch.Tensor,
    num_graphs: int,
    gaussian: GaussianDiffusion | None = None,
    pos_shape: Sequence[int] = (3,),
    categorical: Mapping[str, CategoricalDiffusion] | None = None,
    index: Mapping[str, torch.Tensor] | None = None,
    cond: Any = None,
    seed: int = 0,
    noise: NoiseSource | None = None,
    levels: Sequence[int] | None = None,
    dtype: torch.dtype = torch.float64,
    pos_init: torch.Tensor | None = None,
    keep_trajectory: bool = False,
    grad: bool = False,
) -> SampleOutput:
    """Draw one sample per graph by ancestral sampling with ``denoiser`` (module docstring).

    Parameters
    ----------
    denoiser : callable
        ``denoiser(state: DiffusionState) -> {"pos": [N, *P, D], name: logits [M_k, K_k], ...}``:
        the prediction of ``x_0`` (or of the noise, by ``gaussian.parameterization``) and logits of
        ``p(c_0 | state)`` for every categorical field (``docs/contracts.md``).
    batch : Tensor
        ``[N]`` long: the graph of each node (fixes the graph sizes); its device is used throughout.
    num_graphs : int
        ``G``.
    gaussian : GaussianDiffusion, optional
        The positions' diffusion (``None``: classes only).
    pos_shape : sequence of int
        Shape of one node's positions, ``(D,)`` or ``(F, D)`` (trajectories).
    categorical, index : mapping of str to CategoricalDiffusion / Tensor
        The categorical fields and the graph of each of their items (long ``[M_k]``); for bonds,
        the pairs' graphs (:func:`complete_graph_pairs`); the pairs themselves go in ``cond``.
    cond : Any
        Passed to the denoiser in ``state.cond``.
    seed : int
        Seed of the default :class:`NoiseSource`.
    noise : NoiseSource, optional
        A source to use instead (its state advances).
    levels : sequence of int, optional
        Strictly decreasing levels ending at 0 (default ``T, T-1, ..., 0``; a subsequence samples
        with fewer steps, the posterior holding for any ``s < t``).
    dtype : torch.dtype
        Floating dtype of the positions (float64 default).
    pos_init : Tensor, optional
        ``[N, *P, D]`` starting positions instead of a prior draw (projected first; no draw is made).
    keep_trajectory : bool
        Record every intermediate state (CPU memory grows with the steps).
    grad : bool
        Keep autograd on (guidance); off by default.

    Returns
    -------
    SampleOutput

    Raises
    ------
    ValueError
        inconsistent parts (different ``T``, a field without index), bad ``levels``, a denoiser
        output missing a key, of the wrong shape or non-finite (named, with the level).
    """
    categorical = dict(categorical or {})
    index = dict(index or {})
    T = check_setup(gaussian, categorical, index, num_graphs)
    steps = _levels(levels, T)
    source = noise if noise is not None else NoiseSource(seed)
    device = batch.device
    names = sorted(categorical)
    with torch.set_grad_enabled(grad):
        pos = None
        if gaussian is not None:
            shape = (batch.shape[0],) + tuple(int(v) for v in pos_shape)
            if pos_init is not None:
                if tuple(pos_init.shape) != shape:
                    raise ValueError(f"pos_init has shape {tuple(pos_init.shape)}, expected {shape}")
                pos = gaussian.project(pos_init.to(dtype=dtype, device=device), batch, num_graphs)
            else:
                pos = gaussian.noise(shape, batch, num_graphs, source, dtype=dtype, device=device)
            check_batch(pos, batch, num_graphs)
        classes = {n: categorical[n].prior_sample(index[n].shape[0], source, device=device) for n in names}
        trajectory = [(steps[0], pos, dict(classes))] if keep_trajectory else []
        for t_level, s_level in zip(steps[:-1], steps[1:]):
            t = torch.full((num_graphs,), t_level, dtype=torch.long, device=device)
            s = torch.full_like(t, s_level)
            state = DiffusionState(pos, batch, num_graphs, t, T, dict(classes), index, cond)
            out = denoiser(state)
            check_output(out, pos, classes, categorical)
            for name in (["pos"] if gaussian is not None else []) + names:
                if not bool(torch.isfinite(out[name]).all()):
                    raise ValueError(f"the denoiser returned non-finite values in {name!r} at level t = {t_level}")
            if gaussian is not None:
                x0_hat = gaussian.to_x0(out["pos"].to(dtype), pos, t, batch, num_graphs)
                pos = gaussian.step(pos, x0_hat, s, t, batch, num_graphs, source)
            for n in names:
                probs = torch.softmax(out[n].to(torch.float64), dim=-1)
                idx = index[n]
                classes[n] = categorical[n].step(classes[n], probs, s[idx], t[idx], source)
            if keep_trajectory:
                trajectory.append((s_level, pos, dict(classes)))
    return SampleOutput(pos, classes, trajectory)
