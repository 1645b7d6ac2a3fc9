"""A p4 group CNN classifier and a plain CNN of about the same size (the comparison models of issue 14)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ...planar import GroupConvP4, LiftingConvP4, check_pooling, global_pool, group_pool, spatial_max_pool


class P4CNN(nn.Module):
    """Cohen & Welling's p4 CNN: lifting + group convolutions, group max-pool, global mean, linear head.

    Exactly invariant (up to rounding) to quarter turns and circular shifts of
    the input (circular padding throughout, no strides). Source: Cohen &
    Welling, "Group Equivariant Convolutional Networks" (ICML 2016).

    Parameters
    ----------
    image_size : int
        Recorded for the data contract (the network takes any square size).
    in_channels, num_classes : int
    channels : int
        Channels per rotation of each hidden layer.
    depth : int
        Group convolutions after the lifting layer.
    kernel_size : int
        Odd.
    pool : int
        Spatial max-pool factor after every layer but the last (1: none; ``rgenn``'s networks pool 2). Quarter
        turns stay exact (each feature map size must be divisible by ``pool``); circular shifts only by
        multiples of ``pool ** depth``, so with ``pool > 1`` the model claims C4 only.
    readout : {'mean', 'max'}
        Global pooling over space after the group max-pool.

    Shapes
    ------
    ``forward(images [B, C, H, W]) -> logits [B, num_classes]``.

    Raises
    ------
    ValueError
        Even ``kernel_size``; a non-square input (in ``forward``).
    """

    def __init__(
        self,
        image_size: int = 28,
        in_channels: int = 1,
        num_classes: int = 10,
        channels: int = 10,
        depth: int = 3,
        kernel_size: int = 3,
        pool: int = 1,
        readout: str = "mean",
    ):
        super().__init__()
        self.image_size, self.in_channels = int(image_size), int(in_channels)
        if int(depth) != depth or depth < 0:
            raise ValueError(f"depth must be an integer >= 0, got {depth!r}")
        self.pool, self.readout = check_pooling(pool, readout)
        self.symmetry_groups = ("planar:shifts", "planar:C4") if self.pool == 1 else ("planar:C4",)
        self.lift = LiftingConvP4(in_channels, channels, kernel_size)
        self.convs = nn.ModuleList(GroupConvP4(channels, channels, kernel_size) for _ in range(depth))
        self.head = nn.Linear(channels, num_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.dim() != 4 or images.shape[-1] != images.shape[-2]:
            raise ValueError(f"expected square images [B, C, H, H], got shape {tuple(images.shape)}")
        f = F.relu(self.lift(images))
        for conv in self.convs:
            f = F.relu(conv(spatial_max_pool(f, self.pool)))
        return self.head(global_pool(group_pool(f, "max"), (-2, -1), self.readout))


class CNN(nn.Module):
    """A plain CNN with the layout of :class:`P4CNN` (circular padding, global mean pool, linear head).

    Invariant to circular shifts only. ``channels`` defaults to 20, which gives
    about the parameter count of the default :class:`P4CNN` (11,270 against
    11,040 for one input channel and ten classes). ``pool`` and ``readout`` as
    :class:`P4CNN` (with ``pool > 1`` it claims no group). The comparison
    baseline of Cohen & Welling (ICML 2016) and of the affine CNN (issue 14).

    Shapes
    ------
    ``forward(images [B, C, H, W]) -> logits [B, num_classes]`` (any dtype the weights have).

    Raises
    ------
    ValueError
        An even ``kernel_size``; ``depth`` < 0; ``pool`` not an integer >= 1; ``readout`` not 'mean' / 'max';
        in ``forward``, ``pool`` not dividing a feature map.
    """

    def __init__(
        self,
        image_size: int = 28,
        in_channels: int = 1,
        num_classes: int = 10,
        channels: int = 20,
        depth: int = 3,
        kernel_size: int = 3,
        pool: int = 1,
        readout: str = "mean",
    ):
        super().__init__()
        if int(kernel_size) % 2 == 0:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}")
        if int(depth) != depth or depth < 0:
            raise ValueError(f"depth must be an integer >= 0, got {depth!r}")
        self.image_size, self.in_channels = int(image_size), int(in_channels)
        self.pool, self.readout = check_pooling(pool, readout)
        self.symmetry_groups = ("planar:shifts",) if self.pool == 1 else ()
        pad = dict(padding=kernel_size // 2, padding_mode="circular")
        self.convs = nn.ModuleList(
            [nn.Conv2d(in_channels, channels, kernel_size, **pad)]
            + [nn.Conv2d(channels, channels, kernel_size, **pad) for _ in range(depth)]
        )
        self.head = nn.Linear(channels, num_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        f = images
        for i, conv in enumerate(self.convs):
            f = F.relu(conv(f if i == 0 else spatial_max_pool(f, self.pool)))
        return self.head(global_pool(f, (-2, -1), self.readout))
