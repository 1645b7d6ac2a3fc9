r"""Expressivity accounting: which interactions a tensor product realizes, against full Clebsch-Gordan.

For irreps ``V1, V2, V3`` the equivariant bilinear maps ``V1 x V2 -> V3``
form a vector space. Each O(3) coupling ``ir1 x ir2 -> ir3`` that the
selection rules allow (``|l1-l2| <= l3 <= l1+l2``, ``p1 p2 = p3``) occurs
exactly once (the Clebsch-Gordan multiplicity of SO(3) is at most one), so
a block triple ``(mul1 x ir1, mul2 x ir2, mul3 x ir3)`` contributes
``mul1 * mul2 * mul3`` dimensions: the full CG dimension. This is the
measure of Xie, Daigavane, Kotak & Smidt, "The Price of Freedom" (ICML
2025): the number of independent paths.

A configured tensor product spans a subspace: an instruction with
connection mode ``uvw`` covers every channel triple ``(u, v, w)`` of its
blocks, ``uvu`` the triples ``(u, v, u)``, ``uuu`` the ``(u, u, u)``, and
so on; an unweighted instruction adds one fixed map. Instructions on the
same block triple cover the union of their triples. Backends that cannot
express a path (e.g. Gaunt products, zero when ``l1+l2+l3`` is odd, such as
the cross product ``1o x 1o -> 1e``) report it through their
``expressible(instruction)`` method.
"""

from __future__ import annotations

import dataclasses
import itertools

from ..o3 import Irrep, Irreps
from ._instructions import normalize_instructions
from ._registry import get_backend


@dataclasses.dataclass(frozen=True)
class Interaction:
    """One coupling ``ir1 x ir2 -> ir3`` summed over the blocks that carry it."""

    ir_in1: Irrep
    ir_in2: Irrep
    ir_out: Irrep
    dim: int  # dimensions realized
    dim_full: int  # dimensions of full CG on the same blocks
    expressible: bool  # whether the backend can express this coupling at all
    reason: str = ""  # why not, when the backend says (``why_not``)

    def __str__(self) -> str:
        return f"{self.ir_in1} x {self.ir_in2} -> {self.ir_out}"


@dataclasses.dataclass
class ExpressivityReport:
    """What a tensor product (or a backend on given irreps) realizes, against full CG.

    ``dim``: dimension of the space of equivariant bilinear maps spanned;
    ``dim_full``: the same for full CG on the same irreps; ``interactions``
    every allowed coupling, realized or not; ``missing`` those not realized;
    ``unexpressible`` those the backend cannot express at all.
    """

    backend: str
    exact: bool
    interactions: list
    dim: int
    dim_full: int

    @property
    def realized(self) -> list:
        return [i for i in self.interactions if i.dim > 0]

    @property
    def missing(self) -> list:
        return [i for i in self.interactions if i.dim == 0]

    @property
    def unexpressible(self) -> list:
        return [i for i in self.interactions if not i.expressible]

    @property
    def fraction(self) -> float:
        return self.dim / self.dim_full if self.dim_full else 1.0

    def __str__(self) -> str:
        lines = [
            f"backend {self.backend!r} ({'exact' if self.exact else 'approximate'}): "
            f"{len(self.realized)}/{len(self.interactions)} interactions, "
            f"dimension {self.dim}/{self.dim_full} of full CG ({100 * self.fraction:.1f}%)"
        ]
        for i in self.interactions:
            mark = "ok " if i.dim == i.dim_full else ("part" if i.dim else ("--  " if i.expressible else "n/e "))
            why = f"  ({i.reason})" if i.reason else ""
            lines.append(f"  [{mark}] {str(i):<18} {i.dim}/{i.dim_full}{why}")
        return "\n".join(lines)


_COVER = {
    "uvw": lambda m1, m2, mo: {(u, v, w) for u in range(m1) for v in range(m2) for w in range(mo)},
    "uvu": lambda m1, m2, mo: {(u, v, u) for u in range(m1) for v in range(m2)},
    "uvv": lambda m1, m2, mo: {(u, v, v) for u in range(m1) for v in range(m2)},
    "uuw": lambda m1, m2, mo: {(u, u, w) for u in range(m1) for w in range(mo)},
    "uuu": lambda m1, m2, mo: {(u, u, u) for u in range(m1)},
    "uvuv": lambda m1, m2, mo: {(u, v, u * m2 + v) for u in range(m1) for v in range(m2)},
}


def _all_couplings(irreps_in1: Irreps, irreps_in2: Irreps, irreps_out: Irreps):
    for (i1, (m1, ir1)), (i2, (m2, ir2)), (io, (mo, iro)) in itertools.product(
        enumerate(irreps_in1), enumerate(irreps_in2), enumerate(irreps_out)
    ):
        if iro in list(ir1 * ir2):
            yield i1, i2, io


def _candidate(irreps_in1, irreps_out, a, b, c):
    """A weighted instruction for a block triple: channelwise when the multiplicities allow
    (every backend supports it; for multiplicity 1 it spans the same maps as 'uvw'), else fully connected."""
    return (a, b, c, "uvu" if irreps_in1[a].mul == irreps_out[c].mul else "uvw", True)


def _report(irreps_in1, irreps_in2, irreps_out, instructions, backend_name, backend) -> ExpressivityReport:
    # one candidate instruction per allowed block triple, to ask the backend
    cands = list(_all_couplings(irreps_in1, irreps_in2, irreps_out))
    cand_ins = normalize_instructions(
        irreps_in1,
        irreps_in2,
        irreps_out,
        [_candidate(irreps_in1, irreps_out, a, b, c) for a, b, c in cands],
        "none",
        "none",
    )
    expressible = {(a, b, c): bool(backend.expressible(ins)) for (a, b, c), ins in zip(cands, cand_ins)}
    why_not = getattr(backend, "why_not", None)
    reasons = {
        key: (why_not(ins) or "") if callable(why_not) else ""
        for key, ins in zip(cands, cand_ins)
        if not expressible[key]
    }
    cover: dict = {}
    fixed: dict = {}
    for ins in instructions:
        if ins.path_weight == 0:
            continue
        m1, m2, mo = irreps_in1[ins.i_in1].mul, irreps_in2[ins.i_in2].mul, irreps_out[ins.i_out].mul
        key = (ins.i_in1, ins.i_in2, ins.i_out)
        if not expressible.get(key, False):
            continue
        if ins.has_weight:
            cover.setdefault(key, set()).update(_COVER[ins.connection_mode](m1, m2, mo))
        else:
            fixed.setdefault(key, set()).add(ins.connection_mode)
    rows: dict = {}
    for key in cands:
        a, b, c = key
        (m1, ir1), (m2, ir2), (mo, iro) = irreps_in1[a], irreps_in2[b], irreps_out[c]
        full = m1 * m2 * mo
        cov = cover.get(key, set())
        n = len(cov)
        for mode in fixed.get(key, ()):
            # an unweighted map (unit coefficients on its support) adds one direction unless inside the span
            if not _COVER[mode](m1, m2, mo) <= cov:
                n = min(full, n + 1)
        r = rows.setdefault((ir1, ir2, iro), [0, 0, True, ""])
        r[0] += n
        r[1] += full
        r[2] = r[2] and expressible[key]
        r[3] = r[3] or reasons.get(key, "")
    interactions = [Interaction(k[0], k[1], k[2], *v) for k, v in rows.items()]
    interactions.sort(key=lambda i: (i.ir_out.l, i.ir_in1.l, i.ir_in2.l, -i.ir_in1.p, -i.ir_in2.p, -i.ir_out.p))
    return ExpressivityReport(
        backend=backend_name,
        exact=bool(getattr(backend, "exact", False)),
        interactions=interactions,
        dim=sum(i.dim for i in interactions),
        dim_full=sum(i.dim_full for i in interactions),
    )


def expressivity(tp=None, *, irreps_in1=None, irreps_in2=None, irreps_out=None, backend: str = "cg", **backend_options):
    r"""Interactions realized and spanned dimension, against full CG.

    Either ``expressivity(tp)`` for a configured :class:`TensorProduct`
    (counts its instructions, as computed by its backend), or
    ``expressivity(irreps_in1=..., irreps_in2=..., irreps_out=..., backend=name)``
    for the best a backend can do on those irreps: every allowed path
    (channelwise where the multiplicities allow, else fully connected),
    kept where the backend can express it.

    Returns
    -------
    ExpressivityReport
        ``dim`` / ``dim_full``: dimensions of the spanned / full spaces of
        equivariant bilinear maps; ``interactions``: per ``ir1 x ir2 -> ir3``.

    Raises
    ------
    ValueError
        Neither a module nor the three irreps, or an unknown backend.

    Source: Xie et al., "The Price of Freedom", ICML 2025 (number of
    independent paths as the expressivity measure).
    """
    if tp is not None:
        return _report(tp.irreps_in1, tp.irreps_in2, tp.irreps_out, tp.instructions, tp.backend_name, tp.backend)
    if irreps_in1 is None or irreps_in2 is None or irreps_out is None:
        raise ValueError("give a TensorProduct, or irreps_in1, irreps_in2 and irreps_out")
    i1, i2, io = Irreps(irreps_in1), Irreps(irreps_in2), Irreps(irreps_out)
    cls = get_backend(backend)
    instance = cls(i1, i2, io, [], irrep_normalization="component", path_normalization="element", **backend_options)
    ins = normalize_instructions(i1, i2, io, [_candidate(i1, io, a, b, c) for a, b, c in _all_couplings(i1, i2, io)])
    return _report(i1, i2, io, [x for x in ins if instance.expressible(x)], backend, instance)


def all_irreps(lmax: int, mul: int = 1) -> Irreps:
    """``mul x`` every irrep up to ``lmax``, both parities (``0e+0o+1o+1e+...``)."""
    return Irreps([(mul, ir) for ir in Irrep.iterator(lmax)])


def expressivity_table(lmaxes, backends, **backend_options) -> list[dict]:
    """Rows for the README: per L and backend, on two configurations.

    ``full``: every irrep up to L (both parities, multiplicity 1) on all
    three sides; ``edge``: features ``(l, (-1)^l)`` x spherical harmonics
    ``0..L`` -> every irrep up to L (configuration P of the benchmarks).
    Each row: ``L, backend, config, interactions, interactions_full, dim,
    dim_full, exact``; a backend that cannot be built gets ``error``.
    """
    rows = []
    for L in lmaxes:
        cfgs = {
            "full": (all_irreps(L), all_irreps(L), all_irreps(L)),
            "edge": (Irreps([(1, (l, (-1) ** l)) for l in range(L + 1)]), Irreps.spherical_harmonics(L), all_irreps(L)),
        }
        for b in backends:
            for name, (a, c, o) in cfgs.items():
                try:
                    r = expressivity(irreps_in1=a, irreps_in2=c, irreps_out=o, backend=b, **backend_options.get(b, {}))
                except (ValueError, TypeError, ImportError) as e:
                    rows.append({"L": L, "backend": b, "config": name, "error": str(e)})
                    continue
                rows.append(
                    {
                        "L": L,
                        "backend": b,
                        "config": name,
                        "interactions": len(r.realized),
                        "interactions_full": len(r.interactions),
                        "dim": r.dim,
                        "dim_full": r.dim_full,
                        "exact": r.exact,
                    }
                )
    return rows
