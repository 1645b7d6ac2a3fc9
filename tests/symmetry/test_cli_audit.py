"""`equivar audit` end to end on tiny data: PNGs and JSON for a non-equivariant MLP and an equivariant potential."""

import json
import os

import numpy as np
import pytest
import torch

from equivar.cli.main import main

FAST = [
    "--max-structures",
    "3",
    "--n-angles",
    "8",
    "--disc-resolution",
    "5",
    "--disc-angles",
    "90",
    "--n-elements",
    "2",
]


def _json(path):
    with open(path) as f:
        return json.load(f)


@pytest.fixture
def tiny_xyz(tmp_path):
    import ase
    import ase.io
    from ase.calculators.singlepoint import SinglePointCalculator

    rng = np.random.default_rng(0)
    frames = []
    for i in range(4):
        a = ase.Atoms(
            "CH2O", positions=rng.normal(size=(4, 3)) * 0.3 + np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1.2]])
        )
        a.calc = SinglePointCalculator(a, energy=float(-i * 0.1), forces=rng.normal(size=(4, 3)) * 0.1)
        frames.append(a)
    path = str(tmp_path / "tiny.xyz")
    ase.io.write(path, frames, format="extxyz")
    return path


class PairPotential(torch.nn.Module):
    """Equivariant toy potential with the equivar interface (pickled in the test)."""

    def forward(self, batch, compute_forces=True):
        pos = batch["positions"].detach().requires_grad_(True)
        s, r = batch["edge_index"]
        d = (pos[r] - pos[s] + batch["shifts"]).norm(dim=-1)
        e = torch.zeros(batch["ptr"].numel() - 1, dtype=pos.dtype).index_add(0, batch["batch"][r], (d - 1.0) ** 2)
        (g,) = torch.autograd.grad(e.sum(), pos)
        return {"energy": e, "forces": -g}


def test_mlp_demo_writes_plots_and_json(tiny_xyz, tmp_path, capsys):
    out = str(tmp_path / "audit")
    rc = main(
        [
            "audit",
            "--model",
            "mlp-demo",
            "--data",
            tiny_xyz,
            "--out",
            out,
            "--mlp-steps",
            "10",
            "--group",
            "SO3",
            "C4:z",
            "translations",
            "permutations",
            *FAST,
        ]
    )
    assert rc == 0
    files = set(os.listdir(out))
    for f in ("groups.png", "sweep_energy.png", "sweep_forces.png", "disc_energy.png", "disc_forces.png", "audit.json"):
        assert f in files, f
    rep = _json(os.path.join(out, "audit.json"))
    assert set(rep["groups"]) == {"SO3", "C4(z)", "translations", "permutations"}
    for g in rep["groups"].values():  # a flat MLP breaks every symmetry
        assert g["outputs"]["forces"]["aggregate"] > 1e-3
    assert len(rep["sweep"]["angles_deg"]) == 8
    assert "mlp-demo" in rep["meta"]["model"] and rep["meta"]["structures"] == 3
    assert "largest mean relative error" in capsys.readouterr().out


def test_pickled_equivariant_potential(tiny_xyz, tmp_path):
    path = str(tmp_path / "pair.pt")
    torch.save(PairPotential(), path)
    out = str(tmp_path / "audit2")
    rc = main(
        [
            "audit",
            "--model",
            path,
            "--data",
            tiny_xyz,
            "--out",
            out,
            "--r-max",
            "3.0",
            "--dtype",
            "float64",
            "--group",
            "O3",
            "translations",
            "permutations",
            "Oh",
            *FAST,
            "--disc-angles",
            "",
        ]
    )
    assert rc == 0
    rep = _json(os.path.join(out, "audit.json"))
    for name, g in rep["groups"].items():
        for k, v in g["outputs"].items():
            assert v["aggregate"] < 1e-12, (name, k, v["aggregate"])
    assert rep["meta"]["interface"] == "potential"


def test_errors_are_reported(tiny_xyz, tmp_path, capsys):
    assert main(["audit", "--model", str(tmp_path / "missing.pt"), "--data", tiny_xyz]) == 2
    assert "no such model file" in capsys.readouterr().err
    assert (
        main(
            [
                "audit",
                "--model",
                "mlp-demo",
                "--data",
                tiny_xyz,
                "--group",
                "SU2",
                "--mlp-steps",
                "1",
                "--out",
                str(tmp_path / "x"),
                *FAST,
            ]
        )
        == 2
    )


class FlatEnergy(torch.nn.Module):
    """positions [G, N, 3] -> energy [G]: the 'positions' interface, not rotation invariant."""

    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(12, 1).double()

    def forward(self, positions: torch.Tensor) -> torch.Tensor:
        return self.lin(positions.reshape(positions.shape[0], -1)).squeeze(-1)


@pytest.mark.filterwarnings("ignore:`torch.jit")
def test_torchscript_positions_module(tiny_xyz, tmp_path):
    path = str(tmp_path / "flat.pt")
    torch.jit.save(torch.jit.script(FlatEnergy()), path)
    out = str(tmp_path / "audit3")
    rc = main(
        ["audit", "--model", path, "--data", tiny_xyz, "--out", out, "--group", "SO3", "Ci", *FAST, "--disc-angles", ""]
    )
    assert rc == 0
    rep = _json(os.path.join(out, "audit.json"))
    assert rep["meta"]["interface"] == "positions"
    assert rep["groups"]["SO3"]["outputs"]["forces"]["aggregate"] > 1e-3


def test_checkpoint_of_a_model_whose_module_is_missing_says_where_it_lives(tiny_xyz, tmp_path, capsys):
    path = tmp_path / "m.pt"
    payload = {
        "format": "equivar-checkpoint",
        "version": 1,
        "hparams": {"name": "not_registered_anywhere", "r_max": 3.0},
        "state_dict": {"w": torch.zeros(2)},
        "model_class": "no_such_user_module:Model",
        "metadata": {},
    }
    from equivar.train import FORMAT

    payload["format"] = FORMAT
    torch.save(payload, path)
    assert main(["audit", "--model", str(path), "--data", tiny_xyz, "--out", str(tmp_path / "a")]) != 0
    err = capsys.readouterr().err
    assert "cannot rebuild the model" in err and "'no_such_user_module'" in err and "PYTHONPATH" in err
