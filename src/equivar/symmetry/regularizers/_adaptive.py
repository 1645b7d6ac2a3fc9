"""Several candidate symmetries at once, with strengths tuned during training.

Idea after Kim et al., "Regularizing Towards Soft Equivariance Under Mixed
Symmetries" (ICML 2023): one equivariance regularizer per candidate group,
``loss = task + sum_G lambda_G R_G``, with the strengths ``lambda_G`` set by
training rather than by hand, so that the trained model reveals which
symmetries the data obeys exactly, approximately, or not at all.

The tuning rule implemented here (our choice, not the paper's exact
procedure) is a validation test of each symmetry: at every
:meth:`AdaptiveSymmetry.update`, the model ``f`` and its ``G``-symmetrized
version ``f_G(x) = mean_g g^-1 f(g x)`` (fixed elements, identity included)
are scored on validation data. If symmetrizing does not make the validation
loss worse by more than ``tolerance`` (relative), the data is consistent with
``G`` at the model's current accuracy and ``lambda_G`` is multiplied by
``factor``; otherwise it is divided by ``factor``; clipped to
``[min_strength, max_strength]``. Strengths start at ``min_strength`` and
are first updated after ``warmup`` calls, so the model can first learn
whatever symmetry breaking the data contains. Groups the data obeys end at
``max_strength`` (the model becomes equivariant to them); groups it breaks
end at ``min_strength``, the model keeping the violation the data needs.
:meth:`levels` measures the recovered symmetry levels: the model's relative
equivariance error per group.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch

from .._errors import errors_for_elements
from .._groups import get_group
from .._subject import Subject
from .._types import act, act_all, map_structure
from ._orbit import orbit_consistency, sample_elements
from ._projection import linear_penalty


class AdaptiveSymmetry:
    """Orbit-consistency (and optional linear-layer) regularizers for candidate groups with tuned strengths.

    Parameters
    ----------
    groups : sequence of group names / Groups (e.g. ``["SO2(z)", "SO3", "Ci"]``)
    in_types, out_types : types of the model's inputs and outputs (batched, axis 0 = samples)
    n_elements : sampled elements per group per training step (finite groups
        of order <= n_elements + 1: all elements)
    n_validation : elements (besides the identity) for the symmetrized validation model
    min_strength, max_strength, factor, tolerance, warmup : see the module docstring
    seed : seeds all element sampling

    Attributes
    ----------
    strengths : dict ``{group name: float}``
    history : list of dicts (one per :meth:`update`: losses and strengths)
    """

    def __init__(
        self,
        groups: Sequence,
        in_types: Sequence,
        out_types,
        *,
        n_elements: int = 2,
        n_validation: int = 8,
        min_strength: float = 1e-2,
        max_strength: float = 10.0,
        factor: float = 2.0,
        tolerance: float = 0.05,
        warmup: int = 1,
        seed: int = 0,
    ):
        self.groups = {get_group(g).name: get_group(g) for g in groups}
        self.in_types, self.out_types = list(in_types), out_types
        self.n_elements = n_elements
        self.min_strength, self.max_strength = float(min_strength), float(max_strength)
        self.factor, self.tolerance, self.warmup = float(factor), float(tolerance), int(warmup)
        self.strengths = {k: self.min_strength for k in self.groups}
        self.history: list[dict] = []
        self._gen = torch.Generator().manual_seed(seed)
        vgen = torch.Generator().manual_seed(seed + 1)
        self._val_elements = {k: sample_elements(G, n_validation, vgen) for k, G in self.groups.items()}
        self._linear: list = []
        self._updates = 0

    def add_linear(self, layer: torch.nn.Linear, rep_in, rep_out) -> None:
        """Also penalize ``layer``'s distance from each group's equivariant subspace (rotation groups only)."""
        self._linear.append((layer, rep_in, rep_out))

    def terms(self, fn: Callable, args: Sequence, y=None) -> dict:
        """Unweighted penalties ``{group: scalar tensor}`` (orbit consistency + linear penalties)."""
        if y is None:
            y = fn(*args)
        out = {}
        for k, G in self.groups.items():
            t = orbit_consistency(
                fn, args, self.in_types, self.out_types, G, n=self.n_elements, generator=self._gen, y=y
            )
            for layer, ri, ro in self._linear:
                if G.acts_on == "rotation":
                    t = t + linear_penalty(layer, ri, ro, G)
            out[k] = t
        return out

    def penalty(self, fn: Callable, args: Sequence, y=None) -> tuple[torch.Tensor, dict]:
        """``(sum_G lambda_G R_G, {group: R_G})`` for one training step."""
        terms = self.terms(fn, args, y)
        total = sum(self.strengths[k] * v for k, v in terms.items())
        return total, {k: float(v.detach()) for k, v in terms.items()}

    @torch.no_grad()
    def symmetrize(self, fn: Callable, args: Sequence, group) -> object:
        """``mean_g g^-1 f(g x)`` over the identity and the group's validation elements."""
        name = get_group(group).name
        els = self._val_elements[name]
        ys = [fn(*args)]
        for g in els:
            yg = fn(*act_all(list(args), self.in_types, g))
            ys.append(map_structure(yg, self.out_types, lambda v, t, g=g: act(v, t, g.inverse())))
        return _mean_structures(ys)

    @torch.no_grad()
    def update(self, fn: Callable, val_args: Sequence, val_labels, loss_fn: Callable) -> dict:
        """Validation step: compare ``loss_fn(f(x), labels)`` with the symmetrized model's, adjust strengths.

        Returns the record appended to ``history``.
        """
        base = float(loss_fn(fn(*val_args), val_labels))
        rec = {"val_loss": base, "symmetrized": {}, "strengths": {}}
        self._updates += 1
        for k, G in self.groups.items():
            ls = float(loss_fn(self.symmetrize(fn, val_args, G), val_labels))
            rel = (ls - base) / max(base, 1e-300)
            rec["symmetrized"][k] = ls
            if self._updates > self.warmup:
                s = self.strengths[k] * (self.factor if rel <= self.tolerance else 1.0 / self.factor)
                self.strengths[k] = min(max(s, self.min_strength), self.max_strength)
        rec["strengths"] = dict(self.strengths)
        self.history.append(rec)
        return rec

    @torch.no_grad()
    def levels(self, fn: Callable, args: Sequence, n: int = 16, seed: int = 0) -> dict:
        """Recovered symmetry levels: aggregate relative equivariance error of ``fn`` per group on ``args``."""
        subject = Subject.batched(fn, args, self.in_types, self.out_types)
        gen = torch.Generator().manual_seed(seed)
        out = {}
        for k, G in self.groups.items():
            els = sample_elements(G, n, gen, **subject.node_context)
            e = errors_for_elements(subject, els, k)
            out[k] = max(e.aggregate.values())
        return out


def _mean_structures(ys: list):
    first = ys[0]
    if isinstance(first, dict):
        return {k: _mean_structures([y[k] for y in ys]) for k in first}
    if isinstance(first, (tuple, list)):
        return type(first)(_mean_structures([y[i] for y in ys]) for i in range(len(first)))
    if isinstance(first, torch.Tensor):
        return torch.stack(ys).mean(0)
    return first


def log_strengths(reg: AdaptiveSymmetry) -> dict:
    """``{group: log10(strength)}`` (convenience for printing)."""
    return {k: math.log10(v) for k, v in reg.strengths.items()}


__all__ = ["AdaptiveSymmetry", "log_strengths"]
