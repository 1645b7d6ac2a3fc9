"""Orbit sweeps (NERO; Zhao et al., "Evaluating Machine Learning Models with
NERO: Non-Equivariance Revealed on Orbits", 2023).

A sweep evaluates the model on an orbit ``{g x}`` and records, per sample
and per output, three metrics for every element:

- ``error``: relative equivariance error ``|f(g x) - g f(x)| / scale``
  (see :mod:`._errors`); zero for every ``g`` iff the model is equivariant on
  that orbit;
- ``consensus`` (no labels needed): each prediction is transformed back,
  ``b_g = g^-1 f(g x)``, the back-transformed predictions are averaged over
  the orbit into a consensus ``c``, and the model is scored by the relative
  distance ``|b_g - c| / scale``;
- ``task`` (only when labels exist): mean absolute error of ``f(g x)``
  against the transformed label ``g y``.

:func:`axis_sweep` rotates about fixed axes through a full turn (polar
plots); :func:`disc_sweep` covers SO(3): for each rotation angle, the
rotation axis ranges over the whole sphere, drawn on a disc with Lambert's
azimuthal equal-area projection about +z (centre = +z, rim = -z).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import torch

from ..o3 import axis_angle_to_matrix
from ._errors import _leaf_types, compare, per_sample, relative
from ._finite import axis_vector
from ._subject import Subject
from ._types import GroupElement, act, precompute


def _metrics(subject: Subject, elements: list[GroupElement], shape: tuple) -> dict:
    """error / consensus / task tensors ``{metric: {output: [*shape, S]}}`` for ``elements``."""
    types = list(subject.out_types.values())
    precompute(elements, types + _leaf_types(subject.in_types))
    inverses = [g.inverse() for g in elements]
    precompute(inverses, types)
    ref = subject.reference()
    ys = subject.outputs(elements)
    S = subject.num_samples
    res = {
        m: {k: torch.zeros(len(elements), S, dtype=torch.float64) for k in subject.out_types}
        for m in ("error", "consensus")
    }
    res["task"] = {k: torch.zeros(len(elements), S, dtype=torch.float64) for k in subject.labels}
    for k, t in subject.out_types.items():
        back = []
        for i, (g, y) in enumerate(zip(elements, ys)):
            d, s = compare(subject, k, y[k], act(ref[k], t, g))
            res["error"][k][i] = relative(d, s)
            back.append(act(y[k].to(torch.float64), t, inverses[i]))
            if k in subject.labels:
                res["task"][k][i] = _mae(subject, k, y[k], act(subject.labels[k], t, g))
        c = torch.stack(back).mean(0)
        for i, b in enumerate(back):
            d, s = compare(subject, k, b, c)
            res["consensus"][k][i] = relative(d, s)
    return {m: {k: v.reshape(*shape, S) for k, v in d.items()} for m, d in res.items()}


def _mae(subject: Subject, name: str, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    a = a.to(torch.float64)
    b = b.to(torch.float64)
    if a.dim() == 0:
        a, b = a[None], b[None]
    rows = a.shape[0]
    idx = subject.sample_index(name, rows)
    absdiff = (a - b).abs().reshape(rows, -1)
    tot = per_sample(absdiff.sum(-1), idx, subject.num_samples)
    cnt = per_sample(torch.full((rows,), float(absdiff.shape[1]), dtype=torch.float64), idx, subject.num_samples)
    return tot / cnt.clamp_min(1)


@dataclasses.dataclass
class AxisSweep:
    """Metrics along rotations about fixed axes.

    ``angles [K]`` (radians, ``2 pi k / K``), ``axes`` ``{name: (x, y, z)}``;
    ``error``, ``consensus``, ``task``: ``{output: Tensor [n_axes, K, n_samples]}``.
    ``improper=True`` sweeps ``-R`` (rotation followed by inversion).
    """

    axes: dict
    angles: torch.Tensor
    error: dict
    consensus: dict
    task: dict
    improper: bool = False

    def mean(self, metric: str, output: str) -> torch.Tensor:
        """Sample average ``[n_axes, K]``."""
        return getattr(self, metric)[output].mean(-1)

    def breaking_angles(self, output: str, threshold: float, axis: str = "z") -> torch.Tensor:
        """Angles (degrees) where the mean error about ``axis`` exceeds ``threshold``."""
        a = list(self.axes).index(axis)
        m = self.mean("error", output)[a]
        return torch.rad2deg(self.angles[m > threshold])

    def to_dict(self) -> dict:
        out = {
            "axes": {k: list(v) for k, v in self.axes.items()},
            "angles_deg": [round(math.degrees(float(a)), 6) for a in self.angles],
            "improper": self.improper,
        }
        for m in ("error", "consensus", "task"):
            out[m] = {
                k: {ax: [float(x) for x in v.mean(-1)[i]] for i, ax in enumerate(self.axes)}
                for k, v in getattr(self, m).items()
            }
        return out


def axis_sweep(
    subject: Subject, axes: Sequence = ("x", "y", "z"), n_angles: int = 72, improper: bool = False
) -> AxisSweep:
    """Rotate about each axis through ``n_angles`` equally spaced angles (including 0).

    Parameters
    ----------
    subject : Subject
    axes : names ``'x' | 'y' | 'z'`` or 3-vectors
    n_angles : int
        Angles ``2 pi k / n_angles``; use a multiple of 4 (default 72, 5
        degree steps) so that multiples of 90 degrees are on the grid.
    improper : bool
        Sweep ``-R(axis, angle)`` instead (parity).

    Returns
    -------
    AxisSweep
    """
    if n_angles < 1:
        raise ValueError(f"n_angles must be >= 1, got {n_angles}")
    angles = torch.arange(n_angles, dtype=torch.float64) * (2 * math.pi / n_angles)
    names = {}
    for a in axes:
        v = axis_vector(a)
        names[a if isinstance(a, str) else ",".join(f"{x:.3g}" for x in v)] = v
    elements = []
    for v in names.values():
        R = axis_angle_to_matrix(torch.tensor(v, dtype=torch.float64).expand(n_angles, 3), angles)
        R = -R if improper else R
        elements.extend(GroupElement(R=r) for r in R)
    m = _metrics(subject, elements, (len(names), n_angles))
    return AxisSweep(names, angles, m["error"], m["consensus"], m["task"], improper)


def disc_axes(resolution: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Grid points ``uv [P, 2]`` inside the unit disc and their sphere axes ``[P, 3]``.

    Lambert azimuthal equal-area projection about +z, scaled to the unit
    disc: radius ``r = sin(theta / 2)`` for polar angle ``theta``.
    """
    c = (torch.arange(resolution, dtype=torch.float64) + 0.5) / resolution * 2 - 1
    U, V = torch.meshgrid(c, c, indexing="xy")
    uv = torch.stack([U.flatten(), V.flatten()], -1)
    r = uv.norm(dim=-1)
    uv = uv[r <= 1]
    r = uv.norm(dim=-1)
    theta = 2 * torch.asin(r.clamp(max=1))
    phi = torch.atan2(uv[:, 1], uv[:, 0])
    axes = torch.stack([theta.sin() * phi.cos(), theta.sin() * phi.sin(), theta.cos()], -1)
    return uv, axes


@dataclasses.dataclass
class DiscSweep:
    """SO(3) sweep: ``angles [A]`` radians, ``uv [P, 2]`` disc points, ``axes [P, 3]``;
    ``error``, ``consensus``, ``task``: ``{output: Tensor [A, P, n_samples]}``."""

    angles: torch.Tensor
    uv: torch.Tensor
    axes: torch.Tensor
    resolution: int
    error: dict
    consensus: dict
    task: dict

    def mean(self, metric: str, output: str) -> torch.Tensor:
        return getattr(self, metric)[output].mean(-1)

    def to_dict(self) -> dict:
        out = {
            "angles_deg": [math.degrees(float(a)) for a in self.angles],
            "resolution": self.resolution,
            "n_axes": int(self.uv.shape[0]),
        }
        for m in ("error", "consensus", "task"):
            out[m] = {
                k: {
                    f"{math.degrees(float(a)):g}": {
                        "mean": float(v.mean(-1)[i].mean()),
                        "max": float(v.mean(-1)[i].max()),
                    }
                    for i, a in enumerate(self.angles)
                }
                for k, v in getattr(self, m).items()
            }
        return out


def disc_sweep(subject: Subject, angles_deg: Sequence[float] = (45, 90, 135, 180), resolution: int = 15) -> DiscSweep:
    """For each angle, rotate about every axis of a ``resolution x resolution`` disc grid.

    Together the discs cover SO(3) (an axis on the whole sphere and an angle
    in (0, 180] give every rotation). Cost: ``len(angles) * ~0.785 *
    resolution**2`` evaluations (batched).
    """
    uv, axes = disc_axes(resolution)
    angles = torch.tensor([math.radians(a) for a in angles_deg], dtype=torch.float64)
    elements = []
    for a in angles:
        R = axis_angle_to_matrix(axes, a.expand(axes.shape[0]))
        elements.extend(GroupElement(R=r) for r in R)
    m = _metrics(subject, elements, (len(angles), axes.shape[0]))
    return DiscSweep(angles, uv, axes, resolution, m["error"], m["consensus"], m["task"])
