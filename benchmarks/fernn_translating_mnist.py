"""FERNN against its G-RNN twin on Translating MNIST (Keller 2025): the paper's Table 1 / Figures 3-4 protocol, scaled.

Takes the two checkpoints written by ``equivar train -c configs/mnist_fernn.yaml`` and
``configs/mnist_grnn.yaml`` (same data, same parameters, 600 training CPU-seconds each) and measures,
on sequences generated again from the MNIST test digits with the data section the checkpoints record:

- prediction MSE on velocities seen in training (``test``), unseen velocities (``unseen``) and 2x longer
  sequences (``long``: 10 observed, 30 predicted), with two reference predictors (all zeros; the last
  observed frame repeated);
- MSE per predicted frame of the long rollouts (the paper's length-generalization curves, Figure 3);
- MSE per velocity on a grid ``[-K, K]^2`` with both digits sharing the velocity (the paper's Figure 4 heatmaps);
- the flow-equivariance error of the trained models (a test sequence moved by a flow ``u`` against the
  predictions moved by ``u``);
- the largest hidden-state entry after each consumed frame of the long rollouts (mean over 8 sequences);
- a figure of predicted frames (targets, FERNN, G-RNN) for a sequence with unseen velocities.

    PYTHONPATH=src python benchmarks/fernn_translating_mnist.py --fernn runs/mnist_fernn/model.pt \\
        --grnn runs/mnist_grnn/model.pt -o benchmarks/results/2026-12-05_fernn_translating_mnist.json \\
        --img-dir docs/img
"""

from __future__ import annotations

import argparse
import csv
import os
import time

import torch

from equivar._paths import check_output_file, write_json_atomic
from equivar._plotting import pyplot, save_figure
from equivar.data import translating_mnist
from equivar.tasks.sequence import SequenceData, SequenceSet
from equivar.testing import flow_equivariance_error
from equivar.train import load_model


@torch.no_grad()
def mse_per_frame(fn, ds: SequenceSet, batch: int = 100) -> torch.Tensor:
    """Mean squared error per predicted frame ``[T_out]`` of ``fn(inputs, T_out)`` over ``ds``."""
    tot = None
    for i in range(0, len(ds), batch):
        f = ds.frames[i : i + batch].double()
        x, y = f[:, : ds.input_frames], f[:, ds.input_frames :]
        se = (fn(x, y.shape[1]).double() - y).square().mean(dim=(2, 3, 4)).sum(0)
        tot = se if tot is None else tot + se
    return tot / len(ds)


@torch.no_grad()
def hidden_max_per_step(model, x: torch.Tensor, pred_len: int) -> list[float]:
    """Largest ``|h|`` after each consumed frame (observed, then predicted), mean over the sequences of ``x``."""
    _, h = model(x.to(next(model.parameters()).dtype), pred_len, return_hidden=True)
    return h.abs().amax(dim=(2, 3, 4, 5)).mean(0).tolist()


def model_fn(model):
    p = next(model.parameters())
    return lambda x, n: model(x.to(p.dtype), n)


def zeros_fn(x, n):
    return x.new_zeros(x.shape[0], n, *x.shape[2:])


def last_frame_fn(x, n):
    return x[:, -1:].expand(-1, n, -1, -1, -1)


def _training_summary(path: str) -> dict:
    rows = list(csv.DictReader(open(os.path.join(os.path.dirname(path), "metrics.csv"))))
    best = min(rows, key=lambda r: float(r["valid_mse"]))
    return {
        "epochs": len(rows),
        "steps": int(rows[-1]["step"]),
        "training_cpu_s": float(rows[-1]["cpu_s"]),
        "training_wall_s": float(rows[-1]["time_s"]),
        "best_valid_mse": float(best["valid_mse"]),
        "best_epoch": int(best["epoch"]),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fernn", required=True)
    ap.add_argument("--grnn", required=True)
    ap.add_argument("-o", "--output", required=True, help="results JSON")
    ap.add_argument("--img-dir", default="docs/img")
    ap.add_argument("--n-test", type=int, default=None, help="sequences per test set (default: as recorded)")
    ap.add_argument("--grid", type=int, default=3, help="velocity grid [-K, K]^2 (default 3)")
    ap.add_argument("--per-velocity", type=int, default=16, help="sequences per grid velocity (default 16)")
    ap.add_argument("--overwrite", action="store_true", help="replace an existing -o file")
    args = ap.parse_args(argv)
    try:  # before any measurement: an existing results file is not replaced by accident
        check_output_file(args.output, "-o", overwrite=args.overwrite)
    except ValueError as e:
        raise SystemExit(f"error: {e}") from None
    torch.set_num_threads(1)
    t0 = time.process_time()
    models = {"FERNN": load_model(args.fernn), "G-RNN": load_model(args.grnn)}
    recorded = [m.equivar_metadata["data"] for m in models.values()]
    if recorded[0] != recorded[1]:
        raise SystemExit("the two checkpoints record different task.data sections: not a like-for-like comparison")
    data = SequenceData.from_mapping({**recorded[0], **({"n_test": args.n_test} if args.n_test else {})})
    sets = data.load(only=["test", "unseen", "long"])
    fns = {**{k: model_fn(m) for k, m in models.items()}, "zeros": zeros_fn, "last observed frame": last_frame_fn}
    results = {"data": vars(data), "models": {}, "sets": {}, "per_frame_long": {}}
    for name, m in models.items():
        path = args.fernn if name == "FERNN" else args.grnn
        results["models"][name] = {
            "hparams": m.hparams,
            "parameters": sum(p.numel() for p in m.parameters()),
            **_training_summary(path),
        }
    for set_name, ds in sets.items():
        results["sets"][set_name] = {}
        for fname, fn in fns.items():
            pf = mse_per_frame(fn, ds)
            results["sets"][set_name][fname] = float(pf.mean())
            if set_name == "long":
                results["per_frame_long"][fname] = pf.tolist()
    # velocity grid (Figure 4): both digits share one velocity
    from equivar.data import read_mnist

    te_x, te_y = read_mnist(data.root, "test")
    te = torch.from_numpy(te_x).float().div(255.0)
    if data.downsample > 1:
        te = torch.nn.functional.avg_pool2d(te[:, None], data.downsample)[:, 0]
    K = args.grid
    grid = {k: torch.zeros(2 * K + 1, 2 * K + 1) for k in models}
    for i, vr in enumerate(range(-K, K + 1)):
        for j, vc in enumerate(range(-K, K + 1)):
            s = translating_mnist(
                te, te_y, args.per_velocity, seq_len=data.input_frames + data.pred_frames,
                image_size=data.image_size or te.shape[-1], num_digits=data.num_digits,
                seed=1000 + 97 * i + j, velocities=[vr, vc],
            )  # fmt: skip
            ds = SequenceSet(s.frames, data.input_frames, s.velocities)
            for k, m in models.items():
                grid[k][i, j] = mse_per_frame(model_fn(m), ds).mean()
    results["velocity_grid"] = {"velocities": list(range(-K, K + 1)), **{k: v.tolist() for k, v in grid.items()}}
    # flow-equivariance error of the trained models on 8 test sequences
    x = sets["test"].frames[:8, : data.input_frames]
    results["flow_equivariance_error"] = {
        k: {str(u): flow_equivariance_error(m, x.to(next(m.parameters()).dtype), data.pred_frames, u)
            for u in ([1, 0], [0, 1], [1, 1], [-2, 1], [2, 2])}
        for k, m in models.items()
    }  # fmt: skip
    # size of the hidden state over the 40-frame rollouts (a ReLU state grows with the sequence; tanh: <= 1)
    xl = sets["long"].frames[:8, : data.input_frames]
    results["hidden_max_long"] = {k: hidden_max_per_step(m, xl, data.long_pred_frames) for k, m in models.items()}
    results["evaluation_cpu_s"] = round(time.process_time() - t0, 1)
    write_json_atomic(args.output, results, flag="-o")
    _plots(models, sets, results, args.img_dir)
    print(_table(results))
    return 0


def _table(r) -> str:
    lines = ["| predictor | test (seen v) | unseen v | long (2x) |", "|---|---|---|---|"]
    for k in r["sets"]["test"]:
        lines.append(f"| {k} | " + " | ".join(f"{r['sets'][s][k]:.4g}" for s in ("test", "unseen", "long")) + " |")
    return "\n".join(lines)


@torch.no_grad()
def _plots(models, sets, r, img_dir):
    plt = pyplot()
    os.makedirs(img_dir, exist_ok=True)
    # predicted frames: an unseen-velocity sequence and a long one
    rows = []
    for set_name, idx, every in (("unseen", 0, 1), ("long", 0, 3)):
        ds = sets[set_name]
        f = ds.frames[idx : idx + 1]
        x, y = f[:, : ds.input_frames], f[:, ds.input_frames :]
        ks = list(range(0, y.shape[1], every))[:10]
        v = ds.velocities[idx].tolist()
        rows.append((f"{set_name} v={v}\ntarget", [y[0, k, 0] for k in ks], ks))
        for name, m in models.items():
            p = m(x.to(next(m.parameters()).dtype), y.shape[1])[0].float()
            rows.append((name, [p[k, 0] for k in ks], ks))
    n = max(len(rw[1]) for rw in rows)
    fig, axes = plt.subplots(len(rows), n, figsize=(1.05 * n + 1, 1.1 * len(rows)), squeeze=False)
    for i, (label, imgs, ks) in enumerate(rows):
        for j in range(n):
            ax = axes[i, j]
            ax.set_xticks([])
            ax.set_yticks([])
            if j < len(imgs):
                ax.imshow(imgs[j].clamp(0, 1).numpy(), cmap="gray", vmin=0, vmax=1)
                if i % 3 == 0:
                    ax.set_title(f"t+{ks[j] + 1}", fontsize=7)
        axes[i, 0].set_ylabel(label, fontsize=7, rotation=0, ha="right", va="center")
    fig.suptitle("Translating MNIST: predicted frames (10 observed before t+1)", fontsize=9)
    fig.tight_layout()
    save_figure(fig, os.path.join(img_dir, "fernn_frames.png"))
    plt.close(fig)
    # length generalization (per frame) and the velocity grid
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
    ax = axes[0]
    T_train = len(r["per_frame_long"]["FERNN"])
    for k, pf in r["per_frame_long"].items():
        ax.plot(range(1, len(pf) + 1), pf, label=k, ls="-" if k in models else ":")
    ax.axvline(r["data"]["pred_frames"] + 0.5, color="gray", lw=0.8)
    ax.set_xlabel(f"predicted frame (training: 1-{r['data']['pred_frames']})")
    ax.set_ylabel("MSE")
    ax.set_yscale("log")
    ax.set_xlim(1, T_train)
    ax.legend(fontsize=7)
    ax.set_title("length generalization", fontsize=9)
    vs = r["velocity_grid"]["velocities"]
    hi = max(max(max(row) for row in r["velocity_grid"][k]) for k in models)
    for ax, k in zip(axes[1:], models):
        im = ax.imshow(r["velocity_grid"][k], origin="lower", vmin=0, vmax=hi, cmap="viridis",
                       extent=[vs[0] - 0.5, vs[-1] + 0.5, vs[0] - 0.5, vs[-1] + 0.5])  # fmt: skip
        tr = r["data"]["train_v_range"]
        ax.add_patch(plt.Rectangle((-tr - 0.5, -tr - 0.5), 2 * tr + 1, 2 * tr + 1, fill=False, ec="w", lw=1))
        ax.set_xlabel("v (cols, px/frame)")
        ax.set_ylabel("v (rows)")
        ax.set_title(f"{k}: MSE per velocity (box: training)", fontsize=9)
        fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    save_figure(fig, os.path.join(img_dir, "fernn_generalization.png"))
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
