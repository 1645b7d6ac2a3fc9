"""Train the shipped rMD17 ethanol recipe a few hundred steps, deterministically, and save its test predictions,
to check bit for bit whether a change (an option, or another source tree) changes the trained model.

    # the isolated-atom weight on and off, same tree:
    PYTHONPATH=src python scripts/recipe_fingerprint.py run /tmp/rf_default
    PYTHONPATH=src python scripts/recipe_fingerprint.py run /tmp/rf_none --set model.isolation_width=null
    python scripts/recipe_fingerprint.py compare /tmp/rf_default /tmp/rf_none     # exit 1 unless bit-identical
    # another source tree (e.g. the commit of an earlier benchmark), same script and config:
    PYTHONPATH=/path/old/src python scripts/recipe_fingerprint.py run /tmp/rf_old

``run`` trains ``configs/rmd17_ethanol.yaml`` (all 950 training frames, batch 5, float32, one thread, stage two as
shipped) for ``--epochs`` epochs (default 2: 380 steps) through ``equivar.train.run_training`` with
``torch.use_deterministic_algorithms(True)`` (see scripts/training_fingerprint.py for why), then predicts energies
and forces of the first ``--frames`` frames of the test file (default 200) with the saved model (best validation,
EMA weights) through ``EquivarCalculator``, and saves them with the final live weights. ``compare`` checks the
predictions with ``numpy.array_equal`` (bitwise) and the weights with ``torch.equal`` where both runs have the same
parameter names, and prints the largest differences otherwise. The data paths are absolute (from this script's
checkout), so an old tree checked out elsewhere reads the same files. About 40 CPU-seconds per run.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = os.path.join(ROOT, "configs", "rmd17_ethanol.yaml")
DATA = os.path.join(ROOT, "..", "shared", "data", "rmd17")
TRAIN = os.path.abspath(os.path.join(DATA, "rmd17_ethanol_train_01.npz"))
TEST = os.path.abspath(os.path.join(DATA, "rmd17_ethanol_test_01.npz"))


def run(out: str, epochs: int, frames: int, overrides: list) -> None:
    import torch
    from ase import Atoms

    from equivar.calculators import EquivarCalculator
    from equivar.train import load_config, run_training

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    os.makedirs(out, exist_ok=True)
    cfg = load_config(
        CONFIG,
        [
            f"output_dir={os.path.join(out, 'run')}",
            f"data.train_file={TRAIN}",
            "data.test_files={}",
            f"training.epochs={epochs}",
            "progress=false",
            "overwrite=true",
            *overrides,
        ],
    )
    res = run_training(cfg, log=lambda s: None)
    test = np.load(TEST)
    calc = EquivarCalculator(os.path.join(out, "run", "model.pt"))
    e, f = [], []
    for i in range(frames):
        a = Atoms(numbers=test["nuclear_charges"], positions=test["coords"][i])
        a.calc = calc
        e.append(a.get_potential_energy())
        f.append(a.get_forces())
    np.savez(os.path.join(out, "predictions.npz"), energy=np.array(e), forces=np.array(f))
    torch.save(res.live_state, os.path.join(out, "live_state.pt"))
    losses = [r["train_loss"] for r in res.history]
    print(f"{out}: {len(res.history)} epochs, train loss per epoch {losses}, E[0] = {e[0]!r} eV")


def compare(a: str, b: str) -> int:
    import torch

    pa, pb = np.load(os.path.join(a, "predictions.npz")), np.load(os.path.join(b, "predictions.npz"))
    ok = True
    for k in ("energy", "forces"):
        same = pa[k].shape == pb[k].shape and np.array_equal(pa[k], pb[k])
        ok &= same
        d = float(np.max(np.abs(pa[k] - pb[k]))) if pa[k].shape == pb[k].shape else float("nan")
        print(f"{k}: {pa[k].size} values, " + ("bit-identical" if same else f"differ (largest |difference| {d:.3e})"))
    x, y = torch.load(os.path.join(a, "live_state.pt")), torch.load(os.path.join(b, "live_state.pt"))
    if set(x) == set(y):
        diff = [k for k in x if not torch.equal(x[k], y[k])]
        ok &= not diff
        print(
            f"live weights: {len(x)} tensors, " + ("bit-identical" if not diff else f"{len(diff)} differ: {diff[:3]}")
        )
    else:
        print(f"live weights: different parameter names ({len(set(x) ^ set(y))} not shared); predictions compared only")
    return 0 if ok else 1


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("out")
    r.add_argument("--epochs", type=int, default=2)
    r.add_argument("--frames", type=int, default=200)
    r.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    c = sub.add_parser("compare")
    c.add_argument("a")
    c.add_argument("b")
    a = p.parse_args(argv)
    if a.cmd == "run":
        run(a.out, a.epochs, a.frames, a.set)
        return 0
    return compare(a.a, a.b)


if __name__ == "__main__":
    sys.exit(main())
