"""A partially observed "MNIST world": moving digits on a torus canvas, seen through a window that the agent moves.

After the 2D MNIST world of Lillemark et al., "Flow Equivariant World Models:
Memory for Partially Observed Dynamic Environments" (2026), scaled for a CPU:
``num_digits`` MNIST digits move with constant integer velocities (uniform in
``[-v_range, v_range]^2`` pixels per frame) on an ``N x N`` canvas with
wrap-around, as in Translating MNIST (:func:`translating_mnist`); the agent
sees only a ``w x w`` window of it, whose top-left corner ``p_t`` (rows,
cols) moves by the agent's own action ``a_t = p_t - p_{t-1}`` (integers in
``[-action_range, action_range]^2``, known to the model). Actions are
piecewise constant: the first is uniform, and before each later step a new
uniform action is drawn with probability ``turn_prob`` - the agent looks away
and back, so digits leave the window and come back.

Geometry (exact, integer): frame ``t`` of the world is
``world_t = clamp(sum_d roll(digit_d, pos_d + t vel_d), 0, 1)`` and the
observation is ``o_t[i, j] = world_t[(p_t[0] + i) mod N, (p_t[1] + j) mod N]``
for ``0 <= i, j < w``. Moving the whole world by a flow ``u`` (every digit
``u`` faster) and the agent by the same flow (every action ``+ u``) leaves the
observations unchanged; shifting the world and ``p_0`` by one vector does too.

Re-entry (the memory test): a digit *re-enters* at frame ``t`` when it has ink
in the window at ``t``, had ink in it at some observed frame ``s <
input_frames``, and had none at some frame ``r`` with ``s < r < t`` (it left
and came back). Its ink pixels (value > ``INK``) at ``t`` form the re-entry
mask the world-model task scores.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from ._moving_mnist import _as_float

#: a digit pixel counts as ink above this value (for visibility and the re-entry mask)
INK = 0.1


@dataclasses.dataclass
class MNISTWorld:
    """Sequences of an MNIST world (see the module docstring).

    Attributes
    ----------
    frames : ``[S, T, 1, w, w]`` float32 in [0, 1]
        What the agent sees (the window).
    actions : ``[S, T - 1, 2]`` long
        ``actions[:, k] = p_{k+1} - p_k`` (rows, cols) pixels.
    positions : ``[S, T, 2]`` long
        Window top-left ``p_t`` on the canvas, in ``[0, N)``.
    velocities : ``[S, D, 2]`` long
        Each digit's velocity (rows, cols) pixels per frame.
    offsets : ``[S, D, 2]`` long
        Each digit's canvas position at frame 0 (the roll applied to the centred digit).
    digits, labels : ``[S, D]`` long
        Source image index and class of each digit.
    visible : ``[S, T, D]`` bool
        Digit ``d`` has ink in the window at frame ``t``.
    reentry : ``[S, T, 1, w, w]`` bool
        Re-entry mask for ``input_frames`` observed frames (False before ``input_frames``).
    world : ``[S, T, 1, N, N]`` float32 or None
        The whole canvas (only with ``keep_world=True``).
    """

    frames: torch.Tensor
    actions: torch.Tensor
    positions: torch.Tensor
    velocities: torch.Tensor
    offsets: torch.Tensor
    digits: torch.Tensor
    labels: torch.Tensor
    visible: torch.Tensor
    reentry: torch.Tensor
    world: torch.Tensor | None = None


def _check(name, value, low):
    if int(value) != value or int(value) < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value}")


def _window(canvas: torch.Tensor, top_left: torch.Tensor, w: int) -> torch.Tensor:
    """``canvas [..., N, N]`` read at rows/cols ``top_left [..., 2] + arange(w)`` modulo ``N`` -> ``[..., w, w]``."""
    N = canvas.shape[-1]
    ar = torch.arange(w)
    rows = torch.remainder(top_left[..., :1] + ar, N)  # [..., w]
    cols = torch.remainder(top_left[..., 1:] + ar, N)
    x = torch.gather(canvas, -2, rows[..., :, None].expand(*rows.shape, N))
    return torch.gather(x, -1, cols[..., None, :].expand(*cols.shape[:-1], w, w))


def mnist_world(
    images,
    labels,
    n_sequences: int,
    seq_len: int = 20,
    input_frames: int = 10,
    canvas_size: int = 24,
    window_size: int = 12,
    num_digits: int = 3,
    v_range: int = 1,
    action_range: int = 2,
    turn_prob: float = 0.25,
    seed: int = 0,
    keep_world: bool = False,
) -> MNISTWorld:
    """Generate MNIST-world sequences (see the module docstring).

    Parameters
    ----------
    images : ``[N_img, h, h]`` uint8 (0..255) or float (0..1), ``h <= canvas_size``; labels : ``[N_img]``
    n_sequences, seq_len : int >= 1
    input_frames : int in ``[1, seq_len]``
        Observed frames; the re-entry mask marks frames from here on.
    canvas_size, window_size : int
        ``N`` and ``w`` pixels, ``1 <= w <= N``.
    num_digits : int >= 1
    v_range, action_range : int >= 0
        Digit velocities and actions uniform in ``[-r, r]^2``.
    turn_prob : float in [0, 1]
        Probability of drawing a new action before each step after the first.
    seed : int
    keep_world : bool
        Also return the full canvas per frame.

    Returns
    -------
    :class:`MNISTWorld`

    Raises
    ------
    ValueError
        A size or count out of range (named), digits larger than the canvas.
    """
    for name, v, low in (
        ("n_sequences", n_sequences, 1),
        ("seq_len", seq_len, 1),
        ("input_frames", input_frames, 1),
        ("num_digits", num_digits, 1),
        ("window_size", window_size, 1),
        ("v_range", v_range, 0),
        ("action_range", action_range, 0),
    ):
        _check(name, v, low)
    if int(input_frames) > int(seq_len):
        raise ValueError(f"input_frames must be <= seq_len ({seq_len}), got {input_frames}")
    if not int(window_size) <= int(canvas_size):
        raise ValueError(f"window_size must be <= canvas_size ({canvas_size}), got {window_size}")
    if not 0.0 <= float(turn_prob) <= 1.0:
        raise ValueError(f"turn_prob must be in [0, 1], got {turn_prob}")
    imgs, lbls = _as_float(images), torch.as_tensor(np.asarray(labels)).long()
    h = int(imgs.shape[-1])
    S, T, D, N, w = int(n_sequences), int(seq_len), int(num_digits), int(canvas_size), int(window_size)
    if h > N or imgs.shape[-2] > N:
        raise ValueError(f"digits of {tuple(imgs.shape[-2:])} do not fit a {N}x{N} canvas")
    gen = torch.Generator().manual_seed(int(seed))
    idx = torch.randint(len(imgs), (S, D), generator=gen)
    vel = torch.randint(-int(v_range), int(v_range) + 1, (S, D, 2), generator=gen)
    off = torch.randint(N, (S, D, 2), generator=gen)
    p0 = torch.randint(N, (S, 2), generator=gen)
    A = int(action_range)
    draws = torch.randint(-A, A + 1, (S, max(T - 1, 1), 2), generator=gen)
    turn = torch.rand(S, max(T - 1, 1), generator=gen) < float(turn_prob)
    actions = torch.zeros(S, T - 1, 2, dtype=torch.long)
    for k in range(T - 1):
        actions[:, k] = draws[:, k] if k == 0 else torch.where(turn[:, k, None], draws[:, k], actions[:, k - 1])
    positions = torch.remainder(torch.cat([p0[:, None], p0[:, None] + actions.cumsum(1)], 1), N)

    digit = imgs.new_zeros(S, D, N, N)  # each digit at the canvas origin (top-left), then rolled by its offset
    digit[..., : imgs.shape[-2], :h] = imgs[idx]
    frames = torch.zeros(S, T, 1, w, w)
    ink = torch.zeros(S, T, D, w, w, dtype=torch.bool)
    world = torch.zeros(S, T, 1, N, N) if keep_world else None
    for t in range(T):
        # digit d's pixel (i, j) of the window is canvas pixel p_t + (i, j), i.e. digit pixel p_t + (i, j) - pos_d(t)
        rel = positions[:, None, t] - off - t * vel  # [S, D, 2]
        layers = _window(digit, rel, w)  # [S, D, w, w]
        frames[:, t, 0] = layers.sum(1).clamp(0.0, 1.0)
        ink[:, t] = layers > INK
        if world is not None:
            world[:, t, 0] = _window(digit, -off - t * vel, N).sum(1).clamp(0.0, 1.0)
    visible = ink.flatten(-2).any(-1)  # [S, T, D]
    reentry = torch.zeros(S, T, 1, w, w, dtype=torch.bool)
    T_in = int(input_frames)
    seen = visible[:, :T_in].any(1)  # [S, D]
    first = torch.where(seen, visible[:, :T_in].float().argmax(1), torch.full_like(seen, T, dtype=torch.long))
    steps = torch.arange(T)
    for t in range(T_in, T):
        between = (steps[None, :, None] > first[:, None, :]) & (steps[None, :, None] < t)  # [S, T, D]
        gone = (~visible & between).any(1)
        back = seen & gone & visible[:, t]  # [S, D]
        reentry[:, t, 0] = (ink[:, t] & back[..., None, None]).any(1)
    return MNISTWorld(frames, actions, positions, vel, off, idx, lbls[idx], visible, reentry, world)
