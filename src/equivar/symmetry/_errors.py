"""Relative equivariance error per sample, per output, per group element.

For a sample ``b``, an output ``y`` and a group element ``g``::

    err_b(g) = |f(g x)_b - g f(x)_b| / max(|f(g x)_b|, |g f(x)_b|)

(Frobenius norms over all rows of sample ``b``; the absolute difference when
both norms are zero). The aggregate over samples and elements is
``sqrt(sum diff^2) / sqrt(sum scale^2)``. This is the measure of
:func:`equivar.testing.equivariance_error`, split by sample.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import torch

from ._groups import Group, get_group
from ._subject import Subject
from ._types import GroupElement, act, blocks, precompute


def row_sq(t: torch.Tensor) -> torch.Tensor:
    """Sum of squares over all axes but the first, float64: ``[rows]``."""
    t = t.detach().to(torch.float64)
    if t.dim() == 0:
        t = t[None]
    return t.reshape(t.shape[0], -1).pow(2).sum(-1)


def per_sample(values: torch.Tensor, index: torch.Tensor | None, num_samples: int) -> torch.Tensor:
    """Sum row values into samples (``index=None``: row i is sample i)."""
    if index is None:
        if values.shape[0] != num_samples:
            raise ValueError(f"output has {values.shape[0]} rows but the subject has {num_samples} samples")
        return values
    return torch.zeros(num_samples, dtype=values.dtype).index_add_(0, index.to(values.device), values)


def relative(diff_sq: torch.Tensor, scale_sq: torch.Tensor) -> torch.Tensor:
    """``sqrt(diff_sq / scale_sq)``, ``sqrt(diff_sq)`` where the scale is zero, ``inf`` for NaN."""
    d, s = diff_sq.sqrt(), scale_sq.sqrt()
    r = torch.where(s > 0, d / torch.where(s > 0, s, torch.ones_like(s)), d)
    return torch.where(torch.isnan(r), torch.full_like(r, float("inf")), r)


def compare(subject: Subject, name: str, a: torch.Tensor, b: torch.Tensor, sl=slice(None)):
    """Per-sample ``(diff_sq, scale_sq)`` between two versions of output ``name``."""
    a = a[..., sl] if sl != slice(None) else a
    b = b[..., sl] if sl != slice(None) else b
    rows = 1 if a.dim() == 0 else a.shape[0]
    idx = subject.sample_index(name, rows)
    d = per_sample(row_sq(a.to(torch.float64) - b.to(torch.float64)), idx, subject.num_samples)
    s = torch.maximum(per_sample(row_sq(a), idx, subject.num_samples), per_sample(row_sq(b), idx, subject.num_samples))
    return d, s


@dataclasses.dataclass
class GroupErrors:
    """Errors of one group.

    Attributes
    ----------
    group : str
    labels : list of str
        One per tested element.
    per_element : dict ``{output: Tensor [n_elements, n_samples]}``
        Relative error of each sample under each element.
    aggregate : dict ``{output: float}``
        Over all samples and elements (see module docstring).
    rms : dict ``{output: float}``
        Root-mean-square absolute difference ``f(g x) - g f(x)`` per
        component, in the output's units (relative errors of quantities with
        a large offset, such as total energies, understate the breaking).
    per_block : dict ``{output: {block: float}}``
        Aggregate per irreps block (``mul x ir``).
    """

    group: str
    labels: list
    per_element: dict
    aggregate: dict
    per_block: dict
    rms: dict = dataclasses.field(default_factory=dict)

    def per_sample(self, output: str) -> torch.Tensor:
        """Largest error over elements for each sample: ``[n_samples]``."""
        return self.per_element[output].amax(0)

    @property
    def max(self) -> float:
        return max((float(v.max()) for v in self.per_element.values() if v.numel()), default=0.0)

    def to_dict(self) -> dict:
        out = {}
        for k, v in self.per_element.items():
            worst = v.amax(1) if v.numel() else v
            out[k] = {
                "aggregate": self.aggregate[k],
                "rms": self.rms.get(k),
                "mean": float(v.mean()) if v.numel() else 0.0,
                "max": float(v.max()) if v.numel() else 0.0,
                "per_sample_max": [float(x) for x in self.per_sample(k)],
                "per_block": self.per_block.get(k, {}),
                "worst_element": self.labels[int(worst.argmax())] if v.numel() else None,
            }
        return {"group": self.group, "n_elements": len(self.labels), "outputs": out}


def group_elements(
    group: Group, subject: Subject, n: int, generator: torch.Generator, max_finite: int = 120
) -> list[GroupElement]:
    """All non-identity elements of a finite group (up to ``max_finite``), else ``n`` samples."""
    if hasattr(group, "resolve"):  # groups whose size depends on the inputs (circular shifts of the images)
        group.resolve(**subject.node_context)
    if group.finite and getattr(group, "order", 0) <= max_finite:
        els = group.elements(**subject.node_context)
        eye = torch.eye(3, dtype=torch.float64)
        return [g for g in els if g.R is None or not torch.allclose(g.R, eye)]
    return group.sample(n, generator, **subject.node_context)


def errors_for_elements(subject: Subject, elements: Sequence[GroupElement], group_name: str = "") -> GroupErrors:
    """:class:`GroupErrors` of ``subject`` under the given elements."""
    precompute(elements, list(subject.out_types.values()) + _leaf_types(subject.in_types))
    ref = subject.reference()
    ys = subject.outputs(list(elements))
    S = subject.num_samples
    per_el = {k: torch.zeros(len(elements), S, dtype=torch.float64) for k in subject.out_types}
    tot = {k: [0.0, 0.0] for k in subject.out_types}
    counts = {k: 0 for k in subject.out_types}
    blk_tot = {k: {b: [0.0, 0.0] for b, _ in blocks(t)} for k, t in subject.out_types.items()}
    for i, (g, y) in enumerate(zip(elements, ys)):
        for k, t in subject.out_types.items():
            gy = act(ref[k], t, g)
            d, s = compare(subject, k, y[k], gy)
            per_el[k][i] = relative(d, s)
            tot[k][0] += float(d.sum())
            tot[k][1] += float(s.sum())
            counts[k] += max(y[k].numel(), 1)
            bl = blocks(t)
            if len(bl) > 1:
                for b, sl in bl:
                    db, sb = compare(subject, k, y[k], gy, sl)
                    blk_tot[k][b][0] += float(db.sum())
                    blk_tot[k][b][1] += float(sb.sum())
    agg = {k: float(relative(torch.tensor(v[0]), torch.tensor(v[1]))) for k, v in tot.items()}
    per_block = {
        k: {b: float(relative(torch.tensor(v[0]), torch.tensor(v[1]))) for b, v in bd.items()}
        for k, bd in blk_tot.items()
        if len(bd) > 1
    }
    rms = {k: (tot[k][0] / counts[k]) ** 0.5 if counts[k] else 0.0 for k in tot}
    return GroupErrors(group_name, [g.label for g in elements], per_el, agg, per_block, rms)


def equivariance_errors(
    subject: Subject, groups: Sequence = ("SO3", "O3"), *, n_elements: int = 8, seed: int = 0, max_finite: int = 120
) -> dict[str, GroupErrors]:
    """Relative equivariance errors of ``subject`` for each group.

    Parameters
    ----------
    subject : Subject
    groups : sequence of group names or :class:`Group` (see ``get_group``)
    n_elements : int
        Sampled elements per continuous group (finite groups up to
        ``max_finite`` elements are tested exhaustively, identity excluded).
    seed : int
        Seeds the element sampler.

    Returns
    -------
    dict ``{group name: GroupErrors}``

    Raises
    ------
    ValueError
        Unknown group, or permutations without node-typed inputs.
    """
    gen = torch.Generator().manual_seed(seed)
    out = {}
    for spec in groups:
        G = get_group(spec)
        els = group_elements(G, subject, n_elements, gen, max_finite)
        out[G.name] = errors_for_elements(subject, els, G.name)
    return out


def _leaf_types(types) -> list:
    out = []
    for t in types:
        if isinstance(t, dict):
            out.extend(_leaf_types(list(t.values())))
        elif isinstance(t, (list, tuple)):
            out.extend(_leaf_types(t))
        else:
            out.append(t)
    return out
