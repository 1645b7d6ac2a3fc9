"""Equivariance checks for any callable with typed inputs and outputs.

A *type* says how a tensor transforms under a group element (R, t, perm):

- an irreps string or ``Irreps`` (``"16x0e+8x1o"``): last axis transforms
  by ``D(R)`` (improper rotations act with parity); ``"0e"`` is invariant;
- ``"positions"`` (alias ``"points"``): ``[..., 3]`` points,
  ``x -> x R^T + t``;
- ``"vector"`` (= ``"1o"``), ``"pseudovector"`` (= ``"1e"``),
  ``"scalar"`` / ``"invariant"`` (= ``"0e"``), ``"pseudoscalar"`` (= ``"0o"``);
- ``"cell"``: a ``[..., 3, 3]`` matrix whose *rows* are lattice vectors,
  ``cell -> cell R^T``; ``"rank2"``: ``[..., 3, 3]`` Cartesian tensor,
  ``T -> R T R^T`` (stress, virials);
- ``"index"``: integer tensor of node indices (edge lists), relabelled
  under node permutations;
- ``None``: passed through unchanged.

Wrap a type in ``Typed(type, nodes=True)`` to declare that axis 0 of the
tensor indexes nodes, so node permutations apply to it (``"index"`` tensors
are relabelled automatically when permutations are tested).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

from ..o3 import Irreps, rand_matrix

_ALIASES = {
    "vector": "1o",
    "pseudovector": "1e",
    "scalar": "0e",
    "invariant": "0e",
    "pseudoscalar": "0o",
    "points": "positions",
}
_SPECIAL = {"positions", "cell", "rank2", "index"}


@dataclasses.dataclass(frozen=True)
class Typed:
    """A type plus whether axis 0 indexes nodes (so permutations act on it)."""

    rep: Any
    nodes: bool = False


def _norm_type(t):
    nodes = False
    if isinstance(t, Typed):
        nodes = t.nodes
        t = t.rep
    if t is None:
        return None, nodes
    if isinstance(t, str):
        t = _ALIASES.get(t, t)
        if t in _SPECIAL:
            return t, nodes
    try:
        return Irreps(t), nodes
    except ValueError as e:
        raise ValueError(
            f"unknown type {t!r}: use irreps, 'positions', 'vector', 'cell', 'rank2', 'index' or None ({e})"
        ) from None


@dataclasses.dataclass
class _Element:
    kind: str  # 'rotation' | 'improper' | 'translation' | 'permutation'
    R: torch.Tensor | None = None
    t: torch.Tensor | None = None
    perm: torch.Tensor | None = None


def _act(x, typ, g: _Element):
    typ, nodes = _norm_type(typ)
    if typ is None or not isinstance(x, torch.Tensor):
        return x
    if g.kind == "permutation":
        if typ == "index":
            inv = torch.empty_like(g.perm)
            inv[g.perm] = torch.arange(len(g.perm), device=g.perm.device)
            return inv[x]
        return x[g.perm] if nodes else x
    if typ == "index":
        return x
    if g.kind == "translation":
        return x + g.t.to(x.dtype) if typ == "positions" else x
    R = g.R.to(dtype=x.dtype, device=x.device)
    if typ == "positions":
        return x @ R.T
    if typ == "cell":
        return x @ R.T
    if typ == "rank2":
        return R @ x @ R.T
    if x.shape[-1] != typ.dim:
        raise ValueError(f"tensor of shape {tuple(x.shape)} does not match irreps {typ} (dim {typ.dim})")
    return _apply_D(typ, R, x)


def _apply_D(irreps: Irreps, R: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``x @ D(R)^T`` block by block: one ``[2l+1, 2l+1]`` matrix per distinct irrep, never the dense
    ``[dim, dim]`` block-diagonal one (61 GB for the 123,552-dimensional outputs of a tensor product at L=8)."""
    if irreps.dim == 0:
        return x
    mats: dict = {}
    lead = x.shape[:-1]
    out = []
    for (mul, ir), s in zip(irreps, irreps.slices()):
        if mul == 0:
            continue
        if ir not in mats:
            mats[ir] = Irreps([(1, ir)]).D_from_matrix(R)
        out.append((x[..., s].reshape(*lead, mul, ir.dim) @ mats[ir].T).reshape(*lead, mul * ir.dim))
    return torch.cat(out, dim=-1)


def _map(obj, types, fn):
    """Apply fn(tensor, type) over matching structures (tensor / tuple / dict)."""
    if isinstance(obj, Mapping):
        if not isinstance(types, Mapping):
            raise ValueError(f"output is a dict with keys {list(obj)}; give out_types as a dict")
        return {k: fn(v, types[k]) if k in types else v for k, v in obj.items()}
    if isinstance(obj, (tuple, list)):
        if not isinstance(types, (tuple, list)) or len(types) != len(obj):
            raise ValueError(f"output is a sequence of {len(obj)}; give that many out_types")
        return type(obj)(fn(v, t) for v, t in zip(obj, types))
    return fn(obj, types)


def _blocks(typ):
    typ, _ = _norm_type(typ)
    if isinstance(typ, Irreps):
        return [(f"{mul}x{ir}", s) for (mul, ir), s in zip(typ, typ.slices())]
    return [(str(typ), slice(None))]


@dataclasses.dataclass
class EquivarianceReport:
    """Relative equivariance errors.

    ``errors[(transform, output, block)]``: the largest relative error
    ``|f(g x) - g f(x)| / |f(x)|`` over trials, per transform kind
    ('rotation', 'improper', 'translation', 'permutation'), per output (key
    or position) and per irreps block. ``max`` is the largest of all.
    """

    errors: dict

    @property
    def max(self) -> float:
        return max(self.errors.values(), default=0.0)

    def __str__(self) -> str:
        lines = [f"max relative equivariance error {self.max:.3e}"]
        for (kind, out, blk), e in sorted(self.errors.items(), key=lambda kv: -kv[1]):
            lines.append(f"  {kind:<12} output {out!s:<10} block {blk:<12} {e:.3e}")
        return "\n".join(lines)


@contextlib.contextmanager
def _eval_mode(fn):
    mods = [fn] if isinstance(fn, torch.nn.Module) else []
    states = [m.training for m in mods]
    for m in mods:
        m.eval()
    try:
        yield
    finally:
        for m, s in zip(mods, states):
            m.train(s)


def equivariance_error(
    fn: Callable,
    args: Sequence[torch.Tensor],
    in_types: Sequence,
    out_types,
    *,
    group: str = "O3",
    translations: bool = True,
    permutations: bool = False,
    n_trials: int = 3,
    seed: int = 0,
) -> EquivarianceReport:
    """Measure how far ``fn`` is from equivariant.

    Parameters
    ----------
    fn : callable
        ``fn(*args)`` returning a tensor, a tuple/list or a dict of tensors.
        Modules are put in eval mode while testing (restored after).
    args : sequence of tensors (or anything, typed ``None``)
    in_types, out_types
        Types of the inputs (one per arg) and outputs (same structure as
        the output); see the module docstring.
    group : {'O3', 'SO3'}
        'O3' adds improper rotations (parity) to the proper ones.
    translations : bool
        Also test translations (acting on 'positions' inputs and outputs);
        skipped when no input is of type 'positions'.
    permutations : bool
        Also test node permutations (inputs/outputs declared with
        ``Typed(..., nodes=True)``, 'index' tensors relabelled).
    n_trials : int
        Random group elements per kind; seeded with ``seed``.

    Returns
    -------
    EquivarianceReport

    Raises
    ------
    ValueError
        Mismatched types and values (the message names them).
    """
    if len(args) != len(in_types):
        raise ValueError(f"{len(args)} args but {len(in_types)} in_types")
    if group not in ("O3", "SO3"):
        raise ValueError(f"group must be 'O3' or 'SO3', got {group!r}")
    gen = torch.Generator().manual_seed(seed)
    ref_dtype = next((a.dtype for a in args if isinstance(a, torch.Tensor) and a.is_floating_point()), torch.float64)
    elements: list[_Element] = []
    for _ in range(n_trials):
        R = rand_matrix(generator=gen, dtype=torch.float64)
        elements.append(_Element("rotation", R=R))
        if group == "O3":
            elements.append(_Element("improper", R=-R))
    has_pos = any(_norm_type(t)[0] == "positions" for t in in_types)
    if translations and has_pos:
        for _ in range(n_trials):
            elements.append(_Element("translation", t=torch.randn(3, generator=gen, dtype=torch.float64) * 3))
    if permutations:
        n = None
        for a, t in zip(args, in_types):
            if _norm_type(t)[1] and isinstance(a, torch.Tensor):
                n = a.shape[0]
                break
        if n is None:
            raise ValueError("permutations=True needs an input declared Typed(..., nodes=True)")
        for _ in range(n_trials):
            elements.append(_Element("permutation", perm=torch.randperm(n, generator=gen)))

    errors: dict = {}
    with _eval_mode(fn):
        y = fn(*args)
        for g in elements:
            if g.R is not None:
                g.R = g.R.to(ref_dtype).to(torch.float64)
            gargs = [_act(a, t, g) for a, t in zip(args, in_types)]
            y_g = fn(*gargs)
            gy = _map(y, out_types, lambda v, t: _act(v, t, g))
            _accumulate(errors, g.kind, y_g, gy, out_types)
    return EquivarianceReport(errors)


def _accumulate(errors, kind, a, b, types, name="out"):
    if isinstance(a, Mapping):
        for k in a:
            if k in types:
                _accumulate(errors, kind, a[k], b[k], types[k], name=k)
        return
    if isinstance(a, (tuple, list)):
        for i, (u, v, t) in enumerate(zip(a, b, types)):
            _accumulate(errors, kind, u, v, t, name=i)
        return
    if types is None or not isinstance(a, torch.Tensor):
        return
    if _norm_type(types)[0] == "index":
        return
    for blk, s in _blocks(types):
        u = a[..., s].detach().double()
        v = b[..., s].detach().double()
        scale = max(float(v.norm()), float(u.norm()))
        diff = float((u - v).norm())
        if not (diff == diff):  # NaN
            err = float("inf")
        elif scale == 0.0:
            err = diff
        else:
            err = diff / scale
        key = (kind, name, blk)
        errors[key] = max(errors.get(key, 0.0), err)


def default_tolerance(dtype: torch.dtype) -> float:
    """1e-4 (float32) / 1e-9 (float64) relative."""
    return 1e-9 if dtype == torch.float64 else 1e-4


def assert_equivariant(
    fn, args, in_types, out_types, *, tolerance: float | None = None, **kwargs
) -> EquivarianceReport:
    """Like :func:`equivariance_error`, raising ``AssertionError`` (with the
    per-block breakdown) when the largest relative error exceeds
    ``tolerance`` (default from the inputs' dtype: 1e-4 float32, 1e-9 float64).
    Returns the report when it passes.
    """
    report = equivariance_error(fn, args, in_types, out_types, **kwargs)
    if tolerance is None:
        dt = next((a.dtype for a in args if isinstance(a, torch.Tensor) and a.is_floating_point()), torch.float64)
        tolerance = default_tolerance(dt)
    if not report.max <= tolerance:
        raise AssertionError(f"not equivariant (tolerance {tolerance:.1e}):\n{report}")
    return report
