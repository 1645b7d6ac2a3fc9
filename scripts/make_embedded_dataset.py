#!/usr/bin/env python
"""Generate the embedded demo dataset: Cu-Au alloy, ASE EMT, Langevin MD at two temperatures.

Writes ``src/equivar/data/embedded/cuau_emt.xyz`` (training pool: MD frames at
300 K and 900 K of randomly strained 8-atom triclinic fcc cells with random
Cu/Au occupation, plus isolated-atom references) and ``cuau_emt_test.xyz``
(a held-out 600 K set). Energies eV (info ``energy``), forces eV/Å (array
``forces``), stress eV/Å^3 (info ``stress``, 3x3). Deterministic for a seed.

    python scripts/make_embedded_dataset.py [--seed 0] [--trajectories 20] [--frames-per-traj 10]
"""

from __future__ import annotations

import argparse
import os
import warnings

import numpy as np
from ase import Atoms, units
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.io import write
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary

OUT = os.path.join(os.path.dirname(__file__), "..", "src", "equivar", "data", "embedded")


def labelled(atoms: Atoms, config_type: str) -> Atoms:
    """A copy with EMT energy/forces/stress stored as plain info/arrays (no calculator)."""
    a = Atoms(numbers=atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
    a.calc = EMT()
    e, f = a.get_potential_energy(), a.get_forces()
    s = a.get_stress(voigt=False) if a.pbc.any() else None
    a.calc = None
    a.info["energy"] = float(e)
    a.arrays["forces"] = f
    if s is not None:
        a.info["stress"] = s.reshape(-1)
    a.info["config_type"] = config_type
    return a


def trajectory(rng, temperature: float, n_frames: int, every: int, config_type: str) -> list[Atoms]:
    """Langevin MD of a random Cu/Au 2x2x2 primitive fcc cell (8 atoms, Vegard lattice constant) under a random strain (±2%)."""
    x_au = rng.uniform(0.15, 0.6)
    atoms = bulk("Cu", "fcc", a=3.61 * (1 - x_au) + 4.08 * x_au).repeat((2, 2, 2))  # Vegard's law
    atoms.numbers = np.where(rng.random(len(atoms)) < x_au, 79, 29)
    strain = np.eye(3) + rng.uniform(-0.02, 0.02, (3, 3)) * np.array([[1, 0.3, 0.3], [0.3, 1, 0.3], [0.3, 0.3, 1]])
    atoms.set_cell(atoms.cell.array @ strain, scale_atoms=True)
    atoms.calc = EMT()
    with warnings.catch_warnings():  # ASE >= 3.28 prefers thermalize_momenta (absent from older ASE)
        warnings.simplefilter("ignore", DeprecationWarning)
        MaxwellBoltzmannDistribution(atoms, temperature_K=2 * temperature, rng=rng)
    Stationary(atoms)
    dyn = Langevin(atoms, 2.0 * units.fs, temperature_K=temperature, friction=0.02, rng=rng, fixcm=False)
    dyn.run(100)  # equilibrate
    frames = []
    for _ in range(n_frames):
        dyn.run(every)
        frames.append(labelled(atoms, config_type))
    return frames


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--trajectories", type=int, default=20, help="per temperature")
    p.add_argument("--frames-per-traj", type=int, default=10)
    p.add_argument("--every", type=int, default=20, help="MD steps between frames")
    p.add_argument("--out", default=OUT)
    args = p.parse_args()
    rng = np.random.default_rng(args.seed)
    os.makedirs(args.out, exist_ok=True)
    train = []
    for z in (29, 79):
        train.append(labelled(Atoms(numbers=[z], positions=[[0, 0, 0]], pbc=False), "IsolatedAtom"))
    for temperature in (300.0, 900.0):
        for _ in range(args.trajectories):
            train += trajectory(rng, temperature, args.frames_per_traj, args.every, f"md_{int(temperature)}K")
    test = []
    for _ in range(5):
        test += trajectory(rng, 600.0, args.frames_per_traj, args.every, "md_600K")
    write(os.path.join(args.out, "cuau_emt.xyz"), train, format="extxyz")
    write(os.path.join(args.out, "cuau_emt_test.xyz"), test, format="extxyz")
    print(f"wrote {len(train)} training and {len(test)} test configurations to {os.path.abspath(args.out)}")


if __name__ == "__main__":
    main()
