"""Tiny datasets and configs shared by tests/train and tests/cli."""

from __future__ import annotations

import os

import ase.io

from equivar.data import embedded_path

STANDIN = "standin:PairPotential"


def write_tiny_dataset(path: str, n_frames: int = 24, with_isolated: bool = True, start: int = 0) -> str:
    """A few Cu/Au EMT frames from the embedded set (periodic, with stress) plus the isolated atoms."""
    frames = ase.io.read(embedded_path("cuau_emt"), ":")
    iso = [a for a in frames if a.info.get("config_type") == "IsolatedAtom"]
    md = [a for a in frames if a.info.get("config_type") != "IsolatedAtom"]
    # alternate the two temperatures so both config types are present
    pick = [md[(i * 37 + start) % len(md)] for i in range(n_frames)]
    ase.io.write(path, (iso if with_isolated else []) + pick, format="extxyz")
    return path


def tiny_config_dict(data_path: str, output_dir: str, **training) -> dict:
    t = {
        "epochs": 2,
        "batch_size": 4,
        "valid_batch_size": 8,
        "lr": 0.01,
        "forces_weight": 10.0,
        "stress_weight": 1.0,
        "scheduler_patience": 5,
    }
    t.update(training)
    return {
        "seed": 0,
        "dtype": "float64",
        "output_dir": output_dir,
        "progress": False,
        "data": {"train_file": data_path, "valid_fraction": 0.25, "r_max": 4.0},
        "model": {"name": STANDIN, "hidden": 16},
        "training": t,
    }


def tests_dir() -> str:
    return os.path.dirname(os.path.abspath(__file__))
