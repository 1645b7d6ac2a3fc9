#!/usr/bin/env python
"""Training epoch of EGNN on charged N-body, equivar vs the authors' code (vgsatorras/egnn), in the same run.

Both sides train the paper's N-body model (``EGNN_vel``: 4 layers, 64 hidden,
SiLU, velocity term, mean coordinate aggregation) on the same trajectories
(EGNN's ``nbody_small`` split from :func:`equivar.data.nbody.load_nbody`,
which reproduces the authors' generator draw for draw; frame 30 in, frame 40
out), batch 100 (shuffled, last partial batch dropped, as ``main_nbody.py``),
MSE loss, Adam (lr 5e-4, weight decay 1e-12), float32, the same number of
torch threads.

- equivar: ``equivar.models.EGNN`` fed by ``TrajectoryDataset`` through a
  ``DataLoader`` (batches built by indexing, ``collate_scenes``).
- original: the authors' own ``main_nbody.train`` epoch function, their
  ``NBodyDataset`` and ``EGNN_vel``, run from a temporary copy of a checkout
  of github.com/vgsatorras/egnn (``--original DIR``; nothing is copied into
  this repository) with the trajectories written as their ``.npy`` files.

Before timing, both models are given the same weights and must agree on a
batch (float64, relative error below 1e-10), so the same function is timed.
Each side runs in its own persistent worker process; the parent asks them in
turn for one epoch (interleaved rounds, so other users' load hits both
alike) and reports the median CPU time (``time.process_time``) and wall time
per epoch, and their ratio.

    git clone https://github.com/vgsatorras/egnn /tmp/egnn_original
    .venv/bin/python benchmarks/egnn_nbody.py --original /tmp/egnn_original [--threads 1 2] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SUFFIX = "_charged5_initvel1small"  # the authors' file names for nbody_small


def _train(n_train):
    """The first ``n_train`` training trajectories of EGNN's nbody_small (cached after the first call)."""
    from equivar.data import nbody

    return nbody.load_nbody().train.subset(slice(0, n_train))


def _write_original_files(workdir, n_train):
    """The training trajectories as the authors' generator saves them: loc/vel [B, T, 3, N], edges, charges [B, N, 1]."""
    import numpy as np

    tr = _train(n_train)
    d = os.path.join(workdir, "n_body_system", "dataset")
    os.makedirs(d, exist_ok=True)
    np.save(os.path.join(d, f"loc_train{SUFFIX}.npy"), tr.positions.transpose(0, 1, 3, 2))
    np.save(os.path.join(d, f"vel_train{SUFFIX}.npy"), tr.velocities.transpose(0, 1, 3, 2))
    np.save(os.path.join(d, f"edges_train{SUFFIX}.npy"), tr.edges)
    np.save(os.path.join(d, f"charges_train{SUFFIX}.npy"), tr.charges[:, :, None])


def _equivar_epoch_fn(n_train, batch_size):
    import torch

    from equivar.data import batch_to, collate_scenes, nbody
    from equivar.models import EGNN
    from equivar.train import load_config
    from equivar.train._trainer import make_optimizer

    ds = nbody.frame_pairs(_train(n_train), 30, 40)
    gen = torch.Generator().manual_seed(0)
    loader = torch.utils.data.DataLoader(
        ds, batch_size=batch_size, shuffle=True, drop_last=True, collate_fn=collate_scenes, generator=gen
    )
    torch.manual_seed(0)
    model = EGNN()
    # equivar.train's optimizer with the shipped config's settings (Adam, lr 5e-4, weight decay 1e-12, fused update)
    opt = make_optimizer(model, load_config(os.path.join(ROOT, "configs", "nbody_egnn.yaml")).training)

    def epoch():
        model.train()
        total = 0.0
        for b in loader:
            b = batch_to(b, dtype=torch.float32)
            opt.zero_grad()
            loss = torch.nn.functional.mse_loss(model(b)["pos"], b["target"])
            loss.backward()
            opt.step()
            total += float(loss) * int(b["ptr"].numel() - 1)
        return total

    return epoch


def _original_epoch_fn(workdir, n_train, batch_size):
    import contextlib
    import io

    import torch

    os.chdir(workdir)
    sys.path.insert(0, workdir)
    sys.argv = ["main_nbody.py", "--no-cuda", "--batch_size", str(batch_size), "--max_training_samples", str(n_train)]
    sys.argv += ["--model", "egnn_vel", "--dataset", "nbody_small", "--outf", os.path.join(workdir, "logs")]
    with contextlib.redirect_stdout(io.StringIO()):
        import main_nbody as M  # the authors' script: its argparse reads sys.argv at import
        from n_body_system.dataset_nbody import NBodyDataset
        from n_body_system.model import EGNN_vel

    ds = NBodyDataset(partition="train", dataset_name="nbody_small", max_samples=n_train)
    loader = torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=True, drop_last=True)
    torch.manual_seed(0)
    model = EGNN_vel(in_node_nf=1, in_edge_nf=2, hidden_nf=64, device="cpu", n_layers=4, recurrent=True)
    opt = torch.optim.Adam(model.parameters(), lr=5e-4, weight_decay=1e-12)

    def epoch():
        with contextlib.redirect_stdout(io.StringIO()):  # their epoch prints its loss
            return M.train(model, opt, 0, loader)

    return epoch


def check_same_model(workdir):
    """Max relative difference of the two models' outputs with the authors' weights copied into ours (float64)."""
    import torch

    sys.path.insert(0, workdir)
    from n_body_system.model import EGNN_vel

    from equivar.data import collate_scenes, nbody
    from equivar.models import EGNN

    torch.manual_seed(1)
    orig = EGNN_vel(in_node_nf=1, in_edge_nf=2, hidden_nf=64, device="cpu", n_layers=4, recurrent=True).double()
    ours = EGNN().double()
    ours.load_original_state_dict(orig.state_dict())
    traj = nbody.simulate(nbody.SimulationParams.recipe("charged"), 20, seed=7)
    ds = nbody.frame_pairs(traj, 30, 40)
    b = collate_scenes([ds[i] for i in range(20)])
    send, recv = b["edge_index"]
    loc, vel = b["pos"][:, 0], b["vel"][:, 0]
    edge_attr = torch.cat([b["edge_attr"], ((loc[recv] - loc[send]) ** 2).sum(1, keepdim=True)], 1)
    with torch.no_grad():
        ref = orig(vel.norm(dim=1, keepdim=True), loc.clone(), [recv, send], vel, edge_attr)
        out = ours(b)["pos"][:, 0]
    return float((out - ref).norm() / ref.norm())


def worker(side, workdir, n_train, batch_size, threads, same_allocator=False):
    import torch

    torch.set_num_threads(threads)
    if side == "equivar" or same_allocator:
        # the heap setting the equivar command applies at start-up (equivar train); --same-allocator: both sides
        sys.path.insert(0, os.path.join(ROOT, "src"))
        from equivar._allocator import tune_allocator

        tune_allocator()
    epoch = (
        _equivar_epoch_fn(n_train, batch_size)
        if side == "equivar"
        else _original_epoch_fn(workdir, n_train, batch_size)
    )
    epoch()  # warm-up
    print("ready", flush=True)
    for line in sys.stdin:
        if line.strip() != "round":
            break
        c0, w0 = time.process_time(), time.perf_counter()
        epoch()
        print("RESULT " + json.dumps([time.process_time() - c0, time.perf_counter() - w0]), flush=True)


def _measure(a, workdir, threads):
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": os.path.join(ROOT, "src")}
    procs = {}
    for side in ("equivar", "original"):
        cmd = [sys.executable, "-W", "ignore", os.path.abspath(__file__), "--worker", side, "--workdir", workdir]
        cmd += ["--n-train", str(a.n_train), "--batch-size", str(a.batch_size), "--threads", str(threads)]
        cmd += ["--same-allocator"] if a.same_allocator else []
        procs[side] = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    for side, pr in procs.items():
        while (line := pr.stdout.readline()) and line.strip() != "ready":
            pass
        if not line:
            raise SystemExit(f"{side} worker failed to start (see its error above)")
    cpu = {s: [] for s in procs}
    wall = {s: [] for s in procs}
    for r in range(a.rounds):
        for side, pr in procs.items() if r % 2 == 0 else reversed(procs.items()):
            pr.stdin.write("round\n")
            pr.stdin.flush()
            while not (line := pr.stdout.readline()).startswith("RESULT "):
                if not line:
                    raise SystemExit(f"{side} worker died")
            c, w = json.loads(line[len("RESULT ") :])
            cpu[side].append(c)
            wall[side].append(w)
    for pr in procs.values():
        pr.stdin.close()
        pr.wait()
    return {s: statistics.median(v) for s, v in cpu.items()}, {s: statistics.median(v) for s, v in wall.items()}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--original", help="a checkout of github.com/vgsatorras/egnn (copied to a temporary folder)")
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--rounds", type=int, default=5, help="timed epochs per side and thread count")
    p.add_argument("--n-train", type=int, default=3000)
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--json", help="also write the results here")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --json file")
    p.add_argument(
        "--same-allocator",
        action="store_true",
        help="give the original's process equivar's heap setting too (equivar._allocator.tune_allocator)",
    )
    p.add_argument("--worker", choices=["equivar", "original"], help=argparse.SUPPRESS)
    p.add_argument("--workdir", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.worker:
        return worker(a.worker, a.workdir, a.n_train, a.batch_size, a.threads[0], a.same_allocator)
    sys.path.insert(0, os.path.join(ROOT, "src"))
    from equivar._paths import check_output_file

    try:  # before any measurement: an existing results file is not replaced by accident
        check_output_file(a.json, "--json", overwrite=a.overwrite)
    except ValueError as e:
        raise SystemExit(f"error: {e}") from None
    if not a.original or not os.path.isfile(os.path.join(a.original, "main_nbody.py")):
        raise SystemExit(f"--original {a.original}: not a checkout of github.com/vgsatorras/egnn (no main_nbody.py)")
    with tempfile.TemporaryDirectory(prefix="egnn_original_") as tmp:
        workdir = os.path.join(tmp, "egnn")
        shutil.copytree(a.original, workdir, ignore=shutil.ignore_patterns(".git"))
        _write_original_files(workdir, a.n_train)
        rel = check_same_model(workdir)
        print(f"same model: relative difference of outputs with shared weights {rel:.1e} (float64)")
        if not rel < 1e-10:
            raise SystemExit("the two models differ; timing them would compare different functions")
        results = []
        for t in a.threads:
            cpu, wall = _measure(a, workdir, t)
            row = {
                "threads": t,
                "batch_size": a.batch_size,
                "n_train": a.n_train,
                "rounds": a.rounds,
                "same_allocator": a.same_allocator,
                "cpu_s": cpu,
                "wall_s": wall,
                "cpu_ratio": cpu["original"] / cpu["equivar"],
                "wall_ratio": wall["original"] / wall["equivar"],
            }
            results.append(row)
            print(
                f"threads={t} batch={a.batch_size} n_train={a.n_train}: epoch CPU s (median of {a.rounds}) "
                f"equivar {cpu['equivar']:.3f}, original {cpu['original']:.3f} -> {row['cpu_ratio']:.2f}x; "
                f"wall s equivar {wall['equivar']:.3f}, original {wall['original']:.3f} -> {row['wall_ratio']:.2f}x"
            )
    if a.json:
        from equivar._paths import write_json_atomic

        write_json_atomic(a.json, {"load_average": os.getloadavg(), "results": results}, flag="--json")


if __name__ == "__main__":
    main()
