"""Translating and rotating MNIST sequences, generated as in FERNN (Keller 2025, ``akandykeller/FERNN``).

Translating MNIST (``moving_mnist_dataset.py`` there): each sequence overlays
``num_digits`` digits, each zero-padded to the ``image_size`` canvas, placed at
a uniform integer offset and moved by an integer velocity drawn uniformly from
``[-v_range, v_range]^2`` pixels per frame, with wrap-around (circular shifts);
frames are the clamped sum of the digits. FERNN's defaults: 28 x 28, two
digits, ``v_range`` 2, 20 frames (10 in, 10 predicted), 40 for length
generalization. Each digit follows a :class:`~equivar.planar.Flow` of
circular shifts, so a sequence moved by another flow ``v'`` is exactly the
sequence generated with velocities ``v + v'``.

Rotating MNIST: one digit turning about the canvas centre with an angular
velocity from ``omegas`` (radians per frame), by bilinear resampling
(:class:`~equivar.planar.SO2` flow; approximate, corners cut).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
import torch.nn.functional as F

from .. import planar as P


@dataclasses.dataclass
class MovingSequences:
    """Generated sequences.

    Attributes
    ----------
    frames : ``[S, T, 1, H, W]`` float32 in [0, 1]
    velocities : ``[S, D, 2]`` long pixels/frame (rows, cols) for translations, or ``[S, D]`` float rad/frame
    digits : ``[S, D]`` long, index of each digit in the source images
    labels : ``[S, D]`` long, class of each digit
    """

    frames: torch.Tensor
    velocities: torch.Tensor
    digits: torch.Tensor
    labels: torch.Tensor


def _canvas(img: torch.Tensor, size: int) -> torch.Tensor:
    h, w = img.shape[-2:]
    if h > size or w > size:
        raise ValueError(f"digits of {h}x{w} do not fit a {size}x{size} canvas")
    top, left = (size - h) // 2, (size - w) // 2
    return F.pad(img, (left, size - w - left, top, size - h - top))


def _as_float(images) -> torch.Tensor:
    x = torch.as_tensor(np.asarray(images))
    return x.to(torch.float32) / 255.0 if x.dtype == torch.uint8 else x.to(torch.float32)


def translating_mnist(
    images,
    labels,
    n_sequences: int,
    seq_len: int = 20,
    image_size: int = 28,
    v_range: int = 2,
    num_digits: int = 2,
    seed: int = 0,
    velocities=None,
) -> MovingSequences:
    """Translating MNIST sequences (see the module docstring).

    Parameters
    ----------
    images : ``[N, h, w]`` uint8 (0..255) or float (0..1); labels : ``[N]``
    n_sequences, seq_len, image_size, num_digits : int
    v_range : int
        Velocities uniform in ``[-v_range, v_range]^2`` (integers).
    seed : int
    velocities : optional ``[2]`` or ``[n_sequences, num_digits, 2]`` integers
        Fixed velocities instead (velocity generalization: a grid of unseen ones).

    Raises
    ------
    ValueError
        Non-positive sizes, digits larger than the canvas.
    """
    for name, v in (("n_sequences", n_sequences), ("seq_len", seq_len), ("num_digits", num_digits)):
        if int(v) < 1:
            raise ValueError(f"{name} must be >= 1, got {v}")
    imgs, lbls = _as_float(images), torch.as_tensor(np.asarray(labels)).long()
    gen = torch.Generator().manual_seed(seed)
    S, D, H = int(n_sequences), int(num_digits), int(image_size)
    idx = torch.randint(len(imgs), (S, D), generator=gen)
    if velocities is None:
        vel = torch.randint(-v_range, v_range + 1, (S, D, 2), generator=gen)
    else:
        vel = torch.as_tensor(velocities).long().expand(S, D, 2).clone()
    pos = torch.randint(H, (S, D, 2), generator=gen)
    G = P.CircularShifts(H, H)
    frames = torch.zeros(S, seq_len, 1, H, H)
    for s in range(S):
        for d in range(D):
            digit = G.act(pos[s, d], _canvas(imgs[idx[s, d]], H))
            seq = digit.expand(seq_len, H, H)
            frames[s, :, 0] += P.Flow(G, vel[s, d]).act(seq, time_axis=0)
    return MovingSequences(frames.clamp_(0.0, 1.0), vel, idx, lbls[idx])


def rotating_mnist(
    images,
    labels,
    n_sequences: int,
    seq_len: int = 20,
    image_size: int = 28,
    omegas=(-0.4, -0.2, 0.0, 0.2, 0.4),
    seed: int = 0,
) -> MovingSequences:
    """Rotating MNIST: one digit per sequence turning by ``omega`` rad/frame, ``omega`` uniform over ``omegas``."""
    if int(n_sequences) < 1 or int(seq_len) < 1:
        raise ValueError(f"n_sequences and seq_len must be >= 1, got {n_sequences}, {seq_len}")
    imgs, lbls = _as_float(images), torch.as_tensor(np.asarray(labels)).long()
    gen = torch.Generator().manual_seed(seed)
    S, H = int(n_sequences), int(image_size)
    idx = torch.randint(len(imgs), (S, 1), generator=gen)
    om = torch.as_tensor(omegas, dtype=torch.float64)
    w = om[torch.randint(len(om), (S, 1), generator=gen)]
    frames = torch.zeros(S, seq_len, 1, H, H)
    G = P.SO2()
    for s in range(S):
        seq = _canvas(imgs[idx[s, 0]], H).expand(seq_len, H, H)
        frames[s, :, 0] = P.Flow(G, float(w[s, 0])).act(seq, time_axis=0)
    return MovingSequences(frames.clamp_(0.0, 1.0), w, idx, lbls[idx])
