"""Orbit sweeps of image models under planar groups (NERO-style, Zhao et al. 2023).

:func:`shift_sweep` evaluates a model on every circular shift ``(u, v)`` of
its ``"image"`` inputs (a ``H x W`` map per sample); :func:`flow_sweep` along a
one-parameter subgroup ``t -> exp(t xi)`` (rotation angle, log-scale, shear)
of a planar matrix group. Metrics per element, output and sample:

- ``error``: relative equivariance error ``|f(g x) - g f(x)| / scale``
  (:mod:`._errors`); for invariant outputs (logits) the relative change;
- ``agreement``: 1 where ``argmax`` over the last axis of ``f(g x)`` equals
  that of ``f(x)`` (classification consistency, Ding et al. 2023; only for
  invariant outputs with a class axis).
"""

from __future__ import annotations

import dataclasses
import math

import torch

from .. import planar as P
from ._errors import compare, relative
from ._subject import Subject
from ._types import GroupElement, act, norm_type


def _invariant(t) -> bool:
    info = norm_type(t)
    return info.kind == "irreps" and all(ir.l == 0 and ir.p == 1 for _, ir in info.irreps)


def _evaluate(subject: Subject, elements: list[GroupElement], shape: tuple) -> tuple[dict, dict]:
    ref = subject.reference()
    ys = subject.outputs(elements)
    S = subject.num_samples
    err = {k: torch.zeros(len(elements), S, dtype=torch.float64) for k in subject.out_types}
    agree = {}
    for k, t in subject.out_types.items():
        cls = _invariant(t) and ref[k].dim() == 2 and ref[k].shape[-1] > 1
        if cls:
            agree[k] = torch.zeros(len(elements), S, dtype=torch.float64)
        for i, (g, y) in enumerate(zip(elements, ys)):
            d, s = compare(subject, k, y[k], act(ref[k], t, g))
            err[k][i] = relative(d, s)
            if cls:
                agree[k][i] = (y[k].argmax(-1) == ref[k].argmax(-1)).to(torch.float64)
    reshape = lambda dd: {k: v.reshape(*shape, S) for k, v in dd.items()}  # noqa: E731
    return reshape(err), reshape(agree)


@dataclasses.dataclass
class ShiftSweep:
    """Every circular shift of the images: ``error`` / ``agreement`` ``{output: [H', W', S]}`` for shifts
    ``(u, v) = (stride * i, stride * j)``."""

    image_shape: tuple
    stride: int
    error: dict
    agreement: dict

    def consistency(self, output: str) -> float:
        """Fraction of (shift, sample) pairs whose predicted class is that of the unshifted image."""
        return float(self.agreement[output].mean())

    def to_dict(self) -> dict:
        return {
            "image_shape": list(self.image_shape),
            "stride": self.stride,
            "error": {k: {"mean": float(v.mean()), "max": float(v.max())} for k, v in self.error.items()},
            "consistency": {k: self.consistency(k) for k in self.agreement},
        }


def shift_sweep(subject: Subject, stride: int = 1) -> ShiftSweep:
    """Evaluate ``subject`` on every circular shift (rows, cols multiples of ``stride``) of its image inputs.

    Raises
    ------
    ValueError
        No input typed ``"image"``, or a stride that is not positive.
    """
    shape = subject.node_context.get("image_shape")
    if shape is None:
        raise ValueError("shift_sweep needs an input typed 'image'")
    if int(stride) < 1:
        raise ValueError(f"shift stride must be >= 1, got {stride}")
    H, W = shape
    G = P.CircularShifts(H, W)
    us, vs = range(0, H, stride), range(0, W, stride)
    els = [GroupElement(planar=(G, torch.tensor([u, v])), label=f"shift ({u}, {v})") for u in us for v in vs]
    err, agree = _evaluate(subject, els, (len(us), len(vs)))
    return ShiftSweep(tuple(shape), int(stride), err, agree)


@dataclasses.dataclass
class FlowSweep:
    """Along ``t -> exp(t xi)``: ``params [K]``, ``error`` / ``agreement`` ``{output: [K, S]}``."""

    name: str
    params: torch.Tensor
    error: dict
    agreement: dict

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "params": [float(p) for p in self.params],
            "error": {k: [float(x) for x in v.mean(-1)] for k, v in self.error.items()},
            "consistency": {k: [float(x) for x in v.mean(-1)] for k, v in self.agreement.items()},
        }


#: named one-parameter subgroups: (group, generator, parameter grid, label)
_FLOWS = {
    "rotation": (P.SO2(), 1.0, torch.linspace(0, 2 * math.pi, 37, dtype=torch.float64), "angle (rad)"),
    "scale": (
        P.Scalings(),
        torch.eye(2, dtype=torch.float64),
        torch.linspace(-0.7, 0.7, 15, dtype=torch.float64),
        "log scale",
    ),
    "shear": (
        P.GLPlus2(),
        torch.tensor([[0.0, 1.0], [0.0, 0.0]], dtype=torch.float64),
        torch.linspace(-1.0, 1.0, 21, dtype=torch.float64),
        "shear",
    ),
    "stretch": (
        P.SL2(),
        torch.tensor([[1.0, 0.0], [0.0, -1.0]], dtype=torch.float64),
        torch.linspace(-0.7, 0.7, 15, dtype=torch.float64),
        "log stretch",
    ),
}


def flow_sweep(subject: Subject, kind: str = "rotation", params=None) -> FlowSweep:
    """Evaluate ``subject`` along a one-parameter subgroup acting on its images by resampling.

    Parameters
    ----------
    kind : {'rotation', 'scale', 'shear', 'stretch'}
        ``exp(t xi)`` with ``xi`` a rotation generator (t = angle), the
        identity (t = log scale), ``[[0, 1], [0, 0]]`` (shear along columns)
        or ``diag(1, -1)`` (area-preserving stretch).
    params : sequence of float, optional
        Values of ``t`` (defaults: 37 angles over a turn, 15 log-scales in
        [-0.7, 0.7], 21 shears in [-1, 1], 15 stretches in [-0.7, 0.7]).

    Raises
    ------
    ValueError
        Unknown ``kind``.
    """
    if kind not in _FLOWS:
        raise ValueError(f"unknown flow {kind!r}: use one of {', '.join(_FLOWS)}")
    G, xi, grid, _ = _FLOWS[kind]
    ts = grid if params is None else torch.as_tensor(params, dtype=torch.float64)
    flow = P.Flow(G, xi)
    els = [GroupElement(planar=(G, flow.element(float(t))), label=f"{kind} {float(t):.3g}") for t in ts]
    err, agree = _evaluate(subject, els, (len(els),))
    return FlowSweep(kind, ts, err, agree)


def plot_shift_sweep(sweeps: dict, output: str, path: str, title: str = "") -> str:
    """Heat maps of the mean relative error over circular shifts, one per model (``{name: ShiftSweep}``).

    Titles carry the classification consistency when available. Returns ``path``.
    """
    from ._plots import _plt

    plt = _plt()
    fig, axs = plt.subplots(1, len(sweeps), figsize=(3.4 * len(sweeps) + 1, 3.0), squeeze=False, layout="constrained")
    top = max(max(float(s.error[output].mean(-1).max()) for s in sweeps.values()), 1e-300)
    im = None
    for ax, (name, s) in zip(axs[0], sweeps.items()):
        im = ax.imshow(s.error[output].mean(-1).numpy(), vmin=0, vmax=top, cmap="viridis")
        cons = f", consistency {100 * s.consistency(output):.1f}%" if output in s.agreement else ""
        ax.set_title(f"{name}{cons}", fontsize=8)
        ax.set_xlabel(f"column shift (x{s.stride})", fontsize=7)
        ax.set_ylabel(f"row shift (x{s.stride})", fontsize=7)
    fig.colorbar(im, ax=list(axs[0]), shrink=0.8, label="relative change of output")
    if title:
        fig.suptitle(title, fontsize=9)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_flow_sweeps(sweeps: dict, output: str, path: str, title: str = "") -> str:
    """Mean error (and consistency) against the flow parameter, one line per model (``{name: FlowSweep}``)."""
    from ._plots import _plt

    plt = _plt()
    any_agree = any(output in s.agreement for s in sweeps.values())
    fig, axs = plt.subplots(1, 2 if any_agree else 1, figsize=(8 if any_agree else 4, 3), squeeze=False)
    for name, s in sweeps.items():
        axs[0][0].plot(s.params.numpy(), s.error[output].mean(-1).numpy(), marker=".", label=name)
        if any_agree and output in s.agreement:
            axs[0][1].plot(s.params.numpy(), 100 * s.agreement[output].mean(-1).numpy(), marker=".", label=name)
    label = _FLOWS[next(iter(sweeps.values())).name][3]
    axs[0][0].set_xlabel(label)
    axs[0][0].set_ylabel("relative change of output")
    axs[0][0].legend(fontsize=7)
    if any_agree:
        axs[0][1].set_xlabel(label)
        axs[0][1].set_ylabel("consistency (%)")
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
