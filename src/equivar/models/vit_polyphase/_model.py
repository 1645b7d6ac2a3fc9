"""The polyphase-anchored ViT classifier and its unanchored twin."""

from __future__ import annotations

import torch
from torch import nn

from ._layers import Block, PatchEmbed, PositionConv


class PolyphaseViT(nn.Module):
    """A small Twins-style ViT classifier, exactly invariant to circular shifts when ``anchored``.

    Source: Ding et al., "Reviving Shift Equivariance in Vision Transformers"
    (2023). Patch embedding and the subsampled attention are
    polyphase-anchored; positions enter only through a circular depthwise
    convolution after the first block; tokens are averaged for the head. So
    a circular shift of the image circularly shifts every token grid and the
    logits do not change (up to the rounding of re-ordered sums, and unless
    two polyphase components tie in norm). ``anchored=False`` is the same
    network with plain strided patches and reductions: invariant only to
    shifts by multiples of ``patch_size * sr_ratio`` pixels.

    Parameters
    ----------
    image_size : int
        Side of the square input images (divisible by ``patch_size *
        sr_ratio``).
    in_channels, num_classes : int
    patch_size : int
        Pixels per patch side.
    dim, depth, heads : int
        Token width, number of blocks, attention heads (``dim % heads == 0``).
    mlp_ratio : float
        Hidden width of the MLP over ``dim``.
    sr_ratio : int
        Spatial reduction of keys/values in attention (1 = global attention).
    anchored : bool
        Polyphase anchoring on (the shift-invariant model) or off (the baseline).

    Shapes
    ------
    ``forward(images [B, C, H, W]) -> logits [B, num_classes]`` (dtype of the parameters).

    Raises
    ------
    ValueError
        Sizes that do not divide; an input of the wrong shape (in ``forward``).
    """

    def __init__(
        self,
        image_size: int = 28,
        in_channels: int = 1,
        num_classes: int = 10,
        patch_size: int = 2,
        dim: int = 32,
        depth: int = 2,
        heads: int = 2,
        mlp_ratio: float = 2.0,
        sr_ratio: int = 2,
        anchored: bool = True,
    ):
        super().__init__()
        if patch_size < 1 or sr_ratio < 1 or image_size % (patch_size * sr_ratio):
            raise ValueError(
                f"image_size {image_size} must be divisible by patch_size * sr_ratio = {patch_size} * {sr_ratio}"
            )
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        self.image_size, self.in_channels, self.num_classes = int(image_size), int(in_channels), int(num_classes)
        self.anchored = bool(anchored)
        self.embed = PatchEmbed(in_channels, dim, patch_size, anchored)
        self.blocks = nn.ModuleList(Block(dim, heads, mlp_ratio, sr_ratio, anchored) for _ in range(depth))
        self.pos = PositionConv(dim)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        s = self.image_size
        if images.dim() != 4 or tuple(images.shape[1:]) != (self.in_channels, s, s):
            raise ValueError(f"expected images [B, {self.in_channels}, {s}, {s}], got shape {tuple(images.shape)}")
        x = self.embed(images)
        for i, blk in enumerate(self.blocks):
            x = blk(x)
            if i == 0:
                x = self.pos(x)
        return self.head(self.norm(x).mean(dim=(1, 2)))

    @property
    def symmetry_groups(self) -> tuple:
        """The planar groups the logits are invariant under (``equivar.testing.check_image_model``)."""
        return ("planar:shifts",) if self.anchored else ()

    @torch.no_grad()
    def predict(self, images: torch.Tensor) -> torch.Tensor:
        """Class indices ``[B]`` (long)."""
        return self.forward(images).argmax(-1)


class ViT(PolyphaseViT):
    """:class:`PolyphaseViT` without polyphase anchoring (the comparison model of Ding et al.)."""

    def __init__(
        self,
        image_size: int = 28,
        in_channels: int = 1,
        num_classes: int = 10,
        patch_size: int = 2,
        dim: int = 32,
        depth: int = 2,
        heads: int = 2,
        mlp_ratio: float = 2.0,
        sr_ratio: int = 2,
    ):
        super().__init__(
            image_size, in_channels, num_classes, patch_size, dim, depth, heads, mlp_ratio, sr_ratio, False
        )
