"""Equivariance checks for any callable with typed inputs and outputs.

A thin layer over :mod:`equivar.symmetry`'s typed group actions: the types,
their aliases and how group elements act on them are
:func:`equivar.symmetry.norm_type` and :func:`equivar.symmetry.act` (one
type system for the test kit, the audits and frame averaging). In short, a
*type* is

- an irreps string or ``Irreps`` (``"16x0e+8x1o"``): the last axis
  transforms by ``D(R)`` (improper rotations act with parity);
- ``"positions"`` (alias ``"points"``): ``[..., 3]`` points, ``x R^T + t``;
- ``"vector"`` / ``"forces"`` (= ``"1o"``), ``"pseudovector"`` (= ``"1e"``),
  ``"scalar"`` / ``"invariant"`` / ``"energy"`` (= ``"0e"``),
  ``"pseudoscalar"`` (= ``"0o"``);
- ``"cell"``: ``[..., 3, 3]`` whose *rows* are lattice vectors, ``cell R^T``;
  ``"rank2"``: ``[..., 3, 3]`` Cartesian tensor, ``R T R^T`` (stress);
- ``"index"``: integer node indices (edge lists), relabelled under node
  permutations;
- ``None``: passed through unchanged.

``Typed(type, nodes=True)`` declares that axis 0 indexes nodes, so node
permutations act on it.

As in e3nn's ``assert_equivariant``, a module that declares ``irreps_in``
and ``irreps_out`` (or ``irreps_in1``/``irreps_in2`` for a tensor product)
can be checked without types or inputs: they are read from the module and
random inputs are drawn in the module's dtype.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Mapping, Sequence

import torch

from ..o3 import Irreps, rand_matrix
from ..symmetry import GroupElement, Typed, act, act_all, blocks, norm_type

__all__ = [
    "EquivarianceReport",
    "Typed",
    "assert_equivariant",
    "default_tolerance",
    "equivariance_error",
    "random_inputs",
]


@dataclasses.dataclass
class EquivarianceReport:
    """Relative equivariance errors.

    ``errors[(transform, output, block)]``: the largest relative error
    ``|f(g x) - g f(x)| / max(|f(g x)|, |g f(x)|)`` over trials, per transform
    kind ('rotation', 'improper', 'translation', 'permutation'), per output
    (key or position) and per irreps block. ``max`` is the largest of all.
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


def _declared(fn, names: Sequence[str]):
    for name in names:
        v = getattr(fn, name, None)
        if v is not None:
            return v
    return None


def _is_type_list(v) -> bool:
    """A list of types (one per input/output), not one ``Irreps`` (itself a tuple)."""
    return isinstance(v, (list, tuple)) and not isinstance(v, Irreps)


def _module_types(fn, in_types, out_types):
    """Types read from the module (e3nn's attribute names) where not given."""
    if in_types is None:
        v = _declared(fn, ("irreps_in",))
        if v is None and getattr(fn, "irreps_in1", None) is not None and getattr(fn, "irreps_in2", None) is not None:
            v = [fn.irreps_in1, fn.irreps_in2]
        if v is None:
            raise ValueError(
                f"{type(fn).__name__} declares no irreps_in (nor irreps_in1/irreps_in2): give in_types explicitly"
            )
        in_types = list(v) if _is_type_list(v) else [v]
    if out_types is None:
        v = _declared(fn, ("irreps_out",))
        if v is None:
            raise ValueError(f"{type(fn).__name__} declares no irreps_out: give out_types explicitly")
        out_types = list(v) if _is_type_list(v) else v
    return in_types, out_types


def _module_dtype_device(fn, dtype):
    ref = None
    if isinstance(fn, torch.nn.Module):
        ref = next((t for t in list(fn.parameters()) + list(fn.buffers()) if t.is_floating_point()), None)
    device = ref.device if ref is not None else torch.device("cpu")
    if dtype is None:
        dtype = ref.dtype if ref is not None else torch.get_default_dtype()
    return dtype, device


def random_inputs(in_types: Sequence, batch: int = 5, *, dtype=None, device=None, seed: int = 0) -> list:
    """Random inputs for the given types: ``[batch, dim]`` normal features for irreps, ``[batch, 3]`` for
    positions and vectors, ``[batch, 3, 3]`` for 'cell' and 'rank2'.

    Raises ``ValueError`` naming the input whose type cannot be drawn at random ('index' or ``None``).
    """
    gen = torch.Generator().manual_seed(seed)
    dtype = dtype or torch.get_default_dtype()
    out = []
    for i, t in enumerate(in_types):
        info = norm_type(t)
        if info.kind == "irreps":
            shape = (batch, info.irreps.dim)
        elif info.kind == "positions":
            shape = (batch, 3)
        elif info.kind in ("cell", "rank2"):
            shape = (batch, 3, 3)
        else:
            raise ValueError(f"input {i} has type {t!r}: cannot draw it at random; give args explicitly")
        out.append(torch.randn(shape, generator=gen, dtype=torch.float64).to(dtype=dtype, device=device))
    return out


def _resolve(fn, args, in_types, out_types, dtype, batch, seed):
    if in_types is None or out_types is None:
        in_types, out_types = _module_types(fn, in_types, out_types)
    if args is None:
        dt, device = _module_dtype_device(fn, dtype)
        args = random_inputs(in_types, batch, dtype=dt, device=device, seed=seed)
    return list(args), list(in_types), out_types


def _first_float_dtype(args) -> torch.dtype:
    return next((a.dtype for a in args if isinstance(a, torch.Tensor) and a.is_floating_point()), torch.float64)


def equivariance_error(
    fn: Callable,
    args: Sequence[torch.Tensor] | None = None,
    in_types: Sequence | None = None,
    out_types=None,
    *,
    group: str = "O3",
    translations: bool = True,
    permutations: bool = False,
    n_trials: int = 3,
    seed: int = 0,
    dtype: torch.dtype | None = None,
    batch: int = 5,
) -> EquivarianceReport:
    """Measure how far ``fn`` is from equivariant.

    Parameters
    ----------
    fn : callable
        ``fn(*args)`` returning a tensor, a tuple/list or a dict of tensors.
        Modules are put in eval mode while testing (restored after).
    args : sequence of tensors (or anything, typed ``None``), optional
        Default: random inputs drawn for ``in_types`` (``batch`` rows, in
        ``dtype`` or the module's parameter dtype), seeded with ``seed``.
    in_types, out_types : optional
        Types of the inputs (one per arg) and outputs (same structure as
        the output); see the module docstring. Default: read from
        ``fn.irreps_in`` (or ``fn.irreps_in1``, ``fn.irreps_in2``) and
        ``fn.irreps_out``, as e3nn does.
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
    dtype : torch.dtype, optional
        dtype of generated inputs (ignored when ``args`` are given).
    batch : int
        Rows of generated inputs.

    Returns
    -------
    EquivarianceReport

    Raises
    ------
    ValueError
        Mismatched types and values, or types that cannot be read from
        ``fn`` or drawn at random (the message names them).
    """
    args, in_types, out_types = _resolve(fn, args, in_types, out_types, dtype, batch, seed)
    if len(args) != len(in_types):
        raise ValueError(f"{len(args)} args but {len(in_types)} in_types")
    if group not in ("O3", "SO3"):
        raise ValueError(f"group must be 'O3' or 'SO3', got {group!r}")
    gen = torch.Generator().manual_seed(seed)
    ref_dtype = _first_float_dtype(args)
    infos = [norm_type(t) for t in in_types]  # validates the types (one-line error naming a bad one)
    elements: list[GroupElement] = []
    for _ in range(n_trials):
        # rounded to the inputs' precision, so a float32 check does not charge the model for float64 rotations
        R = rand_matrix(generator=gen, dtype=torch.float64).to(ref_dtype).to(torch.float64)
        elements.append(GroupElement(R=R, label="rotation"))
        if group == "O3":
            elements.append(GroupElement(R=-R, label="improper"))
    if translations and any(i.kind == "positions" for i in infos):
        for _ in range(n_trials):
            t = torch.randn(3, generator=gen, dtype=torch.float64) * 3
            elements.append(GroupElement(t=t, label="translation"))
    if permutations:
        n = next((a.shape[i.node_axis] for a, i in zip(args, infos) if i.nodes and isinstance(a, torch.Tensor)), None)
        if n is None:
            raise ValueError("permutations=True needs an input declared Typed(..., nodes=True)")
        for _ in range(n_trials):
            elements.append(GroupElement(perm=torch.randperm(n, generator=gen), label="permutation"))

    errors: dict = {}
    with _eval_mode(fn):
        y = fn(*args)
        for g in elements:
            y_g = fn(*[act(a, t, g) for a, t in zip(args, in_types)])
            _accumulate(errors, g.label, y_g, act_all(y, out_types, g), out_types)
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
    if not isinstance(a, torch.Tensor) or norm_type(types).kind in (None, "index"):
        return
    for blk, s in blocks(types):
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
    fn, args=None, in_types=None, out_types=None, *, tolerance: float | None = None, **kwargs
) -> EquivarianceReport:
    """Like :func:`equivariance_error`, raising ``AssertionError`` (with the
    per-block breakdown) when the largest relative error exceeds
    ``tolerance`` (default from the inputs' dtype: 1e-4 float32, 1e-9 float64).
    Returns the report when it passes.

    ``assert_equivariant(module)`` reads ``irreps_in``/``irreps_out`` from the
    module and draws its own inputs (e3nn's convention); e3nn's keyword
    names ``args_in``, ``irreps_in`` and ``irreps_out`` are accepted for
    ``args``, ``in_types`` and ``out_types``.

    Examples
    --------
    >>> from equivar.nn import Linear
    >>> report = assert_equivariant(Linear("4x0e+2x1o", "3x0e+1x1o").double())
    >>> report.max < 1e-9
    True
    """
    given = {"args": args, "in_types": in_types, "out_types": out_types}
    for e3nn_name, name in (("args_in", "args"), ("irreps_in", "in_types"), ("irreps_out", "out_types")):
        if e3nn_name in kwargs:  # e3nn's keyword names
            if given[name] is not None:
                raise ValueError(f"give {name} or {e3nn_name}, not both")
            given[name] = kwargs.pop(e3nn_name)
    args, in_types, out_types = given["args"], given["in_types"], given["out_types"]
    args, in_types, out_types = _resolve(
        fn, args, in_types, out_types, kwargs.pop("dtype", None), kwargs.pop("batch", 5), kwargs.get("seed", 0)
    )
    report = equivariance_error(fn, args, in_types, out_types, **kwargs)
    if tolerance is None:
        tolerance = default_tolerance(_first_float_dtype(args))
    if not report.max <= tolerance:
        raise AssertionError(f"not equivariant (tolerance {tolerance:.1e}):\n{report}")
    return report
