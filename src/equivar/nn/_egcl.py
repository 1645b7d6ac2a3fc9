"""E(n)-equivariant graph convolutional layer (EGCL) of Satorras, Hoogeboom, Welling, ICML 2021.

For every edge ``j -> i`` (receiver ``i``), with invariant node features
``h`` and positions ``x`` (any dimension ``D``)::

    m_ij  = phi_e(h_i, h_j, |x_i - x_j|^2, a_ij)                  (eq. 3)
    x_i  += C sum_j (x_i - x_j) phi_x(m_ij)     [C = 1/deg(i): mean] (eq. 4)
    x_i  += phi_v(h_i) v_i                       [velocity variant]   (eq. 7)
    h_i   = h_i + phi_h(h_i, sum_j m_ij)         [residual]           (eqs. 5-6)

``phi_e`` = Linear-act-Linear-act, ``phi_h`` = Linear-act-Linear,
``phi_x`` = Linear-act-Linear(no bias, Xavier-uniform gain 0.001),
``phi_v`` = Linear-act-Linear, as in the authors' ``models/gcl.py``
(``E_GCL`` / ``E_GCL_vel``, github.com/vgsatorras/egnn); the position
update reads the edge messages before ``h`` is updated, the velocity term
reads ``h`` before its update, as there. Coordinates are aggregated by mean
over neighbours in the N-body code (``unsorted_segment_mean``), by sum in
its later ``egnn_clean``; both are offered. The authors' per-component clamp
of the position messages at +-100 ("never activated") is left out: when
active it would break rotation equivariance.

Speed: the first linear map of ``phi_e`` acts on the concatenation
``[h_i, h_j, r_ij, a_ij]``; it is applied as ``(W_i h)_i + (W_j h)_j + w_r r_ij
+ W_a a_ij`` so the two ``F x H`` products run once per node instead of once
per edge (same parameters and result as the concatenated form, whose weight
layout it keeps).
"""

from __future__ import annotations

import torch

from ._scatter import gather, scatter_sum


def _activation(name: str) -> torch.nn.Module:
    table = {"silu": torch.nn.SiLU, "relu": torch.nn.ReLU, "leaky_relu": lambda: torch.nn.LeakyReLU(0.2)}
    try:
        return table[name]()
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; choose one of {', '.join(table)}") from None


class EGCL(torch.nn.Module):
    """One E(n)-equivariant message-passing layer (EGNN's ``E_GCL``, optionally ``E_GCL_vel``).

    Parameters
    ----------
    hidden_dim : int
        Width of ``h`` and of the messages (64 in EGNN's N-body runs).
    edge_attr_dim : int
        Width of the invariant edge attributes ``a_ij`` (EGNN N-body: 2,
        ``q_i q_j`` and the initial ``|x_i - x_j|^2``).
    activation : str
        ``'silu'`` (N-body), ``'relu'`` or ``'leaky_relu'`` (slope 0.2).
    residual : bool
        ``h_i + phi_h(...)`` (the authors' ``recurrent=True``).
    coords_aggregation : str
        ``'mean'`` (N-body code) or ``'sum'``.
    velocity : bool
        Add ``phi_v(h_i) v_i`` to the positions (EGNN's velocity variant).
    norm_diff : bool
        Use ``(x_i - x_j) / (|x_i - x_j| + 1)`` in the position update (the
        authors' ``norm_diff``; off in the N-body runs).

    Shapes
    ------
    ``forward(h [N, F], x [N, D], edge_index [2, E], edge_attr [E, A] or None, vel [N, D] or None)``
    returns ``(h [N, F], x [N, D])``. ``edge_index`` row 0 is the sender
    ``j``, row 1 the receiver ``i``. ``h``, ``edge_attr`` are invariant;
    ``x`` positions and ``vel`` vectors transform under E(D) (rotations,
    reflections, translations of ``x``) and permutations of nodes.
    """

    def __init__(
        self,
        hidden_dim: int,
        edge_attr_dim: int = 0,
        activation: str = "silu",
        residual: bool = True,
        coords_aggregation: str = "mean",
        velocity: bool = False,
        norm_diff: bool = False,
    ):
        super().__init__()
        if coords_aggregation not in ("mean", "sum"):
            raise ValueError(f"coords_aggregation={coords_aggregation!r}: choose 'mean' or 'sum'")
        f = hidden_dim
        self.hidden_dim = f
        self.edge_attr_dim = edge_attr_dim
        self.residual = residual
        self.coords_aggregation = coords_aggregation
        self.norm_diff = norm_diff
        self.edge_mlp = torch.nn.Sequential(
            torch.nn.Linear(2 * f + 1 + edge_attr_dim, f),
            _activation(activation),
            torch.nn.Linear(f, f),
            _activation(activation),
        )
        self.node_mlp = torch.nn.Sequential(torch.nn.Linear(2 * f, f), _activation(activation), torch.nn.Linear(f, f))
        last = torch.nn.Linear(f, 1, bias=False)
        torch.nn.init.xavier_uniform_(last.weight, gain=0.001)
        self.coord_mlp = torch.nn.Sequential(torch.nn.Linear(f, f), _activation(activation), last)
        self.coord_mlp_vel = (
            torch.nn.Sequential(torch.nn.Linear(f, f), _activation(activation), torch.nn.Linear(f, 1))
            if velocity
            else None
        )

    def _messages(self, h, radial, edge_attr, send, recv):
        lin = self.edge_mlp[0]
        f = self.hidden_dim
        w = lin.weight
        # [h_i, h_j, r, a] @ W^T, with the node products done per node
        pre = gather(h @ w[:, :f].T, recv) + gather(h @ w[:, f : 2 * f].T, send)
        pre = pre + radial * w[:, 2 * f] + lin.bias
        if self.edge_attr_dim:
            pre = pre + edge_attr @ w[:, 2 * f + 1 :].T
        m = self.edge_mlp[1](pre)
        return self.edge_mlp[3](self.edge_mlp[2](m))

    def forward(self, h, x, edge_index, edge_attr=None, vel=None, inv_degree=None):
        """See the class docstring; ``inv_degree [N, 1]`` (1/in-degree) may be passed to skip recounting."""
        send, recv = edge_index[0], edge_index[1]
        n = h.shape[0]
        diff = gather(x, recv) - gather(x, send)  # x_i - x_j
        radial = (diff * diff).sum(-1, keepdim=True)
        if self.edge_attr_dim and (edge_attr is None or edge_attr.shape[-1] != self.edge_attr_dim):
            got = None if edge_attr is None else edge_attr.shape[-1]
            raise ValueError(f"EGCL: edge_attr has {got} features, the layer was built for {self.edge_attr_dim}")
        m = self._messages(h, radial, edge_attr, send, recv)
        if self.norm_diff:
            diff = diff / (radial.sqrt() + 1.0)
        trans = scatter_sum(diff * self.coord_mlp(m), recv, n)
        if self.coords_aggregation == "mean":
            if inv_degree is None:
                inv_degree = inverse_degree(recv, n, x.dtype)
            trans = trans * inv_degree
        x = x + trans
        if self.coord_mlp_vel is not None:
            if vel is None:
                raise ValueError("EGCL(velocity=True) needs vel [N, D]")
            x = x + self.coord_mlp_vel(h) * vel
        agg = scatter_sum(m, recv, n)
        out = self.node_mlp(torch.cat([h, agg], dim=-1))
        h = h + out if self.residual else out
        return h, x


def inverse_degree(receivers: torch.Tensor, num_nodes: int, dtype: torch.dtype) -> torch.Tensor:
    """``[N, 1]``: 1 / (number of incoming edges), 1 for isolated nodes (the authors' ``count.clamp(min=1)``)."""
    deg = torch.bincount(receivers, minlength=num_nodes).clamp(min=1)
    return (1.0 / deg.to(dtype)).unsqueeze(-1)
