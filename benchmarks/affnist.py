"""Train on plain MNIST, test on an affNIST-style set: affine CNN vs p4 CNN vs plain CNN at equal parameters.

Issue 14 (affine part). Each model trains on the MNIST training digits centred in a 40 x 40 canvas
(affNIST's "just centered" set, as ``rgenn`` trains) for the same process-CPU budget (one thread),
Adam with a cosine decay of the learning rate over the budget, no augmentation, the final weights
are evaluated (no model selection). Then, on the MNIST test digits:

- accuracy on the padded digits (``mnist40``) and on the affNIST-style set (:func:`equivar.data.affnist_like`,
  seed 0, affNIST's ranges), and against distortion strength (0 .. 1, every range scaled) and per
  transformation (rotation / shear / scale only, each with translation);
- the invariance error of the logits, ``|f(A . x) - f(x)| / |f(x)|`` for affine maps ``A`` from affNIST's ranges
  (no translation), and for the Monte-Carlo affine models the same against the number of group samples
  per layer, next to the sampling noise ``|f(x; S1) - f(x; S2)| / |f(x; S1)|`` of two sample sets.

One model per process (run them side by side), then ``--plot`` merges the JSON files::

    PYTHONPATH=src python benchmarks/affnist.py --model affine_sl2 --cpu-seconds 500 \\
        -o benchmarks/results/affnist_affine_sl2.json
    PYTHONPATH=src python benchmarks/affnist.py --plot benchmarks/results/affnist_*.json \\
        --figure docs/img/affnist_accuracy.png
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time

import torch
import torch.nn.functional as F

from equivar._paths import write_json_atomic
from equivar.data import AffnistRanges, affnist_like, load_image_set, pad_images
from equivar.models import build_model
from equivar.planar import warp
from equivar.train._checkpoint import save_checkpoint

ROOT = os.environ.get("EQUIVAR_SHARED_DATA") or os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")

# equal parameter counts (within 1.5%): 9,090 (affine), 8,965 (p4), 9,172 (cnn)
_AFFINE = dict(num_samples=8, channels=8, depth=2, hidden=34)
# rgenn's down-sampling and read-out (2 x 2 max pools between layers, global max; no parameters)
_POOLED = dict(pool=2, readout="max")
# rgenn's layer norm over each image and SIREN kernels (9,138 parameters with the norm's scales and shifts)
_RGENN = dict(_AFFINE, norm="layer", kernel="siren", **_POOLED)
MODELS = {
    "affine_sl2": ("affine_cnn", dict(_AFFINE, group="SL2")),
    "affine_gl2": ("affine_cnn", dict(_AFFINE, group="GL+2")),
    # with a per-pixel channel norm after every convolution
    "affine_sl2_norm": ("affine_cnn", dict(_AFFINE, group="SL2", norm="channel")),
    "affine_gl2_norm": ("affine_cnn", dict(_AFFINE, group="GL+2", norm="channel")),
    "p4cnn": ("p4cnn", dict(channels=9, depth=3)),
    "cnn": ("cnn", dict(channels=18, depth=3)),
    "affine_sl2_pool": ("affine_cnn", dict(_AFFINE, group="SL2", norm="channel", **_POOLED)),
    "affine_gl2_pool": ("affine_cnn", dict(_AFFINE, group="GL+2", norm="channel", **_POOLED)),
    "affine_sl2_siren": ("affine_cnn", dict(_RGENN, group="SL2")),
    "affine_gl2_siren": ("affine_cnn", dict(_RGENN, group="GL+2")),
    # the same with smoother group-convolution kernels (SIREN w0 2 there) and equidistant rotations
    "affine_sl2_w2": ("affine_cnn", dict(_RGENN, group="SL2", w0=(10.0, 2.0), rotations="equidistant")),
    # ... trained with one fixed sample set per layer (rgenn's deterministic sampling)
    "affine_sl2_fixed": (
        "affine_cnn",
        dict(_RGENN, group="SL2", w0=(10.0, 2.0), rotations="equidistant", fixed_samples=True),
    ),
    "p4cnn_pool": ("p4cnn", dict(channels=9, depth=3, **_POOLED)),
    "cnn_pool": ("cnn", dict(channels=18, depth=3, **_POOLED)),
}
STRENGTHS = (0.0, 0.25, 0.5, 0.75, 1.0)
COMPONENTS = {
    "rotation": AffnistRanges(rotation_deg=20.0, shear_deg=0.0, scale=0.0),
    "shear": AffnistRanges(rotation_deg=0.0, shear_deg=45.0, scale=0.0),
    "scale": AffnistRanges(rotation_deg=0.0, shear_deg=0.0, scale=0.2),
}


def make_model(key: str, image_size: int = 40) -> torch.nn.Module:
    name, kw = MODELS[key]
    return build_model(name, image_size=image_size, **kw)


def train(
    model, train_set, cpu_seconds: float, batch_size: int, lr: float, seed: int, canvas: int = 40, log_every: int = 500
) -> dict:
    """Adam, learning rate ``lr * (1 + cos(pi * used / budget)) / 2``, until ``cpu_seconds`` of process time.

    Prints the mean training loss and accuracy of the last ``log_every`` steps (0: never).
    """
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    t0, steps, epochs, loss = time.process_time(), 0, 0, torch.tensor(float("nan"))
    window = []
    model.train()
    done = False
    while not done:
        for b in train_set.batches(batch_size, shuffle=True, generator=gen):
            used = time.process_time() - t0
            if used >= cpu_seconds:
                done = True
                break
            for group in opt.param_groups:
                group["lr"] = lr * 0.5 * (1 + math.cos(math.pi * used / cpu_seconds))
            logits = model(pad_images(b["images"], canvas))
            loss = F.cross_entropy(logits, b["labels"])
            opt.zero_grad()
            loss.backward()
            opt.step()
            steps += 1
            if log_every:
                window.append((float(loss.detach()), float((logits.argmax(-1) == b["labels"]).double().mean())))
                if steps % log_every == 0:
                    ls, acc = zip(*window)
                    print(
                        f"step {steps}  {used:.0f} CPU-s  loss {sum(ls) / len(ls):.4f}  "
                        f"train accuracy {100 * sum(acc) / len(acc):.1f}%",
                        flush=True,
                    )
                    window = []
        else:
            epochs += 1
    model.eval()
    return {
        "steps": steps,
        "images_seen": steps * batch_size,
        "full_epochs": epochs,
        "cpu_s": round(time.process_time() - t0, 1),
        "last_loss": float(loss.detach()),
    }


@torch.no_grad()
def accuracy(model, images, labels, batch_size: int = 250) -> float:
    pred = torch.cat([model(images[i : i + batch_size]).argmax(-1) for i in range(0, len(images), batch_size)])
    return float((pred == labels).double().mean())


@torch.no_grad()
def invariance(model, images, A, seed: int, samples=(4, 8, 16, 32)) -> dict:
    """Relative logit change under the linear maps ``A [N, 2, 2]`` (no translation); per sample count for affine models."""
    moved = warp(images, A)

    def rel(a, b):
        return float(((a - b).norm(dim=-1) / b.norm(dim=-1)).mean())

    out = {"images": len(images), "affine_error": rel(model(moved), model(images))}
    if hasattr(model, "eval_samples"):
        gen = torch.Generator().manual_seed(seed + 1)
        per = {}
        for n in samples:
            errs, noise = [], []
            for _ in range(3):  # three sample sets per count
                s1 = torch.stack([model.group.sample(n, gen) for _ in range(model.depth + 1)])
                s2 = torch.stack([model.group.sample(n, gen) for _ in range(model.depth + 1)])
                f1 = model(images, s1)
                errs.append(rel(model(moved, s1), f1))
                noise.append(rel(model(images, s2), f1))
            per[str(n)] = {"affine_error": sum(errs) / 3, "sample_noise": sum(noise) / 3}
        out["per_num_samples"] = per
    return out


def evaluate(model, test_set, seed: int, invariance_images: int) -> dict:
    t0 = time.process_time()
    x, y = test_set.images, test_set.labels
    res = {"test_images": len(x), "accuracy": {}}
    res["accuracy"]["mnist40"] = accuracy(model, pad_images(x), y)
    for s in STRENGTHS[1:]:
        res["accuracy"][f"strength_{s:g}"] = accuracy(model, affnist_like(x, seed, s)[0], y)
    res["accuracy"]["affnist_like"] = res["accuracy"]["strength_1"]
    for k, r in COMPONENTS.items():
        res["accuracy"][f"{k}_only"] = accuracy(model, affnist_like(x, seed, 1.0, r)[0], y)
    n = invariance_images
    res["invariance"] = invariance(model, pad_images(x[:n]), affnist_like(x[:n], seed)[1]["A"], seed)
    res["eval_cpu_s"] = round(time.process_time() - t0, 1)
    return res


def plot(paths: list[str], figure: str | None) -> None:
    runs = {}
    for p in paths:
        with open(p) as f:
            r = json.load(f)
        runs[r["model"]] = r
    rows = [
        "| model | parameters | train CPU-s | steps (x64) | MNIST 40x40 (%) | affNIST-style (%) |",
        "|---|---|---|---|---|---|",
    ]
    for k, r in runs.items():
        a = r["eval"]["accuracy"]
        rows.append(
            f"| {k} | {r['parameters']:,} | {r['train']['cpu_s']} | {r['train']['steps']} | "
            f"{100 * a['mnist40']:.2f} | {100 * a['affnist_like']:.2f} |"
        )
    print("\n".join(rows))
    if figure:
        from equivar._plotting import pyplot, save_figure

        plt = pyplot()
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
        for k, r in runs.items():
            a = r["eval"]["accuracy"]
            acc = [a["mnist40"]] + [a[f"strength_{s:g}"] for s in STRENGTHS[1:]]
            ax1.plot(STRENGTHS, [100 * v for v in acc], marker="o", label=f"{k} ({r['parameters']:,} params)")
        ax1.set_xlabel("distortion strength (1 = affNIST's ranges)")
        ax1.set_ylabel("test accuracy (%)")
        ax1.set_title("trained on MNIST, tested on affNIST-style digits")
        ax1.grid(alpha=0.3)
        ax1.legend(fontsize=8)
        names = ["mnist40"] + [f"{c}_only" for c in COMPONENTS] + ["affnist_like"]
        width = 0.8 / max(len(runs), 1)
        for i, (k, r) in enumerate(runs.items()):
            a = r["eval"]["accuracy"]
            ax2.bar([j + i * width for j in range(len(names))], [100 * a[n] for n in names], width, label=k)
        ax2.set_xticks([j + 0.4 - width / 2 for j in range(len(names))])
        ax2.set_xticklabels(["padded", "rotation", "shear", "scale", "all"], fontsize=8)
        ax2.set_ylabel("test accuracy (%)")
        ax2.set_title("per transformation (each with translation)")
        ax2.set_ylim(0, 100)
        ax2.grid(axis="y", alpha=0.3)
        save_figure(fig, figure)
        print(f"wrote {figure}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", choices=sorted(MODELS), default=None, help="the model to train (required unless --plot)")
    p.add_argument("--cpu-seconds", type=float, default=500.0, help="training budget (process CPU time, one thread)")
    p.add_argument("--train-limit", type=int, default=None, help="first N training images (default: all 60000)")
    p.add_argument("--test-limit", type=int, default=None, help="first N test images (default: all 10000)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--invariance-images", type=int, default=64, help="test digits for the invariance errors (>= 1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("-o", "--output", default=None, help="JSON file for the results")
    p.add_argument("--save", default=None, help="write the trained weights here ({model, state_dict})")
    p.add_argument("--load", default=None, help="evaluate these weights (from --save) instead of training")
    p.add_argument("--plot", nargs="+", default=None, help="merge these result files (table; --figure)")
    p.add_argument("--figure", default=None, help="PNG file for the --plot figure")
    p.add_argument("--overwrite", action="store_true", help="replace existing -o / --save / --figure files")
    a = p.parse_args(argv)
    from equivar._paths import check_output_file

    try:
        inputs = [("--load", a.load)] * bool(a.load) + [("--plot", f) for f in a.plot or []]
        for flag, path in (("-o", a.output), ("--save", a.save), ("--figure", a.figure)):
            check_output_file(path, flag, inputs, overwrite=a.overwrite)
        outs = [os.path.realpath(x) for x in (a.output, a.save, a.figure) if x]
        if len(set(outs)) < len(outs):
            raise ValueError("-o, --save and --figure must name different files")
        if a.figure and not a.figure.lower().endswith(".png"):
            raise ValueError(f"--figure {a.figure}: expected a .png file name")
        for flag, path in [("--load", a.load)] + [("--plot", f) for f in a.plot or []]:
            if path is not None and not os.path.isfile(path):
                raise ValueError(f"{flag} {path}: no such file")
        for flag, v in (("--cpu-seconds", a.cpu_seconds), ("--batch-size", a.batch_size), ("--lr", a.lr)):
            if not v > 0:
                raise ValueError(f"{flag} must be > 0, got {v}")
        for flag, v in (
            ("--train-limit", a.train_limit),
            ("--test-limit", a.test_limit),
            ("--invariance-images", a.invariance_images),
        ):
            if v is not None and v < 1:
                raise ValueError(f"{flag} must be >= 1, got {v}")
    except ValueError as e:
        p.error(str(e))
    if a.plot:
        plot(a.plot, a.figure)
        return 0
    if a.model is None:
        p.error("--model is required (or --plot)")
    torch.set_num_threads(1)
    root = os.path.join(ROOT, "mnist")
    train_set = load_image_set(root, "train", a.train_limit)
    test_set = load_image_set(root, "test", a.test_limit)
    torch.manual_seed(a.seed)
    model = make_model(a.model)
    res = {"model": a.model, "hparams": MODELS[a.model][1], "threads": 1, "args": vars(a)}
    res["parameters"] = sum(q.numel() for q in model.parameters())
    if a.load:
        ckpt = torch.load(a.load, weights_only=False)
        if ckpt.get("model") != a.model:
            p.error(f"--load {a.load}: holds the weights of --model {ckpt.get('model')}, not {a.model}")
        model.load_state_dict(ckpt["state_dict"])
        model.eval()
        res["train"] = ckpt["train"]
    else:
        res["train"] = train(model, train_set, a.cpu_seconds, a.batch_size, a.lr, a.seed)
    print(a.model, json.dumps(res["train"]), flush=True)
    if a.save:
        save_checkpoint(a.save, {"model": a.model, "train": res["train"], "state_dict": model.state_dict()})
    res["eval"] = evaluate(model, test_set, a.seed, a.invariance_images)
    print(a.model, json.dumps(res["eval"]), flush=True)
    if a.output:
        write_json_atomic(a.output, res)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
