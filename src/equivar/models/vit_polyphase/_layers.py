"""Building blocks of the polyphase ViT: anchored patch embedding, depthwise-conv position encoding, subsampled attention.

Source: Ding, Soselia, Armstrong, Su, Huang, "Reviving Shift Equivariance in
Vision Transformers" (2023; code ``willding123/Shift-Equivariant-Vision-Transformers``,
``PolyPatch`` / ``PolyOrder`` / ``PosConv``) on top of Twins-SVT's global
subsampled attention (Chu et al. 2021) and CPVT's position-encoding generator
(Chu et al. 2021, a depthwise 3x3 convolution; circular padding here so it
commutes with circular shifts of the token grid).

Token grids are ``[B, h, w, D]`` throughout.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ...planar import anchor, polyphase_anchor, roll_per_sample


class PatchEmbed(nn.Module):
    """Non-overlapping ``p x p`` patches -> tokens ``[B, H/p, W/p, D]``, optionally anchored.

    With ``anchored=True`` the image is first circularly shifted so that its
    polyphase component of largest norm (stride ``p``) sits at offset
    ``(0, 0)`` (:func:`equivar.planar.anchor`); a circular shift of the input
    then shifts the token grid circularly (exactly, barring norm ties).
    No normalization here: the residual stream keeps token magnitudes, which
    the anchors of the attention layers compare (layer-normalized tokens all
    have nearly the same norm, so their polyphase norms would tie).
    """

    def __init__(self, in_channels: int, dim: int, patch_size: int, anchored: bool):
        super().__init__()
        self.patch_size, self.anchored = int(patch_size), bool(anchored)
        self.proj = nn.Conv2d(in_channels, dim, kernel_size=self.patch_size, stride=self.patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.anchored:
            x, _ = anchor(x, self.patch_size)
        return self.proj(x).permute(0, 2, 3, 1)


class PositionConv(nn.Module):
    """Position-encoding generator: ``x + depthwise_conv3x3(x)`` with circular padding on the token grid."""

    def __init__(self, dim: int):
        super().__init__()
        self.conv = nn.Conv2d(dim, dim, 3, padding=1, groups=dim, padding_mode="circular")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)


class SubsampledAttention(nn.Module):
    """Multi-head attention of every token over a subsampled grid (Twins' global subsampled attention).

    Keys and values come from the token grid reduced by a ``sr x sr``
    strided convolution (``sr_ratio == 1``: plain global attention). With
    ``anchored=True`` the grid is polyphase-anchored (stride ``sr``) before
    the reduction, so the set of keys/values is unchanged by circular shifts
    of the grid and the attention output moves with the queries. The anchor
    is chosen on ``anchor_source`` when given (the block's residual stream:
    its layer-normalized input has near-constant token norms, whose
    polyphase norms tie) and applied to ``x``.
    """

    def __init__(self, dim: int, heads: int, sr_ratio: int, anchored: bool):
        super().__init__()
        if dim % heads:
            raise ValueError(f"attention: dim {dim} is not divisible by heads {heads}")
        self.heads, self.sr, self.anchored = int(heads), int(sr_ratio), bool(anchored)
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)
        if self.sr > 1:
            self.reduce = nn.Conv2d(dim, dim, kernel_size=self.sr, stride=self.sr)
            self.reduce_norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor, anchor_source: torch.Tensor | None = None) -> torch.Tensor:
        B, h, w, D = x.shape
        k = self.heads
        q = self.q(x).reshape(B, h * w, k, D // k).transpose(1, 2)
        src = x
        if self.sr > 1:
            grid = x.permute(0, 3, 1, 2)
            if self.anchored:
                ref = grid if anchor_source is None else anchor_source.permute(0, 3, 1, 2)
                grid = roll_per_sample(grid, -polyphase_anchor(ref, self.sr))
            src = self.reduce_norm(self.reduce(grid).permute(0, 2, 3, 1))
        kv = self.kv(src.reshape(B, -1, D)).reshape(B, -1, 2, k, D // k).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, kv[0], kv[1])
        return self.proj(out.transpose(1, 2).reshape(B, h, w, D))


class Block(nn.Module):
    """Pre-norm transformer block: ``x + attn(LN x)``, then ``x + MLP(LN x)`` (GELU)."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, sr_ratio: int, anchored: bool):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = SubsampledAttention(dim, heads, sr_ratio, anchored)
        hidden = max(1, int(round(dim * mlp_ratio)))
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), anchor_source=x)
        return x + self.mlp(self.norm2(x))
