"""A new potential (tests/models/toy_potential.py: node energies only) gets `equivar train` and `equivar md`
without any change to train/ or cli/."""

import os
import sys

import ase.io
import numpy as np
import torch
import yaml
from helpers import tiny_config_dict, write_tiny_dataset

from equivar.cli.main import main
from equivar.train import load_model

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "models"))


def test_toy_potential_trains_and_runs_md(tmp_path, monkeypatch, capsys):
    data = write_tiny_dataset(str(tmp_path / "tiny.xyz"))
    cfg = tiny_config_dict(data, str(tmp_path / "run"), epochs=3, lr=0.05)
    cfg["model"] = {"name": "toy_potential:ToyPotential"}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["train", "--config", str(tmp_path / "c.yaml")]) == 0
    rows = [r for r in (tmp_path / "run" / "metrics.csv").read_text().splitlines()[1:]]
    assert len(rows) == 3
    model = load_model(str(tmp_path / "run" / "model.pt"))
    assert type(model).__name__ == "ToyPotential" and model.hparams["name"] == "toy_potential:ToyPotential"
    # the data filled the hyperparameters the toy accepts (E0s from the isolated atoms, r_max, dtype), nothing else
    assert model.hparams["atomic_numbers"] == [29, 79] and model.hparams["r_max"] == 4.0
    assert model.hparams["dtype"] == "float64" and model.dtype == torch.float64
    assert model.isolated_atom_energy(29) == model.hparams["atomic_energies"][0]  # an isolated atom has its E0
    assert not torch.equal(model.b.detach(), torch.tensor(1.0, dtype=torch.float64))  # it trained
    capsys.readouterr()

    monkeypatch.chdir(tmp_path)
    frames = ase.io.read(data, ":")
    ase.io.write("start.xyz", [a for a in frames if len(a) > 1][0])
    args = ["md", "--model", "run/model.pt", "--structure", "start.xyz", "--steps", "20", "--dt", "1.0"]
    assert main(args + ["--trajectory", "md.xyz", "--interval", "5"]) == 0
    out = capsys.readouterr().out
    assert "NVE energy drift" in out
    traj = ase.io.read("md.xyz", ":")
    assert len(traj) == 5 and np.abs(traj[-1].positions - traj[0].positions).max() > 1e-4  # the atoms moved
