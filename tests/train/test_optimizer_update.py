"""training.optimizer_update: the fused Adam update equals the multi-tensor one to round-off; bad values refused."""

import pytest
import torch

from equivar.models import EGNN
from equivar.train import TrainingConfig, config_from_dict
from equivar.train._trainer import make_optimizer


@pytest.mark.parametrize("optimizer", ["adam", "amsgrad", "adamw"])
def test_fused_update_equals_foreach(optimizer):
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    models = [EGNN(hidden_dim=8, num_layers=2) for _ in range(2)]
    models[1].load_state_dict(models[0].state_dict())
    start = [p.detach().clone() for p in models[0].parameters()]
    opts = []
    for model, update in zip(models, ("foreach", "fused")):
        cfg = TrainingConfig(optimizer=optimizer, lr=1e-2, weight_decay=1e-3, optimizer_update=update)
        opts.append(make_optimizer(model, cfg))
    assert opts[0].defaults["foreach"] and opts[1].defaults["fused"]
    for _ in range(5):
        grads = [torch.randn(p.shape, generator=g) for p in models[0].parameters()]
        for model, opt in zip(models, opts):
            for p, gr in zip(model.parameters(), grads):
                p.grad = gr.clone()
            opt.step()
    for a, b in zip(models[0].parameters(), models[1].parameters()):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)
    moved = max(float((a - b).abs().max()) for a, b in zip(models[0].parameters(), start))
    assert moved > 1e-3


def test_optimizer_update_validated():
    with pytest.raises(ValueError, match="training.optimizer_update must be foreach or fused, got 'fast'"):
        config_from_dict({"training": {"optimizer_update": "fast"}}).validate()
