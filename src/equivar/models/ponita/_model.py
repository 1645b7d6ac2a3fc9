"""PONITA for N-body dynamics (Bekkers et al., ICLR 2024, section 5; ``main_nbody.py`` of github.com/ebekkers/ponita)."""

from __future__ import annotations

import torch

from .._registry import register_model
from ._grid import orientation_grid, scene_grids
from ._layers import PonitaNet, check_options


@register_model("ponita")
class Ponita(torch.nn.Module):
    """SE(3)-equivariant fibre-bundle network predicting positions from positions, velocities and charges.

    The authors' N-body model (``PONITA_NBODY``): every particle carries a signal on ``num_ori``
    orientations; its charge (a scalar, copied over the fibre) and velocity ``v`` (lifted as
    ``v . o``) are embedded by one linear map; ``num_layers`` separable fibre-bundle ConvNeXt
    blocks over the complete graph with self-interactions; the mean of the per-layer read-outs
    gives one vector ``sum_o f(o) o / O`` per particle, the predicted displacement: the output is
    ``x + displacement``. Defaults are ``main_nbody.py``'s: 128 hidden, 5 layers, 16 orientations,
    basis 256, degree 3, widening 4, layer scale 1e-6, multiple read-outs. The paper's grid comes
    from a repulsion optimisation started at random; ours is the deterministic Fibonacci lattice
    (the authors' ``ponita-torch`` grid).

    Parameters
    ----------
    hidden_dim : int
        Channels ``C`` per orientation.
    num_layers : int
        ConvNeXt blocks.
    num_ori : int
        Orientations ``O`` on the sphere.
    basis_dim : int
        Width of the kernel basis shared by the layers.
    degree : int
        Polynomial embedding of the invariants: monomials of orders ``1..degree``.
    widening_factor : int
        ConvNeXt MLP width, in multiples of ``hidden_dim``.
    layer_scale : float or None
        Initial ConvNeXt layer scale (None: no layer scale).
    multiple_readouts : bool
        Average a read-out after every block (else after the last only).
    node_attr_dim : int
        Invariant node attributes of the batch (``node_attr``; 1 for N-body: the charge).
    augment : bool
        In training mode, rotate the grid by an independent random rotation per scene (exactly the
        authors' ``train_augm`` random rotations of inputs and targets). Evaluation uses the fixed grid.

    Raises
    ------
    ValueError
        an option out of range or of the wrong type; a batch that is not 3D, or whose
        ``node_attr`` width differs from ``node_attr_dim``; the message names the value.

    Shapes
    ------
    ``model(batch, grid=None)`` with the dynamics batch of ``docs/contracts.md`` (``pos``,
    ``vel`` [N, T_in, 3], the last frame used; ``node_attr`` [N, node_attr_dim];
    ``edge_index`` [2, E] without self-loops; ``batch`` [N]) returns ``{"pos": [N, 1, 3]}``.
    ``grid`` [O, 3] replaces the model's grid (``model.grid``): the output is then exactly
    equivariant under rotations and reflections applied to positions, velocities *and* ``grid``;
    with the fixed grid only up to the sphere's discretisation. Translations and permutations of
    particles: exact.
    """

    def __init__(
        self,
        hidden_dim: int = 128,
        num_layers: int = 5,
        num_ori: int = 16,
        basis_dim: int = 256,
        degree: int = 3,
        widening_factor: int = 4,
        layer_scale: float | None = 1e-6,
        multiple_readouts: bool = True,
        node_attr_dim: int = 1,
        augment: bool = True,
    ):
        super().__init__()
        check_options(
            hidden_dim=hidden_dim,
            num_layers=num_layers,
            num_ori=num_ori,
            basis_dim=basis_dim,
            degree=degree,
            widening_factor=widening_factor,
            layer_scale=layer_scale,
            multiple_readouts=multiple_readouts,
            augment=augment,
        )
        from .._registry import _is_int

        if not _is_int(node_attr_dim, 0):
            raise ValueError(f"node_attr_dim must be an integer >= 0, got {node_attr_dim!r}")
        self.node_attr_dim = node_attr_dim
        self.augment = augment
        self.register_buffer("grid", orientation_grid(num_ori).to(torch.get_default_dtype()))
        self.net = PonitaNet(
            node_attr_dim,
            1,
            0,
            1,
            hidden_dim=hidden_dim,
            num_layers=num_layers,
            basis_dim=basis_dim,
            degree=degree,
            widening_factor=widening_factor,
            layer_scale=layer_scale,
            multiple_readouts=multiple_readouts,
        )

    def forward(self, batch, grid: torch.Tensor | None = None) -> dict:
        pos = batch["pos"][:, -1]
        vel = batch["vel"][:, -1]
        if pos.shape[-1] != 3:
            raise ValueError(f"Ponita: positions must be 3D, got dimension {pos.shape[-1]} (batch 'pos')")
        send, recv = batch["edge_index"][0], batch["edge_index"][1]
        n = pos.shape[0]
        if self.node_attr_dim:
            scalars = batch["node_attr"].to(pos.dtype)
            if scalars.shape[-1] != self.node_attr_dim:
                raise ValueError(
                    f"Ponita: batch node_attr has {scalars.shape[-1]} features, the model was built for "
                    f"{self.node_attr_dim}"
                )
        else:
            scalars = pos.new_zeros(n, 0)
        base = (self.grid if grid is None else grid).to(pos.dtype)
        gram = base @ base.T
        rel = pos[send] - pos[recv]
        node_batch = batch.get("batch")
        num_scenes = int(batch["ptr"].numel() - 1) if "ptr" in batch else 1
        per_scene = scene_grids(base, num_scenes, self.training and self.augment and grid is None)
        if per_scene is None:
            _, v = self.net(rel, send, recv, scalars, vel[:, None, :], base, gram)
        else:
            node_grid = per_scene[node_batch] if node_batch is not None else per_scene[0].expand(n, -1, -1)
            _, v = self.net(rel, send, recv, scalars, vel[:, None, :], node_grid[recv], gram, node_grid=node_grid)
        return {"pos": (pos + v[:, 0]).unsqueeze(1)}
