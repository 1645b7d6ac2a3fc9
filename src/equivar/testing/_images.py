"""The test kit for image models: the groups a model claims, checked in float32 and float64."""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch

from ..symmetry import audit
from ._equivariance import default_tolerance


def claimed_groups(model) -> tuple:
    """The planar groups an image model declares (``model.symmetry_groups``; empty when it claims none)."""
    return tuple(getattr(model, "symmetry_groups", ()) or ())


def check_image_model(
    model: torch.nn.Module,
    groups: Sequence[str] | None = None,
    images: torch.Tensor | None = None,
    *,
    dtypes: Sequence[torch.dtype] = (torch.float32, torch.float64),
    tolerance: dict | None = None,
    n_elements: int = 8,
    max_finite: int = 1024,
    seed: int = 0,
) -> dict:
    """Check that the logits of an image classifier are invariant under each group it claims, per dtype.

    Parameters
    ----------
    model : ``images [B, C, H, W] -> logits [B, classes]``
    groups : names of :mod:`equivar.symmetry` planar groups (``"planar:shifts"``, ``"planar:C4"``, ...);
        default :func:`claimed_groups`.
    images : ``[B, C, H, W]``, optional
        Default: 2 seeded uniform images of ``model.image_size`` / ``model.in_channels`` (1 channel).
    dtypes : the model is copied to each (default float32 and float64).
    tolerance : ``{dtype: relative tolerance}``; default 1e-4 float32, 1e-9 float64.
    n_elements, max_finite : sampled elements of continuous groups; finite groups up to ``max_finite``
        elements are checked exhaustively (every circular shift of a 28 x 28 image: 783).

    Returns
    -------
    dict ``{(group, dtype name): largest relative change of the logits}``

    Raises
    ------
    AssertionError
        One line naming the group, the dtype, the worst element and the error.
    ValueError
        No groups given or claimed.
    """
    groups = list(groups) if groups is not None else list(claimed_groups(model))
    if not groups:
        raise ValueError(f"{type(model).__name__} claims no groups (symmetry_groups) and none were given")
    if images is None:
        size = int(getattr(model, "image_size", 12))
        ch = int(getattr(model, "in_channels", 1))
        images = torch.rand(2, ch, size, size, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    out = {}
    for dt in dtypes:
        m = copy.deepcopy(model).to(dt).eval()
        subject = audit.Subject.batched(m, [images.to(dt)], ["image"], "invariant", max_rows=2048)
        errs = audit.equivariance_errors(subject, groups, n_elements=n_elements, seed=seed, max_finite=max_finite)
        tol = (tolerance or {}).get(dt, default_tolerance(dt))
        for name, e in errs.items():
            worst = e.to_dict()["outputs"]["out"]
            out[(name, str(dt).replace("torch.", ""))] = worst["max"]
            if not worst["max"] <= tol:
                raise AssertionError(
                    f"{type(model).__name__} not invariant under {name} in {dt}: relative change {worst['max']:.3g} "
                    f"> {tol:.1e} at {worst['worst_element']}"
                )
    return out
