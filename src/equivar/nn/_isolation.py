"""How much of an atom's surroundings is within the cutoff: the weight that takes the energy shift to 0 as the
last neighbour leaves ``r_max``, so an isolated atom has exactly its reference energy E0.

.. code-block:: text

    s(t)  = 6 t^5 - 15 t^4 + 10 t^3   on [0, 1] (0 below, 1 above)       smootherstep: C2, s'(0)=s'(1)=0
    u(r)  = s((r_max - r) / width)                                       1 within r_max - width, 0 from r_max
    n_i   = sum over the neighbours j of i of u(r_ij)                     smooth neighbour count
    w_i   = s(n_i)                                                        1 for n_i >= 1, 0 for an isolated atom

``w_i`` is a C2 function of the positions; it is exactly 1 for every atom
with at least one neighbour closer than ``r_max - width`` (any molecule or
solid a potential is trained on), so it changes nothing there.
"""

from __future__ import annotations

import torch

from ._scatter import scatter_sum

#: Width (Å) of the shell below ``r_max`` in which a neighbour counts partly (``neighbour_weight``).
ISOLATION_WIDTH = 1.0


def smootherstep(t: torch.Tensor) -> torch.Tensor:
    """``6 t^5 - 15 t^4 + 10 t^3`` with ``t`` clamped to [0, 1] (Perlin's smootherstep; C2, values 0 and 1 at the
    ends with zero first and second derivatives). Same shape and dtype as ``t``.

    Evaluated as ``1 - s(1 - t)`` above ``t = 1/2`` (the polynomial is point-symmetric about (1/2, 1/2)), so that
    in float32 it stays within [0, 1] and reaches 1 without rounding past it.
    """
    t = t.clamp(0.0, 1.0)
    near_one = t > 0.5
    x = torch.where(near_one, 1.0 - t, t)
    p = x * x * x * (x * (6.0 * x - 15.0) + 10.0)
    return torch.where(near_one, 1.0 - p, p)


def neighbour_weight(
    edge_lengths: torch.Tensor,
    receiver: torch.Tensor,
    num_nodes: int,
    r_max: float,
    width: float = ISOLATION_WIDTH,
) -> torch.Tensor:
    """Per-atom weight ``w_i`` in [0, 1] of the module notes: 1 with a neighbour within ``r_max - width``, 0 with
    none within ``r_max``, C2 in between.

    Parameters
    ----------
    edge_lengths : Tensor [E]
        Å, any float dtype (differentiable: forces and stress flow through it).
    receiver : LongTensor [E]
        Atom each edge counts for (``edge_index[1]``).
    num_nodes : int
        ``N``.
    r_max : float
        Cutoff, Å (> 0).
    width : float
        Shell width, Å; clipped to ``r_max``.

    Returns
    -------
    Tensor [N] in the dtype of ``edge_lengths``.

    Raises
    ------
    ValueError
        ``r_max`` or ``width`` not positive.
    """
    if not r_max > 0 or not width > 0:
        raise ValueError(f"neighbour_weight: r_max and width must be positive, got r_max={r_max}, width={width}")
    width = min(float(width), float(r_max))
    u = smootherstep((float(r_max) - edge_lengths) / width)
    return smootherstep(scatter_sum(u, receiver, num_nodes))
