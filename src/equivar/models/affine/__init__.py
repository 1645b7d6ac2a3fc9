"""Affine-equivariant CNN by Lie group decomposition (Mironenco & Forre 2024): ``'affine_cnn'``.

``model(images [B, C, H, W]) -> logits [B, num_classes]``; Monte-Carlo over
sampled elements of SL(2) or GL+(2) (see :class:`AffineCNN`).
"""

from .._registry import register_model
from ._model import AffineCNN

register_model("affine_cnn", AffineCNN)

__all__ = ["AffineCNN"]
