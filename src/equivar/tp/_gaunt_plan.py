"""Shared machinery of the Gaunt-family backends (``s2grid`` and ``gaunt``).

Both backends compute tensor products as **products of functions on the
sphere** (Luo, Chen, Zhang, "Enabling Efficient Equivariant Operations in the
Fourier Basis via Gaunt Tensor Products", ICLR 2024): the coefficients
``x1[l1]`` and ``x2[l2]`` are read as band-limited functions
``f1 = sum x1_lm Y_lm``, ``f2 = sum x2_lm Y_lm`` (orthonormal real harmonics
of e3nn's basis), multiplied pointwise, and the product is projected back on
the harmonics of each output degree ``l3``. The coefficient of one path is
then the Gaunt tensor

    ``G[m1, m2, m3] = int Y_l1m1 Y_l2m2 Y_l3m3 dOmega = g(l1, l2, l3) * C[m1, m2, m3]``

(``C = wigner_3j``, ``g`` a scalar), which vanishes when ``l1 + l2 + l3`` is
odd. This module decides *which* products to run for a list of
instructions, holds the weights and normalization, and maps the backend's
weights to per-path weights of the exact ``cg`` backend. The backends only
implement "synthesize" (coefficients -> function values) and "contract"
(product -> coefficients).

Parity completeness ("odd" paths)
---------------------------------
Paths with odd ``l1 + l2 + l3`` (e.g. the cross product ``1o x 1o -> 1e``)
are realized with a second, *vector-valued* product on the same grid (the
missing interactions of the Gaunt product are recovered by vector signals
on the sphere, as shown by Xie, Daigavane, Kotak, Smidt, "Asymptotically
Fast Clebsch-Gordan Tensor Products with Vector Spherical Harmonics", 2026,
following "The Price of Freedom", ICML 2025):

    ``h = rhat . (grad f1 x grad f2) = (rhat x grad f1) . grad f2``

where ``grad`` is the gradient of the harmonic (solid-harmonic) extension
``|r|^l Y_l(r/|r|)``. ``h`` is rotation-equivariant and bilinear; under
inversion it picks up ``(-1)^(l1+l2+l3+1)``, so its projection on ``Y_l3``
(the Elsasser integral of geomagnetism) is non-zero exactly for the paths
with odd ``l1 + l2 + l3`` (strict triangle), where it equals
``e(l1, l2, l3) * C``. Each component of ``rhat x grad Y_l1`` is a
polynomial of degree ``l1`` and each of ``grad Y_l2`` one of degree
``l2 - 1``, so the same quadrature grid stays exact. It costs three
syntheses per input instead of one. Inputs whose parities differ from
``(-1)^l`` need nothing special: the coupling tensors do not depend on
parity, and the instruction list (validated by ``TensorProduct``) decides
which blocks meet.

Weight forms
------------
``'factorized'`` (the Gaunt form of Luo et al.): per-path weights are *not*
realizable by a single function product; what is realizable is a weight per
(input-1 block, channel) ``a[i1, u]``, per (input-2 block, input-2 channel)
``b[i2, v]`` and per (output block, channel) ``c[k, u]``::

    out[k, u] = nu_k c[k, u] sum_{paths (i1, i2) -> k} a[i1, u] b[i2, v] (x1[i1, u] (x) x2[i2, v])_Gaunt

This equals the ``cg`` tensor product with per-path weights
``W[path][u, v] = a[i1, u] b[i2, v] c[k, u] nu_k g(path) / path_weight``
(:meth:`GauntFamilyBackend.to_path_weights`). ``nu_k`` gives each output
component unit variance (``'component'``) for unit-variance inputs; the
instructions' ``path_weight`` values are not used in this form.

``'path'``: the weights and coefficients of the ``TensorProduct`` instructions
(e3nn's layout), reproduced exactly; each path is then its own product
(fast when each output block has one path, as in the MACE/NequIP edge
tensor product; slow for "many paths into one output").

``'auto'`` (default): ``'path'`` when that costs no more products than
``'factorized'`` (every output block fed by a single path), otherwise
``'factorized'``. The choice is in ``backend.weight_form``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch

from ..o3 import Irreps, so3_generators, sphere_grid, spherical_harmonics, wigner_3j_np
from ._constants import ConstantsModule

EVEN, ODD = 0, 1
MODES = ("uvu", "uuu")
WEIGHT_FORMS = ("auto", "factorized", "path")
WEIGHT_PARTS = ("in1", "in2", "out")


# ----------------------------------------------------------------------------
# Harmonic fields and coupling coefficients (float64, cached)
# ----------------------------------------------------------------------------
def harmonic_fields(l: int, points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Values at unit vectors ``points [n, 3]`` of (float64):

    ``Y [n, d]`` orthonormal harmonics, ``Q [n, 3, d] = rhat x grad P`` and
    ``G [n, 3, d] = grad P`` for ``P = |r|^l Y_l(r/|r|)`` (e3nn basis, y polar).

    No differentiation is needed: ``r x grad`` is the generator of rotations,
    so ``Q_k = X_k Y`` with the real generators ``X = so3_generators(l)``, and
    on the unit sphere ``grad P = l P rhat - rhat x Q`` (Euler's identity for
    the radial part).
    """
    pts = np.asarray(points, dtype=np.float64)
    Y = spherical_harmonics(l, torch.tensor(pts), normalize=False, normalization="integral").numpy()
    X = so3_generators(l, dtype=torch.float64).numpy()  # [3, d, d]
    Q = np.einsum("kmj,nj->nkm", X, Y)
    G = l * Y[:, None, :] * pts[:, :, None] - np.cross(pts[:, :, None], Q, axisa=1, axisb=1, axisc=1)
    return Y, Q, G


@functools.cache
def _grid_fields_cached(n_beta: int, n_alpha: int, l: int):
    g = sphere_grid(max(0, min(2 * n_beta - 1, n_alpha - 1)), n_beta=n_beta, n_alpha=n_alpha, dtype=torch.float64)
    return (g.points.numpy(), g.weights.numpy()) + harmonic_fields(l, g.points.numpy())


@functools.cache
def coupling(l1: int, l2: int, l3: int, kind: int) -> tuple[np.ndarray, float]:
    """Coupling tensor ``T [d1, d2, d3]`` of one path and ``g`` with ``T = g * wigner_3j``.

    ``kind=EVEN``: the Gaunt tensor (``int Y1 Y2 Y3``); ``kind=ODD``:
    ``int Y3 rhat . (grad P1 x grad P2)``. Both by a quadrature exact for
    degree ``l1 + l2 + l3``; ``g = 0`` where the coupling vanishes.
    """
    C = wigner_3j_np(l1, l2, l3)
    bl = l1 + l2 + l3
    nb, na = (bl + 2) // 2, bl + 1
    if not abs(l1 - l2) <= l3 <= l1 + l2 or (bl % 2 == 1) != (kind == ODD):
        return np.zeros_like(C), 0.0
    _, w, Y1, Q1, _ = _grid_fields_cached(nb, na, l1)
    _, _, Y2, _, G2 = _grid_fields_cached(nb, na, l2)
    _, _, Y3, _, _ = _grid_fields_cached(nb, na, l3)
    if kind == EVEN:
        T = np.einsum("n,ni,nj,nk->ijk", w, Y1, Y2, Y3)
    else:
        T = np.einsum("n,nci,ncj,nk->ijk", w, Q1, G2, Y3)
    g = float((T * C).sum())
    if abs(g) < 1e-12 * max(1.0, float(np.abs(T).max(initial=0.0))):
        return np.zeros_like(C), 0.0
    res = np.abs(T - g * C).max()
    if res > 1e-9 * abs(g):  # pragma: no cover - a bug in the basis conventions
        raise AssertionError(f"coupling ({l1},{l2},{l3}) kind {kind} is not proportional to wigner_3j (residual {res})")
    return T, g


def path_kind(l1: int, l2: int, l3: int) -> int:
    return EVEN if (l1 + l2 + l3) % 2 == 0 else ODD


# ----------------------------------------------------------------------------
# Plan
# ----------------------------------------------------------------------------
class Target(NamedTuple):
    """One output block fed by a product: ``out[k] += const * w[u] * proj_{l3}(product)``."""

    k: int
    l3: int
    const: float
    w_off: int | None  # offset of a [U] weight vector, or None


class Product(NamedTuple):
    """One function product: x1 blocks ``A`` times x2 blocks ``B`` (same mode and kind)."""

    A: tuple
    B: tuple
    kind: int
    mode: str
    U: int
    targets: tuple


class _PathInfo(NamedTuple):
    n: int
    i1: int
    i2: int
    k: int
    l1: int
    l2: int
    l3: int
    kind: int
    mode: str
    U: int
    V: int
    g: float
    ins: object


def _rectangles(pairs: set, nz) -> list[tuple[tuple, tuple]]:
    """Cover ``pairs`` (a set of (i1, i2)) by rectangles ``A x B`` such that
    ``(A x B) restricted to nz`` is exactly the covered pairs (greedy)."""
    B_of: dict[int, set] = {}
    for i1, i2 in pairs:
        B_of.setdefault(i1, set()).add(i2)
    rects: list[tuple[list, set]] = []
    for i1 in sorted(B_of):
        placed = False
        for A, B in rects:
            newB = B | B_of[i1]
            if all({j for j in newB if nz(a, j)} == B_of[a] for a in A + [i1]):
                A.append(i1)
                B |= B_of[i1]
                placed = True
                break
        if not placed:
            rects.append(([i1], set(B_of[i1])))
    return [(tuple(A), tuple(sorted(B))) for A, B in rects]


class GauntFamilyBackend(ConstantsModule):
    """Base class of the ``s2grid`` and ``gaunt`` backends (backend contract of :mod:`equivar.tp`).

    Subclasses implement :meth:`_build` (constants for the planned
    products), :meth:`_layout` (operand row order) and :meth:`_run`.

    Parameters
    ----------
    irreps_in1, irreps_in2, irreps_out : Irreps
    instructions : list of Instruction
        Normalized instructions (``TensorProduct`` does this).
    irrep_normalization : {'component', 'norm', 'none'}
    path_normalization : {'element', 'path', 'none'}
        In the ``'path'`` weight form they are already in the instructions'
        ``path_weight``; in the ``'factorized'`` form they set ``nu_k`` (see
        the module docstring; ``'path'`` is treated as ``'element'``, since
        per-path factors cannot be applied inside one product; ``'none'``
        together with irrep normalization ``'none'`` gives the raw Gaunt
        integrals).
    weight_form : {'auto', 'factorized', 'path'}
    weight_parts : sequence of {'in1', 'in2', 'out'}
        Which factors of the factorized form carry weights (default all).
    parity_complete : bool
        Realize odd ``l1 + l2 + l3`` paths with the vector product (default
        True); if False they are not expressible.

    Attributes
    ----------
    exact : bool
        True: every expressible path is computed exactly (no approximation).
    weight_form : str
        ``'factorized'`` or ``'path'`` (after resolving ``'auto'``).
    weight_numel : int
    products : list of Product
        The function products run per call.
    unexpressible : dict
        ``instruction -> reason`` for the instructions this backend cannot
        realize (``TensorProduct`` turns them into a ``ValueError``).
    """

    exact = True

    def __init__(
        self,
        irreps_in1,
        irreps_in2,
        irreps_out,
        instructions: Sequence,
        *,
        irrep_normalization: str = "component",
        path_normalization: str = "element",
        weight_form: str = "auto",
        weight_parts: Sequence[str] = WEIGHT_PARTS,
        parity_complete: bool = True,
    ) -> None:
        super().__init__()
        self.irreps_in1, self.irreps_in2, self.irreps_out = Irreps(irreps_in1), Irreps(irreps_in2), Irreps(irreps_out)
        self.instructions = list(instructions)
        if weight_form not in WEIGHT_FORMS:
            raise ValueError(f"weight_form must be one of {WEIGHT_FORMS}, got {weight_form!r}")
        weight_parts = tuple(weight_parts)
        if any(p not in WEIGHT_PARTS for p in weight_parts):
            raise ValueError(f"weight_parts must be a subset of {WEIGHT_PARTS}, got {weight_parts!r}")
        self.irrep_normalization = irrep_normalization
        self.path_normalization = path_normalization
        self.parity_complete = bool(parity_complete)
        self.weight_parts = weight_parts

        # ---- per-path information and expressibility
        self.unexpressible: dict = {}
        paths: list[_PathInfo] = []
        for n, ins in enumerate(self.instructions):
            reason = self._check(ins)
            if reason is not None:
                self.unexpressible[tuple(ins)] = reason
                continue
            (m1, ir1), (m2, ir2), (mo, iro) = (
                self.irreps_in1[ins.i_in1],
                self.irreps_in2[ins.i_in2],
                self.irreps_out[ins.i_out],
            )
            if m1 * m2 * mo == 0 or ins.path_weight == 0:
                continue  # contributes nothing
            kind = path_kind(ir1.l, ir2.l, iro.l)
            _, g = coupling(ir1.l, ir2.l, iro.l, kind)
            paths.append(
                _PathInfo(
                    n, ins.i_in1, ins.i_in2, ins.i_out, ir1.l, ir2.l, iro.l, kind, ins.connection_mode, m1, m2, g, ins
                )
            )
        self._paths = paths
        self.any_weight = any(p.ins.has_weight for p in paths)

        fact = self._plan_factorized(paths)
        path_ok = all(not (p.ins.has_weight and p.mode == "uvu" and p.V != 1) for p in paths)
        if weight_form == "auto":
            single = all(
                len(pr.A) == 1 and len(pr.B) == 1 and sum(1 for p in paths if p.k == t.k) == 1
                for pr in fact
                for t in pr.targets
            )
            weight_form = "path" if (single and path_ok) else "factorized"
        if weight_form == "path":
            for p in paths:
                if p.ins.has_weight and p.mode == "uvu" and p.V != 1:
                    self.unexpressible[tuple(p.ins)] = (
                        "weighted 'uvu' path with mul_in2 > 1 has per-(u, v) weights, not realizable in the 'path' "
                        "weight form of a function product; use weight_form='factorized'"
                    )
            paths = [p for p in paths if tuple(p.ins) not in self.unexpressible]
            self._paths = paths
            self.products = self._plan_path(paths)
            self.weight_numel = sum(math.prod(i.path_shape) for i in self.instructions if i.has_weight)
        else:
            self.products = fact
        self.weight_form = weight_form
        self._build()
        self._build_gathers()

    # ------------------------------------------------------------------
    def _check(self, ins) -> str | None:
        if ins.connection_mode not in MODES:
            return f"connection mode {ins.connection_mode!r} is not channelwise; the function product supports {MODES}"
        (_m1, ir1), (_m2, ir2), (_mo, iro) = (
            self.irreps_in1[ins.i_in1],
            self.irreps_in2[ins.i_in2],
            self.irreps_out[ins.i_out],
        )
        kind = path_kind(ir1.l, ir2.l, iro.l)
        if kind == ODD and not self.parity_complete:
            return (
                f"l1+l2+l3 = {ir1.l + ir2.l + iro.l} is odd: the Gaunt coefficient vanishes "
                "(use parity_complete=True for the vector product)"
            )
        if abs(ir1.l - ir2.l) <= iro.l <= ir1.l + ir2.l and coupling(ir1.l, ir2.l, iro.l, kind)[1] == 0.0:
            return f"the function product has no ({ir1.l}, {ir2.l}) -> {iro.l} coupling"
        return None

    def expressible(self, instruction) -> bool:
        """Whether this backend realizes ``instruction`` (exactly), constructed or not.

        See :attr:`unexpressible` / :meth:`why_not` for the reasons.
        """
        return self.why_not(instruction) is None

    def why_not(self, instruction) -> str | None:
        """``None`` if ``instruction`` is expressible, else the reason (a sentence)."""
        r = self.unexpressible.get(tuple(instruction))
        if r is not None:
            return r
        r = self._check(instruction)
        if r is not None:
            return r
        if (
            self.weight_form == "path"
            and instruction.has_weight
            and instruction.connection_mode == "uvu"
            and self.irreps_in2[instruction.i_in2].mul != 1
        ):
            return "weighted 'uvu' path with mul_in2 > 1 is not realizable in the 'path' weight form"
        return None

    def resolution(self) -> dict:
        """Grid / basis size and the band limit at which the backend is exact."""
        return {
            "band_limit": getattr(self, "band_limit", None),
            "weight_form": self.weight_form,
            "products": len(self.products),
        }

    # ------------------------------------------------------------------
    def _nz(self, k: int, kind: int):
        l3 = self.irreps_out[k].ir.l

        def nz(i1, i2):
            l1, l2 = self.irreps_in1[i1].ir.l, self.irreps_in2[i2].ir.l
            return (
                abs(l1 - l2) <= l3 <= l1 + l2 and path_kind(l1, l2, l3) == kind and coupling(l1, l2, l3, kind)[1] != 0.0
            )

        return nz

    def _plan_factorized(self, paths: list[_PathInfo]) -> list[Product]:
        irn, pn = self.irrep_normalization, self.path_normalization

        def var(l, which):
            return 1.0 / (2 * l + 1) if irn == "norm" else 1.0

        # normalization nu_k
        nu: dict[int, float] = {}
        for k in sorted({p.k for p in paths}):
            l3 = self.irreps_out[k].ir.l
            ps = [p for p in paths if p.k == k]
            if irn == "none" and pn == "none":
                nu[k] = 1.0
                continue
            n_el = lambda p: p.V if p.mode == "uvu" else 1  # noqa: E731
            Vk = sum(var(p.l1, 1) * var(p.l2, 2) * n_el(p) * p.g**2 / (2 * l3 + 1) for p in ps)
            target = 1.0 if irn == "component" else 1.0 / (2 * l3 + 1)
            s = target / Vk
            if pn == "none":
                s *= sum(var(p.l1, 1) * var(p.l2, 2) * n_el(p) for p in ps)
            nu[k] = math.sqrt(s)
        self._nu = nu

        # weights layout: a (in1 blocks), b (in2 blocks), c (out blocks)
        off = 0
        self._a_off: dict[int, int] = {}
        self._b_off: dict[int, int] = {}
        c_off: dict[int, int] = {}
        if self.any_weight:
            if "in1" in self.weight_parts:
                for i1 in sorted({p.i1 for p in paths}):
                    self._a_off[i1] = off
                    off += self.irreps_in1[i1].mul
            if "in2" in self.weight_parts:
                for i2 in sorted({p.i2 for p in paths}):
                    self._b_off[i2] = off
                    off += self.irreps_in2[i2].mul
            if "out" in self.weight_parts:
                for k in sorted({p.k for p in paths}):
                    c_off[k] = off
                    off += self.irreps_out[k].mul
        self.weight_numel = off
        self._c_off = c_off

        prods: dict[tuple, list] = {}
        groups: dict[tuple, set] = {}
        for p in paths:
            groups.setdefault((p.k, p.kind, p.mode), set()).add((p.i1, p.i2))
        for (k, kind, mode), pairs in sorted(groups.items()):
            for A, B in _rectangles(pairs, self._nz(k, kind)):
                key = (A, B, kind, mode)
                prods.setdefault(key, []).append(Target(k, self.irreps_out[k].ir.l, nu[k], c_off.get(k)))
        out = []
        for (A, B, kind, mode), targets in prods.items():
            out.append(Product(A, B, kind, mode, self.irreps_in1[A[0]].mul, tuple(targets)))
        return out

    def _plan_path(self, paths: list[_PathInfo]) -> list[Product]:
        from ._instructions import weight_offsets

        offs = weight_offsets(self.instructions)
        self._a_off, self._b_off, self._c_off = {}, {}, {}
        prods: dict[tuple, list] = {}
        for p in paths:
            key = ((p.i1,), (p.i2,), p.kind, p.mode)
            const = p.ins.path_weight / p.g
            prods.setdefault(key, []).append(Target(p.k, p.l3, const, offs[p.n] if p.ins.has_weight else None))
        return [
            Product(A, B, kind, mode, self.irreps_in1[A[0]].mul, tuple(t)) for (A, B, kind, mode), t in prods.items()
        ]

    # ------------------------------------------------------------------
    def to_path_weights(self, weight: torch.Tensor) -> torch.Tensor:
        """Per-path weights (``TensorProduct``/e3nn layout) giving the same output with the ``cg`` backend.

        Parameters
        ----------
        weight : Tensor ``[..., weight_numel]``
            Weights in this backend's form.

        Returns
        -------
        Tensor ``[..., sum(prod(path_shape))]`` over the weighted instructions,
        same dtype and device.

        Raises
        ------
        ValueError
            Wrong last dimension, or (factorized form) an expressible path
            without ``has_weight`` or with ``path_weight == 0``: its fixed
            coefficient cannot carry the factorized weight.
        """
        if weight.shape[-1:] != (self.weight_numel,):
            raise ValueError(f"weight must have shape [..., {self.weight_numel}], got {tuple(weight.shape)}")
        if self.weight_form == "path":
            return weight
        batch = weight.shape[:-1]
        by_n = {p.n: p for p in self._paths}
        pieces = []
        for n, ins in enumerate(self.instructions):
            if not ins.has_weight:
                if n in by_n:
                    raise ValueError(f"instruction {n} has no weight; the factorized form cannot be mapped onto it")
                continue
            U, _V = ins.path_shape[0], (ins.path_shape[1] if len(ins.path_shape) > 1 else None)
            if n not in by_n:
                pieces.append(weight.new_zeros(batch + (math.prod(ins.path_shape),)))
                continue
            p = by_n[n]
            if ins.path_weight == 0:
                raise ValueError(f"instruction {n} has path_weight 0")
            s = self._nu[p.k] * p.g / ins.path_weight
            one = weight.new_ones(batch + (U,))
            a = weight[..., self._a_off[p.i1] : self._a_off[p.i1] + U] if p.i1 in self._a_off else one
            c = weight[..., self._c_off[p.k] : self._c_off[p.k] + U] if p.k in self._c_off else one
            nb = self.irreps_in2[p.i2].mul
            b = (
                weight[..., self._b_off[p.i2] : self._b_off[p.i2] + nb]
                if p.i2 in self._b_off
                else weight.new_ones(batch + (nb,))
            )
            if ins.connection_mode == "uvu":
                w = (a * c).unsqueeze(-1) * b.unsqueeze(-2) * s
            else:  # uuu
                w = a * b * c * s
            pieces.append(w.reshape(batch + (-1,)))
        if not pieces:
            return weight.new_zeros(batch + (0,))
        return torch.cat(pieces, dim=-1)

    # ------------------------------------------------------------------
    # Subclass interface
    def _build(self) -> None:  # pragma: no cover - abstract
        """Register the constants of every product in ``self.products``."""
        raise NotImplementedError

    def _layout(self, index: int) -> tuple[list, list, list]:
        """Row order of the two operands and column order of the result of product ``index``.

        Lists of ``(block, component)`` for x1 and x2 and ``(target, component)``
        for the output; default: blocks in order, components ``m = -l..l``.
        """
        pr = self.products[index]
        r1 = [(i, c) for i in pr.A for c in range(self.irreps_in1[i].ir.dim)]
        r2 = [(i, c) for i in pr.B for c in range(self.irreps_in2[i].ir.dim)]
        co = [(t, c) for t in range(len(pr.targets)) for c in range(2 * pr.targets[t].l3 + 1)]
        return r1, r2, co

    def _parts(self, index: int) -> tuple[list, list, list]:
        """Sizes of the consecutive parts in which the operands / result of product ``index`` are split.

        Default one part each (``[D1]``, ``[D2]``, ``[Dt]``); the symmetric
        grid kernel uses reflection-even / -odd parts. Each part is passed as
        its own contiguous tensor.
        """
        r1, r2, co = self._layout(index)
        return [len(r1)], [len(r2)], [len(co)]

    def _run(self, index: int, X1: list, X2: list) -> list:  # pragma: no cover
        """Operand parts ``X1[i] [Z, U, D1_i]``, ``X2[j] [Z, 1 or U, D2_j]`` (rows as
        :meth:`_layout`, split as :meth:`_parts`) -> result parts ``[Z, U, Dt_k]``."""
        raise NotImplementedError

    def _build_gathers(self) -> None:
        """Operand / result layouts of each product as block segments (no index gathers at run time).

        Each operand part is the concatenation of segments ``x_block[..., c0::step]``
        of the (weighted) input blocks viewed as ``[Z, mul, 2l+1]``; each output
        block is rebuilt from its segments in the result parts. This keeps the
        glue to a few strided copies (and their transposes in the backward),
        all ordinary differentiable torch ops.
        """
        s2 = [s.start for s in self.irreps_in2.slices()]
        self._specs = []
        for idx, pr in enumerate(self.products):
            r1, r2, co = self._layout(idx)
            p1, p2, pt = self._parts(idx)
            loc1 = {b: n for n, b in enumerate(pr.A)}
            loc2 = {b: n for n, b in enumerate(pr.B)}
            spec1 = tuple(tuple(_segments([(loc1[i], c) for i, c in part])) for part in _cut(r1, p1))
            spec2 = tuple(tuple(_segments([(loc2[i], c) for i, c in part])) for part in _cut(r2, p2))
            specy = tuple(tuple(_segments(part)) for part in _cut(co, pt))
            dims1 = tuple(self.irreps_in1[i].ir.dim for i in pr.A)
            dims2 = tuple(self.irreps_in2[i].ir.dim for i in pr.B)
            dimsy = tuple(2 * t.l3 + 1 for t in pr.targets)
            if pr.mode == "uvu":
                # x2 -> [Z, D2] parts by summing matrices (sum over the in2 channels, times b weights)
                for q, part in enumerate(_cut(r2, p2)):
                    Smat = np.zeros((self.irreps_in2.dim, len(part)))
                    for col, (i, c) in enumerate(part):
                        mul, ir = self.irreps_in2[i]
                        for v in range(mul):
                            Smat[s2[i] + v * ir.dim + c, col] = 1.0
                    self.register_constant(f"_sum2_{idx}_{q}", Smat)
            self._specs.append((spec1, spec2, specy, [len(x) for x in _cut(r2, p2)], dims1, dims2, dimsy))
        # the weight vector as consecutive pieces (offset -> size), for one split per call
        pieces = {}
        for i, o in list(self._a_off.items()):
            pieces[o] = self.irreps_in1[i].mul
        for i, o in list(self._b_off.items()):
            pieces[o] = self.irreps_in2[i].mul
        for pr in self.products:
            for t in pr.targets:
                if t.w_off is not None:
                    pieces[t.w_off] = pr.U
        offs, sizes, o = [], [], 0
        for start in sorted(pieces):
            if start > o:  # weights not used by any product (e.g. dead paths): a filler piece
                offs.append(-1 - o)
                sizes.append(start - o)
            offs.append(start)
            sizes.append(pieces[start])
            o = start + pieces[start]
        if o < self.weight_numel:
            offs.append(-1 - o)
            sizes.append(self.weight_numel - o)
        self._w_offsets, self._w_sizes = offs, sizes
        wb = np.full(self.irreps_in2.dim, -1, dtype=np.int64)
        for i, o in self._b_off.items():
            mul, ir = self.irreps_in2[i]
            for v in range(mul):
                wb[s2[i] + v * ir.dim : s2[i] + (v + 1) * ir.dim] = o + v
        self._has_wb = bool((wb >= 0).any()) and any(pr.mode == "uvu" for pr in self.products)
        if self._has_wb:
            wb[wb < 0] = self.weight_numel  # an appended 1
            self.register_constant("_wb", wb)

    def forward(self, x1: torch.Tensor, x2: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """``x1 [Z, dim1]``, ``x2 [Z, dim2]``, ``weight [weight_numel]`` or ``[Z, weight_numel]`` -> ``[Z, dim_out]``."""
        Z = x1.shape[0]
        # weight pieces by one split (its backward is one concatenation, not a zero-filled buffer per slice)
        wp = {}
        if self.weight_numel:
            for o, t in zip(self._w_offsets, torch.split(weight, self._w_sizes, -1)):
                wp[o] = t.reshape(-1, t.shape[-1], 1)
        b1 = [
            t.view(Z, mul, ir.dim)
            for t, (mul, ir) in zip(torch.split(x1, [m * ir.dim for m, ir in self.irreps_in1], 1), self.irreps_in1)
        ]
        b2 = [
            t.view(Z, mul, ir.dim)
            for t, (mul, ir) in zip(torch.split(x2, [m * ir.dim for m, ir in self.irreps_in2], 1), self.irreps_in2)
        ]
        wcache: dict = {}

        def blk(side, i):
            if (side, i) not in wcache:
                b, offs = (b1, self._a_off) if side == 1 else (b2, self._b_off)
                wcache[(side, i)] = b[i] * wp[offs[i]] if i in offs else b[i]
            return wcache[(side, i)]

        outs: list[list[torch.Tensor]] = [[] for _ in self.irreps_out]
        xw2 = None
        for idx, pr in enumerate(self.products):
            spec1, spec2, specy, p2, dims1, dims2, dimsy = self._specs[idx]
            X1 = _seg_gather_op(spec1, dims1, [blk(1, i) for i in pr.A])
            if pr.mode == "uvu":
                if xw2 is None:
                    if self._has_wb:
                        wext = torch.cat([weight, weight.new_ones(weight.shape[:-1] + (1,))], -1)
                        xw2 = x2 * wext.index_select(-1, self._wb)
                    else:
                        xw2 = x2
                X2 = [(xw2 @ getattr(self, f"_sum2_{idx}_{q}").to(x2.dtype)).view(Z, 1, d) for q, d in enumerate(p2)]
            else:
                X2 = _seg_gather_op(spec2, dims2, [blk(2, i) for i in pr.B])
            Y = self._run(idx, X1, X2)
            ys = _seg_scatter_op(specy, dimsy, Y)
            for tgt, y in zip(pr.targets, ys):
                if tgt.w_off is not None:
                    y = y * wp[tgt.w_off]
                outs[tgt.k].append(y)
        pieces = []
        for (mul, ir), ys in zip(self.irreps_out, outs):
            if ys:
                acc = ys[0]
                for y in ys[1:]:
                    acc = acc + y
                pieces.append(acc.reshape(Z, mul * ir.dim))
            elif mul * ir.dim > 0:
                pieces.append(x1.new_zeros(Z, mul * ir.dim))
        if not pieces:
            return x1.new_zeros(Z, 0)
        return torch.cat(pieces, 1) if len(pieces) > 1 else pieces[0]

    def extra_repr(self) -> str:
        return f"weight_form={self.weight_form!r}, products={len(self.products)}, weight_numel={self.weight_numel}"


class _Permute(torch.autograd.Function):
    """``x[:, idx]`` for a permutation ``idx`` (inverse ``inv``); its backward is again a permutation."""

    @staticmethod
    def forward(ctx, x, idx, inv):
        ctx.save_for_backward(idx, inv)
        return x.index_select(1, idx)

    @staticmethod
    def backward(ctx, g):
        idx, inv = ctx.saved_tensors
        return _Permute.apply(g, inv, idx), None, None


def _cut(rows: list, sizes: list) -> list:
    out, o = [], 0
    for n in sizes:
        out.append(rows[o : o + n])
        o += n
    return out


def _segments(rows: list) -> list:
    """Group ``[(block, c), ...]`` into ``(block, c0, step, count)`` runs with ``c`` in arithmetic progression."""
    segs: list = []
    for b, c in rows:
        if segs and segs[-1][0] == b:
            b0, c0, st, cnt = segs[-1]
            if cnt == 1 and c > c0:
                segs[-1] = (b0, c0, c - c0, 2)
                continue
            if cnt > 1 and c == c0 + st * cnt:
                segs[-1] = (b0, c0, st, cnt + 1)
                continue
        segs.append((b, c, 1, 1))
    return segs


class _SegGather(torch.autograd.Function):
    """Blocks ``[Z, U, d_b]`` -> parts ``[Z, U, D_q]``: part q is the concatenation of the segments
    ``block[..., c0::step][..., :count]`` listed in ``spec[q]``; every block entry is used exactly once.
    The backward is :class:`_SegScatter` (and vice versa), so it is differentiable to any order."""

    @staticmethod
    def forward(ctx, spec, dims, *blocks):
        ctx.spec, ctx.dims = spec, dims
        return tuple(_seg_gather(spec, blocks))

    @staticmethod
    def backward(ctx, *g):
        return (None, None) + tuple(_SegScatter.apply(ctx.spec, ctx.dims, *_fill(g, ctx.spec, ctx.dims)))


class _SegScatter(torch.autograd.Function):
    """Inverse of :class:`_SegGather`: parts -> blocks ``[Z, U, dims[b]]``."""

    @staticmethod
    def forward(ctx, spec, dims, *parts):
        ctx.spec, ctx.dims = spec, dims
        return tuple(_seg_scatter(spec, dims, parts))

    @staticmethod
    def backward(ctx, *g):
        ref = next(t for t in g if t is not None)
        blocks = [
            t if t is not None else ref.new_zeros(ref.shape[0], ref.shape[1], ctx.dims[b]) for b, t in enumerate(g)
        ]
        return (None, None) + tuple(_SegGather.apply(ctx.spec, ctx.dims, *blocks))


def _seg_gather_op(spec, dims, blocks) -> list:
    """:class:`_SegGather`; plain ops under ``torch.compile`` (a traced Function loses its double backward)."""
    if torch.compiler.is_compiling():
        return _seg_gather(spec, blocks)
    return list(_SegGather.apply(spec, dims, *blocks))


def _seg_scatter_op(spec, dims, parts) -> list:
    """:class:`_SegScatter`; plain ops under ``torch.compile``."""
    if torch.compiler.is_compiling():
        return _seg_scatter(spec, dims, parts)
    return list(_SegScatter.apply(spec, dims, *parts))


def _seg_gather(spec, blocks):
    out = []
    for segs in spec:
        ref = blocks[0]
        if not segs:
            out.append(ref.new_zeros(ref.shape[0], ref.shape[1], 0))
            continue
        pieces = [blocks[b][..., c0 : c0 + st * (n - 1) + 1 : st] for b, c0, st, n in segs]
        out.append(torch.cat(pieces, -1) if len(pieces) > 1 else pieces[0].contiguous())
    return out


def _seg_scatter(spec, dims, parts):
    ref = next(p for p in parts)
    Z, U = ref.shape[0], ref.shape[1]
    blocks = [ref.new_empty(Z, U, d) for d in dims]
    for segs, part in zip(spec, parts):
        off = 0
        for b, c0, st, n in segs:
            blocks[b][..., c0 : c0 + st * (n - 1) + 1 : st].copy_(part[..., off : off + n])
            off += n
    return blocks


def _fill(g, spec, dims):
    """Replace missing part gradients by zeros of the right shape."""
    ref = next(t for t in g if t is not None)
    return [
        t if t is not None else ref.new_zeros(ref.shape[0], ref.shape[1], sum(n for *_, n in segs))
        for t, segs in zip(g, spec)
    ]


def _take(x: torch.Tensor, idx: torch.Tensor, inv: torch.Tensor | None) -> torch.Tensor:
    """Columns ``idx`` of ``x [Z, N]``; a cheaper backward when ``idx`` is a permutation (``inv`` given)."""
    if inv is None or torch.compiler.is_compiling():
        return x.index_select(1, idx)
    return _Permute.apply(x, idx, inv)


def block_rows(irreps: Irreps, blocks: Sequence[int]) -> list[int]:
    """Degrees ``l`` of the listed blocks, in order (one entry per block)."""
    return [irreps[i].ir.l for i in blocks]
