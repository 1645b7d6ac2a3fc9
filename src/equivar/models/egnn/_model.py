"""EGNN for dynamics (Satorras, Hoogeboom, Welling, "E(n) Equivariant Graph Neural Networks", ICML 2021).

The N-body model of the paper (section 5.1, the authors' ``EGNN_vel`` in
``n_body_system/model.py`` of github.com/vgsatorras/egnn, run by
``main_nbody.py``): node features ``h = |v|`` embedded by one linear map,
edge attributes ``[q_i q_j, |x_i - x_j|^2]`` (the distance of the input
positions, fixed over layers), four :class:`~equivar.nn.EGCL` layers with
the velocity term, 64 hidden features, SiLU, residual node updates, mean
aggregation of coordinates; the output is the final position. Trained with
Adam (lr 5e-4, weight decay 1e-12), batch 100, MSE on positions.

Trajectories (``past`` observed frames, ``future`` predicted ones; ETH-UCY: 8
and 12, ``configs/ethucy_egnn.yaml``): the node features embed the speeds
``|v_t|`` of all observed frames, the layers run on the last observed
positions with the last velocity in the velocity term (as above), and a
linear readout of the final node features gives, per predicted frame ``tau``,
invariant coefficients of the observed velocities and of the layers'
displacement: ``x_tau = x_0 + sum_t c_tau,t(h) v_t + c_tau(h) (x_L - x_0)``,
equivariant vectors added to the last observed position (the equivariant
multi-frame output of EGNN-based trajectory models such as GeoTDM's; the
bias starts at constant velocity, ``x_tau = x_0 + tau v_T``).
"""

from __future__ import annotations

import torch

from ...nn import (
    EGCL,
    complete_graph_size,
    egcl_dense_fused,
    egcl_fusable,
    egcl_params_from_concatenated,
    inverse_degree,
    off_diagonal,
    uniform_degree,
)
from .._registry import _is_int


class EGNN(torch.nn.Module):
    """E(n)-equivariant graph network predicting positions from positions and velocities.

    Parameters
    ----------
    hidden_dim : int
        Features per node and message (64).
    num_layers : int
        EGCL layers (4).
    edge_attr_dim : int
        Invariant pair attributes of the batch (``edge_attr``; 1 for charged
        N-body, ``q_i q_j``); the squared input distance is appended.
    node_attr_dim : int
        Invariant node attributes concatenated to ``|v|`` (0: EGNN feeds the
        charges through the edges only).
    activation : str
        ``'silu'``.
    residual : bool
        Residual node updates (the authors' ``recurrent=True``).
    coords_aggregation : str
        ``'mean'`` (N-body) or ``'sum'``.
    velocity : bool
        EGCL velocity term (EGNN's ``E_GCL_vel``).
    norm_diff : bool
        Normalised coordinate differences (off in the paper's runs).
    past, future : int
        Observed and predicted frames (1 and 1: EGNN's frame-pair task, the output is the last layer's
        positions; otherwise the multi-frame readout of the module docstring).

    Raises
    ------
    ValueError
        an option out of range or of the wrong type (``hidden_dim`` / ``num_layers`` not an integer >= 1,
        ``edge_attr_dim`` / ``node_attr_dim`` not an integer >= 0, a non-bool flag, an unknown
        ``coords_aggregation`` or ``activation``); the message names the option and the value.

    Shapes
    ------
    ``model(batch)`` with the dynamics batch of ``docs/contracts.md``
    (``pos``, ``vel`` [N, T_in, D], the last observed frame is used;
    ``edge_index`` [2, E]; ``edge_attr`` [E, edge_attr_dim]; ``node_attr``
    [N, node_attr_dim]) returns ``{"pos": [N, 1, D]}``. Equivariant under
    rotations and reflections (of ``pos``, ``vel``, output), translations
    (of ``pos`` and output) and permutations of agents, in any dimension D.
    """

    def __init__(
        self,
        hidden_dim: int = 64,
        num_layers: int = 4,
        edge_attr_dim: int = 1,
        node_attr_dim: int = 0,
        activation: str = "silu",
        residual: bool = True,
        coords_aggregation: str = "mean",
        velocity: bool = True,
        norm_diff: bool = False,
        past: int = 1,
        future: int = 1,
    ):
        super().__init__()
        for key, value, low in (
            ("hidden_dim", hidden_dim, 1),
            ("num_layers", num_layers, 1),
            ("past", past, 1),
            ("future", future, 1),
            ("edge_attr_dim", edge_attr_dim, 0),
            ("node_attr_dim", node_attr_dim, 0),
        ):
            if not _is_int(value, low):
                raise ValueError(f"{key} must be an integer >= {low}, got {value!r}")
        for key, value in (("residual", residual), ("velocity", velocity), ("norm_diff", norm_diff)):
            if not isinstance(value, bool):
                raise ValueError(f"{key} must be true or false, got {value!r}")
        if coords_aggregation not in ("mean", "sum"):
            raise ValueError(f"coords_aggregation must be 'mean' or 'sum', got {coords_aggregation!r}")
        self.edge_attr_dim = edge_attr_dim
        self.node_attr_dim = node_attr_dim
        #: complete graphs of one size run through :func:`~equivar.nn.egcl_dense_fused` (False: the autograd path
        #: :meth:`EGCL.forward_dense`, the same function; for tests and second derivatives)
        self.fused = True
        self.past, self.future = past, future
        self.embedding = torch.nn.Linear(past + node_attr_dim, hidden_dim)
        self.layers = torch.nn.ModuleList(
            EGCL(
                hidden_dim,
                edge_attr_dim=edge_attr_dim + 1,
                activation=activation,
                residual=residual,
                coords_aggregation=coords_aggregation,
                velocity=velocity,
                norm_diff=norm_diff,
            )
            for _ in range(num_layers)
        )
        #: multi-frame readout: per predicted frame, coefficients of the past velocities and of x_L - x_0
        self.readout = None
        if (past, future) != (1, 1):
            self.readout = torch.nn.Linear(hidden_dim, future * (past + 1))
            with torch.no_grad():  # start at constant velocity: x_tau = x_0 + tau v_T
                self.readout.weight.mul_(0.01)
                bias = torch.zeros(future, past + 1)
                bias[:, past - 1] = torch.arange(1, future + 1, dtype=bias.dtype)
                self.readout.bias.copy_(bias.reshape(-1))

    def forward(self, batch) -> dict:
        pos_in, vel_in = batch["pos"], batch["vel"]
        if pos_in.dim() != 3 or vel_in.shape != pos_in.shape or (self.past > 1 and pos_in.shape[1] != self.past):
            raise ValueError(
                f"EGNN: pos and vel must be [N, {'past=' + str(self.past) if self.past > 1 else 'T_in'}, D], got pos "
                f"{tuple(pos_in.shape)}, vel {tuple(vel_in.shape)}"
            )
        pos = pos_in[:, -1]
        vel = vel_in[:, -1]
        edge_index = batch["edge_index"]
        n = pos.shape[0]
        h = (vel_in if self.past > 1 else vel_in[:, -1:]).norm(dim=-1)
        if self.node_attr_dim:
            h = torch.cat([h, batch["node_attr"].to(h.dtype)], dim=-1)
        h = self.embedding(h)
        edge_attr = batch.get("edge_attr")
        if self.edge_attr_dim and (edge_attr is None or edge_attr.shape[-1] != self.edge_attr_dim):
            got = None if edge_attr is None else edge_attr.shape[-1]
            raise ValueError(f"EGNN: batch edge_attr has {got} features, the model was built for {self.edge_attr_dim}")
        size = complete_graph_size(edge_index, n, batch.get("ptr"))
        if size is not None:
            h, x = self._forward_complete(h, pos, vel, edge_attr, size)
            h, x = h.reshape(n, -1), x.reshape(n, -1)
        else:
            send, recv = edge_index[0], edge_index[1]
            diff = pos[recv] - pos[send]
            dist2 = (diff * diff).sum(-1, keepdim=True)
            edge_attr = torch.cat([edge_attr.to(pos.dtype), dist2], dim=-1) if self.edge_attr_dim else dist2
            inv_deg = inverse_degree(recv, n, pos.dtype)
            degree = uniform_degree(recv, n)
            x = pos
            for layer in self.layers:
                h, x = layer(h, x, edge_index, edge_attr, vel, inv_degree=inv_deg, degree=degree)
        if self.readout is None:
            return {"pos": x.unsqueeze(1)}
        coef = self.readout(h).view(n, self.future, self.past + 1)
        vectors = torch.cat([vel_in, (x - pos).unsqueeze(1)], dim=1)  # [N, past + 1, D]
        return {"pos": pos.unsqueeze(1) + coef @ vectors}

    def _forward_complete(self, h, pos, vel, edge_attr, size: int):
        """The layers on complete graphs of ``size`` nodes as dense pair tensors (:meth:`EGCL.forward_dense`);
        the last layer's node update is skipped unless the readout reads it. Returns ``(h [B, N, F], x [B, N, D])``
        (``h`` the last one computed)."""
        b = pos.shape[0] // size
        d = pos.shape[-1]
        x = pos.reshape(b, size, d)
        vel = vel.reshape(b, size, d)
        h = h.reshape(b, size, -1)
        diff = off_diagonal(x.unsqueeze(2) - x.unsqueeze(1))
        dist2 = (diff * diff).sum(-1, keepdim=True)
        if self.edge_attr_dim:
            edge_attr = torch.cat([edge_attr.to(pos.dtype).reshape(b, size, size - 1, -1), dist2], dim=-1)
        else:
            edge_attr = dist2
        last = len(self.layers) - 1 if self.readout is None else len(self.layers)
        if self.fused and not (vel.requires_grad or edge_attr.requires_grad) and all(map(egcl_fusable, self.layers)):
            # node-major rows (node i of every graph together), the layout of egcl_dense_fused
            x, h, vel = (t.transpose(0, 1).reshape(size * b, -1) for t in (x, h, vel))
            edge_attr = edge_attr.permute(1, 2, 0, 3).reshape(size * (size - 1) * b, -1)
            for i, layer in enumerate(self.layers):
                h, x = egcl_dense_fused(layer, h, x, edge_attr, vel, size, update_h=i < last)
            return h.view(size, b, -1).transpose(0, 1), x.view(size, b, d).transpose(0, 1)
        for i, layer in enumerate(self.layers):
            h, x = layer.forward_dense(h, x, edge_attr, vel, update_h=i < last)
        return h, x

    def load_original_state_dict(self, state: dict) -> None:
        """Load weights saved by the authors' ``EGNN_vel`` (``embedding``, ``gcl_0`` ... ``gcl_{L-1}``).

        Raises
        ------
        RuntimeError
            Missing or unexpected keys, or shapes that do not match this model.
        """
        out = {k: v for k, v in state.items() if k.startswith("embedding.")}
        for i in range(len(self.layers)):
            prefix = f"gcl_{i}."
            layer = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
            for k, v in egcl_params_from_concatenated(layer).items():
                out[f"layers.{i}.{k}"] = v
        self.load_state_dict(out)
