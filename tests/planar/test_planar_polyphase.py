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


def _tied_image(dtype):
    """8 x 8, stride 2: components (0, 0) and (0, 1) tie in norm (and in every symmetric criterion), and the
    two anchored images differ by an odd shift, so they are not equivalent modulo the stride."""
    x = torch.zeros(1, 1, 8, 8, dtype=dtype)
    x[0, 0, 0, 0] = x[0, 0, 0, 1] = 2.0
    x[0, 0, 1, 0] = 1.0
    return x


def test_tied_norms_anchor_is_shift_equivariant(dtype):
    x = _tied_image(dtype)
    norms = P.polyphase_norms(x, 2)
    assert norms[0, 0] == norms[0, 1] == norms.max()  # an exact tie of the largest norm
    P.polyphase_tie_counts(reset=True)
    a0, off = P.anchor(x, 2)
    y = P.aps_downsample(x, 2)
    for u, v in itertools.product(range(8), repeat=2):
        xs = torch.roll(x, (u, v), dims=(-2, -1))
        offs = P.polyphase_anchor(xs, 2)[0]
        assert offs.tolist() == [(u + off[0, 0].item()) % 2, (v + off[0, 1].item()) % 2], (u, v)
        a = P.anchor(xs, 2)[0]  # the anchored image moves by a multiple of the stride
        assert any(torch.equal(a, torch.roll(a0, (2 * i, 2 * j), (-2, -1))) for i in range(4) for j in range(4))
        du, dv = (u + off[0, 0].item()) // 2, (v + off[0, 1].item()) // 2
        assert torch.equal(P.aps_downsample(xs, 2)[0], torch.roll(y[0], (du, dv), dims=(-2, -1))), (u, v)
    counts = P.polyphase_tie_counts(reset=True)
    assert counts["broken"] >= 64 and counts["equivalent"] == 0


def test_equivalent_ties_are_counted_and_harmless(dtype):
    """Columns periodic with period 1: every column offset gives the same anchored image up to even shifts."""
    col = torch.tensor([3.0, 1.0, 0.0, 2.0, 0.5, 0.0, 1.0, 4.0], dtype=dtype)
    x = col[None, None, :, None].expand(1, 1, 8, 8).contiguous()
    P.polyphase_tie_counts(reset=True)
    a0, _ = P.anchor(x, 2)
    for u, v in itertools.product(range(8), repeat=2):
        a = P.anchor(torch.roll(x, (u, v), dims=(-2, -1)), 2)[0]
        assert any(torch.equal(a, torch.roll(a0, (2 * i, 2 * j), (-2, -1))) for i in range(4) for j in range(4))
    assert P.polyphase_tie_counts(reset=True) == {"broken": 0, "equivalent": 64 + 1}
