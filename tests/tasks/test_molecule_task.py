"""The molecule_diffusion task end to end on a tiny QM9 subset: both methods train (the loss falls), sample, score
and write an SDF RDKit reads back; the shipped configs load."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
import torch

pytest.importorskip("rdkit")

from equivar.data import rdkit_chem  # noqa: E402
from equivar.diffusion import NoiseSource  # noqa: E402
from equivar.tasks import build_task  # noqa: E402
from equivar.tasks.molecules import collate_molecules, encode_graphs, marginals  # noqa: E402
from equivar.train import config_from_dict, load_config, run_training  # noqa: E402

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")


def _cfg(tmp_path, shared_data, method, model):
    return config_from_dict(
        {
            "seed": 0,
            "dtype": "float64",
            "num_threads": 1,
            "output_dir": str(tmp_path / method),
            "progress": False,
            "task": {
                "name": "molecule_diffusion",
                "method": method,
                "timesteps": 50,
                "data": {"root": os.path.join(shared_data, "qm9"), "limit": 150, "max_valid": 16, "cache_dir": str(tmp_path)},
                "sample_count": 6,
                "sample_steps": 10,
            },
            "model": model,
            "training": {"epochs": 4, "batch_size": 16, "valid_batch_size": 16, "optimizer": "adam", "lr": 2e-3,
                         "ema_decay": None, "scheduler_patience": 1000},
        }
    )  # fmt: skip


@pytest.mark.parametrize(
    "method, model",
    [
        ("eqgat_diff", {"name": "eqgat_diff", "s_dim": 16, "v_dim": 4, "edge_dim": 8, "num_layers": 2}),
        ("edm", {"name": "edm_egnn", "hidden_dim": 16, "num_layers": 2}),
    ],
)
def test_trains_samples_and_scores(tmp_path, shared_data, method, model):
    res = run_training(_cfg(tmp_path, shared_data, method, model), log=lambda s: None)
    valid = [h["valid_loss"] for h in res.history]
    assert valid[-1] < 0.8 * valid[0], valid  # the same noise for the same molecules at every evaluation
    (row,) = res.rows
    assert row["molecules"] == 6
    for k in ("atom_stability", "mol_stability", "validity", "connected"):
        assert 0.0 <= row[k] <= 1.0
    mols = list(rdkit_chem().SDMolSupplier(os.path.join(res.output_dir, "samples.sdf"), sanitize=False, removeHs=False))
    assert len(mols) == 6 and all(m is not None and m.GetNumConformers() == 1 for m in mols)
    assert {a.GetSymbol() for m in mols for a in m.GetAtoms()} <= {"H", "C", "N", "O", "F"}


def test_batch_contract_and_priors(shared_data, tmp_path):
    task = build_task({"name": "molecule_diffusion", "data": {"root": os.path.join(shared_data, "qm9"), "limit": 40}})
    parts = task.data.load(log=lambda s: None)
    ds = encode_graphs(parts["train"])
    b = collate_molecules([ds[0], ds[1], ds[2]])
    n = [len(ds[k]["atoms"]) for k in range(3)]
    assert b["ptr"].tolist() == [0, n[0], n[0] + n[1], sum(n)]
    assert b["pairs"].shape[1] == sum(k * (k - 1) // 2 for k in n) and (b["pairs"][0] < b["pairs"][1]).all()
    assert torch.equal(b["pair_batch"], b["batch"][b["pairs"][0]])
    # the bond classes of the pairs are the molecules' bond orders: sum over pairs = sum of bond orders
    assert int(b["bonds"].sum()) == sum(int(g.bond_orders.sum()) for g in parts["train"][:3])
    torch.testing.assert_close(b["pos"][: n[0]].mean(0), torch.zeros(3, dtype=torch.float64), atol=1e-12, rtol=0)
    pri = marginals(ds)
    assert all(abs(sum(pri[k]) - 1) < 1e-12 for k in ("atoms", "charges", "bonds"))
    h = sum(int((it["atoms"] == 0).sum()) for it in ds.items) / sum(len(it["atoms"]) for it in ds.items)
    assert math.isclose(pri["atoms"][0], h, rel_tol=1e-12)
    assert sum(pri["num_atoms"].values()) == len(ds)


def test_validation_noise_is_fixed_per_molecule(shared_data):
    from equivar.models import EQGATDiff

    task = build_task(
        {"name": "molecule_diffusion", "timesteps": 20, "data": {"root": os.path.join(shared_data, "qm9"), "limit": 30}}
    )
    parts = task.data.load(log=lambda s: None)
    ds = encode_graphs(parts["train"])
    task._build(marginals(ds))
    torch.manual_seed(0)
    model = EQGATDiff(s_dim=8, v_dim=2, edge_dim=4, num_layers=1).double()
    b = collate_molecules([ds[k] for k in range(4)])
    a1, _ = task.loss(task.forward(model, b, False), b)
    a2, _ = task.loss(task.forward(model, b, False), b)
    assert float(a1) == float(a2)
    task.source = NoiseSource(0)
    t1, _ = task.loss(task.forward(model, b, True), b)
    t2, _ = task.loss(task.forward(model, b, True), b)
    assert float(t1) != float(t2)  # training draws new levels and noise every step
    with pytest.raises(ValueError, match="task.method 'eqgat_diff' needs a EQGATDiff model, got Linear"):
        task.forward(torch.nn.Linear(2, 2), b, True)


@pytest.mark.parametrize("name", ["qm9_eqgat_diff", "qm9_edm"])
def test_shipped_configs_load(name):
    cfg = load_config(os.path.join(ROOT, "configs", f"{name}.yaml"), ["task.data.limit=10"])
    task = build_task(cfg.task, cfg.training)
    assert task.data.split == "edm" and task.data.limit == 10 and task.sample_count == 1000
    assert np.isfinite(cfg.training.lr)
