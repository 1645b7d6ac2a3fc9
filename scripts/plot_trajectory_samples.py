"""Picture of K sampled future trajectories next to the truth, from an ``equivar eval`` predictions file.

    python scripts/plot_trajectory_samples.py runs/nbody_geotdm/test_predictions.npz --scenes 0 1 2 \\
        --out docs/img/geotdm_nbody_samples.png

An existing ``--out`` file is refused (one line) unless ``--overwrite``; it is written atomically.

Each panel is one scene projected on the x-y plane: observed frames (needs ``--observed``, the ``pos`` of the
same scenes, else omitted), ground-truth future (solid), the K samples (thin), the end points marked.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("predictions")
    p.add_argument("--scenes", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--observed", help="npz with 'pos' [N, T_in, D] of the same agents (optional)")
    p.add_argument("--out", required=True)
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    args = p.parse_args(argv)
    from equivar._paths import atomic_output, check_output_file

    try:
        inputs = {"predictions": args.predictions, "--observed": args.observed}
        check_output_file(args.out, "--out", {k: v for k, v in inputs.items() if v}, overwrite=args.overwrite)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    z = np.load(args.predictions)
    pred, target, ptr = z["pred"], z["target"], z["ptr"]
    obs = np.load(args.observed)["pos"] if args.observed else None
    fig, axes = plt.subplots(1, len(args.scenes), figsize=(4 * len(args.scenes), 4), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, s in zip(axes[0], args.scenes):
        if not 0 <= s < len(ptr) - 1:
            print(f"error: --scenes {s}: the file has scenes 0..{len(ptr) - 2}", file=sys.stderr)
            return 2
        for j, i in enumerate(range(ptr[s], ptr[s + 1])):
            c = colors[j % len(colors)]
            if obs is not None:
                ax.plot(obs[i, :, 0], obs[i, :, 1], ":", color=c, lw=1.5)
            ax.plot(target[i, :, 0], target[i, :, 1], "-", color=c, lw=2.2)
            ax.plot(target[i, -1, 0], target[i, -1, 1], "o", color=c)
            for k in range(pred.shape[0]):
                ax.plot(pred[k, i, :, 0], pred[k, i, :, 1], "-", color=c, lw=0.7, alpha=0.6)
                ax.plot(pred[k, i, -1, 0], pred[k, i, -1, 1], "x", color=c, ms=4, alpha=0.8)
        ax.set_title(f"test scene {s}: truth (thick), {pred.shape[0]} samples (thin)", fontsize=9)
        ax.set_aspect("equal", adjustable="datalim")
    fig.tight_layout()
    with atomic_output(args.out, "wb") as f:
        fig.savefig(f, format="png", dpi=110)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
