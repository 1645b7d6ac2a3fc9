"""The test kit for world models on a partially observed world: a flow of the whole scene, in float32 and float64.

A world model maps observed windows ``[B, T_in, C, w, w]``, the agent's
actions ``[B, T_in + P - 1, 2]`` (integer pixels, ``actions[:, k]`` moves the
window from frame ``k`` to ``k + 1``) and a length ``P`` to imagined windows
``[B, P, C, w, w]``. Its group (``model.symmetry_groups``):

- ``"planar:flows"``: a flow ``u`` of the whole scene - every object ``u``
  pixels per frame faster and every action ``u`` larger - leaves every
  observation unchanged (the window moves with the scene), so the
  predictions must not change: ``f(x, a + u) = f(x, a)`` (self-motion and
  object motion are one flow; Lillemark et al. 2026, "Flow Equivariant World
  Models"). Checked for every ``u`` of ``model.velocities``.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch

from ._equivariance import default_tolerance
from ._sequences import _rel, flow_velocities


@torch.no_grad()
def scene_flow_error(model, frames: torch.Tensor, actions: torch.Tensor, pred_len: int, velocity) -> float:
    """Relative error ``max |f(x, a + u) - f(x, a)| / max(|f(x, a + u)|, |f(x, a)|)`` for the flow ``u = velocity``.

    Parameters
    ----------
    model : ``(frames [B, T_in, C, w, w], actions [B, T_in + P - 1, 2], P) -> [B, P, C, w, w]``
    frames : Tensor in the model's dtype
    actions : integer Tensor ``[B, T_in + pred_len - 1, 2]``
    velocity : ``(rows, cols)`` integer pixels per frame
    """
    u = torch.as_tensor(velocity, dtype=actions.dtype, device=actions.device)
    return _rel(model(frames, actions + u, pred_len), model(frames, actions, pred_len))


def check_world_model(
    model: torch.nn.Module,
    frames: torch.Tensor | None = None,
    actions: torch.Tensor | None = None,
    pred_len: int = 3,
    *,
    velocities=None,
    dtypes: Sequence[torch.dtype] = (torch.float32, torch.float64),
    tolerance: dict | None = None,
    seed: int = 0,
) -> dict:
    """Check the scene flows a world model claims, per dtype; return the largest relative error per dtype.

    Parameters
    ----------
    model : see the module docstring; must claim ``"planar:flows"`` in ``model.symmetry_groups``
    frames : ``[B, T_in, C, w, w]``, optional
        Default: 2 seeded uniform sequences of 4 frames of ``model.image_size`` (``model.in_channels`` channels).
    actions : ``[B, T_in + pred_len - 1, 2]`` integers, optional
        Default: seeded uniform in ``{-1, 0, 1}^2``.
    pred_len : int
    velocities : ``[U, 2]`` integers, optional
        The flows checked (default ``model.velocities``).
    dtypes : the model is copied to each.
    tolerance : ``{dtype: relative tolerance}``; default 1e-4 float32, 1e-9 float64.

    Returns
    -------
    dict ``{("planar:flows", dtype name): largest relative error}``

    Raises
    ------
    AssertionError
        One line naming the model, dtype, worst velocity and error.
    ValueError
        The model claims no ``"planar:flows"``; no velocities.
    """
    groups = tuple(getattr(model, "symmetry_groups", ()) or ())
    if "planar:flows" not in groups:
        raise ValueError(f"{type(model).__name__} claims no 'planar:flows' (symmetry_groups = {groups})")
    gen = torch.Generator().manual_seed(seed)
    if frames is None:
        size, ch = int(getattr(model, "image_size", 4)), int(getattr(model, "in_channels", 1))
        frames = torch.rand(2, 4, ch, size, size, generator=gen, dtype=torch.float64)
    if actions is None:
        actions = torch.randint(-1, 2, (frames.shape[0], frames.shape[1] + int(pred_len) - 1, 2), generator=gen)
    vel = flow_velocities(model, velocities)
    out = {}
    for dt in dtypes:
        m = copy.deepcopy(model).to(dt).eval()
        x = frames.to(dt)
        tol = (tolerance or {}).get(dt, default_tolerance(dt))
        errs = [scene_flow_error(m, x, actions, pred_len, u) for u in vel]
        i = max(range(len(errs)), key=errs.__getitem__)
        out[("planar:flows", str(dt).replace("torch.", ""))] = errs[i]
        if not errs[i] <= tol:
            raise AssertionError(
                f"{type(model).__name__} not invariant under scene flows in {dt}: relative error {errs[i]:.3g} "
                f"> {tol:.1e} at {vel[i].tolist()}"
            )
    return out
