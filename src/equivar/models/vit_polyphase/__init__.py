"""Shift-invariant vision transformers by adaptive polyphase anchoring (Ding et al. 2023).

- :class:`PolyphaseViT` (``'vit_polyphase'``): anchored patch embedding and
  subsampled attention, circular depthwise-conv position encoding; logits
  exactly invariant to every circular shift of the image.
- :class:`ViT` (``'vit'``): the same network without anchoring (the baseline).

Both take images ``[B, C, H, W]`` and return logits ``[B, num_classes]``.

Example
-------
>>> import torch
>>> from equivar.models.vit_polyphase import PolyphaseViT
>>> model = PolyphaseViT(image_size=8, patch_size=2, sr_ratio=2, dim=8, depth=1).double()
>>> x = torch.randn(1, 1, 8, 8, dtype=torch.float64)
>>> torch.allclose(model(x), model(torch.roll(x, (3, 5), dims=(-2, -1))), rtol=1e-10, atol=1e-12)
True
"""

from .._registry import register_model
from ._layers import Block, PatchEmbed, PositionConv, SubsampledAttention
from ._model import PolyphaseViT, ViT

register_model("vit_polyphase", PolyphaseViT)
register_model("vit", ViT)

__all__ = ["Block", "PatchEmbed", "PolyphaseViT", "PositionConv", "SubsampledAttention", "ViT"]
