"""MACE potential: symmetry, derivatives, stress, training, isolated atoms, hparams."""

import json
import time

import pytest
import torch
from mace_graphs import make_batch, random_molecule

from equivar.models import MACE, build_model
from equivar.testing import Typed, assert_equivariant
from equivar.tp import available_backends

R_MAX = 3.0
SMALL = dict(
    r_max=R_MAX,
    num_bessel=4,
    max_ell=2,
    num_channels=4,
    max_L=1,
    correlation=3,
    num_interactions=2,
    atomic_numbers=[1, 6, 8],
    atomic_energies=[-0.5, -37.8, -75.0],
    avg_num_neighbors=4.0,
    radial_mlp=[16, 16],
    readout_mlp=8,
)


def _model(dtype, **kw):
    hp = dict(SMALL, dtype="float64" if dtype == torch.float64 else "float32", seed=1)
    hp.update(kw)
    return MACE(**hp)


def _molecule(seed=0, n=6):
    gen = torch.Generator().manual_seed(seed)
    return random_molecule(n, [1, 6, 8], gen)


def _symmetry_fn(model):
    def fn(pos, z, edge_index, shifts):
        b = dict(
            positions=pos,
            atomic_numbers=z.squeeze(-1).round().long(),
            edge_index=edge_index,
            shifts=shifts,
            batch=torch.zeros(len(pos), dtype=torch.long),
            ptr=torch.tensor([0, len(pos)]),
        )
        out = model(b)
        return {
            "energy": out["energy"].detach().unsqueeze(-1),
            "forces": out["forces"].detach(),
            "node_energy": out["node_energy"].detach().unsqueeze(-1),
        }

    in_types = [Typed("positions", nodes=True), Typed("0e", nodes=True), "index", "1o"]
    out_types = {"energy": "0e", "forces": Typed("1o", nodes=True), "node_energy": Typed("0e", nodes=True)}
    return fn, in_types, out_types


def _symmetry_args(dtype):
    pos, Z = _molecule()
    b = make_batch([(pos, Z)], R_MAX, dtype)
    return [b["positions"], b["atomic_numbers"][:, None].to(dtype), b["edge_index"], b["shifts"]]


def _backend_model(backend, dtype, **kw):
    try:
        return _model(dtype, tp_backend=backend, **kw)
    except ValueError as e:
        pytest.skip(f"backend {backend!r} cannot build the MACE edge product: {e}")


def _is_exact(model):
    return all(getattr(getattr(i.tp, "backend", None), "exact", True) for i in model.interactions)


@pytest.mark.parametrize("backend", available_backends())
def test_mace_symmetries_every_backend(backend, dtype):
    """E invariant, F equivariant under rotations (with parity), translations, permutations."""
    model = _backend_model(backend, dtype)
    fn, it, ot = _symmetry_fn(model)
    tol = (1e-5 if dtype == torch.float32 else 1e-10) if _is_exact(model) else 1e-3
    assert_equivariant(
        fn, _symmetry_args(dtype), it, ot, permutations=True, translations=True, tolerance=tol, n_trials=2
    )


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
    fn, it, ot = _symmetry_fn(model)
    if variant.get("self_interaction") == "s2grid":
        # grid aliasing (~1e-6 at the default band limit) on top of rounding
        tol = 1e-4 if dtype == torch.float32 else 1e-5
    else:
        tol = 1e-5 if dtype == torch.float32 else 1e-10
    assert_equivariant(fn, _symmetry_args(dtype), it, ot, permutations=True, tolerance=tol, n_trials=2)


def test_mace_energy_independent_of_batching(dtype):
    model = _model(dtype)
    frames = [_molecule(s, n) for s, n in [(0, 5), (1, 3), (2, 6)]]
    joint = model(make_batch(frames, R_MAX, dtype))
    for g, fr in enumerate(frames):
        single = model(make_batch([fr], R_MAX, dtype))
        tol = 1e-5 if dtype == torch.float32 else 1e-11
        torch.testing.assert_close(joint["energy"][g : g + 1], single["energy"], rtol=tol, atol=tol)


@pytest.mark.parametrize("variant", [{}, dict(radial="spline")])
def test_mace_forces_match_finite_differences(variant):
    model = _model(torch.float64, **variant)
    pos, Z = _molecule(3, 5)
    b = make_batch([(pos, Z)], R_MAX)
    F = model(b)["forces"]
    h = 1e-5
    coords = [(0, 0), (1, 2), (2, 1), (3, 0), (4, 2), (4, 1)]  # a sample of coordinates keeps this fast
    for i, a in coords:
        e = []
        for s in (1, -1):
            p = pos.clone()
            p[i, a] += s * h
            e.append(model(make_batch([(p, Z)], R_MAX), compute_forces=False)["energy"].item())
        fd = -(e[0] - e[1]) / (2 * h)
        assert F[i, a].item() == pytest.approx(fd, rel=1e-6, abs=1e-8)


def _periodic_frame():
    gen = torch.Generator().manual_seed(5)
    cell = torch.tensor([[3.2, 0.1, 0.0], [0.3, 3.0, 0.2], [-0.1, 0.2, 3.4]], dtype=torch.float64)
    frac = torch.rand(4, 3, generator=gen, dtype=torch.float64)
    return frac @ cell, torch.tensor([6, 8, 1, 1]), cell, (True, True, True)


def test_mace_stress_matches_finite_strain():
    model = _model(torch.float64)
    pos, Z, cell, pbc = _periodic_frame()
    b = make_batch([(pos, Z, cell, pbc)], R_MAX)
    out = model(b, compute_stress=True)
    V = torch.linalg.det(cell).abs()
    h = 1e-5
    dE = torch.zeros(3, 3, dtype=torch.float64)
    for a in range(3):
        for c in range(a, 3):
            e = []
            for s in (1, -1):
                eps = torch.zeros(3, 3, dtype=torch.float64)
                eps[a, c] += s * h / 2
                eps[c, a] += s * h / 2
                F = torch.eye(3, dtype=torch.float64) + eps
                bb = dict(b)
                bb["positions"] = pos @ F
                bb["cell"] = (cell @ F)[None]
                bb["shifts"] = b["unit_shifts"] @ (cell @ F)
                e.append(model(bb, compute_forces=False)["energy"].item())
            dE[a, c] = dE[c, a] = (e[0] - e[1]) / (2 * h)
    torch.testing.assert_close(out["stress"][0], dE / V, rtol=1e-6, atol=1e-9)
    torch.testing.assert_close(out["virials"][0], -dE, rtol=1e-6, atol=1e-9)
    # same neighbour graph through `shifts` gives the same energy and forces
    plain = model(b)
    torch.testing.assert_close(plain["energy"], out["energy"])
    torch.testing.assert_close(plain["forces"], out["forces"])


def test_mace_stress_is_rotation_equivariant():
    model = _model(torch.float64)
    pos, Z, cell, pbc = _periodic_frame()
    R = torch.tensor([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    R = torch.linalg.matrix_exp(torch.tensor([[0, -0.3, 0.5], [0.3, 0, -0.2], [-0.5, 0.2, 0]], dtype=torch.float64)) @ R
    s1 = model(make_batch([(pos, Z, cell, pbc)], R_MAX), compute_stress=True)["stress"][0]
    s2 = model(make_batch([(pos @ R.T, Z, cell @ R.T, pbc)], R_MAX), compute_stress=True)["stress"][0]
    torch.testing.assert_close(s2, R @ s1 @ R.T, rtol=1e-9, atol=1e-12)


def test_isolated_atom_gets_E0(dtype):
    model = _model(dtype)
    pos = torch.tensor([[0.0, 0.0, 0.0], [10.0, 0.0, 0.0], [10.9, 0.0, 0.0]], dtype=torch.float64)
    b = make_batch([(pos, torch.tensor([8, 6, 1]))], R_MAX, dtype)
    out = model(b)
    assert out["node_energy"][0].item() == pytest.approx(-75.0, abs=1e-12)
    assert torch.all(out["forces"][0] == 0)
    single = model(make_batch([(pos[:1], torch.tensor([8]))], R_MAX, dtype))
    assert single["energy"].item() == pytest.approx(-75.0, abs=1e-12)
    assert single["forces"].abs().max().item() == 0.0


def test_hparams_roundtrip_and_state_dict():
    model = _model(torch.float64, radial="spline")
    hp = json.loads(json.dumps(model.hparams))
    clone = build_model(**hp)
    clone.load_state_dict(model.state_dict())
    b = make_batch([_molecule(4)], R_MAX)
    torch.testing.assert_close(clone(b)["energy"], model(b)["energy"], rtol=0, atol=0)
    assert clone.dtype == torch.float64


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
