"""Translating / rotating MNIST sequences (FERNN's generator): exact flows of circular shifts."""

import numpy as np
import pytest
import torch

from equivar import planar as P
from equivar.data import rotating_mnist, translating_mnist


def _digits(n=5, size=10, seed=0):
    rng = np.random.default_rng(seed)
    x = np.zeros((n, size, size), np.uint8)
    x[:, 2:8, 3:7] = rng.integers(1, 256, (n, 6, 4))
    return x, np.arange(n) % 10


def test_single_digit_follows_its_flow_exactly():
    x, y = _digits()
    seqs = translating_mnist(x, y, n_sequences=3, seq_len=7, image_size=16, num_digits=1, seed=1)
    assert seqs.frames.shape == (3, 7, 1, 16, 16) and seqs.velocities.shape == (3, 1, 2)
    for s in range(3):
        v = seqs.velocities[s, 0]
        for t in range(7):  # frame t is frame 0 moved by t v (wrap-around)
            assert torch.equal(seqs.frames[s, t], torch.roll(seqs.frames[s, 0], tuple((t * v).tolist()), dims=(-2, -1)))
    assert seqs.velocities.abs().max() <= 2 and seqs.labels.shape == (3, 1)


def test_moving_a_sequence_by_a_flow_adds_velocities():
    x, y = _digits()
    a = translating_mnist(x, y, 2, seq_len=6, image_size=16, num_digits=1, seed=3, velocities=[1, -1])
    b = translating_mnist(x, y, 2, seq_len=6, image_size=16, num_digits=1, seed=3, velocities=[3, 1])
    moved = P.Flow(P.CircularShifts(16, 16), torch.tensor([2, 2])).act(a.frames, time_axis=1)
    assert torch.equal(moved, b.frames)


def test_two_digits_are_clamped_sums():
    x, y = _digits()
    seqs = translating_mnist(x, y, 4, seq_len=3, image_size=12, num_digits=2, seed=0)
    assert seqs.frames.max() <= 1.0 and seqs.frames.min() >= 0.0
    assert torch.equal(translating_mnist(x, y, 4, seq_len=3, image_size=12, num_digits=2, seed=0).frames, seqs.frames)
    # the total intensity of a frame with non-overlapping digits is the sum of the digits' intensities
    totals = seqs.frames.sum(dim=(-1, -2, -3))
    digit_mass = torch.tensor(x, dtype=torch.float32).sum(dim=(-1, -2)) / 255.0
    expect = digit_mass[seqs.digits].sum(-1)
    assert torch.all(totals <= expect[:, None] + 1e-4)  # overlaps are clamped, never added beyond 1
    assert torch.all(totals >= digit_mass[seqs.digits].amax(-1)[:, None] - 1e-4)  # clamp(a + b) >= max(a, b)


def test_rotating_mnist_turns_by_quarter_turns_exactly_at_pi_over_2():
    x, y = _digits(size=9)
    seqs = rotating_mnist(x, y, 2, seq_len=5, image_size=9, omegas=[np.pi / 2])
    for t in range(5):
        torch.testing.assert_close(
            seqs.frames[:, t], torch.rot90(seqs.frames[:, 0], t, dims=(-2, -1)), rtol=1e-5, atol=1e-5
        )


def test_errors():
    x, y = _digits(size=30)
    with pytest.raises(ValueError, match="do not fit a 28x28 canvas"):
        translating_mnist(x, y, 1)
    with pytest.raises(ValueError, match="seq_len must be >= 1"):
        translating_mnist(x[:, :10, :10], y, 1, seq_len=0)
