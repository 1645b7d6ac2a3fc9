"""PONITA as an interatomic potential (the paper's rMD17 model, ``main_md17.py`` of github.com/ebekkers/ponita)."""

from __future__ import annotations

import torch

from ...nn import PolynomialCutoff
from .._potential import AtomicGraph, Potential
from .._registry import register_model
from ._grid import orientation_grid, scene_grids
from ._layers import PonitaNet, check_options


@register_model("ponita_potential")
class PonitaPotential(Potential):
    """Node energies from PONITA's fibre-bundle network; forces, stress and E0s from :class:`Potential`.

    Each atom's one-hot element is copied over the fibre; ``num_layers`` separable ConvNeXt
    blocks over the neighbours within ``r_max`` (the spatial kernel multiplied by the
    polynomial envelope of order 6, as the authors' ``PolynomialCutoff``; their rMD17 runs use
    the complete graph) plus the self-interaction; the node energy is the fibre mean of the
    averaged read-outs (in the units of ``scale``, eV). Defaults are ``main_md17.py``'s
    (128 hidden, 5 layers, 20 orientations, basis 256, degree 3, no layer scale).

    Parameters
    ----------
    atomic_numbers, atomic_energies, scale, shift, r_max, dtype, isolation_width
        As :class:`equivar.models.Potential` (filled from the data by ``equivar train``).
    hidden_dim, num_layers, num_ori, basis_dim, degree, widening_factor, layer_scale, multiple_readouts, augment
        As :class:`equivar.models.ponita.Ponita` (``augment``: a random grid rotation per
        structure in training mode, the authors' ``train_augm``).
    seed : int
        Initialisation seed.

    Raises
    ------
    ValueError
        an option out of range (message names it), or what :class:`Potential` raises.

    Notes
    -----
    With the fixed grid the energy is rotation-invariant up to the sphere's discretisation
    (exactly invariant under translations and permutations, and under rotations applied to the
    positions and the grid together: :meth:`node_energies` takes ``graph.data["ori_grid"]``
    [O, 3] when present). The orthogonal invariant ``|r - (o . r) o|`` is not differentiable
    where a bond is parallel to a grid orientation (a measure-zero set; the paper's choice).
    """

    def __init__(
        self,
        atomic_numbers,
        atomic_energies=None,
        scale=1.0,
        shift=0.0,
        r_max: float = 5.0,
        dtype: str = "float32",
        hidden_dim: int = 128,
        num_layers: int = 5,
        num_ori: int = 20,
        basis_dim: int = 256,
        degree: int = 3,
        widening_factor: int = 4,
        layer_scale: float | None = None,
        multiple_readouts: bool = True,
        augment: bool = True,
        seed: int = 0,
        isolation_width: float | None = 1.0,
    ):
        super().__init__(
            atomic_numbers, atomic_energies, scale, shift, r_max=r_max, dtype=dtype, isolation_width=isolation_width
        )
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
        self.augment = augment
        self.cutoff = PolynomialCutoff(r_max, p=6)
        self.register_buffer("grid", orientation_grid(num_ori).to(torch.get_default_dtype()))
        with self.seeded(seed):
            self.net = PonitaNet(
                self.num_elements,
                0,
                1,
                0,
                hidden_dim=hidden_dim,
                num_layers=num_layers,
                basis_dim=basis_dim,
                degree=degree,
                widening_factor=widening_factor,
                layer_scale=layer_scale,
                multiple_readouts=multiple_readouts,
            )

    def node_energies(self, graph: AtomicGraph) -> torch.Tensor:
        """Interaction energy of each atom, ``[N]`` (model dtype)."""
        send, recv = graph.edge_index[0], graph.edge_index[1]
        rel = -graph.edge_vectors  # x_j - x_i (edge_vectors = x_i - x_j + shift)
        given = graph.data.get("ori_grid") if hasattr(graph.data, "get") else None
        base = (self.grid if given is None else given).to(rel.dtype)
        gram = base @ base.T
        n = graph.positions.shape[0]
        scalars = graph.node_attrs
        vectors = scalars.new_zeros(n, 0, 3)
        window = self.cutoff(graph.edge_lengths)
        per_scene = scene_grids(base, graph.num_graphs, self.training and self.augment and given is None)
        if per_scene is None:
            s, _ = self.net(rel, send, recv, scalars, vectors, base, gram, edge_weight=window)
        else:
            node_grid = per_scene[graph.batch]
            s, _ = self.net(
                rel, send, recv, scalars, vectors, node_grid[recv], gram, edge_weight=window, node_grid=node_grid
            )
        return s[:, 0]
