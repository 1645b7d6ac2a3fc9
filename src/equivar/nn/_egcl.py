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

Speed: the first linear map of ``phi_e`` acts on ``[h_i, h_j, r_ij, a_ij]``; it
is applied as ``(W_i h + b)_i + (W_j h)_j + W_r [r_ij, a_ij]``: the ``F x H``
products run once per node (one ``[N, 2H]`` product) and the two node terms
are gathered and added in one pass (:func:`gather_add`, whose backward and
double backward are its adjoint scatter). On graphs whose edges are grouped
by receiver with the same in-degree (the complete graphs of
``collate_scenes``) the sums over neighbours are reshapes and sums instead
of scatters. :func:`egcl_params_from_concatenated` maps the authors'
parameters (``edge_mlp.0`` on the concatenation) onto this layout.
"""

from __future__ import annotations

import torch

from ._complete_graphs import off_diagonal
from ._scatter import scatter_sum


def _activation(name: str) -> torch.nn.Module:
    table = {"silu": torch.nn.SiLU, "relu": torch.nn.ReLU, "leaky_relu": lambda: torch.nn.LeakyReLU(0.2)}
    try:
        return table[name]()
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; choose one of {', '.join(table)}") from None


class _GatherAdd(torch.autograd.Function):
    """``out[e] = t[2 i_e] + t[2 j_e + 1]`` for ``t [2N, C]`` (one ``embedding_bag`` pass)."""

    @staticmethod
    def forward(ctx, t, pairs, num_rows):
        ctx.save_for_backward(pairs)
        ctx.num_rows = num_rows
        return torch.nn.functional.embedding_bag(pairs, t, mode="sum")

    @staticmethod
    def backward(ctx, g):
        (pairs,) = ctx.saved_tensors
        if not ctx.needs_input_grad[0]:
            return None, None, None
        return _ScatterPairs.apply(g.contiguous(), pairs, ctx.num_rows), None, None


class _ScatterPairs(torch.autograd.Function):
    """Adjoint of :class:`_GatherAdd`: ``t[pairs[e, k]] += g[e]`` for k = 0, 1."""

    @staticmethod
    def forward(ctx, g, pairs, num_rows):
        ctx.save_for_backward(pairs)
        out = g.new_zeros((num_rows, g.shape[1]))
        out.index_add_(0, pairs[:, 0], g)
        out.index_add_(0, pairs[:, 1], g)
        return out

    @staticmethod
    def backward(ctx, gg):
        (pairs,) = ctx.saved_tensors
        if not ctx.needs_input_grad[0]:
            return None, None, None
        return _GatherAdd.apply(gg.contiguous(), pairs, gg.shape[0]), None, None


def gather_add(first: torch.Tensor, second: torch.Tensor, receivers: torch.Tensor, senders: torch.Tensor):
    """``first[receivers] + second[senders]`` in one pass, differentiable to any order.

    Parameters
    ----------
    first, second : Tensor [N, C]
    receivers, senders : Tensor [E] long

    Returns
    -------
    Tensor [E, C]
    """
    n = first.shape[0]
    t = torch.stack([first, second], dim=1).reshape(2 * n, -1)
    pairs = torch.stack([2 * receivers, 2 * senders + 1], dim=1)
    return _GatherAdd.apply(t, pairs, 2 * n)


def _pairs(receivers, senders):
    return torch.stack([2 * receivers, 2 * senders + 1], dim=1)


def aggregate(src: torch.Tensor, receivers: torch.Tensor, num_nodes: int, degree: int | None = None):
    """Sum of edge rows ``src [E, C]`` per receiver -> ``[N, C]``.

    ``degree``: the edges are grouped by receiver (``receivers`` = 0,..,0, 1,..,1, ...)
    with this many each (:func:`uniform_degree`), so the sum is a reshape and a sum.
    """
    if degree is not None:
        return src.reshape(num_nodes, degree, -1).sum(1)
    return scatter_sum(src, receivers, num_nodes)


def uniform_degree(receivers: torch.Tensor, num_nodes: int) -> int | None:
    """``d`` if ``receivers`` is ``[0]*d + [1]*d + ... + [N-1]*d`` (edges grouped by receiver, in-degree d), else None."""
    e = receivers.numel()
    if num_nodes == 0 or e == 0 or e % num_nodes:
        return None
    d = e // num_nodes
    expected = torch.arange(num_nodes, device=receivers.device).repeat_interleave(d)
    return d if bool(torch.equal(receivers, expected)) else None


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
        # phi_e's first linear map on [h_i, h_j, r, a], stored per node term and per pair term;
        # initialised as torch.nn.Linear(2F + 1 + A, F) would be (U(-1/sqrt(fan_in), 1/sqrt(fan_in)))
        bound = (2 * f + 1 + edge_attr_dim) ** -0.5
        self.edge_in_nodes = torch.nn.Parameter(torch.empty(f, 2 * f).uniform_(-bound, bound))
        self.edge_in_pairs = torch.nn.Parameter(torch.empty(1 + edge_attr_dim, f).uniform_(-bound, bound))
        self.edge_in_bias = torch.nn.Parameter(torch.empty(f).uniform_(-bound, bound))
        self.act = _activation(activation)
        self.edge_out = torch.nn.Linear(f, f)
        self.node_mlp = torch.nn.Sequential(torch.nn.Linear(2 * f, f), _activation(activation), torch.nn.Linear(f, f))
        last = torch.nn.Linear(f, 1, bias=False)
        torch.nn.init.xavier_uniform_(last.weight, gain=0.001)
        self.coord_mlp = torch.nn.Sequential(torch.nn.Linear(f, f), _activation(activation), last)
        self.coord_mlp_vel = (
            torch.nn.Sequential(torch.nn.Linear(f, f), _activation(activation), torch.nn.Linear(f, 1))
            if velocity
            else None
        )

    def edge_in_weight(self) -> torch.Tensor:
        """``phi_e``'s first weight in the concatenated layout ``[F, 2F + 1 + A]`` (the authors' ``edge_mlp.0.weight``)."""
        f = self.hidden_dim
        w = self.edge_in_nodes
        return torch.cat([w[:, :f].T, w[:, f:].T, self.edge_in_pairs.T], dim=1)

    def forward(self, h, x, edge_index, edge_attr=None, vel=None, inv_degree=None, degree=None):
        """See the class docstring.

        ``inv_degree [N, 1]`` (1 / in-degree) and ``degree`` (:func:`uniform_degree`) may be
        passed to skip recomputing them in every layer.
        """
        send, recv = edge_index[0], edge_index[1]
        n = h.shape[0]
        if self.edge_attr_dim and (edge_attr is None or edge_attr.shape[-1] != self.edge_attr_dim):
            got = None if edge_attr is None else edge_attr.shape[-1]
            raise ValueError(f"EGCL: edge_attr has {got} features, the layer was built for {self.edge_attr_dim}")
        pairs = _pairs(recv, send)
        # x_i - x_j and (W_i h + b)_i + (W_j h)_j, each in one gather pass
        diff = _GatherAdd.apply(torch.cat([x, -x], dim=1).reshape(2 * n, -1), pairs, 2 * n)
        radial = (diff * diff).sum(-1, keepdim=True)
        bias = torch.cat([self.edge_in_bias, self.edge_in_bias.new_zeros(self.hidden_dim)])
        node_terms = torch.addmm(bias, h, self.edge_in_nodes).reshape(2 * n, -1)
        pre = _GatherAdd.apply(node_terms, pairs, 2 * n)
        pair_in = torch.cat([radial, edge_attr], dim=-1) if self.edge_attr_dim else radial
        pre = torch.addmm(pre, pair_in, self.edge_in_pairs)
        m = self.act(self.edge_out(self.act(pre)))
        if self.norm_diff:
            diff = diff / (radial.sqrt() + 1.0)
        trans = aggregate(diff * _scalar_head(self.coord_mlp, m), recv, n, degree)
        if self.coords_aggregation == "mean":
            if inv_degree is None:
                inv_degree = inverse_degree(recv, n, x.dtype)
            trans = trans * inv_degree
        x = x + trans
        if self.coord_mlp_vel is not None:
            if vel is None:
                raise ValueError("EGCL(velocity=True) needs vel [N, D]")
            x = x + _scalar_head(self.coord_mlp_vel, h) * vel
        agg = aggregate(m, recv, n, degree)
        out = self.node_mlp(torch.cat([h, agg], dim=-1))
        h = h + out if self.residual else out
        return h, x

    def forward_dense(self, h, x, edge_attr=None, vel=None, update_h: bool = True):
        """The layer on ``B`` complete graphs of ``N`` nodes each, as dense pair tensors (no gathers or scatters).

        The same function as :meth:`forward` on the edges of :func:`~equivar.nn.complete_graph_edges` (equal up to
        round-off: the sums over neighbours run in the same order, the mean divides by ``N - 1``).

        Parameters
        ----------
        h : Tensor [B, N, F]
        x : Tensor [B, N, D]
        edge_attr : Tensor [B, N, N - 1, A] or None
            Attribute of edge ``j -> i`` at ``[b, i, k]``, ``j = k + [k >= i]`` (the edge rows of the dynamics
            batch reshaped).
        vel : Tensor [B, N, D] or None
        update_h : bool
            False: skip the node update and return ``h`` as given (the last layer of a model that reads only ``x``).

        Returns
        -------
        (Tensor [B, N, F], Tensor [B, N, D])
        """
        b, n, f = h.shape
        if self.edge_attr_dim and (edge_attr is None or edge_attr.shape[-1] != self.edge_attr_dim):
            got = None if edge_attr is None else edge_attr.shape[-1]
            raise ValueError(f"EGCL: edge_attr has {got} features, the layer was built for {self.edge_attr_dim}")
        diff = off_diagonal(x.unsqueeze(2) - x.unsqueeze(1))  # [B, N, N-1, D]: x_i - x_j
        radial = (diff * diff).sum(-1, keepdim=True)
        bias = torch.cat([self.edge_in_bias, self.edge_in_bias.new_zeros(f)])
        node_terms = torch.addmm(bias, h.reshape(b * n, f), self.edge_in_nodes).reshape(b, n, 2, f)
        pre = off_diagonal(node_terms[:, :, None, 0] + node_terms[:, None, :, 1])  # (W_i h + b)_i + (W_j h)_j
        pair_in = torch.cat([radial, edge_attr], dim=-1) if self.edge_attr_dim else radial
        e = b * n * (n - 1)
        pre = torch.addmm(pre.reshape(e, f), pair_in.reshape(e, -1), self.edge_in_pairs)
        m = self.act(self.edge_out(self.act(pre)))  # [E, F]
        if self.norm_diff:
            diff = diff / (radial.sqrt() + 1.0)
        trans = (diff * _scalar_head(self.coord_mlp, m).reshape(b, n, n - 1, 1)).sum(2)
        if self.coords_aggregation == "mean":
            trans = trans / max(n - 1, 1)
        x = x + trans
        if self.coord_mlp_vel is not None:
            if vel is None:
                raise ValueError("EGCL(velocity=True) needs vel [B, N, D]")
            x = x + _scalar_head(self.coord_mlp_vel, h.reshape(b * n, f)).reshape(b, n, 1) * vel
        if not update_h:
            return h, x
        agg = m.reshape(b, n, n - 1, f).sum(2)
        out = self.node_mlp(torch.cat([h, agg], dim=-1))
        return (h + out if self.residual else out), x


def _scalar_head(mlp: torch.nn.Sequential, t: torch.Tensor) -> torch.Tensor:
    """``mlp(t)`` for ``mlp = Sequential(Linear(F, F), act, Linear(F, 1))``, ``t [M, F]`` -> ``[M, 1]``.

    The last map runs as a matrix-vector product, whose backward is an outer product by broadcasting instead of
    the ``[M, 1] x [1, F]`` matrix product ``Linear`` would run (slow in MKL).
    """
    first, act, last = mlp
    z = act(first(t))
    out = torch.mv(z, last.weight[0])
    if last.bias is not None:
        out = out + last.bias
    return out.unsqueeze(-1)


def egcl_params_from_concatenated(state: dict, prefix: str = "") -> dict:
    """Map an ``E_GCL`` / ``E_GCL_vel`` state dict of the authors' layout onto :class:`EGCL`'s.

    ``edge_mlp.0.{weight,bias}`` (on ``[h_i, h_j, r, a]``) become ``edge_in_nodes``,
    ``edge_in_pairs``, ``edge_in_bias``; ``edge_mlp.2`` becomes ``edge_out``; the other
    keys (``node_mlp``, ``coord_mlp``, ``coord_mlp_vel``) keep their names.
    """
    out = {}
    w = state[prefix + "edge_mlp.0.weight"]
    f = w.shape[0]
    out[prefix + "edge_in_nodes"] = torch.cat([w[:, :f].T, w[:, f : 2 * f].T], dim=1).contiguous()
    out[prefix + "edge_in_pairs"] = w[:, 2 * f :].T.contiguous()
    out[prefix + "edge_in_bias"] = state[prefix + "edge_mlp.0.bias"]
    for k, v in state.items():
        if not k.startswith(prefix) or k.startswith(prefix + "edge_mlp.0."):
            continue
        rest = k[len(prefix) :]
        out[prefix + rest.replace("edge_mlp.2.", "edge_out.")] = v
    return out


def inverse_degree(receivers: torch.Tensor, num_nodes: int, dtype: torch.dtype) -> torch.Tensor:
    """``[N, 1]``: 1 / (number of incoming edges), 1 for isolated nodes (the authors' ``count.clamp(min=1)``)."""
    deg = torch.bincount(receivers, minlength=num_nodes).clamp(min=1)
    return (1.0 / deg.to(dtype)).unsqueeze(-1)
