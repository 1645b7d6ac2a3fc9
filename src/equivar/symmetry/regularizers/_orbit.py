"""Orbit consistency: a differentiable, model-agnostic equivariance penalty.

``R_G(f) = E_g sum_b |f(g x_b) - g f(x_b)|^2 / sum_b |f(x_b)|^2`` over ``n``
sampled elements ``g`` of ``G`` (all elements, identity excluded, for a
finite group of order <= ``n + 1``). The denominator is detached, so the
penalty is scale-free without rewarding a large output.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from .._groups import get_group
from .._types import act, act_all, flatten


def sample_elements(group, n: int, generator: torch.Generator | None = None, **context):
    """``n`` elements of ``group`` (all non-identity ones for small finite groups)."""
    G = get_group(group)
    if G.finite and G.order <= n + 1:
        eye = torch.eye(3, dtype=torch.float64)
        return [g for g in G.elements() if not torch.allclose(g.R, eye)]
    return G.sample(n, generator, labels=False, **context)


def orbit_consistency(
    fn: Callable,
    args: Sequence,
    in_types: Sequence,
    out_types,
    group,
    *,
    n: int = 2,
    generator: torch.Generator | None = None,
    y=None,
    elements=None,
    batched: bool = True,
) -> torch.Tensor:
    """Relative orbit-consistency penalty of ``fn`` under ``group`` (differentiable).

    Parameters
    ----------
    fn : callable, ``fn(*args)`` with outputs of ``out_types``
    args, in_types : inputs and their types (see :mod:`equivar.symmetry._types`)
    group : group name or Group (rotations, translations, permutations)
    n : sampled elements per call
    generator : seeds the sampling
    y : optional precomputed ``fn(*args)`` (saves a forward pass)
    elements : optional explicit list of :class:`GroupElement`
    batched : bool
        Axis 0 of every tensor input and output indexes samples: all
        transformed copies are evaluated in one call (concatenated on axis 0).
        Set False for callables without a sample axis (node permutations act
        on axis 0, for instance).

    Returns
    -------
    scalar tensor ``>= 0``; 0 iff ``fn`` is equivariant on the sampled elements.
    """
    if y is None:
        y = fn(*args)
    ref = flatten(y, out_types)
    den = sum(v.detach().pow(2).sum() for v, _ in ref.values())
    if elements is None:
        elements = sample_elements(group, n, generator)
    num = 0.0
    if batched and _stackable(args):
        # one forward on all transformed copies, concatenated along the sample axis
        B = next(a.shape[0] for a in args if isinstance(a, torch.Tensor))
        copies = [act_all(list(args), list(in_types), g) for g in elements]
        cat = [
            torch.cat([c[i] for c in copies]) if isinstance(args[i], torch.Tensor) else args[i]
            for i in range(len(args))
        ]
        yall = flatten(fn(*cat), out_types)
        for j, g in enumerate(elements):
            for k, (v, t) in ref.items():
                num = num + (yall[k][0][j * B : (j + 1) * B] - act(v, t, g)).pow(2).sum()
    else:
        for g in elements:
            yg = flatten(fn(*act_all(list(args), list(in_types), g)), out_types)
            for k, (v, t) in ref.items():
                num = num + (yg[k][0] - act(v, t, g)).pow(2).sum()
    return num / (len(elements) * den.clamp_min(torch.finfo(den.dtype).tiny))


def _stackable(args) -> bool:
    sizes = {a.shape[0] for a in args if isinstance(a, torch.Tensor) and a.dim() > 0}
    return len(sizes) == 1
