"""PONITA (Bekkers et al., ICLR 2024): SE(3) convolutions on position-orientation space R^3 x S^2.

- :class:`Ponita` (registered ``'ponita'``): the N-body dynamics model (positions, velocities,
  charges in; positions out), ``docs/contracts.md``'s dynamics batch.
- :class:`PonitaPotential` (``'ponita_potential'``): node energies for the potential plumbing
  (:class:`equivar.models.Potential`: forces, stress, E0s).
- :class:`PonitaNet`: the network itself (lift, separable fibre-bundle ConvNeXt blocks, read-out).
"""

from ._grid import orientation_grid, scene_grids
from ._layers import PonitaNet, SeparableFiberBundleConv, polynomial_features, spatial_invariants
from ._model import Ponita
from ._potential import PonitaPotential

__all__ = [
    "Ponita",
    "PonitaNet",
    "PonitaPotential",
    "SeparableFiberBundleConv",
    "orientation_grid",
    "polynomial_features",
    "scene_grids",
    "spatial_invariants",
]
