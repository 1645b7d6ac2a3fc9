"""MACE (Batatia et al., NeurIPS 2022): a node-energy model on :class:`~equivar.models.Potential`.

- :class:`MACE` (registered as ``'mace'``): the potential, with the Facet options
  (spline radial functions, spherical-grid MLP self-interaction).
- :func:`from_mace`: import a mace-torch ``MACE`` / ``ScaleShiftMACE`` model file (no mace-torch needed).
- :class:`InteractionBlock`, :class:`ProductBlock`: MACE's layers (edge tensor
  product + aggregation; symmetric contraction + mixing).
"""

from ._blocks import InteractionBlock, ProductBlock
from ._from_mace import from_mace
from ._model import MACE

__all__ = ["MACE", "InteractionBlock", "ProductBlock", "from_mace"]
