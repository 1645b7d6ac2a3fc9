#!/usr/bin/env python
"""MD throughput on periodic Cu/Au cells of ~100, ~1,000 and ~5,000 atoms, equivar vs mace-torch 0.3.16, one run.

Cells: random 50/50 Cu/Au occupation of an fcc lattice (Vegard lattice
constant 3.845 Å), 3x3x3, 6x6x7 and 11x11x10 cubic cells (108, 1008, 4840
atoms), thermalized with ASE's EMT (Maxwell-Boltzmann at 600 K, then 10
EMT Velocity Verlet steps of 2 fs); the same positions and velocities on
both sides. Model: the demo config's architecture (``equivar demo``: MACE,
16 channels, max_L 1 (16x0e+16x1o), max_ell 2, correlation 2, 2
interactions, r_max 4 Å, 8 Bessel functions, p = 5, radial MLP [64, 64,
64], readout MLP 16), one randomly initialized mace-torch ``ScaleShiftMACE``
(``RealAgnosticResidualInteractionBlock`` in every layer, float64,
``torch.manual_seed(0)``), saved once: mace-torch's ``MACECalculator`` reads
the file, equivar imports it with ``equivar.models.mace.from_mace`` (the
same weights and energies, so the same trajectories and edge counts on both
sides). Not trained: the cost of a step does not depend on the weight
values; the interaction energy is scaled by ``SCALE`` = 0.01 so that the
atoms move almost ballistically and stay a thermal fcc cell (the edge counts
of the cell are printed; after the runs they differ by a few per cent with
the number of steps each side ran in its time).

Measure: ASE Velocity Verlet (1 fs) through each package's ASE calculator
(``EquivarCalculator``; ``MACECalculator``, which also computes the stress
on every call), float32 and float64, after 2 warm-up steps, steps until
``--min-time`` seconds have passed (at least 2), wall time; reported as
atom-steps per second. equivar is measured twice: forces only (what Velocity
Verlet asks for) and forces + stress (the same work as MACECalculator); the
ratio uses the second. Each side runs in its own persistent worker (mace-torch
in its own interpreter, ``--mace-python``) with ``torch.set_num_threads(T)``;
the parent asks them in turn, per cell and dtype (interleaved, so load from
other jobs hits both alike).

    python benchmarks/mlip_md_cells.py --threads 1 2 [--sizes 108 1008 4840] [--mace-python /tmp/macevenv/bin/python]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings

CELLS = {108: (3, 3, 3), 1008: (6, 6, 7), 4840: (11, 11, 10)}
A_FCC = 0.5 * (3.61 + 4.08)  # Vegard's law at 50% Au
ARCH = dict(
    r_max=4.0,
    num_bessel=8,
    num_polynomial_cutoff=5,
    max_ell=2,
    num_channels=16,
    max_L=1,
    correlation=2,
    num_interactions=2,
    radial_mlp=[64, 64, 64],
    readout_mlp=16,
)
ELEMENTS = [29, 79]
AVG_NEIGHBORS = 15.0
#: interaction-energy scale of both random models: small, so that the atoms move almost ballistically from the
#: EMT-thermalized cell and the neighbour count stays that of the cell on both sides (untrained weights would
#: otherwise push atoms apart differently on the two sides); the cost of a step does not depend on it
SCALE = 0.01


def make_cells(sizes, out_dir: str, seed: int = 0) -> dict:
    """EMT-thermalized random Cu/Au fcc cells; ``{n_atoms: path.npz}`` (numbers, positions, cell, velocities)."""
    import numpy as np
    from ase.build import bulk
    from ase.calculators.emt import EMT
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary
    from ase.md.verlet import VelocityVerlet
    from ase.units import fs

    rng = np.random.default_rng(seed)
    paths = {}
    for n in sizes:
        atoms = bulk("Cu", "fcc", a=A_FCC, cubic=True).repeat(CELLS[n])
        atoms.numbers = np.where(rng.random(len(atoms)) < 0.5, 79, 29)
        atoms.calc = EMT()
        with warnings.catch_warnings():  # ASE >= 3.28 prefers thermalize_momenta (absent from older ASE)
            warnings.simplefilter("ignore", DeprecationWarning)
            MaxwellBoltzmannDistribution(atoms, temperature_K=600.0, rng=rng)
        Stationary(atoms)
        VelocityVerlet(atoms, 2.0 * fs).run(10)
        path = os.path.join(out_dir, f"cell_{n}.npz")
        np.savez(
            path,
            numbers=atoms.numbers,
            positions=atoms.positions,
            cell=atoms.cell.array,
            velocities=atoms.get_velocities(),
        )
        paths[n] = path
    return paths


def _atoms(path):
    import numpy as np
    from ase import Atoms

    d = np.load(path)
    atoms = Atoms(numbers=d["numbers"], positions=d["positions"], cell=d["cell"], pbc=True)
    atoms.set_velocities(d["velocities"])
    return atoms


def _edges(atoms, r_max) -> int:
    from ase.neighborlist import neighbor_list

    return len(neighbor_list("i", atoms, r_max))


def _time_md(atoms, min_time: float) -> dict:
    from ase.md.verlet import VelocityVerlet
    from ase.units import fs

    dyn = VelocityVerlet(atoms, 1.0 * fs)
    dyn.run(2)  # warm-up
    n, t0 = 0, time.perf_counter()
    while n < 2 or time.perf_counter() - t0 < min_time:
        dyn.run(1)
        n += 1
    dt = time.perf_counter() - t0
    return {"steps": n, "seconds": dt, "atom_steps_per_s": len(atoms) * n / dt}


def _equivar_calculators(dtype: str, mace_model: str | None = None) -> dict:
    """equivar's calculators (forces; forces + stress) on ``mace_model`` imported with ``from_mace`` (the same
    weights as mace-torch's side), or without a file on equivar's own randomly initialized model of ``ARCH``."""
    from equivar.calculators import EquivarCalculator
    from equivar.models import MACE

    if mace_model is not None:
        from equivar.models.mace import from_mace

        model = from_mace(mace_model, dtype=dtype)
    else:
        model = MACE(
            **ARCH,
            atomic_numbers=ELEMENTS,
            atomic_energies=[0.0, 0.0],
            avg_num_neighbors=AVG_NEIGHBORS,
            scale=SCALE,
            residual_first=True,
            dtype=dtype,
            seed=0,
        )

    class WithStress(EquivarCalculator):  # what MACECalculator does on every call
        def calculate(self, atoms=None, properties=("energy",), system_changes=None):
            from ase.calculators.calculator import all_changes

            super().calculate(atoms, ("energy", "forces", "stress"), system_changes or all_changes)

    return {"forces": EquivarCalculator(model), "forces+stress": WithStress(model)}


def write_mace_model(path: str) -> None:
    """mace-torch's ``ScaleShiftMACE`` of ``ARCH`` (float64, ``torch.manual_seed(0)``) saved to ``path``."""
    import numpy as np
    import torch
    from e3nn import o3
    from mace import modules

    torch.set_default_dtype(torch.float64)
    torch.manual_seed(0)
    inter = modules.interaction_classes["RealAgnosticResidualInteractionBlock"]
    model = modules.ScaleShiftMACE(
        r_max=ARCH["r_max"],
        num_bessel=ARCH["num_bessel"],
        num_polynomial_cutoff=ARCH["num_polynomial_cutoff"],
        max_ell=ARCH["max_ell"],
        interaction_cls=inter,
        interaction_cls_first=inter,
        num_interactions=ARCH["num_interactions"],
        num_elements=len(ELEMENTS),
        hidden_irreps=o3.Irreps(f"{ARCH['num_channels']}x0e+{ARCH['num_channels']}x1o"),
        MLP_irreps=o3.Irreps(f"{ARCH['readout_mlp']}x0e"),
        atomic_energies=np.zeros(len(ELEMENTS)),
        avg_num_neighbors=AVG_NEIGHBORS,
        atomic_numbers=ELEMENTS,
        correlation=ARCH["correlation"],
        gate=torch.nn.functional.silu,
        radial_MLP=ARCH["radial_mlp"],
        atomic_inter_scale=SCALE,
        atomic_inter_shift=0.0,
    )
    torch.save(model, path)


def _mace_calculators(dtype: str, mace_model: str) -> dict:
    from mace.calculators import MACECalculator

    return {"forces+stress": MACECalculator(model_paths=mace_model, device="cpu", default_dtype=dtype)}


def worker(side: str, threads: int, min_time: float, mace_model: str) -> None:
    import torch

    torch.set_num_threads(threads)
    if side == "equivar":
        import equivar

        equivar.tune_allocator()  # as the equivar command does
    build = _equivar_calculators if side == "equivar" else _mace_calculators
    calcs = {}
    print("ready", flush=True)
    for line in sys.stdin:
        if not line.strip():
            break
        path, dtype = line.split()
        if dtype not in calcs:
            calcs[dtype] = build(dtype, mace_model)
        res = {}
        for mode, calc in calcs[dtype].items():
            atoms = _atoms(path)
            atoms.calc = calc
            start = _edges(atoms, ARCH["r_max"])
            res[mode] = _time_md(atoms, min_time)
            res[mode]["edges_start"], res[mode]["edges"] = start, _edges(atoms, ARCH["r_max"])
        print(json.dumps(res), flush=True)


def _start(python: str, side: str, threads: int, min_time: float, mace_model: str, omp_default: bool = False):
    env = {**os.environ, "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1", "OMP_NUM_THREADS": str(threads)}
    if omp_default:  # libgomp's own default (spin, then sleep), what a mace-torch user gets
        env.pop("OMP_WAIT_POLICY", None)
    cmd = [python, "-W", "ignore", os.path.abspath(__file__), "--worker", side]
    cmd += ["--threads", str(threads), "--min-time", str(min_time), "--mace-model", mace_model]
    pr = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    while (line := pr.stdout.readline()) and line.strip() != "ready":
        pass
    if not line:
        raise SystemExit(f"{side} worker failed to start ({python})")
    return pr


def _ask(pr, side: str, path: str, dtype: str) -> dict:
    pr.stdin.write(f"{path} {dtype}\n")
    pr.stdin.flush()
    while not (line := pr.stdout.readline()).startswith("{"):
        if not line:
            raise SystemExit(f"{side} worker died")
    return json.loads(line)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--sizes", type=int, nargs="+", default=sorted(CELLS), choices=sorted(CELLS))
    p.add_argument("--dtypes", nargs="+", default=["float32", "float64"], choices=["float32", "float64"])
    p.add_argument("--min-time", type=float, default=3.0, help="seconds of MD per measurement (at least 2 steps)")
    p.add_argument("--mace-python", default="/tmp/macevenv/bin/python")
    p.add_argument("--json", default=None, help="also write the results here")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --json file")
    p.add_argument(
        "--mace-omp-default",
        action="store_true",
        help="run mace-torch without OMP_WAIT_POLICY (libgomp's default, spinning threads) instead of inheriting ours",
    )
    p.add_argument("--worker", choices=["equivar", "mace"], help=argparse.SUPPRESS)
    p.add_argument("--mace-model", help=argparse.SUPPRESS)
    p.add_argument("--write-mace-model", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.write_mace_model:
        return write_mace_model(a.write_mace_model)
    if a.worker:
        return worker(a.worker, a.threads[0], a.min_time, a.mace_model)
    from equivar._paths import check_output_file

    try:  # before any measurement: an existing results file is not replaced by accident
        check_output_file(a.json, "--json", overwrite=a.overwrite)
    except ValueError as e:
        raise SystemExit(f"error: {e}") from None
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        cells = make_cells(a.sizes, tmp)
        print(f"cells {sorted(cells)} made with EMT in {time.perf_counter() - t0:.1f} s", flush=True)
        model = os.path.join(tmp, "mace.model")  # one model file: mace-torch reads it, equivar imports it
        env = {**os.environ, "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1"}
        subprocess.run(
            [a.mace_python, "-W", "ignore", os.path.abspath(__file__), "--write-mace-model", model], check=True, env=env
        )
        print("threads  atoms  edges   dtype    equivar F   equivar F+S   mace-torch   ratio (atom-steps/s)")
        for threads in a.threads:
            procs = {
                "equivar": _start(sys.executable, "equivar", threads, a.min_time, model),
                "mace": _start(a.mace_python, "mace", threads, a.min_time, model, a.mace_omp_default),
            }
            k = 0
            for n in a.sizes:
                for dtype in a.dtypes:
                    order = ["equivar", "mace"] if k % 2 == 0 else ["mace", "equivar"]
                    k += 1
                    res = {side: _ask(procs[side], side, cells[n], dtype) for side in order}
                    eq_f, eq_fs = res["equivar"]["forces"], res["equivar"]["forces+stress"]
                    mc = res["mace"]["forces+stress"]
                    assert eq_fs["edges_start"] == mc["edges_start"]  # the same cell
                    row = {
                        "threads": threads,
                        "atoms": n,
                        "edges": mc["edges_start"],
                        "edges_after_equivar": eq_fs["edges"],
                        "edges_after_mace": mc["edges"],
                        "dtype": dtype,
                        "equivar_forces": eq_f,
                        "equivar_forces_stress": eq_fs,
                        "mace": mc,
                        "ratio": eq_fs["atom_steps_per_s"] / mc["atom_steps_per_s"],
                    }
                    rows.append(row)
                    print(
                        f"{threads:7d} {n:6d} {mc['edges_start']:6d}  {dtype}  {eq_f['atom_steps_per_s']:10.0f}  "
                        f"{eq_fs['atom_steps_per_s']:12.0f}  {mc['atom_steps_per_s']:11.0f}   {row['ratio']:.2f}x",
                        flush=True,
                    )
            for pr in procs.values():
                pr.stdin.write("\n")
                pr.stdin.flush()
                pr.stdin.close()
                pr.wait()
    if a.json:
        import torch

        from equivar._paths import write_json_atomic

        write_json_atomic(a.json, {"torch": torch.__version__, "rows": rows}, flag="--json")


if __name__ == "__main__":
    main()
