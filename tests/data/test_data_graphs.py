"""Neighbour lists against brute force (with PBC), graph/batch layout, loader sharding."""

import itertools

import numpy as np
import pytest
import torch

from equivar import data


def brute_force(pos, r_max, cell, pbc, n_img=4):
    ranges = [range(-n_img, n_img + 1) if p else range(1) for p in pbc]
    out = set()
    for s in itertools.product(*ranges):
        shift = np.array(s, float) @ cell
        for i in range(len(pos)):
            for j in range(len(pos)):
                if i == j and not any(s):
                    continue
                if np.linalg.norm(pos[j] - pos[i] + shift) < r_max:
                    out.add((i, j) + tuple(s))
    return out


CASES = {
    "open": (np.zeros((3, 3)), [False] * 3),
    "triclinic_small_cell": (np.array([[2.1, 0, 0], [0.7, 2.3, 0], [0.4, -0.5, 2.6]]), [True] * 3),
    "slab": (np.array([[3.0, 0, 0], [1.0, 2.8, 0], [0, 0, 0]]), [True, True, False]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_neighbor_list_matches_brute_force(case):
    cell, pbc = CASES[case]
    rng = np.random.default_rng(3)
    pos = rng.uniform(0, 2.5, size=(5, 3))
    r_max = 3.2
    ei, us, shifts = data.neighbor_list(pos, r_max, cell, pbc)
    got = {(int(a), int(b)) + tuple(int(x) for x in s) for a, b, s in zip(ei[0], ei[1], us)}
    assert got == brute_force(pos, r_max, cell, pbc)
    if case != "open":
        assert len(got) > 3 * len(pos)  # several images present
    vec = pos[ei[1]] - pos[ei[0]] + shifts  # contract: receiver - sender + shift
    assert (np.linalg.norm(vec, axis=1) < r_max).all()
    np.testing.assert_allclose(shifts, us @ cell)


def _cfg(n, seed, energy=True, pbc=False):
    rng = np.random.default_rng(seed)
    pos = rng.uniform(0, 3, size=(n, 3)) + np.arange(n)[:, None] * 0.5
    return data.Configuration(
        np.full(n, 6),
        pos,
        cell=np.eye(3) * 6 if pbc else np.zeros((3, 3)),
        pbc=pbc,
        energy=-float(n) if energy else None,
        forces=rng.normal(size=(n, 3)),
        stress=np.eye(3) if pbc else None,
    )


def test_collate_offsets_and_label_masking():
    gs = [data.config_to_graph(c, 3.0) for c in (_cfg(3, 0), _cfg(4, 1, energy=False, pbc=True), _cfg(2, 2))]
    b = data.collate(gs)
    assert b["ptr"].tolist() == [0, 3, 7, 9]
    assert b["batch"].tolist() == [0] * 3 + [1] * 4 + [2] * 2
    assert b["positions"].dtype == torch.float64 and b["atomic_numbers"].dtype == torch.long
    assert b["cell"].shape == (3, 3, 3) and b["pbc"].tolist() == [[False] * 3, [True] * 3, [False] * 3]
    e0 = gs[0]["edge_index"].shape[1]
    e1 = gs[1]["edge_index"].shape[1]
    assert torch.equal(b["edge_index"][:, e0 : e0 + e1], gs[1]["edge_index"] + 3)
    assert (b["batch"][b["edge_index"][0]] == b["batch"][b["edge_index"][1]]).all()  # edges stay in their graph
    assert b["energy"].tolist() == [-3.0, 0.0, -2.0] and b["energy_weight"].tolist() == [1.0, 0.0, 1.0]
    assert b["stress"].shape == (3, 3, 3) and b["stress_weight"].tolist() == [0.0, 1.0, 0.0]
    assert b["forces"].shape == (9, 3) and b["forces_weight"].tolist() == [1.0, 1.0, 1.0]
    vec = b["positions"][b["edge_index"][1]] - b["positions"][b["edge_index"][0]] + b["shifts"]
    assert vec.norm(dim=1).max() < 3.0
    unit = torch.einsum("ei,eij->ej", b["unit_shifts"], b["cell"][b["batch"][b["edge_index"][0]]])
    torch.testing.assert_close(unit, b["shifts"])


def test_loader_seeded_and_sharded():
    configs = [_cfg(2, i) for i in range(11)]
    for i, c in enumerate(configs):
        c.energy = float(i)
    ds = data.AtomicGraphDataset(configs, r_max=3.0)

    def order(loader, epoch):
        loader.sampler.set_epoch(epoch)
        return [int(x) for b in loader for x in b["energy"].tolist()]

    a = data.make_loader(ds, 3, shuffle=True, seed=0)
    assert order(a, 0) == order(data.make_loader(ds, 3, shuffle=True, seed=0), 0)
    assert order(a, 0) != order(a, 1)
    shards = [data.make_loader(ds, 4, shuffle=False, rank=r, world_size=2) for r in (0, 1)]
    seen = [len(list(s.sampler)) for s in shards]
    assert seen == [6, 5] and sorted(list(shards[0].sampler) + list(shards[1].sampler)) == list(range(11))
