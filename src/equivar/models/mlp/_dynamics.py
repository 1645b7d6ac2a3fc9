"""A multilayer perceptron on a whole scene's flattened coordinates: the non-equivariant dynamics baseline.

The control that shows what equivariance buys on N-body: the same inputs as
EGNN (positions, velocities, charges of every particle), concatenated in
agent order into one vector per scene, mapped by a plain MLP to a
displacement of every agent from its last observed position. Nothing in it
ties the output to rotations, translations or the agents' order, so
``equivar audit`` finds it non-equivariant under all three, and it can fit
the dynamics only as far as its training data cover the orientations,
positions and orderings it meets.
"""

from __future__ import annotations

import torch

from .._registry import _is_int, register_model


@register_model("dynamics_mlp")
class DynamicsMLP(torch.nn.Module):
    """MLP from the flattened ``[pos, vel, node_attr]`` of a scene's agents to their future positions.

    Parameters
    ----------
    n_agents : int
        Agents per scene (5 for N-body); every scene of a batch must have this many.
    in_frames, out_frames : int
        Observed frames ``T_in`` read (the last ones) and predicted frames ``T_out``.
    dim : int
        Spatial dimension ``D``.
    node_attr_dim : int
        Per-agent attributes read from ``node_attr`` (N-body: 1, the charge).
    hidden_dim : int
        Width of the hidden layers.
    num_layers : int
        Linear layers (>= 2), SiLU between them.

    Shapes
    ------
    ``model(batch)`` with the dynamics batch of ``docs/contracts.md``: ``pos``, ``vel`` ``[N, T, D]`` (``T >=
    in_frames``), ``node_attr`` ``[N, F]``, ``ptr`` ``[B + 1]`` with ``N = B n_agents``; returns
    ``{"pos": [N, out_frames, D]}``: the last observed position plus the MLP's displacement.

    Raises
    ------
    ValueError
        Options out of range (named); at call time, scenes with another number of agents, too few observed
        frames, or another dimension or attribute width than the model was built for (values named).
    """

    def __init__(
        self,
        n_agents: int = 5,
        in_frames: int = 1,
        out_frames: int = 1,
        dim: int = 3,
        node_attr_dim: int = 1,
        hidden_dim: int = 256,
        num_layers: int = 3,
    ):
        super().__init__()
        for key, value, low in (
            ("n_agents", n_agents, 1),
            ("in_frames", in_frames, 1),
            ("out_frames", out_frames, 1),
            ("dim", dim, 1),
            ("node_attr_dim", node_attr_dim, 0),
            ("hidden_dim", hidden_dim, 1),
            ("num_layers", num_layers, 2),
        ):
            if not _is_int(value, low):
                raise ValueError(f"{key} must be an integer >= {low}, got {value!r}")
        self.n_agents, self.in_frames, self.out_frames = n_agents, in_frames, out_frames
        self.dim, self.node_attr_dim = dim, node_attr_dim
        width = [n_agents * (2 * in_frames * dim + node_attr_dim)] + [hidden_dim] * (num_layers - 1)
        layers = []
        for a, b in zip(width[:-1], width[1:]):
            layers += [torch.nn.Linear(a, b), torch.nn.SiLU()]
        layers.append(torch.nn.Linear(width[-1], n_agents * out_frames * dim))
        self.mlp = torch.nn.Sequential(*layers)

    def forward(self, batch) -> dict:
        pos, vel = batch["pos"], batch["vel"]
        n, t, d = pos.shape
        scenes = batch["ptr"].numel() - 1
        if n != scenes * self.n_agents or bool((batch["ptr"].diff() != self.n_agents).any()):
            sizes = sorted(set(batch["ptr"].diff().tolist()))
            raise ValueError(f"DynamicsMLP: built for scenes of {self.n_agents} agents, got scenes of {sizes}")
        if t < self.in_frames or d != self.dim:
            raise ValueError(
                f"DynamicsMLP: built for {self.in_frames} observed frames in {self.dim}D, got pos {tuple(pos.shape)}"
            )
        attr = batch["node_attr"].to(pos.dtype)
        if attr.shape[-1] != self.node_attr_dim:
            raise ValueError(
                f"DynamicsMLP: node_attr has {attr.shape[-1]} features, the model was built for {self.node_attr_dim}"
            )
        k = self.in_frames
        per_agent = torch.cat([pos[:, -k:].reshape(n, -1), vel[:, -k:].reshape(n, -1), attr], dim=1)
        out = self.mlp(per_agent.reshape(scenes, -1)).reshape(n, self.out_frames, d)
        return {"pos": pos[:, -1:] + out}
