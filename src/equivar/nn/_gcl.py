"""Plain (non-equivariant) message passing: the GNN baseline of Satorras, Hoogeboom, Welling (ICML 2021).

For every edge ``j -> i`` (receiver ``i``), with node features ``h`` and edge
attributes ``a_ij``::

    m_ij = phi_e(h_i, h_j, a_ij)                 phi_e = Linear-act-Linear-act
    h_i  = h_i + phi_h(h_i, sum_j m_ij)          phi_h = Linear-act-Linear   [residual]

as the ``GCL`` layer of the authors' ``models/gcl.py`` (github.com/vgsatorras/egnn,
used unchanged by the frame-averaging GNN of Puny et al., ICLR 2022,
github.com/omri1348/Frame-Averaging ``nbody/models/gcl.py``; attention off).
:class:`GNN` stacks it between a linear embedding and a Linear-act-Linear
decoder: the GNN baseline of EGNN's N-body table and the backbone of FA-GNN.
Nothing here knows about geometry: coordinates fed as features are treated
as plain numbers (so the network is *not* equivariant; wrap it in
:class:`equivar.symmetry.FrameAveraging` to make it so).

Speed: the first linear map of ``phi_e`` on ``[h_i, h_j, a_ij]`` is applied as
``(W_i h + b)_i + (W_j h)_j + W_a a_ij`` (node products once per node, one
gather pass, :func:`~equivar.nn.gather_add`), and on complete graphs grouped
by receiver the neighbour sum is a reshape (:func:`~equivar.nn.aggregate`),
as in :class:`~equivar.nn.EGCL`.
"""

from __future__ import annotations

import torch

from ._egcl import _activation, _GatherAdd, _pairs, aggregate


class GCL(torch.nn.Module):
    """One plain message-passing layer (EGNN's ``GCL``, attention off).

    Parameters
    ----------
    hidden_dim : int
        Width of ``h`` and of the messages.
    edge_attr_dim : int
        Width of the edge attributes ``a_ij`` (0: none).
    activation : str
        ``'silu'``, ``'relu'`` or ``'leaky_relu'`` (slope 0.2).
    residual : bool
        ``h_i + phi_h(...)`` (the authors' ``recurrent=True``).

    Shapes
    ------
    ``forward(h [N, F], edge_index [2, E], edge_attr [E, A] or None, degree=None) -> h [N, F]``;
    ``edge_index`` row 0 is the sender ``j``, row 1 the receiver ``i``; ``degree``:
    see :func:`~equivar.nn.uniform_degree`. Permutation equivariant (of nodes, with
    the edges relabelled); nothing else.

    Raises
    ------
    ValueError
        ``edge_attr`` missing or of the wrong width (the message gives both widths).
    """

    def __init__(self, hidden_dim: int, edge_attr_dim: int = 0, activation: str = "silu", residual: bool = True):
        super().__init__()
        f = hidden_dim
        self.hidden_dim = f
        self.edge_attr_dim = edge_attr_dim
        self.residual = residual
        # phi_e's first map on [h_i, h_j, a_ij], stored per node term and per pair term, initialised as
        # torch.nn.Linear(2F + A, F) would be (U(-1/sqrt(fan_in), 1/sqrt(fan_in)))
        bound = (2 * f + edge_attr_dim) ** -0.5
        self.edge_in_nodes = torch.nn.Parameter(torch.empty(f, 2 * f).uniform_(-bound, bound))
        self.edge_in_pairs = torch.nn.Parameter(torch.empty(edge_attr_dim, f).uniform_(-bound, bound))
        self.edge_in_bias = torch.nn.Parameter(torch.empty(f).uniform_(-bound, bound))
        self.act = _activation(activation)
        self.edge_out = torch.nn.Linear(f, f)
        self.node_mlp = torch.nn.Sequential(torch.nn.Linear(2 * f, f), _activation(activation), torch.nn.Linear(f, f))

    def edge_in_weight(self) -> torch.Tensor:
        """``phi_e``'s first weight in the concatenated layout ``[F, 2F + A]`` (the authors' ``edge_mlp.0.weight``)."""
        f = self.hidden_dim
        w = self.edge_in_nodes
        return torch.cat([w[:, :f].T, w[:, f:].T, self.edge_in_pairs.T], dim=1)

    def forward(self, h, edge_index, edge_attr=None, degree: int | None = None):
        send, recv = edge_index[0], edge_index[1]
        n = h.shape[0]
        if self.edge_attr_dim and (edge_attr is None or edge_attr.shape[-1] != self.edge_attr_dim):
            got = None if edge_attr is None else edge_attr.shape[-1]
            raise ValueError(f"GCL: edge_attr has {got} features, the layer was built for {self.edge_attr_dim}")
        bias = torch.cat([self.edge_in_bias, self.edge_in_bias.new_zeros(self.hidden_dim)])
        node_terms = torch.addmm(bias, h, self.edge_in_nodes).reshape(2 * n, -1)
        pre = _GatherAdd.apply(node_terms, _pairs(recv, send), 2 * n)
        if self.edge_attr_dim:
            pre = torch.addmm(pre, edge_attr, self.edge_in_pairs)
        m = self.act(self.edge_out(self.act(pre)))
        out = self.node_mlp(torch.cat([h, aggregate(m, recv, n, degree)], dim=-1))
        return h + out if self.residual else out


class GNN(torch.nn.Module):
    """Embedding, ``num_layers`` :class:`GCL` layers, decoder: EGNN's GNN baseline / FA-GNN's backbone.

    Parameters
    ----------
    in_dim : int
        Node input features (FA-GNN on N-body: 6, canonical position and velocity).
    hidden_dim : int
        Width of the hidden features (FA-GNN: 60).
    out_dim : int
        Node outputs (3: a position or displacement).
    num_layers : int
        Message-passing layers (4).
    edge_attr_dim : int
        Edge attributes (N-body: 2, ``q_i q_j`` and ``|x_i - x_j|^2``).
    activation : str
        ``'silu'`` (both N-body codes), ``'relu'`` or ``'leaky_relu'``.
    residual : bool
        Residual node updates.

    Attributes
    ----------
    embedding : torch.nn.Linear ``in_dim -> hidden_dim``
    layers : torch.nn.ModuleList of :class:`GCL`
    decoder : torch.nn.Sequential, Linear-act-Linear ``hidden_dim -> out_dim``

    Shapes
    ------
    ``forward(x [N, in_dim], edge_index [2, E], edge_attr [E, A] or None) -> [N, out_dim]``.
    Permutation equivariant only.
    """

    def __init__(
        self,
        in_dim: int,
        hidden_dim: int,
        out_dim: int,
        num_layers: int,
        edge_attr_dim: int = 0,
        activation: str = "silu",
        residual: bool = True,
    ):
        super().__init__()
        self.embedding = torch.nn.Linear(in_dim, hidden_dim)
        self.layers = torch.nn.ModuleList(
            GCL(hidden_dim, edge_attr_dim, activation, residual) for _ in range(num_layers)
        )
        self.decoder = torch.nn.Sequential(
            torch.nn.Linear(hidden_dim, hidden_dim), _activation(activation), torch.nn.Linear(hidden_dim, out_dim)
        )

    def forward(self, x, edge_index, edge_attr=None, degree: int | None = None):
        h = self.embedding(x)
        for layer in self.layers:
            h = layer(h, edge_index, edge_attr, degree)
        return self.decoder(h)
