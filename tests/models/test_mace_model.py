"""MACE potential: the potential test kit (equivar.testing), plus what is MACE's own: every tensor-product
backend and Facet option, seeding, errors, forces under no_grad / in training, overfitting."""

import time

import pytest
import torch
from mace_graphs import SMALL_MACE, make_batch, random_molecule

from equivar.models import MACE, build_model
from equivar.testing import PotentialTestKit, check_forces_finite_differences, check_hparams_roundtrip, check_symmetry
from equivar.tp import available_backends

R_MAX = 3.0
SMALL = SMALL_MACE


def _model(dtype, **kw):
    hp = dict(SMALL, dtype="float64" if dtype == torch.float64 else "float32", seed=1)
    hp.update(kw)
    return MACE(**hp)


def _molecule(seed=0, n=6):
    gen = torch.Generator().manual_seed(seed)
    return random_molecule(n, [1, 6, 8], gen)


def _backend_model(backend, dtype, **kw):
    try:
        return _model(dtype, tp_backend=backend, **kw)
    except ValueError as e:
        pytest.skip(f"backend {backend!r} cannot build the MACE edge product: {e}")


def _is_exact(model):
    return all(getattr(getattr(i.tp, "backend", None), "exact", True) for i in model.interactions)


class TestMACEKit(PotentialTestKit):
    """Every check of the potential test kit (symmetry with parity, finite differences, stress, batching,
    isolated atoms, cutoff smoothness, round trips, native kernels on the training gradient)."""

    def make_model(self, dtype):
        return _model(dtype)


@pytest.mark.parametrize("backend", available_backends())
def test_mace_symmetries_every_backend(backend, dtype):
    """E invariant, F and stress equivariant under rotations (with parity), translations, permutations."""
    model = _backend_model(backend, dtype)
    tol = (1e-5 if dtype == torch.float32 else 1e-10) if _is_exact(model) else 1e-3
    check_symmetry(model, tolerance=tol)


@pytest.mark.parametrize(
    "variant",
    [
        dict(radial="spline"),
        dict(self_interaction="s2grid"),
        dict(radial="spline", self_interaction="s2grid", residual_first=True),
    ],
)
def test_mace_symmetries_facet_options(variant, dtype):
    model = _model(dtype, **variant)
    if variant.get("self_interaction") == "s2grid":
        # grid aliasing (~1e-6 at the default band limit) on top of rounding
        tol = 1e-4 if dtype == torch.float32 else 1e-5
    else:
        tol = 1e-5 if dtype == torch.float32 else 1e-10
    check_symmetry(model, tolerance=tol)


def test_mace_spline_radial_forces_and_hparams():
    """The spline radial variant: forces = finite differences, hparams round trip bit for bit."""
    model = _model(torch.float64, radial="spline")
    check_forces_finite_differences(model)
    assert check_hparams_roundtrip(model, tolerance=0.0) == 0.0


def test_seed_controls_init_and_leaves_global_rng():
    state = torch.random.get_rng_state()
    a, b = _model(torch.float32, seed=3), _model(torch.float32, seed=3)
    assert torch.equal(torch.random.get_rng_state(), state)
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)
    c = _model(torch.float32, seed=4)
    assert not all(torch.equal(p, q) for p, q in zip(a.parameters(), c.parameters()))


def test_errors_are_clear():
    model = _model(torch.float32)
    b = make_batch([(torch.zeros(1, 3), torch.tensor([26]))], R_MAX)
    with pytest.raises(ValueError, match=r"\[26\].*\[1, 6, 8\]"):
        model(b)
    with pytest.raises(KeyError, match="edge_index"):
        model({"positions": torch.zeros(1, 3), "atomic_numbers": torch.tensor([1])})
    with pytest.raises(ValueError, match="radial"):
        _model(torch.float32, radial="rbf")
    with pytest.raises(ValueError, match="atomic_energies"):
        _model(torch.float32, atomic_energies=[0.0])
    with pytest.raises(ValueError, match="unknown model"):
        build_model(name="nope")


def test_forces_under_no_grad_and_eval_graph():
    model = _model(torch.float32).eval()
    b = make_batch([_molecule(2)], R_MAX, torch.float64)  # float64 data into a float32 model
    with torch.no_grad():
        out = model(b)
    assert out["forces"].dtype == torch.float32 and out["forces"].abs().sum() > 0
    model.train()
    out = model(b)
    assert out["forces"].requires_grad  # create_graph in training: forces loss can be backpropagated
    out["forces"].pow(2).sum().backward()
    assert all(p.grad is not None for p in model.interactions[0].linear.parameters())


def _pair_energy(pos, Z, batch, G):
    """Reference labels: a smooth Morse-like pair potential (per-element depth)."""
    pos = pos.detach().clone().requires_grad_(True)
    d = {1: 0.3, 6: 0.9, 8: 0.6}
    eps = torch.tensor([d[int(z)] for z in Z], dtype=pos.dtype)
    i, j = torch.triu_indices(len(pos), len(pos), 1)
    same = batch[i] == batch[j]
    i, j = i[same], j[same]
    r = (pos[i] - pos[j]).norm(dim=-1)
    e_pair = (eps[i] * eps[j]).sqrt() * ((1 - torch.exp(-1.5 * (r - 1.4))) ** 2 - 1) * (r < R_MAX)
    E = torch.zeros(G, dtype=pos.dtype).index_add(0, batch[i], e_pair)
    (F,) = torch.autograd.grad(-E.sum(), pos)
    return E.detach(), F


def test_overfits_ten_frames():
    gen = torch.Generator().manual_seed(0)
    frames = [random_molecule(n, [1, 6, 8], gen) for n in (3, 4, 3, 5, 4, 3, 4, 5, 3, 4)]
    b = make_batch(frames, R_MAX, torch.float32)
    E, F = _pair_energy(b["positions"], b["atomic_numbers"], b["batch"], 10)
    model = _model(torch.float32, atomic_energies=None, num_channels=8, radial_mlp=[16])
    t0 = time.time()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for step in range(100):
        out = model(b)
        loss = (out["energy"] - E).pow(2).mean() + 10 * (out["forces"] - F).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    print(f"overfit: loss {losses[0]:.3g} -> {min(losses[-10:]):.3g} in {time.time() - t0:.1f} s")
    assert min(losses[-10:]) < losses[0] / 10, (losses[0], losses[-10:])
