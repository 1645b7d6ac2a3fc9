"""N-body simulators: the original generators' outputs, recipe statistics, determinism, integrator order, cache."""

import os

import numpy as np
import pytest

from equivar.data import collate_scenes, nbody
from equivar.data.nbody import NBodyDatasetConfig, SimulationParams, draw_initial_conditions, energy, simulate

REFERENCE = os.path.join(os.path.dirname(__file__), "reference", "nbody_original.npz")


@pytest.fixture(scope="module")
def reference():
    with np.load(REFERENCE) as z:
        return {k: z[k] for k in z.files}


def test_charged_matches_original_generator(reference):
    traj = simulate(SimulationParams.recipe("charged"), 3, seed=43)
    assert traj.positions.shape == (3, 49, 5, 3)
    frames = [0, 30, 40, 48]
    for i in range(3):
        np.testing.assert_array_equal(traj.charges[i], reference[f"charged_charges_{i}"])
        # same draws, same arithmetic up to the distance formula's rounding: 1e-16 grows to <1e-11 over 4900 steps
        np.testing.assert_allclose(traj.positions[i, frames], reference[f"charged_positions_{i}"], rtol=0, atol=1e-10)
        np.testing.assert_allclose(traj.velocities[i, frames], reference[f"charged_velocities_{i}"], rtol=0, atol=1e-9)
    np.testing.assert_array_equal(traj.steps[[0, 30, 40]], [100, 3100, 4100])


def test_springs_and_gravity_match_original_generators(reference):
    traj = simulate(SimulationParams.recipe("springs"), 2, seed=42)
    for i in range(2):
        np.testing.assert_array_equal(traj.edges[i], reference[f"springs_edges_{i}"])
        np.testing.assert_allclose(traj.positions[i, [0, 48]], reference[f"springs_positions_{i}"], rtol=0, atol=1e-12)
    grav = simulate(SimulationParams.recipe("gravity", steps=500), 1, seed=43)
    assert grav.positions.shape == (1, 5, 100, 3)
    np.testing.assert_array_equal(grav.steps, [0, 100, 200, 300, 400])
    np.testing.assert_allclose(grav.positions[0, [0, 4]], reference["gravity_positions_0"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(grav.velocities[0, [0, 4]], reference["gravity_velocities_0"], rtol=0, atol=1e-11)


def test_recipe_statistics_of_initial_conditions():
    rs = np.random.RandomState(0)
    p = SimulationParams.recipe("charged")
    init = draw_initial_conditions(p, rs, 2000)
    q = init.charges
    assert set(np.unique(q)) == {-1.0, 1.0}  # the zero charge has probability 0
    assert abs((q > 0).mean() - 0.5) < 4 * np.sqrt(0.25 / q.size)
    np.testing.assert_allclose(init.edges, q[:, :, None] * q[:, None, :])
    np.testing.assert_allclose(np.linalg.norm(init.vel, axis=-1), 0.5, rtol=1e-12)
    assert abs(init.pos.std() - 1.0) < 0.02 and abs(init.pos.mean()) < 0.02
    sp = draw_initial_conditions(SimulationParams.recipe("springs"), rs, 2000)
    e = sp.edges
    np.testing.assert_array_equal(e, e.transpose(0, 2, 1))
    assert np.all(np.diagonal(e, axis1=1, axis2=2) == 0)
    off = e[:, ~np.eye(5, dtype=bool)]
    assert set(np.unique(off)) == {0.0, 1.0} and abs(off.mean() - 0.5) < 0.02
    assert abs(sp.pos.std() - 0.5) < 0.01
    gr = draw_initial_conditions(SimulationParams.recipe("gravity", n_particles=10), rs, 500)
    np.testing.assert_allclose(gr.vel.mean(axis=1), 0.0, atol=1e-14)  # centre-of-mass frame
    assert abs(gr.pos.std() - 1.0) < 0.03


def test_force_clipping_per_component():
    # two opposite charges 0.05 apart at rest: Coulomb force 400 along x, clipped to 0.1/dt = 100
    pos0 = np.array([[[0.0, 0.0, 0.0], [0.05, 0.0, 0.0]]])
    vel0 = np.zeros_like(pos0)
    edges = np.array([[[1.0, -1.0], [-1.0, 1.0]]])
    kw = dict(n_particles=2, steps=2, sample_every=1)
    _, v, _ = nbody.integrate(SimulationParams.recipe("charged", **kw), pos0, vel0, edges)
    np.testing.assert_allclose(v[0, 0, :, 0], [0.001 * 100, -0.001 * 100], rtol=1e-12)
    _, v, _ = nbody.integrate(SimulationParams.recipe("charged", clip_forces=False, **kw), pos0, vel0, edges)
    np.testing.assert_allclose(v[0, 0, :, 0], [0.001 * 400, -0.001 * 400], rtol=1e-12)


def test_forces_are_minus_energy_gradient():
    rs = np.random.RandomState(3)
    for system in ("charged", "springs", "gravity"):
        p = SimulationParams.recipe(system, n_particles=4)
        init = draw_initial_conditions(p, rs, 2)
        x, e = init.pos, init.edges
        f = nbody.forces(p, x, e)
        h = 1e-6
        num = np.zeros_like(x)
        for idx in np.ndindex(x.shape[1:]):
            d = np.zeros_like(x)
            d[(slice(None), *idx)] = h
            zero = np.zeros_like(x)
            num[(slice(None), *idx)] = -(energy(p, x + d, zero, e) - energy(p, x - d, zero, e)) / (2 * h)
        np.testing.assert_allclose(f, num, rtol=1e-6, atol=1e-7 * np.abs(f).max(), err_msg=system)


def _max_energy_error(system, dt, count=16, t_total=1.0, **kw):
    p = SimulationParams.recipe(
        system, dt=dt, steps=round(t_total / dt), sample_every=round(0.05 / dt), clip_forces=False, **kw
    )
    traj = simulate(p, count, seed=11)
    e = energy(p, traj.positions, traj.velocities, traj.edges[:, None])
    return np.abs(e - e[:, :1]).max(axis=1)


@pytest.mark.parametrize(
    ("system", "order", "kw"), [("charged", 1, {}), ("springs", 1, {}), ("gravity", 2, {"n_particles": 6})]
)
def test_energy_error_order_without_clipping(system, order, kw):
    """Symplectic Euler (charged, springs) has O(dt) energy error, leapfrog (gravity) O(dt^2), without drift."""
    coarse = _max_energy_error(system, 2e-3, **kw)
    fine = _max_energy_error(system, 1e-3, **kw)
    ratio = np.median(coarse / fine)
    assert abs(ratio - 2**order) < 0.1 * 2**order, ratio
    assert np.median(fine) < {1: 0.05, 2: 1e-3}[order]


def test_deterministic_per_seed_and_split_stream_positions(tmp_path):
    p = SimulationParams.recipe("charged", steps=300)
    a, b = simulate(p, 3, seed=5), simulate(p, 3, seed=5)
    np.testing.assert_array_equal(a.positions, b.positions)
    assert not np.allclose(a.positions, simulate(p, 3, seed=6).positions)
    cfg = NBodyDatasetConfig(simulation=p, n_train=2, n_train_drawn=5, n_valid=2, n_test=1, seed=43)
    splits = nbody.load_nbody(cfg, cache_dir=str(tmp_path))
    stream = simulate(p, 8, seed=43)  # one stream: 5 training (2 used), 2 validation, 1 test
    np.testing.assert_allclose(splits.train.positions, stream.positions[:2], rtol=0, atol=1e-13)
    np.testing.assert_allclose(splits.valid.positions, stream.positions[5:7], rtol=0, atol=1e-13)
    np.testing.assert_allclose(splits.test.positions, stream.positions[7:], rtol=0, atol=1e-13)
    assert not splits.from_cache and splits.generation_seconds > 0 and splits.generation_cpu_seconds > 0
    again = nbody.load_nbody(cfg, cache_dir=str(tmp_path))
    assert again.from_cache and again.path == splits.path
    assert again.generation_seconds == splits.generation_seconds
    assert again.generation_cpu_seconds == splits.generation_cpu_seconds
    np.testing.assert_array_equal(again.valid.velocities, splits.valid.velocities)
    other = nbody.load_nbody(
        NBodyDatasetConfig(simulation=p, n_train=2, n_train_drawn=5, n_valid=2, n_test=1, seed=44),
        cache_dir=str(tmp_path),
    )
    assert other.path != splits.path
    with open(splits.path, "wb") as fh:  # a damaged cache is regenerated, not trusted
        fh.write(b"not an npz")
    fixed = nbody.load_nbody(cfg, cache_dir=str(tmp_path))
    assert not fixed.from_cache
    np.testing.assert_array_equal(fixed.valid.positions, splits.valid.positions)
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]


def test_frame_pairs_and_windows_batches():
    p = SimulationParams.recipe("charged", steps=2000)
    traj = simulate(p, 3, seed=43)
    ds = nbody.frame_pairs(traj, input_frame=9, target_frame=15)
    item = ds[1]
    np.testing.assert_array_equal(item["pos"][:, 0].numpy(), traj.positions[1, 9])
    np.testing.assert_array_equal(item["vel"][:, 0].numpy(), traj.velocities[1, 9])
    np.testing.assert_array_equal(item["target"][:, 0].numpy(), traj.positions[1, 15])
    batch = collate_scenes([ds[0], ds[1]])
    assert batch["edge_index"].shape == (2, 40)
    s, r = batch["edge_index"]
    q = batch["node_attr"][:, 0]
    np.testing.assert_array_equal(batch["edge_attr"][:, 0].numpy(), (q[s] * q[r]).numpy())
    assert bool((batch["batch"][s] == batch["batch"][r]).all()) and bool((s != r).all())
    win = nbody.windows(traj, past=10, future=5, start=2, finite_difference_velocities=True)
    w = win[2]
    np.testing.assert_array_equal(w["pos"].numpy(), traj.positions[2, 2:12].transpose(1, 0, 2))
    np.testing.assert_array_equal(w["target"].numpy(), traj.positions[2, 12:17].transpose(1, 0, 2))
    np.testing.assert_allclose(w["vel"][:, 3].numpy(), traj.positions[2, 5] - traj.positions[2, 4])
    with pytest.raises(ValueError, match="start=10"):
        nbody.windows(traj, past=5, future=5, start=10)
    with pytest.raises(ValueError, match="target_frame=19"):
        nbody.frame_pairs(traj, input_frame=0, target_frame=19)


def test_bad_parameters_are_named():
    with pytest.raises(ValueError, match="'plasma'"):
        SimulationParams.recipe("plasma")
    with pytest.raises(ValueError, match="'dtt'"):
        SimulationParams.recipe("charged", dtt=0.1)
    with pytest.raises(ValueError, match="sample_every=300"):
        SimulationParams.recipe("charged", sample_every=300)
    with pytest.raises(ValueError, match="n_train=5"):
        NBodyDatasetConfig(n_train=5, n_train_drawn=4)


def test_batched_fetch_equals_collated_items():
    import torch

    traj = simulate(SimulationParams.recipe("charged", steps=500), 12, seed=2)
    ds = nbody.frame_pairs(traj, 1, 3)
    idx = [7, 0, 11, 3]
    fast = ds.__getitems__(idx)
    slow = collate_scenes([ds[i] for i in idx])
    assert fast.keys() == slow.keys()
    for k in slow:
        assert torch.equal(fast[k], slow[k]), k
    loader = torch.utils.data.DataLoader(ds, batch_size=5, shuffle=False, collate_fn=collate_scenes)
    first = next(iter(loader))
    assert torch.equal(first["pos"], collate_scenes([ds[i] for i in range(5)])["pos"])
    assert first["ptr"].tolist() == [0, 5, 10, 15, 20, 25]


def test_nbody_small_stream_matches_the_files_shipped_with_frame_averaging():
    """EGNN's ``nbody_small`` (seed 43: 10,000 training, 2,000 validation, 2,000 test trajectories) as shipped in
    github.com/omri1348/Frame-Averaging (``nbody/n_body_system/dataset/charges_*_charged5_initvel1small.npy``): the
    number of positive charges per split and the first and last charge vectors, read from those files. Equal
    charges over all 14,000 draws mean our stream is theirs (charges are drawn with each trajectory's positions
    and velocities), so FA-GNN and EGNN train and test on the authors' trajectories (BENCHMARKS.md, FA-GNN)."""
    p = SimulationParams.recipe("charged")
    rs = np.random.RandomState(43)
    shipped = {  # split: (positive charges, first three, last)
        "train": (25234, [[-1, 1, -1, -1, -1], [1, -1, 1, 1, 1], [1, 1, -1, -1, 1]], [1, -1, 1, 1, 1]),
        "valid": (5073, [[-1, 1, -1, -1, -1], [-1, -1, 1, 1, -1], [1, 1, 1, 1, -1]], [1, 1, -1, -1, 1]),
        "test": (5051, [[1, 1, -1, -1, 1], [1, 1, -1, 1, -1], [1, -1, 1, -1, 1]], [-1, 1, -1, -1, -1]),
    }
    for split, count in (("train", 10000), ("valid", 2000), ("test", 2000)):
        q = draw_initial_conditions(p, rs, count).charges.astype(int)
        positive, first, last = shipped[split]
        assert (int((q > 0).sum()), q[:3].tolist(), q[-1].tolist()) == (positive, first, last), split
