"""What an audit looks at: a callable, its typed inputs, and how outputs split into samples.

Three ways to build one:

- :meth:`Subject.batched` - ``fn(*args)`` where axis 0 of every tensor input
  and output indexes samples (e.g. positions ``[B, N, 3]`` -> energy ``[B]``);
  many transformed copies are evaluated in one call (concatenated on axis 0);
- :meth:`Subject.single` - ``fn(*args)`` on one sample (no batch axis);
- :func:`potential_subject` - an ``equivar`` potential ``model(batch,
  compute_forces=True) -> {'energy' [G], 'forces' [N, 3]}`` on a graph batch
  (docs/contracts.md): samples are graphs, forces are split by
  ``batch['batch']``; labels ``energy`` / ``forces`` in the batch are used
  for task metrics.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Any

import torch

from . import _batches
from ._types import GroupElement, act_all, flatten, norm_type


@contextlib.contextmanager
def eval_mode(fn):
    """Put an ``nn.Module`` in eval mode for the duration (restored after)."""
    mod = fn if isinstance(fn, torch.nn.Module) else getattr(fn, "__self__", None)
    mod = mod if isinstance(mod, torch.nn.Module) else None
    state = mod.training if mod is not None else None
    if mod is not None:
        mod.eval()
    try:
        yield
    finally:
        if mod is not None:
            mod.train(state)


class Subject:
    """A callable with typed inputs/outputs, split into samples.

    Use the constructors :meth:`batched`, :meth:`single` or
    :func:`potential_subject`. Attributes: ``num_samples``, ``out_types``
    (flat ``{name: type}``), ``labels`` (flat ``{name: tensor}``, possibly
    empty), ``dtype`` (of the floating inputs). The callable is evaluated
    afresh by every audit, so a subject can monitor a model during training.
    """

    def __init__(
        self,
        fn,
        args,
        in_types,
        out_types,
        *,
        mode,
        labels=None,
        needs_grad=False,
        max_rows=4096,
        num_samples=None,
        sample_index=None,
        node_context=None,
        collate=None,
        split=None,
        copy_rows=1,
    ):
        if len(args) != len(in_types):
            raise ValueError(f"{len(args)} args but {len(in_types)} in_types")
        for t in in_types:  # validate early, with a clear message
            _validate_types(t)
        self.fn, self.args, self.in_types, self.mode = fn, tuple(args), tuple(in_types), mode
        self._out_types_spec = out_types
        self.needs_grad, self.max_rows = needs_grad, max_rows
        self._collate, self._split, self._copy_rows = collate, split, copy_rows
        self._sample_index = sample_index or {}
        self.node_context = node_context or {}
        y0 = self._call(self.args)
        flat = flatten(y0, out_types)
        if not flat:
            raise ValueError("no typed tensor outputs to audit: give out_types for at least one output")
        self.out_types = {k: t for k, (_, t) in flat.items()}
        self.num_samples = num_samples if num_samples is not None else self._infer_samples()
        self.labels = {}
        if labels is not None:
            self.labels = {k: v.detach() for k, (v, _) in flatten(labels, out_types).items()}
        self.dtype = next((a.dtype for a in _tensors(self.args) if a.is_floating_point()), torch.float64)

    # -- constructors ------------------------------------------------------
    @classmethod
    def batched(
        cls,
        fn: Callable,
        args: Sequence,
        in_types: Sequence,
        out_types,
        *,
        labels=None,
        needs_grad: bool = False,
        max_rows: int = 4096,
    ) -> Subject:
        """Axis 0 of every tensor input and typed output indexes samples.

        ``labels`` (same structure as the output, any subset) enables task
        metrics. ``needs_grad=True`` runs ``fn`` with autograd enabled (e.g.
        forces from ``-dE/dx``); outputs are detached. Node permutations act
        on inputs declared ``Typed(..., nodes=True, node_axis=1)``.
        """
        sizes = {a.shape[0] for a in _tensors(args) if a.dim() > 0}
        if len(sizes) != 1:
            raise ValueError(f"batched subject: tensor inputs disagree on the sample axis 0 (sizes {sorted(sizes)})")
        B = sizes.pop()
        n_nodes = _num_nodes(args, in_types)

        def collate(arg_lists):
            return tuple(
                torch.cat([al[i] for al in arg_lists])
                if isinstance(arg_lists[0][i], torch.Tensor) and arg_lists[0][i].dim() > 0
                else arg_lists[0][i]
                for i in range(len(arg_lists[0]))
            )

        def split(flat_out, m):
            return [{k: v[j * B : (j + 1) * B] for k, v in flat_out.items()} for j in range(m)]

        return cls(
            fn,
            args,
            in_types,
            out_types,
            mode="batched",
            labels=labels,
            needs_grad=needs_grad,
            max_rows=max_rows,
            num_samples=B,
            node_context=_context(args, in_types, n_nodes),
            collate=collate,
            split=split,
            copy_rows=B,
        )

    @classmethod
    def single(
        cls, fn: Callable, args: Sequence, in_types: Sequence, out_types, *, labels=None, needs_grad: bool = False
    ) -> Subject:
        """One sample: ``fn(*args)`` has no batch axis (every output is one sample)."""
        n_nodes = _num_nodes(args, in_types)
        return cls(
            fn,
            args,
            in_types,
            out_types,
            mode="single",
            labels=labels,
            needs_grad=needs_grad,
            num_samples=1,
            node_context=_context(args, in_types, n_nodes),
        )

    # -- evaluation --------------------------------------------------------
    def _call(self, args):
        ctx = torch.enable_grad() if self.needs_grad else torch.no_grad()
        with eval_mode(self.fn), ctx:
            return self.fn(*args)

    def _infer_samples(self) -> int:
        if self.mode == "single":
            return 1
        raise ValueError("cannot infer the number of samples")

    def reference(self) -> dict:
        """Flat outputs ``{name: tensor}`` (detached) on the untransformed inputs (evaluated now)."""
        return {k: v.detach() for k, (v, _) in flatten(self._call(self.args), self._out_types_spec).items()}

    def transformed_args(self, g: GroupElement):
        return act_all(list(self.args), list(self.in_types), g)

    def outputs(self, elements: Sequence[GroupElement]) -> list[dict]:
        """Flat outputs ``{name: tensor}`` (detached) of ``fn(g . args)`` for each element."""
        res: list[dict] = []
        if self._collate is None:
            for g in elements:
                y = self._call(self.transformed_args(g))
                res.append({k: v.detach() for k, (v, _) in flatten(y, self._out_types_spec).items()})
            return res
        per_call = max(1, self.max_rows // max(self._copy_rows, 1))
        for i in range(0, len(elements), per_call):
            chunk = elements[i : i + per_call]
            arg_lists = [self.transformed_args(g) for g in chunk]
            y = self._call(self._collate(arg_lists))
            flat = {k: v.detach() for k, (v, _) in flatten(y, self._out_types_spec).items()}
            res.extend(self._split(flat, len(chunk)))
        return res

    def sample_index(self, name: str, rows: int) -> torch.Tensor | None:
        """Sample id of each row of output ``name`` (``None``: row i is sample i)."""
        if self.mode == "single":
            return torch.zeros(rows, dtype=torch.long)
        return self._sample_index.get(name)


def potential_subject(model, batch: dict, *, compute_stress: bool = False, max_rows: int = 20000) -> Subject:
    """Audit subject for an ``equivar`` potential on a graph batch (docs/contracts.md).

    ``model(batch, compute_forces=True, compute_stress=...)`` must return a
    dict with ``energy [G]`` and ``forces [N, 3]`` (and ``stress [G, 3, 3]``
    when ``compute_stress``). Samples are the ``G`` graphs. The batch's
    ``energy`` / ``forces`` labels, when present, enable task metrics.
    Node permutations act within each graph.

    Raises ``ValueError`` if the batch lacks ``positions``, ``batch`` or ``ptr``.
    """
    for k in ("positions", "batch", "ptr"):
        if k not in batch:
            raise ValueError(f"potential batch lacks {k!r} (see docs/contracts.md)")
    out_types = {
        k: v for k, v in _batches.POTENTIAL_OUTPUT_TYPES.items() if k in ("energy", "forces") or compute_stress
    }
    in_types = (_batches.batch_types(batch),)

    def fn(b):
        if compute_stress:
            return model(b, compute_forces=True, compute_stress=True)
        return model(b, compute_forces=True)

    state: dict = {}

    def collate(arg_lists):
        state["batches"] = [al[0] for al in arg_lists]
        return (_batches.concat_batches(state["batches"]),)

    def split(flat_out, m):
        return _batches.split_outputs(flat_out, state["batches"])

    labels = {k: batch[k] for k in ("energy", "forces") if k in batch}
    if compute_stress and "stress" in batch:
        labels["stress"] = batch["stress"]
    G = _batches.num_graphs(batch)
    return Subject(
        fn,
        (batch,),
        in_types,
        out_types,
        mode="graphs",
        labels=labels or None,
        needs_grad=True,
        max_rows=max_rows,
        num_samples=G,
        sample_index={"forces": batch["batch"]},
        node_context={"num_nodes": int(batch["positions"].shape[0]), "segments": batch["batch"]},
        collate=collate,
        split=split,
        copy_rows=int(batch["positions"].shape[0]),
    )


def _tensors(args) -> list[torch.Tensor]:
    out = []
    for a in args:
        if isinstance(a, torch.Tensor):
            out.append(a)
        elif isinstance(a, dict):
            out.extend(v for v in a.values() if isinstance(v, torch.Tensor))
    return out


def _num_nodes(args, in_types) -> int | None:
    for a, t in zip(args, in_types):
        if isinstance(a, torch.Tensor):
            info = norm_type(t)
            if info.nodes:
                return int(a.shape[info.node_axis])
    return None


def _context(args, in_types, n_nodes) -> dict:
    """What groups need to know about the inputs: node count (permutations), image size (planar groups)."""
    ctx: dict = {"num_nodes": n_nodes} if n_nodes else {}
    for a, t in zip(args, in_types):
        if isinstance(a, torch.Tensor) and not isinstance(t, (dict, list, tuple)) and norm_type(t).kind == "image":
            ctx["image_shape"] = tuple(a.shape[-2:])
            break
    return ctx


def _validate_types(t: Any) -> None:
    if isinstance(t, dict):
        for v in t.values():
            _validate_types(v)
    elif isinstance(t, (list, tuple)):
        for v in t:
            _validate_types(v)
    else:
        norm_type(t)
