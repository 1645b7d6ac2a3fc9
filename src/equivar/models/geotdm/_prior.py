"""GeoTDM's learnable equivariant prior for conditional generation.

Han et al., "Geometric Trajectory Diffusion Models", NeurIPS 2024, section 4.2 (code
``hanjq17/GeoTDM``, ``models/EGTN.py`` with ``compute_ref=True``): the forward process of the future
frames diffuses towards a mean ``x_ref`` built from the observed frames ``x_c [M, T_c, D]``; a small
:class:`EGTN` maps them to ``(x', h')`` and, with ``w_s`` the mean of ``h'_s`` over channels (invariant)
and ``u_f`` a learned weight per future frame,

    x_ref_f = sum_s W_sf x'_s,   W_sf = w_s u_f  (s < T_c),   W_{T_c f} = 1 - sum_{s < T_c} W_sf.

The weights of every future frame sum to 1, so ``x_ref`` translates with the observed frames, rotates
and reflects with them, and permutes with the nodes: the prior ``N(x_ref, I)`` is equivariant, and so is
the sampled distribution. Shapes: ``x_ref [M, T_f, D]``.
"""

from __future__ import annotations

import torch

from ._egtn import EGTN


class EquivariantPrior(torch.nn.Module):
    """The learned prior mean ``x_ref`` of the future frames (module docstring).

    Parameters
    ----------
    future : int
        ``T_f``, the generated frames.
    hidden_dim, num_layers, edge_attr_dim, time_emb_dim, activation
        Of its :class:`EGTN` (GeoTDM: 2 layers).
    node_attr_dim : int
        Width of the invariant node attributes embedded as the initial ``h`` (0: a learned constant).

    Shapes
    ------
    ``forward(x_cond [M, T_c, D], node_attr [M, node_attr_dim], edge_index, edge_attr, size)``
    -> ``x_ref [M, T_f, D]``.
    """

    def __init__(
        self, future, hidden_dim, num_layers, node_attr_dim=0, edge_attr_dim=0, time_emb_dim=32, activation="silu"
    ):
        super().__init__()
        self.node_attr_dim = node_attr_dim
        self.embed = torch.nn.Linear(node_attr_dim, hidden_dim)
        self.net = EGTN(hidden_dim, num_layers, edge_attr_dim, time_emb_dim, activation)
        self.frame_weights = torch.nn.Parameter(torch.ones(future))

    def forward(self, x_cond, node_attr, edge_index, edge_attr=None, size=None):
        m, tc, _ = x_cond.shape
        feats = node_attr.to(x_cond.dtype) if self.node_attr_dim else x_cond.new_zeros(m, 0)
        h = self.embed(feats).unsqueeze(1).expand(m, tc, -1)
        x, h = self.net(x_cond, h, edge_index, edge_attr, size)
        w = h.mean(-1)  # [M, T_c]
        weights = w[:, :-1, None] * self.frame_weights  # [M, T_c - 1, T_f]
        last = 1 - weights.sum(1, keepdim=True)
        weights = torch.cat([weights, last], dim=1)  # [M, T_c, T_f], columns sum to 1
        return torch.einsum("msf,msd->mfd", weights, x)
