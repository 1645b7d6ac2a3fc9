"""Typed tensors and how group elements act on them.

A *type* says how a tensor transforms under a group element ``g = (R, t, perm)``
(``x -> perm(R x + t)``). It generalizes the types of
:mod:`equivar.testing` (same names, same meaning) with per-row elements
(one ``R`` per sample along axis 0, used by frame averaging and batched orbit
evaluation) and a choice of node axis:

- an irreps string or ``Irreps`` (``"16x0e+8x1o"``): the last axis transforms
  by ``D(R)``; improper ``R`` act with each irrep's parity;
- ``"positions"`` (alias ``"points"``): ``[..., 3]``, ``x -> x R^T + t``;
- ``"vector"`` = ``"1o"``, ``"pseudovector"`` = ``"1e"``,
  ``"scalar"`` = ``"invariant"`` = ``"0e"``, ``"pseudoscalar"`` = ``"0o"``,
  ``"forces"`` = ``"1o"``, ``"energy"`` = ``"0e"``;
- ``"cell"``: ``[..., 3, 3]`` whose rows are lattice vectors, ``cell R^T``;
- ``"rank2"``: ``[..., 3, 3]`` Cartesian tensor, ``R T R^T`` (stress);
- ``"index"``: integer node indices (edge lists), relabelled by permutations;
- ``"image"`` (alias ``"images"``): ``[..., H, W]``, the last two axes are the
  plane on which :mod:`equivar.planar` groups act (shifts, rotations,
  affine maps); E(3) elements leave images unchanged;
- ``None``: unchanged.

Elements of planar groups (``GroupElement(planar=(group, g))``) act on
``"image"`` tensors through ``group.act(g, x)`` and leave invariant types
(``"0e"``, ``None``) unchanged; other types raise ``ValueError``.

``Typed(rep, nodes=True, node_axis=k)`` declares that axis ``k`` indexes
nodes, so node permutations act on it. ``equivar.testing.Typed`` objects are
accepted as well.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import torch

from ..o3 import Irreps

_ALIASES = {
    "vector": "1o",
    "forces": "1o",
    "pseudovector": "1e",
    "scalar": "0e",
    "invariant": "0e",
    "energy": "0e",
    "pseudoscalar": "0o",
    "points": "positions",
    "images": "image",
}
_SPECIAL = {"positions", "cell", "rank2", "index", "image"}


@dataclasses.dataclass(frozen=True)
class Typed:
    """A type plus where (if anywhere) its nodes are.

    Parameters
    ----------
    rep : str, Irreps or None
        See the module docstring.
    nodes : bool
        Node permutations act on axis ``node_axis``.
    node_axis : int
        Axis that indexes nodes (0 for ``[N, ...]``, 1 for batched
        ``[B, N, ...]``).
    """

    rep: Any
    nodes: bool = False
    node_axis: int = 0


@dataclasses.dataclass(frozen=True)
class TypeInfo:
    """Normalized type: ``kind`` is ``'irreps'``, one of the special names, or ``None``."""

    kind: str | None
    irreps: Irreps | None = None
    nodes: bool = False
    node_axis: int = 0


def norm_type(t) -> TypeInfo:
    """Normalize a type spec (string, Irreps, Typed, testing.Typed, None).

    Raises ``ValueError`` for an unknown type (the message lists valid ones).
    """
    if isinstance(t, TypeInfo):
        return t
    nodes, axis = False, 0
    if hasattr(t, "rep") and hasattr(t, "nodes"):
        nodes, axis, t = bool(t.nodes), int(getattr(t, "node_axis", 0)), t.rep
    if t is None:
        return TypeInfo(None, None, nodes, axis)
    if isinstance(t, str):
        t = _ALIASES.get(t.strip(), t.strip())
        if t in _SPECIAL:
            return TypeInfo(t, None, nodes, axis)
    try:
        irreps = Irreps(t)
    except (ValueError, TypeError) as e:
        raise ValueError(
            f"unknown type {t!r}: use irreps ('0e+1o'), 'positions', 'vector', 'pseudovector', 'scalar', "
            f"'pseudoscalar', 'cell', 'rank2', 'index', 'image' or None ({e})"
        ) from None
    return TypeInfo("irreps", irreps, nodes, axis)


@dataclasses.dataclass
class GroupElement:
    """``x -> perm(R x + t)``: orthogonal ``R`` (det +-1), translation ``t``, node permutation ``perm``.

    ``R`` is ``[3, 3]`` (one element) or ``[M, 3, 3]`` (one element per row
    along axis 0 of every tensor it acts on); likewise ``t`` is ``[3]`` or
    ``[M, 3]``. Stored in float64; cast to each tensor's dtype when acting.
    ``perm [N]`` (long) is a single permutation: new node ``i`` is old node
    ``perm[i]``. ``planar = (group, g)``: an element ``g`` of an
    :mod:`equivar.planar` group acting on ``"image"`` tensors (then ``R``,
    ``t`` and ``perm`` are ``None``).
    """

    R: torch.Tensor | None = None
    t: torch.Tensor | None = None
    perm: torch.Tensor | None = None
    label: str = ""
    cache: dict = dataclasses.field(default_factory=dict, repr=False, compare=False)
    planar: tuple | None = None

    @property
    def kind(self) -> str:
        if self.planar is not None:
            return "planar"
        if self.perm is not None:
            return "permutation"
        if self.R is None:
            return "translation" if self.t is not None else "identity"
        det = torch.linalg.det(self.R)
        if (det < 0).any():
            return "improper"
        return "rotation"

    def inverse(self) -> GroupElement:
        """The inverse element (``x -> R^T (perm^-1 x - t)``; ``g^-1`` in its planar group)."""
        if self.planar is not None:
            G, g = self.planar
            return GroupElement(planar=(G, G.inverse(g)), label=f"inverse({self.label})" if self.label else "")
        R = None if self.R is None else self.R.transpose(-1, -2)
        t = None
        if self.t is not None:
            t = -self.t if R is None else -(R @ self.t[..., None])[..., 0]
        perm = None
        if self.perm is not None:
            perm = torch.empty_like(self.perm)
            perm[self.perm] = torch.arange(len(self.perm), device=self.perm.device)
        return GroupElement(R, t, perm, f"inverse({self.label})" if self.label else "")


def _per_row(M: torch.Tensor, x: torch.Tensor, batched: bool) -> torch.Tensor:
    """``x [..., k] -> x M^T`` with ``M [k, k]`` or ``M [B, k, k]`` (row b of x uses M[b])."""
    if not batched:
        return x @ M.transpose(-1, -2)
    if x.shape[0] != M.shape[0]:
        raise ValueError(f"per-row group elements: {M.shape[0]} elements for a tensor with {x.shape[0]} rows")
    B, k = M.shape[0], M.shape[-1]
    y = x.reshape(B, -1, k) @ M.transpose(-1, -2)
    return y.reshape(x.shape)


def irreps_matrix(irreps: Irreps, R: torch.Tensor) -> torch.Tensor:
    """``D(R)`` for ``R [..., 3, 3]`` (proper or improper), with a fast path for ``l <= 1``."""
    if all(ir.l <= 1 for _, ir in irreps):
        det = torch.linalg.det(R)[..., None, None]
        blocks = []
        for mul, ir in irreps:
            if ir.l == 0:
                b = torch.ones(R.shape[:-2] + (1, 1), dtype=R.dtype, device=R.device)
                b = b * det if ir.p == -1 else b
            else:
                b = R if ir.p == -1 else R * det
            blocks.extend([b] * mul)
        if not blocks:
            return R.new_zeros(R.shape[:-2] + (0, 0))
        return torch.block_diag(*blocks) if R.dim() == 2 else _batched_block_diag(blocks)
    return irreps.D_from_matrix(R)


def precompute(elements, types) -> None:
    """Fill each element's cache with ``D_ir(R)`` for every irrep ``l > 1`` in ``types`` (one batched call per irrep).

    Speeds up acting with many single elements on irreps features; only
    elements with a single ``R [3, 3]`` are cached.
    """
    els = [g for g in elements if g.R is not None and g.R.dim() == 2]
    if not els:
        return
    irs = {}
    for t in types:
        info = norm_type(t)
        if info.kind == "irreps":
            irs.update({str(ir): ir for mul, ir in info.irreps if ir.l > 1 and mul > 0})
    for key, ir in irs.items():
        todo = [g for g in els if key not in g.cache]
        if todo:
            D = Irreps([(1, ir)]).D_from_matrix(torch.stack([g.R for g in todo]))
            for g, d in zip(todo, D):
                g.cache[key] = d


def _irrep_matrix(ir, g: GroupElement, R: torch.Tensor) -> torch.Tensor:
    """``D_ir(R)`` for one irrep: ``[2l+1, 2l+1]`` or ``[M, 2l+1, 2l+1]``, from the element's cache when there."""
    D = g.cache.get(str(ir)) if R.dim() == 2 else None
    if D is None:
        return irreps_matrix(Irreps([(1, ir)]), R)
    return D.to(dtype=R.dtype, device=R.device)


def _apply_irreps(irreps: Irreps, g: GroupElement, R: torch.Tensor, x: torch.Tensor, batched: bool) -> torch.Tensor:
    """``x D(R)^T`` block by block: one ``[2l+1, 2l+1]`` matrix per distinct irrep, never the dense
    ``[dim, dim]`` block-diagonal one (61 GB for the 123,552-dimensional outputs of a tensor product at L=8)."""
    if irreps.dim == 0:
        return x
    mats: dict = {}
    out = []
    for (mul, ir), s in zip(irreps, irreps.slices()):
        if mul == 0:
            continue
        if ir not in mats:
            mats[ir] = _irrep_matrix(ir, g, R)
        blk = x[..., s]
        y = _per_row(mats[ir], blk.reshape(*blk.shape[:-1], mul, ir.dim), batched)
        out.append(y.reshape(blk.shape))
    return torch.cat(out, dim=-1) if len(out) > 1 else out[0]


def _batched_block_diag(blocks):
    n = sum(b.shape[-1] for b in blocks)
    out = blocks[0].new_zeros(blocks[0].shape[:-2] + (n, n))
    i = 0
    for b in blocks:
        d = b.shape[-1]
        out[..., i : i + d, i : i + d] = b
        i += d
    return out


def act(x, typ, g: GroupElement):
    """Apply the group element ``g`` to ``x`` of type ``typ``.

    Parameters
    ----------
    x : Tensor or anything
        Non-tensors and ``None``-typed values are returned unchanged.
    typ : type spec (see module docstring)
    g : GroupElement

    Returns
    -------
    Tensor of the same shape and dtype as ``x``.

    Raises
    ------
    ValueError
        Irreps dimension does not match ``x.shape[-1]``, or per-row elements
        do not match ``x.shape[0]``.
    """
    info = norm_type(typ)
    if (info.kind is None and not info.nodes) or not isinstance(x, torch.Tensor):
        return x
    if g.planar is not None:
        return _act_planar(x, info, g)
    if info.kind == "image":
        return x
    if g.perm is not None:
        if info.kind == "index":
            inv = torch.empty_like(g.perm)
            inv[g.perm] = torch.arange(len(g.perm), device=g.perm.device)
            x = inv.to(x.device)[x]
        elif info.nodes:
            if x.shape[info.node_axis] != len(g.perm):
                raise ValueError(
                    f"permutation of {len(g.perm)} nodes applied to axis {info.node_axis} of shape {tuple(x.shape)}"
                )
            x = x.index_select(info.node_axis, g.perm.to(x.device))
    if info.kind in (None, "index"):
        return x
    if g.R is not None:
        R = g.R.to(dtype=x.dtype, device=x.device)
        batched = R.dim() == 3
        if info.kind in ("positions", "cell"):
            x = _per_row(R, x, batched)
        elif info.kind == "rank2":
            if batched:
                Rb = R.reshape((R.shape[0],) + (1,) * (x.dim() - 3) + (3, 3))
                x = Rb @ x @ Rb.transpose(-1, -2)
            else:
                x = R @ x @ R.T
        elif info.irreps.dim == 1 and (x.dim() == 0 or x.shape[-1] != 1):
            # a tensor of scalars without a trailing irreps axis (energy [G])
            x = _apply_irreps(info.irreps, g, R, x[..., None], batched)[..., 0]
        else:
            if x.shape[-1] != info.irreps.dim:
                raise ValueError(
                    f"tensor of shape {tuple(x.shape)} does not match irreps {info.irreps} (dim {info.irreps.dim})"
                )
            x = _apply_irreps(info.irreps, g, R, x, batched)
    if g.t is not None and info.kind == "positions":
        t = g.t.to(dtype=x.dtype, device=x.device)
        if t.dim() == 2:
            t = t.reshape((t.shape[0],) + (1,) * (x.dim() - 2) + (3,))
        x = x + t
    return x


def _act_planar(x: torch.Tensor, info: TypeInfo, g: GroupElement) -> torch.Tensor:
    G, el = g.planar
    if info.kind == "image":
        return G.act(el, x)
    if info.kind in (None, "index") or (
        info.kind == "irreps" and all(ir.l == 0 and ir.p == 1 for _, ir in info.irreps)
    ):
        return x
    raise ValueError(
        f"{G!r} acts on 'image' tensors (and leaves invariants '0e' unchanged), not on type {info.kind!r}"
        + (f" {info.irreps}" if info.irreps is not None else "")
    )


def flatten(obj, types, name: str = "out") -> dict:
    """Flatten a tensor / tuple / dict output and its types to ``{name: (tensor, type)}``.

    Dict entries without a type are dropped; tuples are named by position.
    Raises ``ValueError`` when structure and types disagree.
    """
    out: dict = {}
    if isinstance(obj, Mapping):
        if not isinstance(types, Mapping):
            raise ValueError(f"output is a dict with keys {list(obj)}; give out_types as a dict")
        for k, v in obj.items():
            if k in types:
                out.update(flatten(v, types[k], str(k)))
        return out
    if isinstance(obj, (tuple, list)):
        if not isinstance(types, (tuple, list)) or len(types) != len(obj):
            raise ValueError(f"output is a sequence of {len(obj)}; give that many out_types")
        for i, (v, t) in enumerate(zip(obj, types)):
            out.update(flatten(v, t, str(i) if name == "out" else f"{name}.{i}"))
        return out
    if isinstance(obj, torch.Tensor) and norm_type(types).kind not in (None, "index"):
        out[name] = (obj, types)
    return out


def map_structure(obj, types, fn: Callable):
    """Apply ``fn(value, type)`` over a tensor / tuple / list / dict with matching types."""
    if isinstance(obj, Mapping):
        if not isinstance(types, Mapping):
            raise ValueError(f"value is a dict with keys {list(obj)}; give its types as a dict")
        return {k: fn(v, types[k]) if k in types else v for k, v in obj.items()}
    if isinstance(obj, (tuple, list)):
        if not isinstance(types, (tuple, list)) or len(types) != len(obj):
            raise ValueError(f"value is a sequence of {len(obj)}; give that many types")
        return type(obj)(map_structure(v, t, fn) for v, t in zip(obj, types))
    return fn(obj, types)


def act_all(obj, types, g: GroupElement):
    """:func:`act` over a structure (tensor, tuple, list, dict)."""
    return map_structure(obj, types, lambda v, t: act(v, t, g))


def blocks(typ) -> list[tuple[str, slice]]:
    """Named slices of the last axis: one per ``mul x ir`` block for irreps, else the whole axis."""
    info = norm_type(typ)
    if info.kind == "irreps" and len(info.irreps) > 1:
        return [(f"{mul}x{ir}", s) for (mul, ir), s in zip(info.irreps, info.irreps.slices())]
    return [(str(info.irreps) if info.kind == "irreps" else str(info.kind), slice(None))]
