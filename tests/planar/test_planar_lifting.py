"""Monte-Carlo affine lifting: equivariant for a fixed sample set (exact for quarter turns and shifts)."""

import math

import pytest
import torch

from equivar import planar as P
from equivar.planar import AffineGroupConv, AffineLiftingConv


def _tol(dtype):
    return dict(rtol=1e-5, atol=1e-5) if dtype == torch.float32 else dict(rtol=1e-11, atol=1e-11)


def test_lifting_quarter_turn_and_shift_equivariance(dtype):
    torch.manual_seed(0)
    lift = AffineLiftingConv(2, 3, kernel_size=5).to(dtype)
    samples = P.GLPlus2(0.3).sample(6, torch.Generator().manual_seed(1))
    x = torch.randn(2, 2, 9, 9, generator=torch.Generator().manual_seed(2), dtype=dtype)
    R = P.rotation_matrix(math.pi / 2)
    R = torch.round(R)  # exact quarter turn
    # L[R x](S) = R . L[x](R^-1 S): spatial quarter turn, samples moved by R^-1
    lhs = lift(torch.rot90(x, 1, dims=(-2, -1)), samples)
    rhs = torch.rot90(lift(x, R.T @ samples), 1, dims=(-2, -1))
    torch.testing.assert_close(lhs, rhs, **_tol(dtype))
    # circular shifts commute with the lifting for any sample set
    torch.testing.assert_close(
        lift(torch.roll(x, (2, -3), dims=(-2, -1)), samples),
        torch.roll(lift(x, samples), (2, -3), dims=(-2, -1)),
        **_tol(dtype),
    )
    # and the sample axis matters: the same samples without moving them break the identity
    assert not torch.allclose(lhs, torch.rot90(lift(x, samples), 1, dims=(-2, -1)), atol=1e-4)


def test_lifting_kernels_scale_with_the_determinant():
    torch.manual_seed(0)
    lift = AffineLiftingConv(1, 1, kernel_size=3).double()
    eye = torch.eye(2, dtype=torch.float64)[None]
    k1, k2 = lift.kernels(eye), lift.kernels(0.5 * eye)
    # A = I/2: k(2 p) / (1/4): the centre value is k(0) * 4, points mapped outside the disc are masked
    assert torch.allclose(k2[0, 0, 0, 1, 1], 4 * k1[0, 0, 0, 1, 1])
    assert k2[0, 0, 0, 0, 1] == 0 and k1[0, 0, 0, 0, 1] != 0


def test_lifting_errors():
    with pytest.raises(ValueError, match="kernel_size must be odd"):
        AffineLiftingConv(1, 1, kernel_size=4)
    with pytest.raises(ValueError, match=r"samples must be \[N, 2, 2\]"):
        AffineLiftingConv(1, 1, 3)(torch.zeros(1, 1, 5, 5), torch.zeros(2, 3))


def test_lift_then_group_conv_equivariance(dtype):
    torch.manual_seed(0)
    lift, conv = AffineLiftingConv(1, 3, 5).to(dtype), AffineGroupConv(3, 2, 3).to(dtype)
    G = P.SL2(0.3)
    s_in, s_out = G.sample(4, torch.Generator().manual_seed(1)), G.sample(5, torch.Generator().manual_seed(2))

    def net(x, si, so):
        return conv(torch.relu(lift(x, si)), so, si)

    x = torch.randn(2, 1, 9, 9, generator=torch.Generator().manual_seed(3), dtype=dtype)
    R = torch.tensor([[0.0, -1.0], [1.0, 0.0]], dtype=torch.float64)  # a quarter turn, exactly
    y = net(torch.rot90(x, 1, dims=(-2, -1)), s_in, s_out)
    assert y.shape == (2, 2, 5, 9, 9)
    torch.testing.assert_close(y, torch.rot90(net(x, R.T @ s_in, R.T @ s_out), 1, dims=(-2, -1)), **_tol(dtype))
    torch.testing.assert_close(
        net(torch.roll(x, (1, 4), dims=(-2, -1)), s_in, s_out),
        torch.roll(net(x, s_in, s_out), (1, 4), dims=(-2, -1)),
        **_tol(dtype),
    )
    assert not torch.allclose(y, torch.rot90(net(x, R.T @ s_in, s_out), 1, dims=(-2, -1)), atol=1e-4)
    with pytest.raises(ValueError, match="N_in = 4 samples"):
        conv(torch.zeros(1, 3, 3, 9, 9), s_out, s_in)


@pytest.mark.parametrize("layer", ["lift", "conv"])
def test_siren_kernels_keep_the_equivariance_and_start_rough(dtype, layer):
    """SIREN kernel MLPs (rgenn's default): the same identities as the SiLU ones, the same parameter count."""
    torch.manual_seed(0)
    mk = {
        "lift": lambda kind: AffineLiftingConv(1, 4, 5, kernel=kind),
        "conv": lambda kind: AffineGroupConv(2, 3, 5, kernel=kind),
    }[layer]
    siren, silu = mk("siren").to(dtype), mk("silu").to(dtype)
    assert sum(p.numel() for p in siren.parameters()) == sum(p.numel() for p in silu.parameters())
    s = P.SL2(0.3).sample(3, torch.Generator().manual_seed(1)).to(dtype)
    R = torch.round(P.rotation_matrix(math.pi / 2)).to(dtype)
    if layer == "lift":
        x = torch.randn(2, 1, 9, 9, generator=torch.Generator().manual_seed(2), dtype=dtype)
        torch.testing.assert_close(
            siren(torch.rot90(x, 1, dims=(-2, -1)), s), torch.rot90(siren(x, R.T @ s), 1, dims=(-2, -1)), **_tol(dtype)
        )
        kernels = {k: m.kernels(torch.eye(2, dtype=dtype)[None]) for k, m in (("siren", siren), ("silu", silu))}
    else:
        f = torch.randn(2, 2, 3, 9, 9, generator=torch.Generator().manual_seed(2), dtype=dtype)
        torch.testing.assert_close(
            siren(torch.rot90(f, 1, dims=(-2, -1)), s, s),
            torch.rot90(siren(f, R.T @ s, R.T @ s), 1, dims=(-2, -1)),
            **_tol(dtype),
        )
        kernels = {k: m.kernels(s[:1], s[:1]) for k, m in (("siren", siren), ("silu", silu))}

    # the kernels differ (the initialisation is SIREN's, checked in test_kernel_mlp_initialisation_and_errors)
    assert not torch.allclose(kernels["siren"], kernels["silu"], atol=1e-3)


def test_kernel_mlp_initialisation_and_errors():
    torch.manual_seed(0)
    m = P.KernelMLP(7, 30, 64, "siren", w0=10.0, fan_in=8 * 9)
    assert m[0].weight.abs().max() <= 1 / 7 and m[0].weight.abs().max() > 0.9 / 7
    assert m[2].weight.abs().max() <= (6 / 30) ** 0.5 / 10 and m[2].bias.abs().max() == 0
    assert m[4].weight.abs().max() <= (6 / 30) ** 0.5 / (8 * 9) ** 0.5 and m[4].bias.abs().max() == 0
    x = torch.rand(5, 7)
    a, b, c = m.layers
    torch.testing.assert_close(m(x), c(torch.sin(10 * b(torch.sin(10 * a(x))))))
    with pytest.raises(ValueError, match="kernel must be 'siren' or 'silu', got 'relu'"):
        AffineLiftingConv(1, 1, 3, kernel="relu")


def test_kernel_mlp_checks_its_sizes_and_frequency():
    for kw, msg in (
        (dict(hidden=0), "kernel MLP hidden must be an integer >= 1, got 0"),
        (dict(fan_in=0), "kernel MLP fan_in must be an integer >= 1, got 0"),
        (dict(w0=0.0), "kernel MLP w0 must be a finite number > 0, got 0.0"),
        (dict(w0=float("nan")), "kernel MLP w0 must be a finite number > 0, got nan"),
        (dict(w0=-1.0), "kernel MLP w0 must be a finite number > 0, got -1.0"),
    ):
        args = dict(in_features=2, hidden=8, out_features=4, kind="siren", w0=10.0, fan_in=9) | kw
        with pytest.raises(ValueError, match=msg):
            P.KernelMLP(**args)
    m = P.KernelMLP(2, 8, 4)
    assert m[4] is m.layers[2]
    with pytest.raises(IndexError, match="linear layers at 0, 2 and 4"):
        m[1]
