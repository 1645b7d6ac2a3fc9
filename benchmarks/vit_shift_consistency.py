"""Shift consistency of the polyphase-anchored ViT against its unanchored twin (Ding et al. 2023), CPU-bounded.

Trains both models from the same initial weights on a subset of MNIST / Fashion-MNIST for a CPU-time
budget each (one thread), then measures on the test split:

- accuracy on the unshifted test images;
- consistency (Ding et al.): the fraction of test images whose predicted class is the same for two
  circular shifts (here: the image and one shift drawn uniformly from all H x W shifts, seeded);
- all-shift consistency on the first ``--all-shift-images`` test images (every one of the H x W circular
  shifts; equivar.symmetry.audit.shift_sweep).

Stopgap until the ``classification`` task lands in ``equivar train``; the numbers go to BENCHMARKS.md.

    PYTHONPATH=src python benchmarks/vit_shift_consistency.py --dataset mnist --cpu-seconds 80 \\
        -o benchmarks/results/vit_shift_mnist.json
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch
import torch.nn.functional as F

from equivar._paths import check_output_file, write_json_atomic
from equivar.data import load_image_set
from equivar.models import build_model
from equivar.symmetry import audit

ROOT = os.environ.get("EQUIVAR_SHARED_DATA") or os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")


def train(model, data, cpu_seconds: float, batch_size: int, lr: float, seed: int) -> dict:
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    t0, steps, epochs = time.process_time(), 0, 0
    model.train()
    while time.process_time() - t0 < cpu_seconds:
        for b in data.batches(batch_size, shuffle=True, generator=gen):
            loss = F.cross_entropy(model(b["images"]), b["labels"])
            opt.zero_grad()
            loss.backward()
            opt.step()
            steps += 1
            if time.process_time() - t0 >= cpu_seconds:
                break
        else:
            epochs += 1
    model.eval()
    return {
        "steps": steps,
        "full_epochs": epochs,
        "cpu_s": round(time.process_time() - t0, 1),
        "last_loss": float(loss),
    }


@torch.no_grad()
def predict(model, images, batch_size=500):
    return torch.cat([model(images[i : i + batch_size]).argmax(-1) for i in range(0, len(images), batch_size)])


def evaluate(model, test, all_shift_images: int, seed: int) -> dict:
    t0 = time.process_time()
    H, W = test.images.shape[-2:]
    pred = predict(model, test.images)
    gen = torch.Generator().manual_seed(seed)
    shifts = torch.stack(
        [torch.randint(H, (len(test),), generator=gen), torch.randint(W, (len(test),), generator=gen)], -1
    )
    shifted = torch.stack([torch.roll(x, tuple(s.tolist()), dims=(-2, -1)) for x, s in zip(test.images, shifts)])
    pred_s = predict(model, shifted)
    subject = audit.Subject.batched(model, [test.images[:all_shift_images]], ["image"], "invariant", max_rows=2048)
    sweep = audit.shift_sweep(subject)
    return {
        "test_images": len(test),
        "accuracy": float((pred == test.labels).double().mean()),
        "accuracy_shifted": float((pred_s == test.labels).double().mean()),
        "consistency_random_shift": float((pred == pred_s).double().mean()),
        "all_shift_images": all_shift_images,
        "consistency_all_shifts": sweep.consistency("out"),
        "max_relative_logit_change_all_shifts": float(sweep.error["out"].max()),
        "eval_cpu_s": round(time.process_time() - t0, 1),
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataset", choices=["mnist", "fashion_mnist"], default="mnist")
    p.add_argument("--train-limit", type=int, default=20000, help="first N training images")
    p.add_argument("--test-limit", type=int, default=None, help="first N test images (default: all 10000)")
    p.add_argument("--cpu-seconds", type=float, default=80.0, help="training budget per model (process CPU time)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--all-shift-images", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("-o", "--output", default=None, help="JSON file for the results")
    p.add_argument("--save-dir", default=None, help="write <model>.pt checkpoints ({hparams, state_dict}) here")
    p.add_argument("--overwrite", action="store_true", help="replace an existing -o file")
    a = p.parse_args(argv)
    try:  # before any measurement: an existing results file is not replaced by accident
        check_output_file(a.output, "-o", overwrite=a.overwrite)
    except ValueError as e:
        raise SystemExit(f"error: {e}") from None
    torch.set_num_threads(1)
    root = os.path.join(ROOT, a.dataset)
    train_set = load_image_set(root, "train", a.train_limit)
    test_set = load_image_set(root, "test", a.test_limit)
    res = {"dataset": a.dataset, "train_images": len(train_set), "threads": 1, "args": vars(a), "models": {}}
    torch.manual_seed(a.seed)
    init = build_model("vit_polyphase").state_dict()
    for name in ("vit_polyphase", "vit"):
        model = build_model(name)
        model.load_state_dict(init)  # the same initial weights for both
        r = {"parameters": sum(q.numel() for q in model.parameters())}
        r["train"] = train(model, train_set, a.cpu_seconds, a.batch_size, a.lr, a.seed)
        r["eval"] = evaluate(model, test_set, a.all_shift_images, a.seed)
        res["models"][name] = r
        if a.save_dir:
            os.makedirs(a.save_dir, exist_ok=True)
            torch.save(
                {"hparams": {"name": name}, "state_dict": model.state_dict()}, os.path.join(a.save_dir, f"{name}.pt")
            )
        print(name, json.dumps(r), flush=True)
    if a.output:
        write_json_atomic(a.output, res, flag="-o")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
