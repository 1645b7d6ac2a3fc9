"""p4 lifting and group convolutions: exactly equivariant to quarter turns and circular shifts."""

import itertools

import pytest
import torch

from equivar.planar import GroupConvP4, LiftingConvP4, group_pool, rotate_p4


def _tol(dtype):
    return dict(rtol=1e-5, atol=1e-5) if dtype == torch.float32 else dict(rtol=1e-12, atol=1e-12)


def test_rotate_p4_is_a_c4_action():
    f = torch.randn(2, 3, 4, 5, 5, dtype=torch.float64)
    for a, b in itertools.product(range(4), repeat=2):
        assert torch.equal(rotate_p4(rotate_p4(f, b), a), rotate_p4(f, (a + b) % 4))
    assert torch.equal(rotate_p4(f, 4), f)


@pytest.mark.parametrize("size", [7, 8])
def test_p4_network_equivariance(dtype, size):
    torch.manual_seed(0)
    lift, conv = LiftingConvP4(2, 3, 3).to(dtype), GroupConvP4(3, 4, 5).to(dtype)
    net = lambda x: conv(torch.relu(lift(x)))  # noqa: E731
    x = torch.randn(2, 2, size, size, dtype=dtype)
    y = net(x)
    assert y.shape == (2, 4, 4, size, size)
    for k in range(1, 4):  # quarter turns: spatial turn + cyclic shift of the rotation axis
        torch.testing.assert_close(net(torch.rot90(x, k, dims=(-2, -1))), rotate_p4(y, k), **_tol(dtype))
    for s in [(1, 0), (2, 5), (size - 1, 3)]:  # circular shifts
        torch.testing.assert_close(net(torch.roll(x, s, dims=(-2, -1))), torch.roll(y, s, dims=(-2, -1)), **_tol(dtype))
    inv = group_pool(y, "max").mean(dim=(-2, -1))  # invariant to both
    torch.testing.assert_close(
        group_pool(net(torch.rot90(x, 1, dims=(-2, -1))), "max").mean(dim=(-2, -1)), inv, **_tol(dtype)
    )


def test_p4_layers_are_not_trivially_equivariant():
    """Dropping the cyclic shift of the rotation axis (a plain per-rotation conv) breaks equivariance."""
    torch.manual_seed(0)
    conv = GroupConvP4(2, 2, 3).double()
    f = torch.randn(1, 2, 4, 6, 6, dtype=torch.float64)
    y = conv(f)
    assert not torch.allclose(conv(rotate_p4(f, 1)), torch.rot90(y, 1, dims=(-2, -1)), atol=1e-6)
    assert torch.allclose(conv(rotate_p4(f, 1)), rotate_p4(y, 1), atol=1e-12)


def test_p4_errors():
    with pytest.raises(ValueError, match="odd kernel_size"):
        LiftingConvP4(1, 1, 4)
    with pytest.raises(ValueError, match=r"\[B, C, 4, H, W\]"):
        GroupConvP4(1, 1, 3)(torch.zeros(1, 1, 3, 5, 5))
    with pytest.raises(ValueError, match="'max' or 'mean'"):
        group_pool(torch.zeros(1, 4, 2, 2), "sum")
