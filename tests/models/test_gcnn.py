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
