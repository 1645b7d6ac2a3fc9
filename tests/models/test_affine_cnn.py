"""Affine CNN (Monte-Carlo over SL(2) / GL+(2) samples): exact identities for fixed sample sets."""

import pytest
import torch

from equivar.models import build_model


def test_quarter_turn_moves_the_samples(dtype):
    torch.manual_seed(0)
    m = build_model("affine_cnn", image_size=9, channels=3, num_samples=4, depth=1).to(dtype).eval()
    x = torch.randn(2, 1, 9, 9, generator=torch.Generator().manual_seed(1), dtype=dtype)
    R = torch.tensor([[0.0, -1.0], [1.0, 0.0]], dtype=dtype)
    s = m.eval_samples
    y_rot = m(torch.rot90(x, 1, dims=(-2, -1)), s)
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == torch.float32 else dict(rtol=1e-11, atol=1e-12)
    torch.testing.assert_close(y_rot, m(x, R.T @ s), **tol)  # logits: pooled over samples and space
    assert not torch.allclose(y_rot, m(x, s), atol=1e-7)  # with the same samples: only approximately


def test_training_draws_samples_eval_is_fixed():
    torch.manual_seed(0)
    m = build_model("affine_cnn", image_size=9, channels=2, num_samples=3, group="GL+2")
    x = torch.randn(2, 1, 9, 9)
    m.train()
    assert not torch.equal(m(x), m(x))  # fresh samples each forward
    m.eval()
    assert torch.equal(m(x), m(x))
    assert torch.linalg.det(m.eval_samples).gt(0).all() and m.eval_samples.shape == (2, 3, 2, 2)
    sl = build_model("affine_cnn", image_size=9, channels=2, num_samples=3)
    torch.testing.assert_close(torch.linalg.det(sl.eval_samples), torch.ones(2, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match="group must be 'SL2' or 'GL\\+2'"):
        build_model("affine_cnn", group="GL2")


def test_hidden_sets_the_kernel_mlp_width_and_parameter_count():
    # lifting MLP 2 -> h -> h -> C, two group-conv MLPs 7 -> h -> h -> C^2, biases, linear head: 3h^2 + 158h + 250
    for h in (16, 34):
        m = build_model("affine_cnn", image_size=40, channels=8, depth=2, hidden=h)
        assert sum(p.numel() for p in m.parameters()) == 3 * h * h + 158 * h + 250
        assert m.lift.mlp[0].out_features == h and m.convs[1].mlp[2].in_features == h
