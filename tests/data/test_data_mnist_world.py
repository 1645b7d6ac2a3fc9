"""The partially observed MNIST world: seeded, the window is the canvas read at the agent's position, re-entry mask."""

import numpy as np
import pytest
import torch

from equivar.data import mnist_world
from equivar.data._mnist_world import INK


def _digits(n=6, size=4, seed=0):
    rng = np.random.default_rng(seed)
    x = np.zeros((n, size, size), np.uint8)
    x[:, :3, :2] = rng.integers(60, 256, (n, 3, 2))
    return x, np.arange(n) % 10


KW = dict(seq_len=9, input_frames=4, canvas_size=10, window_size=5, num_digits=2, v_range=1, action_range=2)


def test_seeded_and_shapes():
    x, y = _digits()
    a = mnist_world(x, y, 5, seed=3, **KW)
    b = mnist_world(x, y, 5, seed=3, **KW)
    c = mnist_world(x, y, 5, seed=4, **KW)
    for k in ("frames", "actions", "positions", "velocities", "offsets", "digits", "visible", "reentry"):
        assert torch.equal(getattr(a, k), getattr(b, k)), k
    assert not torch.equal(a.frames, c.frames)
    assert a.frames.shape == (5, 9, 1, 5, 5) and a.actions.shape == (5, 8, 2) and a.positions.shape == (5, 9, 2)
    assert a.reentry.shape == (5, 9, 1, 5, 5) and a.visible.shape == (5, 9, 2) and a.world is None
    assert a.velocities.abs().max() <= 1 and a.actions.abs().max() <= 2 and a.frames.max() <= 1.0


def test_window_is_the_canvas_at_the_agent_position_and_digits_follow_their_flows():
    x, y = _digits()
    s = mnist_world(x, y, 6, seed=1, keep_world=True, turn_prob=0.5, **KW)
    N, w = 10, 5
    p = s.positions
    assert torch.equal(p[:, 1:], torch.remainder(p[:, :-1] + s.actions, N))  # p_{t+1} = p_t + a_t (mod N)
    for i in range(6):
        first = torch.zeros(N, N)
        for d in range(2):  # a digit at the canvas origin, rolled by its offset
            img = torch.zeros(N, N)
            img[:4, :4] = torch.from_numpy(x[int(s.digits[i, d])]).float() / 255
            first += torch.roll(img, tuple(s.offsets[i, d].tolist()), dims=(0, 1))
        assert torch.allclose(s.world[i, 0, 0], first.clamp(0, 1))
        for t in range(9):
            world = torch.zeros(N, N)
            for d in range(2):
                img = torch.zeros(N, N)
                img[:4, :4] = torch.from_numpy(x[int(s.digits[i, d])]).float() / 255
                world += torch.roll(img, tuple((s.offsets[i, d] + t * s.velocities[i, d]).tolist()), dims=(0, 1))
            assert torch.allclose(s.world[i, t, 0], world.clamp(0, 1))
            seen = torch.roll(s.world[i, t, 0], tuple((-p[i, t]).tolist()), dims=(0, 1))[:w, :w]
            assert torch.equal(s.frames[i, t, 0], seen)


def test_actions_are_piecewise_constant():
    x, y = _digits()
    s = mnist_world(x, y, 50, seed=0, turn_prob=0.0, **KW)
    assert torch.equal(s.actions, s.actions[:, :1].expand_as(s.actions))  # never turns
    s = mnist_world(x, y, 50, seed=0, turn_prob=1.0, **KW)
    assert not torch.equal(s.actions, s.actions[:, :1].expand_as(s.actions))


def test_reentry_mask_matches_a_brute_force_count():
    # one digit: its ink is the frame's ink; re-entry at t >= T_in: ink at t, seen at an observed frame s, gone at
    # some frame between the first such s and t
    x, y = _digits()
    T_in = 4
    s = mnist_world(x, y, 40, seed=2, **{**KW, "num_digits": 1, "canvas_size": 12, "window_size": 4})
    n_re = 0
    for i in range(40):
        ink = s.frames[i, :, 0] > INK
        vis = ink.flatten(1).any(1)
        assert torch.equal(vis, s.visible[i, :, 0])
        obs = vis[:T_in].nonzero()
        for t in range(9):
            want = torch.zeros_like(ink[t])
            if t >= T_in and len(obs):
                first = int(obs[0])
                if bool(vis[t]) and bool((~vis[first + 1 : t]).any()):
                    want = ink[t]
            assert torch.equal(s.reentry[i, t, 0], want), (i, t)
            n_re += int(want.any())
    assert n_re >= 5  # the walk does bring digits back


def test_errors():
    x, y = _digits()
    with pytest.raises(ValueError, match="window_size must be <= canvas_size \\(10\\), got 11"):
        mnist_world(x, y, 2, **{**KW, "window_size": 11})
    with pytest.raises(ValueError, match="input_frames must be <= seq_len \\(9\\), got 10"):
        mnist_world(x, y, 2, **{**KW, "input_frames": 10})
    with pytest.raises(ValueError, match="n_sequences must be an integer >= 1, got 0"):
        mnist_world(x, y, 0, **KW)
    with pytest.raises(ValueError, match="turn_prob must be in \\[0, 1\\], got 1.5"):
        mnist_world(x, y, 2, turn_prob=1.5, **KW)
    with pytest.raises(ValueError, match="do not fit a 3x3 canvas"):
        mnist_world(x, y, 2, **{**KW, "canvas_size": 3, "window_size": 2})
