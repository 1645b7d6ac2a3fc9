"""``equivar demo`` (``make demo``): the main job end to end on the dataset shipped with the package.

1. data: 400 Cu/Au configurations labelled with ASE's EMT (8-atom triclinic
   cells, Langevin MD at 300 K and 900 K, energies, forces and stress; see
   ``scripts/make_embedded_dataset.py``), a held-out set at 600 K;
2. train a small MACE potential (time-budgeted, ~2.5 min on 2 cores);
3. evaluate: error tables per config_type (train / valid / 600 K test);
4. NVE molecular dynamics of a larger (16-atom) cell with the trained model
   through ASE, with energy drift, steps/s, and the model's forces checked
   against EMT along the trajectory;
5. a relaxation (BFGS) compared with EMT's;
6. a summary of the metrics.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

HELP = "The main job end to end on the embedded dataset"

DEMO_CONFIG = {
    "seed": 0,
    "dtype": "float32",
    "output_dir": "runs/demo",
    "overwrite": True,
    "data": {
        "train_file": "embedded:cuau_emt",
        "valid_fraction": 0.1,
        "test_files": {"test_600K": "embedded:cuau_emt_test"},
        "r_max": 4.0,
        # the isolated-atom EMT energies shipped in the file (least squares only if an element lacked one)
        "e0s": "auto",
    },
    "model": {"name": "mace", "num_channels": 16, "max_L": 1, "max_ell": 2, "correlation": 2, "num_interactions": 2},
    "training": {
        "epochs": 60,
        "max_time_s": 150.0,
        "batch_size": 5,
        "lr": 0.01,
        "energy_weight": 100.0,
        "forces_weight": 100.0,
        "stress_weight": 10.0,
        "ema_decay": 0.99,
        "scheduler_patience": 5,
    },
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--output-dir", default="runs/demo")
    p.add_argument("--time-budget", type=float, default=150.0, help="training seconds (default 150)")
    p.add_argument("--epochs", type=int, default=60, help="maximum epochs (default 60)")
    p.add_argument("--md-steps", type=int, default=200)
    p.add_argument("--relax-steps", type=int, default=200)
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (default 1: at this model size one thread is 2-3x faster than two on a "
        "2-core machine, see README 'CPU settings'; 0 keeps torch's default)",
    )
    p.add_argument(
        "--set",
        dest="overrides",
        action="extend",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="override a key of the demo's training config (as in equivar train)",
    )
    p.add_argument("--seed", type=int, default=0)


def _emt_errors(frames) -> dict:
    """Model vs EMT along MD frames: force MAE (meV/Å) and energy MAE after removing the mean offset (meV/atom)."""
    from ase.calculators.emt import EMT

    de, df = [], []
    for f in frames:
        ref = f.copy()
        ref.calc = EMT()
        de.append((f.get_potential_energy() - ref.get_potential_energy()) / len(f))
        df.append(np.abs(f.get_forces() - ref.get_forces()).ravel())
    de = np.array(de)
    return {
        "f_mae": 1e3 * float(np.concatenate(df).mean()),
        "e_mae": 1e3 * float(np.abs(de - de.mean()).mean()),
        "e_offset": 1e3 * float(de.mean()),
    }


def run(args) -> int:
    import ase.io
    import torch
    from ase.calculators.emt import EMT

    from ..calculators import EquivarCalculator
    from ..data import embedded_path
    from ..train import apply_overrides, config_from_dict, run_training
    from ._mlip import write_atoms_atomic
    from .md import format_md, run_md
    from .relax import relax

    t_start = time.perf_counter()
    if args.threads < 0:
        raise ValueError(f"--threads must be >= 0 (0: torch's default), got {args.threads}")
    cfg = config_from_dict(DEMO_CONFIG)
    if args.threads:
        cfg.num_threads = args.threads  # applied by run_training and stored in the run's config.yaml
        torch.set_num_threads(args.threads)
    cfg.output_dir = args.output_dir
    cfg.seed = args.seed
    cfg.training.max_time_s = args.time_budget
    cfg.training.epochs = args.epochs
    cfg = apply_overrides(cfg, args.overrides).validate()
    line = "=" * 78
    print(f"{line}\nequivar demo: train -> evaluate -> MD -> relax on the embedded Cu/Au EMT dataset\n{line}")
    print(
        f"[1/4] training a MACE potential ({cfg.model}), {cfg.dtype}, "
        f"budget {cfg.training.max_time_s:.0f} s / {cfg.training.epochs} epochs, torch threads {torch.get_num_threads()}"
    )
    res = run_training(cfg)
    t_train = time.perf_counter() - t_start
    test_row = next((r for r in res.rows if r["set"] == "test_600K" and r["config_type"] in ("md_600K", "all")), {})
    valid_row = next((r for r in res.rows if r["set"] == "valid" and r["config_type"] == "all"), {})
    model_path = os.path.join(cfg.output_dir, "model.pt")

    print("\n[2/4] NVE molecular dynamics with the trained model (float64 calculator)")
    atoms = ase.io.read(embedded_path("cuau_emt_test"), index=0).repeat((2, 1, 1))
    atoms.calc = None
    calc = EquivarCalculator(model_path, default_dtype=torch.float64)
    md = run_md(
        atoms,
        calc,
        steps=args.md_steps,
        dt=2.0,
        temperature=600.0,
        integrator="verlet",
        seed=args.seed,
        interval=max(1, args.md_steps // 10),
        keep_frames=True,
    )
    print(format_md(md, "verlet", len(atoms)))
    emt = _emt_errors(md["frames"])
    print(
        f"model vs EMT on {len(md['frames'])} MD snapshots (16-atom cell, never seen in training): "
        f"F MAE {emt['f_mae']:.1f} meV/Å, E MAE {emt['e_mae']:.2f} meV/atom (after a constant offset of "
        f"{emt['e_offset']:.1f} meV/atom)"
    )
    write_atoms_atomic(os.path.join(cfg.output_dir, "md.xyz"), md["frames"])

    print("\n[3/4] relaxation (BFGS) of a rattled 8-atom cell, model vs EMT")
    start = ase.io.read(embedded_path("cuau_emt_test"), index=25)
    start.calc = None
    mine, ref = start.copy(), start.copy()
    r_model = relax(
        mine, EquivarCalculator(model_path, default_dtype=torch.float64), "bfgs", fmax=0.02, steps=args.relax_steps
    )
    r_emt = relax(ref, EMT(), "bfgs", fmax=0.02, steps=args.relax_steps)
    mine.calc = EMT()
    e_emt_at_model = mine.get_potential_energy()
    dpos = float(np.abs(mine.positions - ref.positions).max())
    print(
        f"model: {r_model['steps']} steps, {'converged' if r_model['converged'] else 'NOT converged'}; "
        f"EMT: {r_emt['steps']} steps. EMT energy at the model's minimum - EMT minimum: "
        f"{1e3 * (e_emt_at_model - r_emt['energy_end']) / len(mine):.2f} meV/atom; max position difference "
        f"{dpos:.3f} Å"
    )

    total = time.perf_counter() - t_start
    n_params = sum(p.numel() for p in res.model.parameters())
    print(f"\n[4/4] summary\n{line}")
    print("data      400 EMT configurations (Cu/Au, 300 K + 900 K), test: 50 at 600 K")
    print(f"model     MACE, {n_params} parameters, {cfg.dtype}; {len(res.history)} epochs in {t_train:.0f} s")

    def fmt(r):
        return (
            f"E {r.get('mae_e_per_atom', float('nan')):.2f} meV/atom, F {r.get('mae_f', float('nan')):.1f} meV/Å, "
            f"S {r.get('mae_s', float('nan')):.2f} meV/Å³ (MAE)"
        )

    print(f"valid     {fmt(valid_row)}")
    print(f"test 600K {fmt(test_row)}")
    print(
        f"MD        {md['steps_per_s']:.1f} steps/s ({len(atoms)} atoms), NVE drift {md['drift_rate']:+.2f} meV/atom/ps, "
        f"F vs EMT {emt['f_mae']:.1f} meV/Å"
    )
    print(f"relax     {1e3 * (e_emt_at_model - r_emt['energy_end']) / len(mine):.2f} meV/atom above EMT's minimum")
    print(f"outputs   {cfg.output_dir}/ (model.pt, metrics.csv, errors.md, learning_curves.png, parity.png, md.xyz)")
    print(f"total     {total:.0f} s\n{line}")
    return 0
