"""EDM-style baseline (Hoogeboom et al., ICML 2022): :class:`EDMDenoiser`, an EGNN predicting the noise of positions and
of continuous one-hot atom types (registered ``'edm_egnn'``)."""

from ._model import EDMDenoiser

__all__ = ["EDMDenoiser"]
