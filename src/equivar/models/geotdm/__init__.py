"""GeoTDM (Han et al., NeurIPS 2024): equivariant diffusion of geometric trajectories.

- :class:`GeoTDM` (registered ``'geotdm'``): conditional generation of future frames from observed ones
  (learnable equivariant prior, DDPM linear schedule, noise prediction) on the dynamics batch;
- :class:`EGTN`: its spatio-temporal network (:class:`~equivar.nn.EGCL` per frame, then
  :class:`TemporalAttention` per node);
- :class:`EquivariantPrior`: the learned prior mean of the future frames;
- :func:`sinusoidal_embedding`: level and frame-offset features.
"""

from ._egtn import EGTN
from ._embedding import sinusoidal_embedding
from ._model import GeoTDM
from ._prior import EquivariantPrior
from ._temporal import TemporalAttention

__all__ = ["EGTN", "EquivariantPrior", "GeoTDM", "TemporalAttention", "sinusoidal_embedding"]
