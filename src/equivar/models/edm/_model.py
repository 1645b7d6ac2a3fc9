"""EDM's denoiser, scaled down: an EGNN over the fully connected molecule predicting the noise ``eps`` of the
positions and of the continuous atom-type features (Hoogeboom et al., ICML 2022; ``ehoogeboom/e3_diffusion_for_molecules``,
``egnn/models.py`` ``EGNN_dynamics_QM9``): node input ``[h_t, t / T]`` with ``h`` the one-hot atom types times
EDM's ``norm_values[1] = 4`` inverse (``h / 4``), edge attributes the squared current and input distances, EDM's equivariant blocks
(``EquivariantBlock``: a GCL with sigmoid edge attention, then ``x_i += mean_j (x_i - x_j) / (d_ij + 1)
tanh(phi(m_ij)) * 15``; SiLU; mean aggregation where EDM sums with ``normalization_factor=1``), output
``eps_x = x_L - x_0`` (the sum of the layers' displacements, centred; summed rather than subtracted so
that float32 keeps its precision) and ``eps_h = W h_L``. No bonds and no charges (EDM's QM9 model without
the atomic-number channel)."""

from __future__ import annotations

import torch
from torch import nn

from ...nn import scatter_sum
from .._registry import _is_int
from ..eqgat_diff._layers import graph_mean_of

__all__ = ["EDMDenoiser"]


class _EDMBlock(nn.Module):
    """EDM's GCL (edge MLP with a sigmoid attention gate, residual node MLP) and equivariant position update."""

    def __init__(self, hidden: int, coords_range: float = 15.0):
        super().__init__()
        self.coords_range = coords_range
        self.edge = nn.Sequential(nn.Linear(2 * hidden + 2, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU())
        self.att = nn.Linear(hidden, 1)
        self.node = nn.Sequential(nn.Linear(2 * hidden, hidden), nn.SiLU(), nn.Linear(hidden, hidden))
        self.coord = nn.Sequential(nn.Linear(2 * hidden + 2, hidden), nn.SiLU(), nn.Linear(hidden, 1, bias=False))
        torch.nn.init.xavier_uniform_(self.coord[-1].weight, gain=0.001)

    def forward(self, h, x, src, dst, d2_0, inv_deg):
        diff = x[dst] - x[src]
        d2 = (diff * diff).sum(-1, keepdim=True)
        inp = torch.cat([h[dst], h[src], d2, d2_0], -1)
        m = self.edge(inp)
        m = m * torch.sigmoid(self.att(m))
        n = h.shape[0]
        h = h + self.node(torch.cat([h, scatter_sum(m, dst, n) * inv_deg], -1))
        inp = torch.cat([h[dst], h[src], d2, d2_0], -1)
        w = torch.tanh(self.coord(inp)) * self.coords_range
        trans = scatter_sum(diff / (d2.sqrt() + 1.0) * w, dst, n) * inv_deg
        return h, trans


class EDMDenoiser(nn.Module):
    """EGNN denoiser of ``(positions, continuous atom-type features)`` predicting their noise.

    Parameters
    ----------
    num_atom_types : int
        Width ``K`` of the type features (QM9: 5).
    hidden_dim : int
        EGCL width (EDM: 256).
    num_layers : int
        EGCL layers (EDM: 9).

    Raises
    ------
    ValueError
        a size that is not a positive integer (named).

    Shapes
    ------
    ``forward(pos [N, 3], h [N, K], batch [N], t [G] in [0, 1], num_graphs, edge_index [2, E])`` ->
    ``{"pos": [N, 3] eps of the positions (zero-CoM per molecule), "h": [N, K] eps of the features}``.
    ``eps_x`` is rotation/reflection-equivariant and translation-invariant, ``eps_h`` invariant; both
    permutation-equivariant. ``edge_index`` row 0 sender, row 1 receiver (both directions of every pair).
    """

    def __init__(self, num_atom_types: int = 5, hidden_dim: int = 64, num_layers: int = 4):
        super().__init__()
        for key, value in (("num_atom_types", num_atom_types), ("hidden_dim", hidden_dim), ("num_layers", num_layers)):
            if not _is_int(value, 1):
                raise ValueError(f"{key} must be an integer >= 1, got {value!r}")
        self.num_atom_types = num_atom_types
        self.embed = nn.Linear(num_atom_types + 1, hidden_dim)
        self.layers = nn.ModuleList(_EDMBlock(hidden_dim) for _ in range(num_layers))
        self.out = nn.Linear(hidden_dim, num_atom_types)

    def forward(self, pos, h, batch, t, num_graphs: int, edge_index) -> dict:
        dtype = self.embed.weight.dtype
        x0 = pos.to(dtype)
        x0 = x0 - graph_mean_of(x0, batch, num_graphs)[batch]
        tt = t.to(dtype).reshape(-1, 1)[batch]
        z = self.embed(torch.cat([h.to(dtype), tt], -1))
        src, dst = edge_index[0], edge_index[1]
        diff = x0[dst] - x0[src]
        d2 = (diff * diff).sum(-1, keepdim=True)
        inv_deg = 1.0 / torch.bincount(dst, minlength=x0.shape[0]).clamp(min=1).to(dtype).unsqueeze(-1)
        eps = torch.zeros_like(x0)
        for layer in self.layers:
            z, trans = layer(z, x0 + eps, src, dst, d2, inv_deg)
            eps = eps + trans
        eps = eps - graph_mean_of(eps, batch, num_graphs)[batch]
        return {"pos": eps, "h": self.out(z)}
