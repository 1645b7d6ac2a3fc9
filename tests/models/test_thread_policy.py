"""A MACE force-loss step under equivar._threads.thread_policy on 2 threads equals the 1-thread step bit for bit."""

import torch
from mace_graphs import SMALL_MACE, make_batch, random_molecule

from equivar import _threads
from equivar.models import MACE


def _force_loss_grads(model, batch):
    out = model(batch, compute_forces=True)
    loss = out["energy"].square().sum() + 10.0 * out["forces"].square().sum()
    grads = torch.autograd.grad(loss, [p for p in model.parameters() if p.requires_grad])
    return [out["energy"].detach(), out["forces"].detach(), *grads]


def test_training_step_in_policy_equals_one_thread_step(dtype):
    """A force-loss step (forward, forces with create_graph, double backward) on 2 threads inside the policy gives
    the 1-thread values bit for bit: torch ops on one thread, the native kernels' rows each on one thread."""
    gen = torch.Generator().manual_seed(11)
    frames = [random_molecule(9, [1, 6, 8], gen) for _ in range(4)]
    batch = make_batch(frames, SMALL_MACE["r_max"], dtype)
    assert batch["edge_index"].shape[1] >= 128  # enough edges that the kernels split them over threads
    model = MACE(**SMALL_MACE, dtype="float64" if dtype == torch.float64 else "float32", seed=3)
    model.train()
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = _force_loss_grads(model, batch)
        torch.set_num_threads(2)
        with _threads.thread_policy(batch["edge_index"].shape[1]):
            assert _threads.kernel_threads() == 2
            two = _force_loss_grads(model, batch)
    finally:
        torch.set_num_threads(before)
    assert len(one) == len(two) > 10
    for k, (a, b) in enumerate(zip(one, two)):
        assert torch.equal(a, b), f"tensor {k} differs between the 1-thread step and the 2-thread policy step"
    assert one[1].abs().max() > 0  # forces are not trivially zero
