"""Image classification data: MNIST-layout folders as tensors, and their batch contract.

Batch contract (``docs/contracts.md``, classification): ``{"images": [B, C, H, W]``
float in ``[0, 1]``, ``"labels": [B]`` long``}``.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import torch

from ._idx import read_mnist


@dataclasses.dataclass
class ImageSet:
    """Images ``[N, C, H, W]`` (float32 in [0, 1]) and labels ``[N]`` (long), with where they came from."""

    images: torch.Tensor
    labels: torch.Tensor
    source: str = ""

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def __getitem__(self, i: int) -> dict:
        """One item ``{"images": [C, H, W], "labels": []}`` (a ``torch.utils.data.Dataset``)."""
        return {"images": self.images[i], "labels": self.labels[i]}

    def subset(self, index) -> ImageSet:
        """The rows ``index`` as a new set (same source)."""
        return ImageSet(self.images[index], self.labels[index], self.source)

    def batch(self, index) -> dict:
        """The batch ``{"images", "labels"}`` of the rows ``index`` (slice, list or long tensor)."""
        return {"images": self.images[index], "labels": self.labels[index]}

    def batches(self, batch_size: int, shuffle: bool = False, generator: torch.Generator | None = None):
        """Iterate over batches of ``batch_size`` (the last one may be smaller)."""
        order = torch.randperm(len(self), generator=generator) if shuffle else torch.arange(len(self))
        for i in range(0, len(self), batch_size):
            yield self.batch(order[i : i + batch_size])


def load_image_set(root: str | os.PathLike, split: str = "train", limit: int | None = None) -> ImageSet:
    """An MNIST-layout folder (MNIST, Fashion-MNIST) as an :class:`ImageSet` (first ``limit`` images).

    Raises
    ------
    FileNotFoundError, ValueError
        As :func:`~equivar.data.read_mnist` (messages name the file); a
        ``limit`` below 1.
    """
    if limit is not None and int(limit) < 1:
        raise ValueError(f"limit must be >= 1 (or None for all images), got {limit}")
    images, labels = read_mnist(root, split)
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    x = torch.from_numpy(np.ascontiguousarray(images)).to(torch.float32).div_(255.0)[:, None]
    return ImageSet(x, torch.from_numpy(labels), f"{os.fspath(root)} ({split})")


def collate_images(items) -> dict:
    """Stack items ``{"images", "labels"}`` into the batch of the module docstring."""
    return {
        "images": torch.stack([it["images"] for it in items]),
        "labels": torch.stack([it["labels"] for it in items]),
    }
