"""A flow-equivariant world model against its twin on a partially observed MNIST world (issue 14; after Lillemark et
al. 2026, "Flow Equivariant World Models: Memory for Partially Observed Dynamic Environments").

Takes the two checkpoints written by ``equivar train -c configs/mnist_world_flow.yaml`` and
``configs/mnist_world_rnn.yaml`` (same data, same CPU budget) and measures, on the test sequences generated again
from the MNIST test digits with the data section the checkpoints record:

- the MSE of the imagined frames overall and on re-entering digits (ink of digits that were seen, left the window
  and came back; :func:`equivar.data.mnist_world`), per imagined frame too, with two reference predictors (all
  zeros; the last observed frame repeated);
- the scene-flow error of the trained models (actions + u against actions);
- a rollout figure (the world with the window, what the agent sees, both models' imagined frames).

    PYTHONPATH=src python benchmarks/world_model_mnist.py --flow runs/mnist_world_flow/model.pt \\
        --twin runs/mnist_world_rnn/model.pt -o benchmarks/results/2026-12-05_world_model_mnist.json \\
        --img docs/img/world_model_rollout.png
"""

from __future__ import annotations

import argparse
import csv
import os
import time

import torch

from equivar._paths import check_output_file, write_json_atomic
from equivar.tasks.world_model import WorldData, WorldSet, pick_reentry_sequence, plot_rollout
from equivar.testing import scene_flow_error
from equivar.train import load_model


@torch.no_grad()
def errors(fn, ds: WorldSet, batch: int = 100) -> dict:
    """``{"mse", "reentry_mse", "mse_per_frame", "reentry_mse_per_frame"}`` of ``fn(inputs, actions, T_out)``."""
    w, k = ds.world, ds.input_frames
    sums = torch.zeros(4, w.frames.shape[1] - k, dtype=torch.float64)
    for i in range(0, len(ds), batch):
        f = w.frames[i : i + batch].double()
        y, m = f[:, k:], w.reentry[i : i + batch, k:].double()
        se = (fn(f[:, :k], w.actions[i : i + batch], y.shape[1]).double() - y).square()
        d = (0, 2, 3, 4)
        sums += torch.stack([se.sum(d), torch.full_like(se.sum(d), se[:, 0].numel()), (se * m).sum(d), m.sum(d)])
    return {
        "mse": float(sums[0].sum() / sums[1].sum()),
        "reentry_mse": float(sums[2].sum() / sums[3].sum()),
        "reentry_pixels": int(sums[3].sum()),
        "mse_per_frame": (sums[0] / sums[1]).tolist(),
        "reentry_mse_per_frame": (sums[2] / sums[3].clamp_min(1)).tolist(),
    }


def model_fn(model):
    p = next(model.parameters())
    return lambda x, a, n: model(x.to(p.dtype), a, n)


def training_facts(path: str) -> dict:
    rows = list(csv.DictReader(open(os.path.join(os.path.dirname(path), "metrics.csv"))))
    return {"epochs": len(rows), "training_cpu_s": float(rows[-1]["cpu_s"]), "wall_s": float(rows[-1].get("time_s", 0))}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--flow", required=True, help="model.pt of the flow-equivariant world model")
    ap.add_argument("--twin", required=True, help="model.pt of its twin")
    ap.add_argument("-o", "--output", required=True, help="JSON results")
    ap.add_argument("--img", default=None, help="rollout figure (PNG)")
    ap.add_argument("--overwrite", action="store_true", help="replace an existing -o / --img file")
    args = ap.parse_args(argv)
    for flag, path in (("-o", args.output), ("--img", args.img)):
        try:  # before any evaluation: an existing results file is not replaced by accident
            check_output_file(path, flag, overwrite=args.overwrite)
        except ValueError as e:
            raise SystemExit(f"error: {e}") from None
    t0 = time.process_time()
    models = {"flow WM": load_model(args.flow), "twin (conv-RNN)": load_model(args.twin)}
    recorded = [m.equivar_metadata["data"] for m in models.values()]
    if recorded[0] != recorded[1]:
        raise ValueError("the two checkpoints were trained on different task.data sections")
    data = WorldData.from_mapping(recorded[0])
    test = data.load(only=["test"], keep_world=True)["test"]
    results = {"data": recorded[0], "test_sequences": len(test), "models": {}, "references": {}}
    for label, path in (("flow WM", args.flow), ("twin (conv-RNN)", args.twin)):
        m = models[label]
        r = errors(model_fn(m), test)
        r["parameters"] = sum(p.numel() for p in m.parameters())
        r.update(training_facts(path))
        k = test.input_frames
        x, a = test.world.frames[:8, :k].to(next(m.parameters()).dtype), test.world.actions[:8]
        r["scene_flow_error"] = max(scene_flow_error(m, x, a, 10, u) for u in ([1, 0], [0, -1], [1, 1]))
        results["models"][label] = r
        print(f"{label}: MSE {r['mse']:.5f}, re-entry MSE {r['reentry_mse']:.5f}, {r['parameters']} parameters, "
              f"{r['training_cpu_s']:.0f} training CPU-s, scene-flow error {r['scene_flow_error']:.2g}")  # fmt: skip
    refs = {
        "zeros": lambda x, a, n: x.new_zeros(x.shape[0], n, *x.shape[2:]),
        "last observed frame": lambda x, a, n: x[:, -1:].expand(-1, n, -1, -1, -1),
    }
    for label, fn in refs.items():
        r = errors(fn, test)
        results["references"][label] = r
        print(f"{label}: MSE {r['mse']:.5f}, re-entry MSE {r['reentry_mse']:.5f}")
    results["figure_sequence"] = pick_reentry_sequence(test)
    if args.img:
        plot_rollout(models, test, args.img)
    results["evaluation_cpu_s"] = round(time.process_time() - t0, 1)
    write_json_atomic(args.output, results, flag="-o")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
