#!/usr/bin/env python
"""MD speed of a mace-torch model imported into equivar, against mace-torch's own MACECalculator.

One run measures both on the same model file, the same frame (rMD17 aspirin test frame 0, 21 atoms,
from rest), the same integrator (ASE Velocity Verlet, 0.5 fs) and the same thread count, in float32
and float64:

- equivar: the model converted by ``equivar convert --from-mace`` (a checkpoint), run by the loop of
  ``equivar md`` (:func:`equivar.cli.md.run_md`, no trajectory written) through
  :class:`~equivar.calculators.EquivarCalculator`;
- mace-torch: ``MACECalculator(model_paths=FILE, default_dtype=...)`` in mace-torch's own interpreter
  (``benchmarks/_mace_torch.py md --model FILE``; it pins e3nn 0.4.4).

Each side warms up 5 steps, then times ``--steps`` steps; ``--rounds`` rounds alternate the two sides.
Reported: the best round of each in steps per wall-second, and the median over rounds of the ratio of
steps per CPU-second (process time: on a shared machine it does not count the time other processes
hold the core, so it is the steadier measure of the work a step costs). Before timing, the float64 energies of the frame are
compared (they must agree to round-off). Without ``--model``, a model with the rMD17 recipe's blocks
at the speed benchmark's size (32x0e+32x1o, max_ell 3, correlation 3, 2 layers, r_max 5, radial MLP
[64, 64, 64]) is trained 10 steps on rMD17 ethanol frames by ``scripts/make_mace_fixture.py --set bench``.

    nice -n -15 python benchmarks/mace_import_md.py --mace-python /tmp/macevenv/bin/python --threads 1
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "..", "shared", "data", "rmd17")
SIDES = ("equivar", "mace")
DTYPES = ("float32", "float64")


def mace_env(threads: int) -> dict:
    return {
        **os.environ,
        "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1",
        "OMP_NUM_THREADS": str(threads),
        "MKL_NUM_THREADS": str(threads),
    }


def make_model(python: str, out: str, threads: int) -> str:
    cmd = [python, os.path.join(ROOT, "scripts", "make_mace_fixture.py"), "--set", "bench", "--out", out]
    r = subprocess.run(
        cmd + ["--data", DATA, "--threads", str(threads)], capture_output=True, text=True, env=mace_env(threads)
    )
    if r.returncode != 0:
        sys.exit(f"making the mace-torch model failed:\n{r.stderr[-3000:]}")
    return os.path.join(out, "mace_bench.model")


def frame():
    import numpy as np
    from ase import Atoms

    npz = np.load(os.path.join(DATA, "rmd17_aspirin_test_01.npz"))
    return Atoms(numbers=npz["nuclear_charges"], positions=npz["coords"][0])


def equivar_md(checkpoint: str, dtype: str, steps: int) -> dict:
    from equivar.calculators import EquivarCalculator
    from equivar.cli.md import run_md

    calc = EquivarCalculator(checkpoint, default_dtype=dtype)
    atoms = frame()
    atoms.calc = calc
    energy0 = float(atoms.get_potential_energy())
    run_md(atoms, calc, steps=5, temperature=0.0)  # warm-up
    atoms = frame()
    c0 = time.process_time()
    stats = run_md(atoms, calc, steps=steps, temperature=0.0, dt=0.5, integrator="verlet")
    cpu = time.process_time() - c0  # the steps and run_md's one warm-up force call
    return {"steps_per_s": stats["steps_per_s"], "steps_per_cpu_s": steps / cpu, "energy0": energy0}


def mace_md(python: str, model: str, steps: int, threads: int) -> dict:
    cmd = [
        python,
        os.path.join(ROOT, "benchmarks", "_mace_torch.py"),
        "md",
        "--model",
        model,
        "--md-steps",
        str(steps),
        "--threads",
        str(threads),
    ]
    r = subprocess.run(cmd, capture_output=True, text=True, env=mace_env(threads))
    if r.returncode != 0:
        sys.exit(f"mace-torch MD failed:\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--mace-python", default="/tmp/macevenv/bin/python", help="interpreter with mace-torch")
    p.add_argument("--model", default=None, help="mace-torch .model file (default: train one, see above)")
    p.add_argument("--steps", type=int, default=200, help="timed MD steps per side, dtype and round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()
    os.environ["OMP_NUM_THREADS"] = str(a.threads)
    import torch

    import equivar
    from equivar.cli.main import main as cli

    torch.set_num_threads(a.threads)
    equivar.tune_allocator()  # as the equivar command does
    with tempfile.TemporaryDirectory() as tmp:
        model = a.model or make_model(a.mace_python, tmp, a.threads)
        ckpt = os.path.join(tmp, "imported.pt")
        t0 = time.perf_counter()
        if cli(["convert", "--from-mace", model, "-o", ckpt]) != 0:
            sys.exit("equivar convert failed")
        convert_s = time.perf_counter() - t0
        rounds = {(side, dtype, unit): [] for side in SIDES for dtype in DTYPES for unit in ("wall", "cpu")}
        energies = {}
        for r in range(a.rounds):
            for dtype in DTYPES:
                res = equivar_md(ckpt, dtype, a.steps)
                rounds[("equivar", dtype, "wall")].append(res["steps_per_s"])
                rounds[("equivar", dtype, "cpu")].append(res["steps_per_cpu_s"])
                energies[f"equivar_{dtype}"] = res["energy0"]
            m = mace_md(a.mace_python, model, a.steps, a.threads)
            for dtype in DTYPES:
                rounds[("mace", dtype, "wall")].append(m[dtype])
                rounds[("mace", dtype, "cpu")].append(m[f"cpu_{dtype}"])
                energies[f"mace_{dtype}"] = m[f"energy0_{dtype}"]
            print(
                f"round {r + 1} (steps per wall s / per CPU s): "
                + ", ".join(
                    f"{side} {d} {rounds[(side, d, 'wall')][-1]:.1f} / {rounds[(side, d, 'cpu')][-1]:.1f}"
                    for side in SIDES
                    for d in DTYPES
                ),
                flush=True,
            )
    de = abs(energies["equivar_float64"] - energies["mace_float64"]) / abs(energies["mace_float64"])
    print(
        f"model {model}: converted in {convert_s:.1f} s; aspirin frame 0 energy (float64): equivar "
        f"{energies['equivar_float64']:.8f} eV, mace-torch {energies['mace_float64']:.8f} eV (rel. diff {de:.1e})"
    )
    print(
        "| dtype | threads | equivar md steps/s (wall, best) | mace-torch steps/s (wall, best) | ratio (wall) "
        "| ratio per CPU-second (median of rounds) |"
    )
    print("|---|---|---|---|---|---|")
    out = {
        "threads": a.threads,
        "steps": a.steps,
        "rounds": a.rounds,
        "torch": torch.__version__,
        "energy_rel_diff_float64": de,
        "raw": {"/".join(k): v for k, v in rounds.items()},
    }
    for dtype in DTYPES:
        e, m = max(rounds[("equivar", dtype, "wall")]), max(rounds[("mace", dtype, "wall")])
        cpu_ratios = sorted(x / y for x, y in zip(rounds[("equivar", dtype, "cpu")], rounds[("mace", dtype, "cpu")]))
        med = cpu_ratios[len(cpu_ratios) // 2]
        out[dtype] = {"equivar_steps_per_s": e, "mace_steps_per_s": m, "ratio_wall": e / m, "ratio_cpu": med}
        print(f"| {dtype} | {a.threads} | {e:.1f} | {m:.1f} | {e / m:.2f}x | {med:.2f}x |")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
