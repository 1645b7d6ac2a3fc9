"""Adaptive polyphase sampling is exactly equivariant to every circular shift."""

import itertools

import pytest
import torch

from equivar import planar as P


@pytest.mark.parametrize("stride", [2, 4])
def test_aps_downsample_exactly_shift_equivariant(dtype, stride):
    x = torch.randn(3, 2, 8, 8, generator=torch.Generator().manual_seed(stride), dtype=dtype)
    y = P.aps_downsample(x, stride)
    off = P.polyphase_anchor(x, stride)
    for u, v in itertools.product(range(8), repeat=2):
        xs = torch.roll(x, (u, v), dims=(-2, -1))
        ys = P.aps_downsample(xs, stride)
        for b in range(3):  # output shifted by the whole number of strides the anchor moved
            du, dv = (u + off[b, 0].item()) // stride, (v + off[b, 1].item()) // stride
            assert torch.equal(ys[b], torch.roll(y[b], (du, dv), dims=(-2, -1))), (u, v, b)


def test_anchor_moves_by_multiples_of_the_stride(dtype):
    x = torch.randn(4, 3, 12, 12, generator=torch.Generator().manual_seed(0), dtype=dtype)
    a, _ = P.anchor(x, 3)
    for u, v in itertools.product(range(12), repeat=2):
        b, _ = P.anchor(torch.roll(x, (u, v), dims=(-2, -1)), 3)
        for i in range(4):  # the anchored images agree up to a shift by a multiple of the stride
            mults = [(3 * k, 3 * m) for k in range(4) for m in range(4)]
            assert sum(torch.equal(b[i], torch.roll(a[i], km, dims=(-2, -1))) for km in mults) == 1, (u, v, i)


def test_plain_strided_sampling_is_not_shift_equivariant():
    x = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    y = x[..., ::2, ::2]
    ys = torch.roll(x, (1, 0), dims=(-2, -1))[..., ::2, ::2]
    assert not any(torch.equal(ys, torch.roll(y, (i, j), dims=(-2, -1))) for i in range(4) for j in range(4))


def test_roll_per_sample_and_gradient():
    x = torch.randn(2, 3, 4, 6, dtype=torch.float64, requires_grad=True)
    s = torch.tensor([[1, 2], [-1, 5]])
    y = P.roll_per_sample(x, s)
    assert torch.equal(y[0], torch.roll(x[0], (1, 2), dims=(-2, -1)))
    assert torch.equal(y[1], torch.roll(x[1], (-1, 5), dims=(-2, -1)))
    assert torch.autograd.gradcheck(lambda z: P.roll_per_sample(z, s), (x,))


def test_polyphase_errors():
    with pytest.raises(ValueError, match="stride 3 does not divide the image size 8x8"):
        P.aps_downsample(torch.zeros(1, 1, 8, 8), 3)
    with pytest.raises(ValueError, match=r"x \[B, C, H, W\]"):
        P.anchor(torch.zeros(8, 8), 2)
