"""``equivar relax``: geometry (and optionally cell) relaxation with a trained model through ASE (BFGS or FIRE)."""
from __future__ import annotations

import argparse

import numpy as np

from ._mlip import add_model_arguments, parse_repeat, read_structure, setup_threads

HELP = "Relax a structure with a trained model (ASE)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_model_arguments(p)
    p.add_argument("--structure", required=True, help="structure (any ASE-readable file, embedded:NAME)")
    p.add_argument("--index", default="0", help="frame of --structure (default 0)")
    p.add_argument("--repeat", default=None, help="supercell, e.g. 2,2,2")
    p.add_argument("--optimizer", choices=["bfgs", "fire"], default="bfgs")
    p.add_argument("--fmax", type=float, default=0.01, help="force convergence threshold, eV/Å")
    p.add_argument("--steps", type=int, default=500, help="maximum optimizer steps")
    p.add_argument("--cell", action="store_true", help="also relax the cell (periodic structures; FrechetCellFilter)")
    p.add_argument("--rattle", type=float, default=0.0, help="displace atoms randomly by this std (Å) first")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--output", "-o", default="relaxed.xyz", help="relaxed structure (extxyz)")


def relax(atoms, calc, optimizer: str = "bfgs", fmax: float = 0.01, steps: int = 500, cell: bool = False) -> dict:
    """Relax ``atoms`` in place; return ``energy_start``/``energy_end`` (eV), ``fmax_start``/``fmax_end`` (eV/Å),
    ``steps`` and ``converged``.

    Raises ``ValueError`` when a cell relaxation more than halves or doubles the volume.
    """
    from ase.optimize import BFGS, FIRE

    atoms.calc = calc
    target = atoms
    if cell:
        if not atoms.pbc.all():
            raise ValueError("--cell needs a periodic structure (pbc in all directions)")
        from ase.filters import FrechetCellFilter

        target = FrechetCellFilter(atoms)
    e0 = atoms.get_potential_energy()
    f0 = float(np.linalg.norm(target.get_forces(), axis=1).max())
    opt = {"bfgs": BFGS, "fire": FIRE}[optimizer](target, logfile=None)
    if cell:
        v0 = atoms.get_volume()

        def guard():
            v = atoms.get_volume()
            if not 0.5 < v / v0 < 2.0:
                raise ValueError(f"cell relaxation diverged: volume {v0:.3g} -> {v:.3g} Å^3 after {opt.nsteps} steps "
                                 "(is the model trained on this kind of structure?)")

        opt.attach(guard, interval=1)
    converged = bool(opt.run(fmax=fmax, steps=steps))
    return {"energy_start": e0, "energy_end": atoms.get_potential_energy(), "fmax_start": f0,
            "fmax_end": float(np.linalg.norm(target.get_forces(), axis=1).max()), "steps": opt.nsteps,
            "converged": converged}


def run(args) -> int:
    import ase.io
    import torch

    from ..calculators import EquivarCalculator

    setup_threads(args)
    atoms = read_structure(args.structure, args.index)
    rep = parse_repeat(args.repeat)
    if rep:
        atoms = atoms.repeat(rep)
    if args.rattle:
        atoms.rattle(args.rattle, seed=args.seed)
    calc = EquivarCalculator(args.model, device=args.device, default_dtype=getattr(torch, args.dtype) if args.dtype else None)
    r = relax(atoms, calc, args.optimizer, args.fmax, args.steps, args.cell)
    ase.io.write(args.output, atoms, format="extxyz")
    print(f"relax ({args.optimizer}{', cell' if args.cell else ''}, {len(atoms)} atoms): "
          f"E {r['energy_start']:.4f} -> {r['energy_end']:.4f} eV, max force {r['fmax_start']:.3g} -> "
          f"{r['fmax_end']:.3g} eV/Å in {r['steps']} steps, {'converged' if r['converged'] else 'NOT converged'}")
    print(f"relaxed structure -> {args.output}")
    return 0 if r["converged"] else 1
