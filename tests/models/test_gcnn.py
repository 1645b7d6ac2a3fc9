"""p4 CNN: logits invariant to quarter turns and circular shifts; the plain CNN only to shifts."""

import pytest
import torch

from equivar.models import build_model


def _rel(a, b):
    return ((a - b).abs().max() / b.abs().max()).item()


def test_p4cnn_invariant_cnn_not(dtype):
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    x = torch.randn(3, 1, 12, 12, generator=torch.Generator().manual_seed(0), dtype=dtype)
    torch.manual_seed(0)
    p4 = build_model("p4cnn", channels=4, depth=2).to(dtype).eval()
    torch.manual_seed(0)
    cnn = build_model("cnn", channels=8, depth=2).to(dtype).eval()
    with torch.no_grad():
        y, yc = p4(x), cnn(x)
        for k in range(1, 4):
            xr = torch.rot90(x, k, dims=(-2, -1))
            assert _rel(p4(xr), y) < tol
            assert _rel(cnn(xr), yc) > 1e-3
        for s in [(1, 0), (3, 7)]:
            xs = torch.roll(x, s, dims=(-2, -1))
            assert _rel(p4(xs), y) < tol and _rel(cnn(xs), yc) < tol
    assert abs(sum(p.numel() for p in build_model("p4cnn").parameters()) - 11040) == 0
    assert abs(sum(p.numel() for p in build_model("cnn").parameters()) - 11270) == 0


def test_gcnn_errors():
    with pytest.raises(ValueError, match="odd kernel_size"):
        build_model("p4cnn", kernel_size=4)
    with pytest.raises(ValueError, match="square images"):
        build_model("p4cnn")(torch.zeros(1, 1, 8, 9))


def test_pooled_p4cnn_keeps_quarter_turns_and_claims_only_c4(dtype):
    """With 2 x 2 max pools between layers (rgenn's layout) quarter turns stay exact (2x2 blocks map onto
    blocks), circular shifts hold only by multiples of 2 ** depth, and the claim says so; the test kit checks
    the claim; the read-out is the global max, not the mean."""
    from equivar.testing import check_image_model

    tol = 1e-5 if dtype == torch.float32 else 1e-12
    x = torch.randn(3, 1, 16, 16, generator=torch.Generator().manual_seed(0), dtype=dtype)
    torch.manual_seed(0)
    p4 = build_model("p4cnn", image_size=16, channels=4, depth=2, pool=2, readout="max").to(dtype).eval()
    assert p4.symmetry_groups == ("planar:C4",)
    assert build_model("cnn", pool=2).symmetry_groups == ()
    check_image_model(p4)
    with torch.no_grad():
        y = p4(x)
        for k in range(1, 4):
            assert _rel(p4(torch.rot90(x, k, dims=(-2, -1))), y) < tol
        assert _rel(p4(torch.roll(x, (4, -8), dims=(-2, -1))), y) < tol  # multiples of 2 ** 2
        assert _rel(p4(torch.roll(x, (1, 0), dims=(-2, -1))), y) > 1e-4  # a one-pixel shift is not
        f = torch.relu(p4.lift(x))
        for conv in p4.convs:
            f = torch.relu(conv(torch.nn.functional.max_pool2d(f.flatten(1, 2), 2).unflatten(1, (-1, 4))))
        torch.testing.assert_close(y, p4.head(f.amax(dim=2).amax(dim=(-2, -1))), rtol=tol, atol=tol)


@pytest.mark.parametrize("name", ["cnn", "p4cnn", "affine_cnn"])
def test_pool_and_readout_errors(name):
    with pytest.raises(ValueError, match="pool must be an integer >= 1, got 0"):
        build_model(name, pool=0)
    with pytest.raises(ValueError, match="readout must be 'mean' or 'max', got 'sum'"):
        build_model(name, readout="sum")
    with pytest.raises(ValueError, match="pool factor 2 does not divide the feature map size 9 x 9"):
        build_model(name, pool=2)(torch.zeros(1, 1, 9, 9))


def test_pool_options_reject_every_non_integer_and_negative_depth():
    import numpy as np

    from equivar.planar import check_pooling, global_pool, spatial_max_pool

    for bad in ("2", "abc", None, True, float("nan"), 2.5, 0, -1):
        with pytest.raises(ValueError, match=r"pool must be an integer >= 1, got "):
            check_pooling(bad, "max")
        with pytest.raises(ValueError, match=r"pool factor must be an integer >= 1, got "):
            spatial_max_pool(torch.zeros(1, 4, 4), bad)
    assert check_pooling(np.int64(2), "max") == (2, "max") and check_pooling(2.0, "mean") == (2, "mean")
    with pytest.raises(ValueError, match="readout \\(global pool\\) must be 'mean' or 'max', got 'sum'"):
        global_pool(torch.zeros(2, 3), (1,), "sum")
    for name in ("cnn", "p4cnn"):
        with pytest.raises(ValueError, match="depth must be an integer >= 0, got -1"):
            build_model(name, depth=-1)
