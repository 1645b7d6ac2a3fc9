#!/usr/bin/env python
"""Test MSE of a trained PONITA N-body checkpoint with its fixed grid and averaged over randomly rotated grids.

PONITA with a fixed orientation grid is SO(3)-equivariant only up to the sphere's discretisation; averaging
its predictions over ``K`` Haar-random rotations of the grid (``model(batch, grid=R_k G)``) approximates the
exactly equivariant group average (the authors evaluate their rMD17 models over 5 random rotations). This
prints the test MSE (EGNN's split, the checkpoint's own data settings) for ``K = 1`` (the fixed grid, the
trained model's plain prediction) and each ``K`` asked for, with the CPU time of each evaluation.

    .venv/bin/python benchmarks/ponita_grid_average.py runs/nbody_ponita/best_model.pt --k 4 16 [--json out.json]
"""

from __future__ import annotations

import argparse
import os
import sys
import time


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint")
    ap.add_argument("--k", type=int, nargs="+", default=[4, 16])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", default=None, help="also write the results here (atomically)")
    ap.add_argument("--overwrite", action="store_true", help="replace an existing --json file")
    args = ap.parse_args(argv)
    from equivar._paths import check_output_file

    try:  # before any measurement: an existing results file is not replaced by accident
        check_output_file(args.json, "--json", overwrite=args.overwrite)
    except ValueError as e:
        raise SystemExit(f"error: {e}") from None
    import torch

    from equivar.data import collate_scenes, nbody
    from equivar.o3 import rand_matrix
    from equivar.train import load_model

    torch.set_num_threads(args.threads)
    model = load_model(args.checkpoint).eval()
    dtype = next(model.parameters()).dtype
    test = nbody.frame_pairs(nbody.load_nbody().test, 30, 40)
    batches = [
        {
            k: (v.to(dtype) if v.is_floating_point() else v)
            for k, v in collate_scenes([test[i] for i in range(s, min(s + args.batch, len(test)))]).items()
        }
        for s in range(0, len(test), args.batch)
    ]
    res = {"checkpoint": os.path.abspath(args.checkpoint), "n_test": len(test), "seed": args.seed}
    gen = torch.Generator().manual_seed(args.seed)
    for k in [1] + list(args.k):
        rots = [None] if k == 1 else list(rand_matrix(k, generator=gen, dtype=dtype))
        c0 = time.process_time()
        se, n = 0.0, 0
        with torch.no_grad():
            for b in batches:
                preds = [model(b, grid=None if R is None else model.grid @ R.T)["pos"] for R in rots]
                pred = torch.stack(preds).mean(0)
                se += float(((pred - b["target"]) ** 2).sum())
                n += b["target"].numel()
        res[f"mse_k{k}"] = se / n
        res[f"cpu_s_k{k}"] = time.process_time() - c0
        print(f"K = {k:3d} grid rotations: test MSE {se / n:.5f}  ({res[f'cpu_s_k{k}']:.1f} CPU-s)", flush=True)
    if args.json:
        from equivar._paths import write_json_atomic

        write_json_atomic(args.json, res, flag="--json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
