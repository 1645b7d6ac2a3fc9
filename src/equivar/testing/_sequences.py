"""The test kit for sequence (next-frame) models: static circular shifts and flows, in float32 and float64.

A sequence model maps observed frames ``[B, T_in, C, H, W]`` and a prediction
length to predicted frames ``[B, pred_len, C, H, W]`` (frames ``T_in ..
T_in + pred_len - 1``). Its groups (``model.symmetry_groups``):

- ``"planar:shifts"``: moving every frame by one circular shift ``g`` moves
  every prediction by ``g``;
- ``"planar:flows"``: moving frame ``t`` by ``t u`` (the flow of the integer
  velocity ``u``, :class:`~equivar.planar.Flow`) moves prediction ``k`` by
  ``(T_in + k) u``; checked for every ``u`` of ``model.velocities`` (Keller,
  "Flow Equivariant Recurrent Neural Networks", 2025, Definition of flow
  equivariance for sequence-to-sequence maps).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch

from .. import planar as P
from ._equivariance import default_tolerance


def flow_velocities(model, velocities=None) -> torch.Tensor:
    """``[V, 2]`` long: ``velocities`` if given, else ``model.velocities`` (the flows a ``planar:flows`` check uses).

    Raises
    ------
    ValueError
        Neither is set (names the model).
    """
    vel = velocities if velocities is not None else getattr(model, "velocities", None)
    if vel is None:
        raise ValueError(f"{type(model).__name__}: planar:flows needs velocities (model.velocities or velocities=)")
    return torch.as_tensor(vel, dtype=torch.long).reshape(-1, 2)


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    scale = max(float(a.abs().max()), float(b.abs().max()), torch.finfo(a.dtype).tiny)
    return float((a - b).abs().max()) / scale


@torch.no_grad()
def flow_equivariance_error(model, frames: torch.Tensor, pred_len: int, velocity) -> float:
    """Relative error ``max |f(psi . x) - psi . f(x)| / max(|f(psi . x)|, |psi . f(x)|)`` for the flow of ``velocity``.

    Parameters
    ----------
    model : ``(frames [B, T_in, C, H, W], pred_len) -> [B, pred_len, C, H, W]``
    frames : Tensor ``[B, T_in, C, H, W]`` in the model's dtype
    velocity : ``(rows, cols)`` integer pixels per frame
    """
    T, (H, W) = frames.shape[1], frames.shape[-2:]
    flow = P.Flow(P.CircularShifts(H, W), torch.as_tensor(velocity, dtype=torch.long))
    moved = model(flow.act(frames, time_axis=1), pred_len)
    expect = flow.act(model(frames, pred_len), time_axis=1, t0=T)
    return _rel(moved, expect)


@torch.no_grad()
def shift_equivariance_error(model, frames: torch.Tensor, pred_len: int, shift) -> float:
    """Relative error of ``f(g . x)`` against ``g . f(x)`` for one circular shift ``g = (rows, cols)`` of every frame."""
    G = P.CircularShifts(*frames.shape[-2:])
    g = torch.as_tensor(shift, dtype=torch.long)
    return _rel(model(G.act(g, frames), pred_len), G.act(g, model(frames, pred_len)))


def check_sequence_model(
    model: torch.nn.Module,
    groups: Sequence[str] | None = None,
    frames: torch.Tensor | None = None,
    pred_len: int = 3,
    *,
    velocities=None,
    dtypes: Sequence[torch.dtype] = (torch.float32, torch.float64),
    tolerance: dict | None = None,
    max_shifts: int = 64,
    seed: int = 0,
) -> dict:
    """Check the groups a next-frame model claims, per dtype; return the largest relative error of each.

    Parameters
    ----------
    model : see the module docstring
    groups : ``"planar:shifts"`` and/or ``"planar:flows"``; default ``model.symmetry_groups``
    frames : ``[B, T_in, C, H, W]``, optional
        Default: 2 seeded uniform sequences of 4 frames of ``model.image_size`` (``model.in_channels`` channels).
    pred_len : int
    velocities : ``[U, 2]`` integers, optional
        The flows checked (default ``model.velocities``).
    dtypes : the model is copied to each.
    tolerance : ``{dtype: relative tolerance}``; default 1e-4 float32, 1e-9 float64.
    max_shifts : int
        Every circular shift is checked when there are at most this many, else this many seeded ones.

    Returns
    -------
    dict ``{(group, dtype name): largest relative error}``

    Raises
    ------
    AssertionError
        One line naming the model, group, dtype, worst element and error.
    ValueError
        No groups, an unknown group, or ``planar:flows`` without velocities.
    """
    groups = list(groups) if groups is not None else list(getattr(model, "symmetry_groups", ()) or ())
    if not groups:
        raise ValueError(f"{type(model).__name__} claims no groups (symmetry_groups) and none were given")
    unknown = [g for g in groups if g not in ("planar:shifts", "planar:flows")]
    if unknown:
        raise ValueError(f"unknown sequence-model group {unknown[0]!r} (known: 'planar:shifts', 'planar:flows')")
    gen = torch.Generator().manual_seed(seed)
    if frames is None:
        size, ch = int(getattr(model, "image_size", 8)), int(getattr(model, "in_channels", 1))
        frames = torch.rand(2, 4, ch, size, size, generator=gen, dtype=torch.float64)
    H, W = frames.shape[-2:]
    shifts = P.CircularShifts(H, W).elements()[1:]
    if len(shifts) > max_shifts:
        shifts = shifts[torch.randperm(len(shifts), generator=gen)[:max_shifts]]
    if "planar:flows" in groups:
        vel = flow_velocities(model, velocities)
    out = {}
    for dt in dtypes:
        m = copy.deepcopy(model).to(dt).eval()
        x = frames.to(dt)
        tol = (tolerance or {}).get(dt, default_tolerance(dt))
        for group in groups:
            elements = shifts if group == "planar:shifts" else vel
            fn = shift_equivariance_error if group == "planar:shifts" else flow_equivariance_error
            errs = [fn(m, x, pred_len, e) for e in elements]
            i = max(range(len(errs)), key=errs.__getitem__)
            out[(group, str(dt).replace("torch.", ""))] = errs[i]
            if not errs[i] <= tol:
                raise AssertionError(
                    f"{type(model).__name__} not equivariant under {group} in {dt}: relative error {errs[i]:.3g} "
                    f"> {tol:.1e} at {elements[i].tolist()}"
                )
    return out
