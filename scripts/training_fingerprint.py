"""Train MACE 2 epochs on small fixed configurations and save the final weights, to compare two source trees.

    # before a refactor, in a worktree of the old commit, and after it in yours:
    PYTHONPATH=/path/old/src python scripts/training_fingerprint.py run /tmp/fp_old
    PYTHONPATH=/path/new/src python scripts/training_fingerprint.py run /tmp/fp_new
    python scripts/training_fingerprint.py compare /tmp/fp_old /tmp/fp_new    # exit 1 unless bit-identical

Three runs, each through ``equivar.train.run_training`` (data, E0s, statistics, model, AMSGrad, EMA,
clipping, checkpoints): rMD17 ethanol (16 configurations, float64, stage two from mid-run; and
float32 with spline radials) and the embedded Cu/Au set (float32, energies, forces and stress of
periodic cells). The saved tensors are the live weights plus the EMA shadows. ``compare`` checks
``torch.equal`` on every tensor and prints the largest relative difference otherwise.

The runs use ``torch.use_deterministic_algorithms(True)``: without it, float64 runs are not
bit-reproducible across processes even on one tree (~3e-16 relative after one step, through the
forces' double backward; deterministic mode's filling of uninitialised memory, applied to the
forward pass alone, removes it; the cause is not identified), while float32 runs are. About 10
CPU-seconds per tree.
"""

from __future__ import annotations

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ETHANOL = os.path.join(ROOT, "..", "shared", "data", "rmd17", "rmd17_ethanol_train_01.npz")
SMALL = {"name": "mace", "num_channels": 8, "max_L": 1, "max_ell": 2, "correlation": 3}
ETHANOL_DATA = {"train_file": ETHANOL, "max_train": 16, "valid_fraction": 0.2, "e0s": "least_squares", "r_max": 4.0}
CASES = {
    "ethanol_f64": {
        "seed": 3,
        "dtype": "float64",
        "data": ETHANOL_DATA,
        "model": SMALL,
        "training": {"epochs": 2, "batch_size": 4, "forces_weight": 1000.0, "stage_two_start": 0.5},
    },
    "ethanol_f32": {
        "seed": 1,
        "dtype": "float32",
        "data": ETHANOL_DATA,
        "model": {**SMALL, "radial": "spline"},
        "training": {"epochs": 2, "batch_size": 4},
    },
    "cuau_stress_f32": {
        "seed": 0,
        "dtype": "float32",
        "data": {"train_file": "embedded:cuau_emt", "max_train": 16, "valid_fraction": 0.1, "r_max": 4.0},
        "model": {**SMALL, "correlation": 2},
        "training": {"epochs": 2, "batch_size": 4, "energy_weight": 100.0, "stress_weight": 10.0},
    },
}


def run(out: str) -> None:
    import torch

    from equivar.train import config_from_dict, run_training

    os.makedirs(out, exist_ok=True)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)  # float64 runs are bit-reproducible across processes only with it
    for name, case in CASES.items():
        cfg = config_from_dict({**case, "progress": False, "overwrite": True, "output_dir": os.path.join(out, name)})
        res = run_training(cfg, log=lambda s: None)
        torch.save(res.live_state, os.path.join(out, name + ".pt"))
        print(f"{name}: {len(res.live_state)} tensors, train loss per epoch {[r['train_loss'] for r in res.history]}")


def compare(a: str, b: str) -> int:
    import torch

    ok = True
    for name in CASES:
        x, y = torch.load(os.path.join(a, name + ".pt")), torch.load(os.path.join(b, name + ".pt"))
        if set(x) != set(y):
            print(f"{name}: different tensors {sorted(set(x) ^ set(y))[:5]}")
            ok = False
            continue
        diff = [k for k in x if not torch.equal(x[k], y[k])]
        if not diff:
            print(f"{name}: {len(x)} tensors bit-identical")
            continue
        ok = False
        rel = max(float((x[k] - y[k]).abs().max() / x[k].abs().max().clamp_min(1e-300)) for k in diff if x[k].numel())
        print(
            f"{name}: {len(diff)} of {len(x)} tensors differ (largest relative difference {rel:.2e}), e.g. {diff[:3]}"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "run":
        run(sys.argv[2])
    elif len(sys.argv) == 4 and sys.argv[1] == "compare":
        sys.exit(compare(sys.argv[2], sys.argv[3]))
    else:
        sys.exit(__doc__)
