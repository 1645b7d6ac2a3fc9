"""Soft equivariance under mixed approximate symmetries: which symmetries does the data obey?

A synthetic regression task on 4 points in 3D, ``y = f(x)`` with

    f = sum_{i<j} |x_i - x_j| / 3.25                            # invariant under E(3)
      + eps  * (sum_i (z_i - zbar)^2 - |x - xbar|^2 / 3) / 2    # breaks SO(3), keeps SO(2) about z
      + beta * det[x1 - x0, x2 - x0, x3 - x0] / 5               # pseudoscalar: breaks parity

(eps = 0.5, beta = 1; each term has about unit spread for x ~ N(0, 1)), so the
target is exactly invariant under rotations about z, approximately under all
rotations, and not under inversion.

An MLP on flattened coordinates is trained three ways: without a
regularizer, with the three candidate symmetries SO2(z), SO3, Ci enforced at
a fixed strong weight, and with :class:`equivar.symmetry.regularizers.AdaptiveSymmetry`,
which tunes the strength of each candidate during training (validation
rule, see its docstring). The script prints the symmetry level of the data
(relative violation of the true function), the levels recovered by each
model (its relative equivariance error), the final strengths and test errors.

Run: ``python examples/soft_equivariance.py [--steps 1000] [--seed 0]`` (2-4 minutes on 2 shared CPU cores).
"""

from __future__ import annotations

import argparse
import time

import torch

from equivar.symmetry import Typed
from equivar.symmetry.regularizers import AdaptiveSymmetry

GROUPS = ["SO2(z)", "SO3", "Ci"]
IN_TYPES = [Typed("positions", nodes=True, node_axis=1)]
OUT_TYPES = "0e"


def target(x: torch.Tensor, eps: float = 0.5, beta: float = 1.0) -> torch.Tensor:
    """``[B, 4, 3] -> [B, 1]`` (see module docstring); each term has about unit spread for x ~ N(0, 1)."""
    d = (x[:, :, None] - x[:, None]).norm(dim=-1)
    iu = torch.triu_indices(4, 4, 1)
    inv = d[:, iu[0], iu[1]].sum(-1) / 3.25
    c = x - x.mean(1, keepdim=True)
    aniso = (c[..., 2].pow(2).sum(-1) - c.pow(2).sum((-1, -2)) / 3) / 2.0
    odd = torch.linalg.det(x[:, 1:] - x[:, :1]) / 5.0
    return (inv + eps * aniso + beta * odd)[:, None]


def make_model(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Flatten(),
        torch.nn.Linear(12, 64),
        torch.nn.SiLU(),
        torch.nn.Linear(64, 64),
        torch.nn.SiLU(),
        torch.nn.Linear(64, 1),
    ).double()


def train(mode: str, data: dict, steps: int, seed: int, log_every: int = 0):
    """mode: 'none' | 'fixed' | 'adaptive'. Returns (model, regularizer or None)."""
    model = make_model(seed)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    reg = None
    if mode != "none":
        reg = AdaptiveSymmetry(GROUPS, IN_TYPES, OUT_TYPES, n_elements=1, seed=seed, warmup=5)
        if mode == "fixed":
            reg.strengths = {k: reg.max_strength for k in reg.strengths}
    x, y = data["train"]
    mse = torch.nn.functional.mse_loss
    for step in range(1, steps + 1):
        pred = model(x)
        loss = mse(pred, y) / data["var"]
        if reg is not None:
            pen, _ = reg.penalty(model, [x], y=pred)
            loss = loss + pen
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if mode == "adaptive" and step % 40 == 0:
            rec = reg.update(model, [data["val"][0]], data["val"][1], mse)
            if log_every and step % log_every == 0:
                s = "  ".join(f"{k} {v:.0e}" for k, v in rec["strengths"].items())
                print(f"    step {step:5d}  val mse {rec['val_loss']:.2e}  strengths: {s}")
    return model, reg


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n-train", type=int, default=512)
    args = p.parse_args(argv)
    torch.set_num_threads(1)  # small tensors: one thread avoids OpenMP stalls on shared cores
    g = torch.Generator().manual_seed(args.seed)
    xs = {
        k: torch.randn(n, 4, 3, generator=g, dtype=torch.float64)
        for k, n in (("train", args.n_train), ("val", 256), ("test", 2000))
    }
    data = {
        k: (v, target(v) + 0.01 * torch.randn(v.shape[0], 1, generator=g, dtype=torch.float64)) for k, v in xs.items()
    }
    data["var"] = float(data["train"][1].var())
    probe = AdaptiveSymmetry(GROUPS, IN_TYPES, OUT_TYPES)
    truth = probe.levels(target, [xs["test"][:512]], n=32)
    print("symmetry level of the data (relative violation of the true function):")
    print("  " + "  ".join(f"{k}: {v:.3f}" for k, v in truth.items()))
    results = {}
    for mode in ("none", "fixed", "adaptive"):
        t0 = time.time()
        print(f"training ({mode} regularizer) ...")
        model, reg = train(mode, data, args.steps, args.seed, log_every=200 if mode == "adaptive" else 0)
        with torch.no_grad():
            test = float(torch.nn.functional.mse_loss(model(data["test"][0]), data["test"][1]) / data["var"])
        lv = probe.levels(model, [xs["test"][:512]], n=32)
        results[mode] = (test, lv, reg.strengths if reg else None, time.time() - t0)
    print()
    print(f"{'model':<22} {'test MSE/var':>12} " + " ".join(f"{k:>10}" for k in GROUPS))
    print(f"{'data (truth)':<22} {'':>12} " + " ".join(f"{truth[k]:>10.3f}" for k in GROUPS))
    names = {"none": "no regularizer", "fixed": "all at max strength", "adaptive": "adaptive strengths"}
    for mode, (test, lv, st, sec) in results.items():
        print(f"{names[mode]:<22} {test:>12.4f} " + " ".join(f"{lv[k]:>10.3f}" for k in GROUPS) + f"   ({sec:.0f} s)")
    st = results["adaptive"][2]
    print("recovered strengths (adaptive): " + "  ".join(f"{k}: {v:.0e}" for k, v in st.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
