"""MACE building blocks: interaction (edge tensor product + aggregation) and product (symmetric contraction).

Source: Batatia, Kovács, Simm, Ortner, Csányi, "MACE: Higher Order
Equivariant Message Passing Neural Networks for Fast and Accurate Force
Fields", NeurIPS 2022 (eqs. 8-13), and the block structure of mace-torch
(``RealAgnosticResidualInteractionBlock``, ``EquivariantProductBasisBlock``).
Written from the paper; no mace-torch code is used.
"""

from __future__ import annotations

import torch

from ...nn import ElementLinear, Linear, S2GridMLP, SymmetricContraction, gather, scatter_sum
from ...o3 import Irreps
from ...tp import channelwise_tp


class InteractionBlock(torch.nn.Module):
    r"""One MACE interaction: ``A_i = Linear( sum_j R(r_ij) * (W h_j) (x) Y(r_ij) ) / avg_num_neighbors``.

    ``h -> Linear (up) -> gather to edges -> channelwise TP with spherical
    harmonics and per-edge weights -> scatter-sum to receivers /
    avg_num_neighbors -> Linear``; plus an element-dependent skip
    connection of ``h`` when ``residual``.

    Parameters
    ----------
    irreps_node : Irreps
        Node features in.
    irreps_sh : Irreps
        Edge spherical harmonics (``0e+1o+...``).
    irreps_target : Irreps
        Output ``A`` (``C x`` sh-like irreps, the symmetric contraction's input).
    irreps_skip : Irreps or None
        Skip-connection output irreps (the next hidden irreps); ``None``
        disables it.
    num_elements : int
    avg_num_neighbors : float
    tp_backend : str
        ``equivar.tp`` backend for the edge product.
    tp_options : dict
        Extra backend options.

    Attributes: ``tp`` (the edge :class:`~equivar.tp.TensorProduct`),
    ``weight_numel`` (per-edge weights the radial function must give).

    Forward: ``node_feats [N, irreps_node.dim]``, ``node_attrs [N, E]``
    one-hot, ``edge_attrs [Ed, irreps_sh.dim]``, ``tp_weights
    [Ed, weight_numel]``, ``edge_index [2, Ed]`` (row 0 sender, row 1
    receiver) -> ``(A [N, irreps_target.dim], skip [N, irreps_skip.dim] or None)``.
    """

    def __init__(
        self,
        irreps_node,
        irreps_sh,
        irreps_target,
        irreps_skip,
        num_elements: int,
        avg_num_neighbors: float,
        tp_backend: str = "cg",
        tp_options: dict | None = None,
    ):
        super().__init__()
        self.irreps_node = Irreps(irreps_node)
        self.irreps_sh = Irreps(irreps_sh)
        self.irreps_target = Irreps(irreps_target)
        self.linear_up = Linear(self.irreps_node, self.irreps_node)
        self.tp, self.irreps_mid = channelwise_tp(
            self.irreps_node, self.irreps_sh, self.irreps_target, backend=tp_backend, **(tp_options or {})
        )
        self.weight_numel = self.tp.weight_numel
        self.linear = Linear(self.irreps_mid, self.irreps_target)
        self.skip = ElementLinear(self.irreps_node, irreps_skip, num_elements) if irreps_skip is not None else None
        self.inv_avg = 1.0 / float(avg_num_neighbors)

    def forward(self, node_feats, node_attrs, edge_attrs, tp_weights, edge_index):
        sc = self.skip(node_feats, node_attrs) if self.skip is not None else None
        h = self.linear_up(node_feats)
        sender, receiver = edge_index[0], edge_index[1]
        mji = self.tp(gather(h, sender), edge_attrs, tp_weights)
        msg = scatter_sum(mji, receiver, node_feats.shape[0])
        return self.linear(msg) * self.inv_avg, sc


class ProductBlock(torch.nn.Module):
    r"""MACE product: ``h' = Mix( SymmetricContraction(A, element) ) + skip``.

    ``Mix`` is a :class:`~equivar.nn.Linear` (``self_interaction='linear'``,
    MACE) or a :class:`~equivar.nn.S2GridMLP` (``'s2grid'``, Facet).

    Forward: ``A [N, irreps_in.dim]``, ``node_attrs [N, E]``, ``sc`` (or
    None) -> ``[N, irreps_out.dim]``.
    """

    def __init__(
        self,
        irreps_in,
        irreps_out,
        correlation: int,
        num_elements: int,
        self_interaction: str = "linear",
        s2grid_band_limit: int | None = None,
    ):
        super().__init__()
        self.irreps_in = Irreps(irreps_in)
        self.irreps_out = Irreps(irreps_out)
        self.contraction = SymmetricContraction(self.irreps_in, self.irreps_out, correlation, num_elements)
        if self_interaction == "linear":
            self.mix = Linear(self.irreps_out, self.irreps_out)
        elif self_interaction == "s2grid":
            self.mix = S2GridMLP(self.irreps_out, self.irreps_out, band_limit=s2grid_band_limit)
        else:
            raise ValueError(f"self_interaction must be 'linear' or 's2grid', got {self_interaction!r}")

    def forward(self, A, node_attrs, sc=None):
        h = self.mix(self.contraction(A, node_attrs))
        return h + sc if sc is not None else h
