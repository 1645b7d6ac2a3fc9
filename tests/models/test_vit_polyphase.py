"""Polyphase ViT: logits exactly invariant to every circular shift; the unanchored twin is not."""

import itertools
import os

import numpy as np
import pytest
import torch

from equivar.models import build_model
from equivar.models.vit_polyphase import PolyphaseViT, ViT


def _all_shifts(x):
    H, W = x.shape[-2:]
    return torch.cat([torch.roll(x, (u, v), dims=(-2, -1)) for u, v in itertools.product(range(H), range(W))])


def _rel(y, y0):
    return ((y - y0).abs().amax(-1) / y0.abs().amax(-1)).max().item()


def _small(anchored, dtype, seed=0, patch_size=2, sr_ratio=2):
    torch.manual_seed(seed)
    cls = PolyphaseViT if anchored else ViT
    hp = dict(image_size=12, in_channels=2, num_classes=5, dim=16, depth=2, heads=2)
    return cls(patch_size=patch_size, sr_ratio=sr_ratio, **hp).to(dtype)


@pytest.mark.parametrize("patch_size, sr_ratio", [(2, 2), (3, 2), (2, 3)])
def test_anchored_logits_invariant_to_every_circular_shift(dtype, patch_size, sr_ratio):
    """Strides 3 as well: for stride 2 a shift by -offset and by +offset agree modulo the stride."""
    model = _small(True, dtype, patch_size=patch_size, sr_ratio=sr_ratio).eval()
    x = torch.randn(1, 2, 12, 12, generator=torch.Generator().manual_seed(1), dtype=dtype)
    with torch.no_grad():
        y = model(_all_shifts(x))
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    assert _rel(y, y[:1]) < tol
    assert y[0].abs().max() > 1e-3  # not trivially zero


def test_unanchored_twin_breaks_under_shifts(dtype):
    model = _small(False, dtype).eval()
    x = torch.randn(1, 2, 12, 12, generator=torch.Generator().manual_seed(1), dtype=dtype)
    with torch.no_grad():
        y = model(_all_shifts(x)).reshape(12, 12, -1)
        ref = y[0, 0]
        # invariant to shifts by multiples of patch_size * sr_ratio = 4 (strided patches and reductions) ...
        tol = 1e-5 if dtype == torch.float32 else 1e-12
        assert _rel(y[::4, ::4].reshape(-1, 5), ref[None]) < tol
        # ... and to no other shift
        others = [y[u, v] for u, v in itertools.product(range(12), repeat=2) if u % 4 or v % 4]
        assert min(_rel(o[None], ref[None]) for o in others) > 1e-3


def test_anchoring_in_attention_is_needed():
    """Anchoring only the patch embedding leaves the subsampled attention to break invariance."""
    model = _small(True, torch.float64).eval()
    for blk in model.blocks:
        blk.attn.anchored = False
    x = torch.randn(1, 2, 12, 12, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    with torch.no_grad():
        y = model(_all_shifts(x))
    assert _rel(y, y[:1]) > 1e-3


def test_patch_tokens_shift_with_the_image(dtype):
    torch.manual_seed(0)
    embed = PolyphaseViT(image_size=12, patch_size=3, sr_ratio=1, dim=8, depth=1).to(dtype).embed
    x = torch.randn(1, 1, 12, 12, generator=torch.Generator().manual_seed(2), dtype=dtype)
    t0 = embed(x)
    tol = 1e-6 if dtype == torch.float32 else 1e-13
    for u, v in [(1, 0), (0, 2), (5, 7), (11, 11)]:
        t = embed(torch.roll(x, (u, v), dims=(-2, -1)))
        # the token grid moves by a whole number of tokens
        ok = [
            torch.allclose(t, torch.roll(t0, (a, b), dims=(1, 2)), rtol=tol, atol=tol)
            for a in range(4)
            for b in range(4)
        ]
        assert sum(ok) == 1


def test_default_mnist_model_invariant_on_all_784_shifts(shared_data):
    """The configuration trained on MNIST (28 x 28, patch 2, reduction 2), float32, on real test digits."""
    from equivar.data import read_mnist

    images, _ = read_mnist(os.path.join(shared_data, "mnist"), "test")
    torch.manual_seed(0)
    model = build_model("vit_polyphase").eval()
    twin = build_model("vit").eval()
    twin.load_state_dict(model.state_dict())  # the same weights, anchoring off
    for k in (0,):
        x = torch.from_numpy(images[k : k + 1].astype(np.float32) / 255.0)[:, None]
        with torch.no_grad():
            xs = _all_shifts(x)
            y, y_twin = model(xs), twin(xs)
        assert _rel(y, y[:1]) < 1e-5
        assert (y.argmax(-1) == y[0].argmax()).all()
        assert _rel(y_twin, y_twin[:1]) > 1e-2


def test_mnist_image_with_tied_polyphase_norms_invariant_on_all_784_shifts(shared_data, dtype):
    """MNIST train[1711]: two stride-2 components with equal norms (and equal multisets of values)."""
    from equivar.data import read_mnist
    from equivar.planar import polyphase_norms, polyphase_tie_counts

    images, _ = read_mnist(os.path.join(shared_data, "mnist"), "train")
    x = torch.from_numpy(images[1711:1712].astype(np.float32) / 255.0)[:, None].to(dtype)
    norms = polyphase_norms(x, 2)[0]
    assert (norms == norms.max()).sum() == 2
    torch.manual_seed(0)
    model = build_model("vit_polyphase").eval().to(dtype)
    polyphase_tie_counts(reset=True)
    with torch.no_grad():
        y = model(_all_shifts(x))
    assert polyphase_tie_counts(reset=True)["broken"] >= 784  # the tie was met on every shift
    assert _rel(y, y[:1]) < (1e-5 if dtype == torch.float32 else 1e-12)
    assert (y.argmax(-1) == y[0].argmax()).all()


def test_build_gradients_and_errors():
    m = build_model("vit_polyphase", image_size=8, patch_size=2, sr_ratio=2, dim=8, depth=1, num_classes=3)
    x = torch.randn(4, 1, 8, 8)
    loss = torch.nn.functional.cross_entropy(m(x), torch.tensor([0, 1, 2, 0]))
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in m.parameters())
    assert m.embed.proj.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="image_size 28 must be divisible by patch_size \\* sr_ratio = 3 \\* 2"):
        PolyphaseViT(image_size=28, patch_size=3, sr_ratio=2)
    with pytest.raises(ValueError, match=r"expected images \[B, 1, 8, 8\], got shape \(4, 1, 9, 9\)"):
        m(torch.randn(4, 1, 9, 9))
    with pytest.raises(ValueError, match="dim 10 is not divisible by heads 4"):
        PolyphaseViT(image_size=8, dim=10, heads=4)
