"""EQGAT-diff (Le et al., ICLR 2024): :class:`EQGATDiff`, the molecule denoiser (registered ``'eqgat_diff'``), and its
layers (:class:`EQGATEdgeLayer`, :class:`GatedEquivBlock`, :class:`EquivLayerNorm`)."""

from ._layers import EQGATEdgeLayer, EquivLayerNorm, GatedEquivBlock, scatter_softmax
from ._model import EQGATDiff

__all__ = ["EQGATDiff", "EQGATEdgeLayer", "EquivLayerNorm", "GatedEquivBlock", "scatter_softmax"]
