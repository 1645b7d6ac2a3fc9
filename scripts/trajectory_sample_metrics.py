"""minADE / minFDE and aveADE / aveFDE of K sampled trajectories, from an ``equivar eval`` predictions file.

``equivar eval --model M --split test`` writes ``test_predictions.npz`` (``pred [K, N, T, D]``, or ``[N, T, D]``
for a deterministic model, read as K = 1; ``target``, ``target_mask``, ``ptr``). This prints, over scenes (GeoTDM's ``experiments/nbody_train.py``: per scene the
mean over its particles of the displacement, ADE over frames, FDE at the last; ``min`` and ``mean`` over the
K samples, then the mean over scenes) and per agent (Social-GAN's minimum per agent):

    python scripts/trajectory_sample_metrics.py runs/nbody_geotdm/test_predictions.npz [--json out.json] [--overwrite]

An existing ``--json`` file is refused (one line) unless ``--overwrite``; it is written atomically.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np


def sample_metrics(pred: np.ndarray, target: np.ndarray, mask: np.ndarray, ptr: np.ndarray) -> dict:
    """Scene-level min / mean over K and per-agent minima of ADE and FDE (module docstring).

    ``pred [K, N, T, D]`` (K samples) or ``[N, T, D]`` (one deterministic prediction: K = 1, so the minima
    and means over K are its ADE / FDE); ``target [N, T, D]``; ``mask [N]`` bool (scored agents); ``ptr [S + 1]``
    (scene offsets). Raises ``ValueError`` for another ``pred`` rank.
    """
    if pred.ndim == 3:
        pred = pred[None]
    if pred.ndim != 4:
        raise ValueError(f"pred must be [K, N, T, D] samples or one [N, T, D] prediction, got shape {pred.shape}")
    dist = np.sqrt(((pred - target[None]) ** 2).sum(-1))  # [K, N, T]
    scene_ade, scene_fde = [], []
    for s in range(len(ptr) - 1):
        sel = np.zeros(len(mask), dtype=bool)
        sel[ptr[s] : ptr[s + 1]] = True
        sel &= mask
        if sel.any():
            d = dist[:, sel].mean(1)  # [K, T]
            scene_ade.append(d.mean(-1))
            scene_fde.append(d[:, -1])
    ade, fde = np.stack(scene_ade, 1), np.stack(scene_fde, 1)  # [K, S]
    agent = dist[:, mask]
    return {
        "k": int(pred.shape[0]),
        "scenes": int(ade.shape[1]),
        "scene_min_ade": float(ade.min(0).mean()),
        "scene_min_fde": float(fde.min(0).mean()),
        "scene_ave_ade": float(ade.mean()),
        "scene_ave_fde": float(fde.mean()),
        "agent_min_ade": float(agent.mean(-1).min(0).mean()),
        "agent_min_fde": float(agent[..., -1].min(0).mean()),
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("predictions", help="an equivar eval <split>_predictions.npz with K samples")
    p.add_argument("--json", help="also write the numbers here")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --json file")
    args = p.parse_args(argv)
    from equivar._paths import check_output_file, write_json_atomic

    try:
        check_output_file(args.json, "--json", {"predictions": args.predictions}, overwrite=args.overwrite)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:
        z = np.load(args.predictions)
        out = sample_metrics(z["pred"], z["target"], z["target_mask"].astype(bool), z["ptr"])
    except (OSError, KeyError, ValueError) as e:
        print(f"error: {args.predictions}: {e}", file=sys.stderr)
        return 2
    for k, v in out.items():
        print(f"{k:>14}  {v:.6g}" if isinstance(v, float) else f"{k:>14}  {v}")
    if args.json:
        write_json_atomic(args.json, out, flag="--json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
