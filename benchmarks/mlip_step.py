#!/usr/bin/env python
"""CPU time of one MACE training step, equivar vs mace-torch 0.3.16, measured in the same run.

Step = forward (energy + forces with create_graph) -> loss (energy weight 1,
forces weight 1000) -> backward -> Adam step, on rMD17 ethanol batches of 5
(the same frames on both sides: the first ``--batches * 5`` of split 01 train),
hyperparameters: 32 channels, max_L 1 (32x0e+32x1o), max_ell 3, correlation 3,
2 interactions, r_max 5 Å, 8 Bessel functions, p = 5, radial MLP [64, 64, 64],
float32, 1 torch thread.

The equivar worker applies ``equivar.tune_allocator()`` first, as the
``equivar`` command does (``--no-tune-malloc``: glibc defaults, what a
library user gets without calling it); mace-torch runs as it comes.

Each side runs in its own persistent worker process (mace-torch in its own
interpreter, default /tmp/macevenv/bin/python); the parent asks them in turn
for a round of steps (interleaved rounds, so load from other users hits both
alike) and reports the median per-step CPU time (``time.process_time``).

    .venv/bin/python benchmarks/mlip_step.py [--rounds 7] [--batches 10] [--threads 1] [--no-tune-malloc]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "..", "shared", "data", "rmd17", "rmd17_ethanol_train_01.npz")
KCAL = 0.0433641


def _equivar_worker(n_batches):
    import torch

    from equivar import data as D
    from equivar.models import MACE

    configs = D.read_rmd17(DATA, indices=list(range(5 * n_batches)))
    graphs = [D.config_to_graph(c, 5.0) for c in configs]
    batches = [D.batch_to(D.collate(graphs[5 * i : 5 * i + 5]), dtype=torch.float32) for i in range(n_batches)]
    e0s = D.fit_e0s_least_squares(configs, [1, 6, 8])
    model = MACE(
        r_max=5.0,
        num_bessel=8,
        num_polynomial_cutoff=5,
        max_ell=3,
        num_channels=32,
        max_L=1,
        correlation=3,
        num_interactions=2,
        atomic_numbers=[1, 6, 8],
        atomic_energies=[e0s[z] for z in (1, 6, 8)],
        avg_num_neighbors=8.0,
        radial_mlp=[64, 64, 64],
        dtype="float32",
        seed=0,
    )
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=0.01)

    def step(b):
        out = model(b, compute_forces=True)
        n = (b["ptr"][1:] - b["ptr"][:-1]).to(out["energy"].dtype)
        loss = ((out["energy"] - b["energy"]) / n).square().mean() + 1000.0 * (
            out["forces"] - b["forces"]
        ).square().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return float(loss.detach())

    return batches, step


def _mace_worker(n_batches):
    import numpy as np
    import torch

    sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
    import _mace_torch as M  # noqa: E402  (its build() and load())
    from mace import data, tools
    from mace.tools import torch_geometric

    torch.set_default_dtype(torch.float32)
    configs = M.load(DATA)[: 5 * n_batches]
    z_table = tools.AtomicNumberTable([1, 6, 8])
    ds = [data.AtomicData.from_config(c, z_table=z_table, cutoff=5.0) for c in configs]
    loader = torch_geometric.dataloader.DataLoader(dataset=ds, batch_size=5, shuffle=False, drop_last=False)
    batches = [b.to_dict() for b in loader]
    counts = np.array([[np.sum(c.atomic_numbers == z) for z in (1, 6, 8)] for c in configs], float)
    e0s = np.linalg.lstsq(counts, np.array([c.properties["energy"] for c in configs]), rcond=None)[0]
    model = M.build(e0s, 8.0)
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=0.01)

    def step(b):
        out = model(b, training=True, compute_force=True, compute_virials=False, compute_stress=False)
        n = (b["ptr"][1:] - b["ptr"][:-1]).to(out["energy"].dtype)
        loss = ((out["energy"] - b["energy"]) / n).square().mean() + 1000.0 * (
            out["forces"] - b["forces"]
        ).square().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return float(loss.detach())

    return batches, step


def worker(side, n_batches, threads, tune_malloc=True):
    import torch

    torch.set_num_threads(threads)
    if side == "equivar" and tune_malloc:
        import equivar

        equivar.tune_allocator()
    batches, step = (_equivar_worker if side == "equivar" else _mace_worker)(n_batches)
    for b in batches[:3]:  # warm-up
        step(b)
    print("ready", flush=True)
    for line in sys.stdin:
        if line.strip() != "round":
            break
        times = []
        for b in batches:
            t0 = time.process_time()
            step(b)
            times.append(time.process_time() - t0)
        print(json.dumps(times), flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--batches", type=int, default=10, help="steps per round (distinct batches of 5)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--mace-python", default="/tmp/macevenv/bin/python")
    p.add_argument(
        "--no-tune-malloc",
        action="store_true",
        help="equivar side without equivar.tune_allocator() (the equivar command applies it)",
    )
    p.add_argument("--worker", choices=["equivar", "mace"], help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.worker:
        return worker(a.worker, a.batches, a.threads, not a.no_tune_malloc)
    env = {**os.environ, "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1", "OMP_NUM_THREADS": str(a.threads)}
    sides = {"equivar": sys.executable, "mace": a.mace_python}
    procs = {}
    for side, py in sides.items():
        procs[side] = subprocess.Popen(
            [
                py,
                "-W",
                "ignore",
                os.path.abspath(__file__),
                "--worker",
                side,
                "--batches",
                str(a.batches),
                "--threads",
                str(a.threads),
            ]
            + (["--no-tune-malloc"] if a.no_tune_malloc else []),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
    for side, pr in procs.items():
        while (line := pr.stdout.readline()) and line.strip() != "ready":
            pass
        if not line:
            raise SystemExit(f"{side} worker failed to start")
    per_step = {s: [] for s in procs}
    for r in range(a.rounds):
        for side, pr in procs.items() if r % 2 == 0 else reversed(procs.items()):
            pr.stdin.write("round\n")
            pr.stdin.flush()
            while not (line := pr.stdout.readline()).startswith("["):
                if not line:
                    raise SystemExit(f"{side} worker died")
            per_step[side].extend(json.loads(line))
    for pr in procs.values():
        pr.stdin.close()
        pr.wait()
    med = {s: 1e3 * statistics.median(v) for s, v in per_step.items()}
    print(
        f"threads={a.threads}  steps measured per side={len(per_step['equivar'])}  (CPU ms per training step, median; "
        f"equivar allocator {'glibc defaults' if a.no_tune_malloc else 'tuned'})"
    )
    print(f"equivar    {med['equivar']:8.1f} ms")
    print(f"mace-torch {med['mace']:8.1f} ms")
    print(f"ratio (mace / equivar) = {med['mace'] / med['equivar']:.2f}x")
    print(json.dumps({"equivar_ms": med["equivar"], "mace_ms": med["mace"], "ratio": med["mace"] / med["equivar"]}))


if __name__ == "__main__":
    main()
