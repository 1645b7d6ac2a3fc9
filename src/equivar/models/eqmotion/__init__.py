"""EqMotion (Xu et al., CVPR 2023) for dynamics: :class:`EqMotion` (registered as ``'eqmotion'``)."""

from ._layers import FeatureLearningLayer, InteractionReasoning
from ._model import EqMotion

__all__ = ["EqMotion", "FeatureLearningLayer", "InteractionReasoning"]
