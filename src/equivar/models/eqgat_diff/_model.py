"""EQGAT-diff's denoiser (Le, Cremer, Noé, Clevert, Schütt, ICLR 2024): :class:`EQGATDiff` (registered ``'eqgat_diff'``).

The paper's best QM9 setting (``tuanle618/eqgat-diff``, ``e3moldiffusion/coordsatomsbonds.py``:
``DenoisingEdgeNetwork`` + ``PredictionHeadEdge``): explicit hydrogens, a fully connected graph
per molecule, atom types, formal charges and bonds diffused as categories (the diffusion core's
``CategoricalDiffusion``), positions as a zero-CoM Gaussian, and the network predicting the clean
data (``x0``) of every modality:

- inputs: one-hot noisy atom types and charges -> ``s``, one-hot noisy bond types (per pair, both
  directions) -> ``e``, each plus a linear embedding of the time ``t / T``; vectors start at 0;
- ``num_layers`` :class:`EQGATEdgeLayer` (positions updated by every layer, edge attributes
  recomputed from them);
- heads: ``pos = p + W v`` (centred), atom and charge logits from ``silu(W s)``, bond logits
  from ``s_i + s_j + W (e_ij + e_ji) / 2`` and the predicted squared distance through an MLP.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .._registry import _is_int
from ._layers import EQGATEdgeLayer, EquivLayerNorm, graph_mean_of

__all__ = ["EQGATDiff"]


class EQGATDiff(nn.Module):
    """E(3)-equivariant denoiser of molecules: positions, atom types, charges and bonds.

    Parameters
    ----------
    num_atom_types : int
        Atom classes (QM9: 5, H C N O F).
    num_charge_classes : int
        Formal-charge classes (QM9 here: 3, charges -1, 0, +1; 0 = no charge input/output).
    num_bond_types : int
        Bond classes (none, single, double, triple: 4).
    s_dim, v_dim, edge_dim : int
        Scalar, vector and edge channels (the code's defaults: 256, 64, 32).
    num_layers : int
        EQGAT layers (the code's default: 7).

    Raises
    ------
    ValueError
        a size that is not a positive integer (named).

    Shapes
    ------
    ``forward(pos [N, 3], atoms [N] long, charges [N] long, bonds [M] long, pairs [2, M] long,
    batch [N] long, t [G] float in [0, 1], num_graphs)`` -> ``{"pos": [N, 3], "atoms": [N, K_a],
    "charges": [N, K_c], "bonds": [M, K_b]}`` (logits). ``pairs`` lists every unordered atom pair of
    each molecule once (either order). ``pos`` is E(3)-equivariant (rotations, reflections, translations:
    the prediction keeps the input's centre of mass), logits invariant; all permutation-equivariant.
    Float32 or float64 (the parameters' dtype).
    """

    def __init__(
        self,
        num_atom_types: int = 5,
        num_charge_classes: int = 3,
        num_bond_types: int = 4,
        s_dim: int = 64,
        v_dim: int = 16,
        edge_dim: int = 16,
        num_layers: int = 4,
    ):
        super().__init__()
        for key, value, low in (
            ("num_atom_types", num_atom_types, 1),
            ("num_charge_classes", num_charge_classes, 0),
            ("num_bond_types", num_bond_types, 2),
            ("s_dim", s_dim, 1),
            ("v_dim", v_dim, 1),
            ("edge_dim", edge_dim, 1),
            ("num_layers", num_layers, 1),
        ):
            if not _is_int(value, low):
                raise ValueError(f"{key} must be an integer >= {low}, got {value!r}")
        self.num_atom_types, self.num_charge_classes, self.num_bond_types = (
            num_atom_types,
            num_charge_classes,
            num_bond_types,
        )
        self.v_dim = v_dim
        self.atom_in = nn.Linear(num_atom_types + num_charge_classes, s_dim)
        self.time_atom = nn.Linear(1, s_dim)
        self.atom_time = nn.Linear(s_dim, s_dim)
        self.bond_in = nn.Linear(num_bond_types, edge_dim)
        self.time_bond = nn.Linear(1, edge_dim)
        self.bond_time = nn.Linear(edge_dim, edge_dim)
        self.norms = nn.ModuleList(EquivLayerNorm(s_dim) for _ in range(num_layers))
        self.layers = nn.ModuleList(EQGATEdgeLayer(s_dim, v_dim, edge_dim) for _ in range(num_layers))
        self.shared = nn.Linear(s_dim, s_dim)
        self.coords_out = nn.Linear(v_dim, 1, bias=False)
        self.atoms_out = nn.Linear(s_dim, num_atom_types + num_charge_classes)
        self.bond_edge = nn.Linear(edge_dim, s_dim)
        self.bonds_out = nn.Sequential(nn.Linear(s_dim + 1, s_dim), nn.SiLU(), nn.Linear(s_dim, num_bond_types))

    def forward(self, pos, atoms, charges, bonds, pairs, batch, t, num_graphs: int) -> dict:
        dtype = self.atom_in.weight.dtype
        pos = pos.to(dtype)
        com = graph_mean_of(pos, batch, num_graphs)
        p = pos - com[batch]
        m = pairs.shape[1]
        src = torch.cat([pairs[0], pairs[1]])
        dst = torch.cat([pairs[1], pairs[0]])
        tt = t.to(dtype).reshape(-1, 1)
        x = F.one_hot(atoms, self.num_atom_types).to(dtype)
        if self.num_charge_classes:
            x = torch.cat([x, F.one_hot(charges, self.num_charge_classes).to(dtype)], -1)
        s = self.atom_time(self.atom_in(x) + self.time_atom(tt)[batch])
        eb = F.one_hot(bonds, self.num_bond_types).to(dtype).repeat(2, 1)
        e = self.bond_time(self.bond_in(eb) + self.time_bond(tt)[batch[src]])
        v = s.new_zeros((s.shape[0], 3, self.v_dim))
        for norm, layer in zip(self.norms, self.layers):
            s, v = norm(s, v, batch, num_graphs)
            s, v, p, e = layer(s, v, p, e, src, dst, batch, num_graphs)
        s = F.silu(self.shared(s))
        x0 = p + self.coords_out(v).squeeze(-1)
        x0 = x0 - graph_mean_of(x0, batch, num_graphs)[batch]
        logits = self.atoms_out(s)
        e_sym = 0.5 * (e[:m] + e[m:])
        d2 = ((x0[pairs[0]] - x0[pairs[1]]) ** 2).sum(-1, keepdim=True)
        f = s[pairs[0]] + s[pairs[1]] + self.bond_edge(e_sym)
        out = {
            "pos": x0 + com[batch],
            "atoms": logits[:, : self.num_atom_types],
            "bonds": self.bonds_out(torch.cat([f, d2], -1)),
        }
        if self.num_charge_classes:
            out["charges"] = logits[:, self.num_atom_types :]
        return out

    def denoise(self, state) -> dict:
        """The diffusion core's denoiser call (``docs/contracts.md``): ``state.classes`` holds ``atoms``,
        ``charges`` (if diffused) and ``bonds``; ``state.cond["pairs"]`` the ``[2, M]`` pairs of the bonds."""
        c = state.classes
        charges = c.get("charges", torch.zeros_like(c["atoms"]))
        return self(
            state.pos, c["atoms"], charges, c["bonds"], state.cond["pairs"], state.batch, state.time(), state.num_graphs
        )
