"""``equivar relax``: geometry (and optionally cell) relaxation with a trained model through ASE (BFGS or FIRE)."""

from __future__ import annotations

import argparse
import os

import numpy as np

from ._mlip import (
    add_model_arguments,
    check_model_elements,
    check_model_file,
    check_output_file,
    parse_index,
    parse_repeat,
    prepare_output_dir,
    read_structure,
    require,
    setup_threads,
    write_atoms_atomic,
)
from ._model_kind import require_potential

HELP = "Relax a structure with a trained model (ASE)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_model_arguments(p)
    p.add_argument(
        "--structure",
        required=True,
        help="structure: extxyz/ASE-readable, rMD17 .npz or embedded:NAME (as eval's --data)",
    )
    p.add_argument("--format", default=None, help="ASE format or 'rmd17' (default: guess from the file)")
    p.add_argument("--index", default="0", help="frame of --structure (default 0; -1 the last)")
    p.add_argument("--repeat", default=None, help="supercell, e.g. 2,2,2")
    p.add_argument("--optimizer", choices=["bfgs", "fire"], default="bfgs")
    p.add_argument("--fmax", type=float, default=0.01, help="force convergence threshold, eV/Å (> 0)")
    p.add_argument("--steps", type=int, default=500, help="maximum optimizer steps (>= 1)")
    p.add_argument("--cell", action="store_true", help="also relax the cell (periodic structures; FrechetCellFilter)")
    p.add_argument("--rattle", type=float, default=0.0, help="displace atoms randomly by this std (Å, >= 0) first")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--output",
        "-o",
        default=None,
        help="relaxed structure (extxyz); default OUT_DIR/<structure>_frame<index>_relaxed.xyz",
    )
    p.add_argument(
        "--out-dir",
        default=None,
        help="directory of the default --output (default: the model's directory, i.e. its training run)",
    )


def relax(atoms, calc, optimizer: str = "bfgs", fmax: float = 0.01, steps: int = 500, cell: bool = False) -> dict:
    """Relax ``atoms`` in place; return ``energy_start``/``energy_end`` (eV), ``fmax_start``/``fmax_end`` (eV/Å),
    ``steps`` and ``converged``.

    Raises ``ValueError`` when a cell relaxation more than halves or doubles the volume.
    """
    from ase.optimize import BFGS, FIRE

    if not fmax > 0:
        raise ValueError(f"fmax must be a positive force threshold in eV/Å, got {fmax}")
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
                raise ValueError(
                    f"cell relaxation diverged: volume {v0:.3g} -> {v:.3g} Å^3 after {opt.nsteps} steps "
                    "(is the model trained on this kind of structure?)"
                )

        opt.attach(guard, interval=1)
    converged = bool(opt.run(fmax=fmax, steps=steps))
    return {
        "energy_start": e0,
        "energy_end": atoms.get_potential_energy(),
        "fmax_start": f0,
        "fmax_end": float(np.linalg.norm(target.get_forces(), axis=1).max()),
        "steps": opt.nsteps,
        "converged": converged,
    }


def default_output(model: str, structure: str, index: int, out_dir=None) -> str:
    """``OUT_DIR/<structure>_frame<index>_relaxed.xyz``; ``OUT_DIR`` defaults to the model file's directory."""
    stem = os.path.splitext(
        os.path.basename(structure.split(":", 1)[1] if structure.startswith("embedded:") else structure)
    )[0]
    out_dir = out_dir if out_dir is not None else (os.path.dirname(model) or ".")
    return os.path.join(out_dir, f"{stem}_frame{index}_relaxed.xyz")


def run(args) -> int:
    import torch

    from ..calculators import EquivarCalculator

    check_model_file(args.model)
    require_potential(args.model, "relax")
    require(args.fmax > 0 and np.isfinite(args.fmax), "--fmax", args.fmax, "a positive force threshold in eV/Å")
    require(args.steps >= 1, "--steps", args.steps, ">= 1")
    require(args.rattle >= 0 and np.isfinite(args.rattle), "--rattle", args.rattle, ">= 0 Å")
    index = parse_index(args.index)
    rep = parse_repeat(args.repeat)
    output = args.output or default_output(args.model, args.structure, index, args.out_dir)
    if args.output is None:
        prepare_output_dir(os.path.dirname(output) or ".", "--out-dir")
    check_output_file(output, "--output", {"--model": args.model, "--structure": args.structure})
    setup_threads(args)
    atoms = read_structure(args.structure, index, args.format)
    if rep:
        atoms = atoms.repeat(rep)
    if args.rattle:
        atoms.rattle(args.rattle, seed=args.seed)
    calc = EquivarCalculator(
        args.model, device=args.device, default_dtype=getattr(torch, args.dtype) if args.dtype else None
    )
    check_model_elements(atoms, calc)
    r = relax(atoms, calc, args.optimizer, args.fmax, args.steps, args.cell)
    atoms.info.pop("equivar_source", None)
    write_atoms_atomic(output, atoms)
    print(
        f"relax ({args.optimizer}{', cell' if args.cell else ''}, {len(atoms)} atoms): "
        f"E {r['energy_start']:.4f} -> {r['energy_end']:.4f} eV, max force {r['fmax_start']:.3g} -> "
        f"{r['fmax_end']:.3g} eV/Å in {r['steps']} steps, {'converged' if r['converged'] else 'NOT converged'}"
    )
    print(f"relaxed structure -> {output}")
    return 0 if r["converged"] else 1
