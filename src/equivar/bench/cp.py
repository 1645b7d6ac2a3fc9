"""Accuracy of the CP-decomposed tensor product against its rank (``tp`` backend ``cp``).

Moved out of ``equivar.tp._cp`` so that the tensor-product layer does not
reach up to ``equivar.testing`` for its equivariance errors.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..o3 import Irreps
from ..testing import equivariance_error
from ..tp import TensorProduct


def cp_error_table(
    irreps_in1,
    irreps_in2,
    irreps_out,
    instructions,
    ranks: Sequence,
    *,
    path_weight_sharing: bool = True,
    seed: int = 0,
    n_iter: int = 1000,
    n_samples: int = 64,
    use_cache: bool = True,
    dtype: torch.dtype = torch.float64,
) -> list[dict]:
    """Approximation and equivariance error of the ``cp`` backend for each rank.

    For each entry of ``ranks`` (ints or ``'exact'``) builds
    ``TensorProduct(..., backend='cp', rank=r)`` and measures, on
    ``n_samples`` random inputs (seeded) with random shared weights:

    - ``approx_error``: relative Frobenius error of the CP coefficient tensor;
    - ``output_error``: ``|out_cp - out_cg| / |out_cg|`` against the ``cg`` backend
      with the same weights;
    - ``equivariance_error``: the largest relative equivariance error over
      random rotations and improper rotations
      (:func:`equivar.testing.equivariance_error`).

    Returns a list of dicts ``{rank, effective_rank, approx_error,
    output_error, equivariance_error}``, one per requested rank.

    Raises ``ValueError`` for an invalid rank or configuration.
    """
    i1, i2, io = Irreps(irreps_in1), Irreps(irreps_in2), Irreps(irreps_out)
    gen = torch.Generator().manual_seed(seed)
    x1 = torch.randn(n_samples, i1.dim, generator=gen, dtype=dtype)
    x2 = torch.randn(n_samples, i2.dim, generator=gen, dtype=dtype)
    rows = []
    for r in ranks:
        tp = TensorProduct(
            i1,
            i2,
            io,
            instructions,
            backend="cp",
            rank=r,
            path_weight_sharing=path_weight_sharing,
            seed=seed,
            n_iter=n_iter,
            use_cache=use_cache,
        ).to(dtype)
        with torch.no_grad():
            tp.weight.copy_(
                torch.randn(tp.weight.shape, generator=torch.Generator().manual_seed(seed + 1), dtype=dtype)
            )
        cg = TensorProduct(i1, i2, io, instructions, backend="cg").to(dtype)
        with torch.no_grad():
            if path_weight_sharing:  # the shared weight on every path
                cg.weight.copy_(torch.cat([tp.weight.reshape(-1) for i in cg.instructions if i.has_weight]))
            else:
                cg.weight.copy_(tp.weight)
            y, y0 = tp(x1, x2), cg(x1, x2)
        out_err = float((y - y0).norm() / y0.norm()) if y0.norm() > 0 else float((y - y0).norm())
        with torch.no_grad():
            eq = equivariance_error(tp, [x1, x2], [i1, i2], io, seed=seed).max
        rows.append(
            {
                "rank": r,
                "effective_rank": tp.backend.rank,
                "approx_error": tp.backend.approx_error,
                "output_error": out_err,
                "equivariance_error": eq,
            }
        )
    return rows
