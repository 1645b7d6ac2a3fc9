#!/usr/bin/env python
"""Interatomic-potential benchmarks, equivar side by side with mace-torch.

- ``epoch``: wall time of one training epoch on rMD17 ethanol (950 training
  configurations, split 01) at MACE's hyperparameters scaled down (32
  channels, max_L 1, max_ell 3, correlation 3, 2 layers, r_max 5 Å, batch 5,
  float32, AMSGrad, E:F weights 1:1000), through equivar's real trainer
  (loader, loss, clipping, EMA);
- ``md``: molecular-dynamics steps per second (ASE Velocity Verlet, 0.5 fs)
  on aspirin (21 atoms, rMD17 test frame 0) through each package's ASE
  calculator, float32 and float64.

The equivar side applies ``equivar.tune_allocator()`` first, as the
``equivar`` command does (``--no-tune-malloc`` to skip it).
mace-torch runs in its own interpreter (it pins e3nn 0.4.4), given with
``--mace-python``; the same measurement is made there by
``benchmarks/_mace_torch.py``.

    python benchmarks/mlip.py all --threads 2 [--mace-python /tmp/macevenv/bin/python]
    python benchmarks/mlip.py epoch --steps 40       # time 40 steps and extrapolate
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "..", "shared", "data", "rmd17")
HPARAMS = dict(
    name="mace",
    num_channels=32,
    max_L=1,
    max_ell=3,
    correlation=3,
    num_interactions=2,
    r_max=5.0,
    num_bessel=8,
    num_polynomial_cutoff=5,
    radial_mlp=[64, 64, 64],
)


class _Stop(Exception):
    pass


def bench_epoch(steps: int | None, dtype: str = "float32") -> dict:
    """Seconds for one epoch (or ``steps`` steps, extrapolated) of equivar's trainer on ethanol."""
    import torch

    from equivar import data as D
    from equivar.train import Trainer, TrainingConfig, build_model, complete_hparams

    configs = D.read_rmd17(os.path.join(DATA, "rmd17_ethanol_train_01.npz"))
    train, _ = D.random_split(configs, 0.05, seed=0)
    ds = D.AtomicGraphDataset(train, 5.0)
    e0s = D.fit_e0s_least_squares(train, [1, 6, 8])
    stats = D.graph_statistics(ds.graphs, e0s)
    hp = complete_hparams(
        HPARAMS,
        {
            "atomic_numbers": [1, 6, 8],
            "atomic_energies": [e0s[z] for z in (1, 6, 8)],
            "avg_num_neighbors": stats["avg_num_neighbors"],
            "scale": stats["rms_forces"],
            "shift": stats["mean_interaction_energy"],
            "dtype": dtype,
            "seed": 0,
        },
    )
    torch.manual_seed(0)
    model = build_model(hp).to(getattr(torch, dtype))
    cfg = TrainingConfig(
        batch_size=5,
        lr=0.01,
        optimizer="amsgrad",
        optimizer_update="fused",  # as configs/rmd17_ethanol.yaml
        energy_weight=1.0,
        forces_weight=1000.0,
    )
    loader = D.make_loader(ds, 5, shuffle=True, seed=0)
    n_batches = len(loader)
    warm = 3
    marks = {}

    def cb(event, trainer):
        if event == "step_end":
            if trainer.step == warm:
                marks["t0"] = time.perf_counter()
            if steps is not None and trainer.step == warm + steps:
                marks["t1"] = time.perf_counter()
                raise _Stop

    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        tr = Trainer(
            model, loader, None, cfg, tmp, torch.device("cpu"), progress=False, callbacks=[cb], log=lambda s: None
        )
        try:
            tr.train_epoch()  # the first epoch includes `warm` warm-up steps
            if steps is None:
                tr.epoch += 1
                t0 = time.perf_counter()
                tr.train_epoch()
                return {"epoch_s": time.perf_counter() - t0, "steps": n_batches, "measured": "full epoch"}
        except _Stop:
            pass
    per_step = (marks["t1"] - marks["t0"]) / steps
    return {
        "epoch_s": per_step * n_batches,
        "steps": n_batches,
        "measured": f"{steps} steps extrapolated",
        "step_ms": 1e3 * per_step,
    }


def bench_md(dtype: str, n_steps: int) -> dict:
    """MD steps/s on aspirin with an untrained model of the benchmark size (speed does not depend on the weights)."""
    import numpy as np
    from ase import Atoms, units
    from ase.md.verlet import VelocityVerlet

    from equivar.calculators import EquivarCalculator
    from equivar.train import build_model

    npz = np.load(os.path.join(DATA, "rmd17_aspirin_test_01.npz"))
    atoms = Atoms(numbers=npz["nuclear_charges"], positions=npz["coords"][0])
    model = build_model({**HPARAMS, "atomic_numbers": [1, 6, 8], "avg_num_neighbors": 15.0, "dtype": dtype})
    atoms.calc = EquivarCalculator(model)
    dyn = VelocityVerlet(atoms, 0.5 * units.fs)
    dyn.run(5)
    t0 = time.perf_counter()
    dyn.run(n_steps)
    return {"steps_per_s": n_steps / (time.perf_counter() - t0), "atoms": len(atoms)}


def run_mace(python: str, what: str, args) -> dict | None:
    cmd = [
        python,
        os.path.join(ROOT, "benchmarks", "_mace_torch.py"),
        what,
        "--threads",
        str(args.threads),
        "--md-steps",
        str(args.md_steps),
    ] + (["--steps", str(args.steps)] if args.steps else [])
    env = {**os.environ, "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1"}
    if args.mace_omp_default:  # libgomp's own default (spin, then sleep), what a mace-torch user gets
        env.pop("OMP_WAIT_POLICY", None)
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        print(f"mace-torch run failed:\n{out.stderr[-3000:]}", file=sys.stderr)
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("what", choices=["epoch", "md", "all"])
    p.add_argument(
        "--steps", type=int, default=None, help="time this many training steps and extrapolate (default: a full epoch)"
    )
    p.add_argument("--md-steps", type=int, default=200)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--mace-python", default=None, help="interpreter with mace-torch 0.3.16 installed")
    p.add_argument(
        "--mace-omp-default",
        action="store_true",
        help="run mace-torch without OMP_WAIT_POLICY (libgomp's default, spinning threads) instead of inheriting ours",
    )
    p.add_argument(
        "--no-tune-malloc",
        action="store_true",
        help="equivar side without equivar.tune_allocator() (the equivar command applies it)",
    )
    args = p.parse_args()
    import torch

    import equivar

    tuned = False if args.no_tune_malloc else equivar.tune_allocator()  # as the equivar command does
    torch.set_num_threads(args.threads)
    results = {"threads": args.threads, "torch": torch.__version__, "equivar_malloc_tuned": bool(tuned)}
    if args.what in ("epoch", "all"):
        r = bench_epoch(args.steps)
        results["equivar_epoch"] = r
        print(f"equivar   ethanol epoch ({r['steps']} steps of 5, {r['measured']}): {r['epoch_s']:.1f} s", flush=True)
        if args.mace_python:
            m = run_mace(args.mace_python, "epoch", args)
            if m:
                results["mace_epoch"] = m
                print(
                    f"mace-torch ethanol epoch ({m['measured']}): {m['epoch_s']:.1f} s -> equivar is "
                    f"{m['epoch_s'] / r['epoch_s']:.2f}x faster",
                    flush=True,
                )
    if args.what in ("md", "all"):
        for dtype in ("float32", "float64"):
            r = bench_md(dtype, args.md_steps)
            results[f"equivar_md_{dtype}"] = r
            print(f"equivar   aspirin MD {dtype}: {r['steps_per_s']:.1f} steps/s", flush=True)
        if args.mace_python:
            m = run_mace(args.mace_python, "md", args)
            if m:
                results["mace_md"] = m
                for dtype in ("float32", "float64"):
                    print(f"mace-torch aspirin MD {dtype}: {m[dtype]:.1f} steps/s", flush=True)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
