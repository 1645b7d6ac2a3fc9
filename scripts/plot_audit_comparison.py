"""Plot several ``equivar audit`` results side by side (README figure: EGNN vs a non-equivariant MLP on N-body).

Reads each run's ``audit.json`` (written by ``equivar audit --out DIR``) and draws, per model, the aggregate
relative equivariance error of every audited group (bars, log scale; an exact zero is drawn at the floor) and
the mean relative error of the rotation sweep against the angle, averaged over the x, y and z axes.

    python scripts/plot_audit_comparison.py --audit EGNN=audit/egnn MLP=audit/mlp --out docs/img/x.png

An existing ``--out`` file is refused (one line) unless ``--overwrite``; it is written atomically.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

FLOOR = 1e-17


def load(spec: str) -> tuple[str, dict]:
    name, sep, path = spec.partition("=")
    if not sep or not name or not path:
        raise SystemExit(f"--audit {spec!r}: expected NAME=DIR (a directory written by equivar audit --out)")
    f = os.path.join(path, "audit.json")
    if not os.path.isfile(f):
        raise SystemExit(f"--audit {spec!r}: {f} not found (run equivar audit --out {path} first)")
    with open(f) as fh:
        return name, json.load(fh)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--audit", nargs="+", required=True, metavar="NAME=DIR")
    p.add_argument("--out", required=True, help="PNG to write")
    p.add_argument("--title", default=None)
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    a = p.parse_args(argv)
    from equivar._paths import atomic_output, check_output_file

    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    try:
        inputs = [("--audit", os.path.join(s.partition("=")[2], "audit.json")) for s in a.audit]
        check_output_file(a.out, "--out", inputs, overwrite=a.overwrite)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    runs = [load(s) for s in a.audit]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    groups = [g for g in runs[0][1]["groups"] if all(g in r["groups"] for _, r in runs)]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.4), gridspec_kw={"width_ratios": [1.3, 1]})
    width = 0.8 / len(runs)
    for i, (name, r) in enumerate(runs):
        vals = []
        for g in groups:
            outs = r["groups"][g]["outputs"]
            vals.append(max(max(v["aggregate"] for v in outs.values()), FLOOR))
        ax1.bar(np.arange(len(groups)) + (i - (len(runs) - 1) / 2) * width, vals, width, label=name)
        sweep = r.get("sweep")
        if sweep:
            err = next(iter(sweep["error"].values()))
            curve = np.mean([np.maximum(err[ax], FLOOR) for ax in err], axis=0)
            ax2.plot(sweep["angles_deg"], curve, label=name)
    ax1.set_yscale("log")
    ax1.set_xticks(np.arange(len(groups)))
    ax1.set_xticklabels(groups, rotation=30, ha="right", fontsize=8)
    ax1.set_ylabel("relative equivariance error")
    ax1.set_title("per group (aggregate over sampled elements)", fontsize=9)
    ax1.legend(fontsize=8, loc="center")
    ax2.set_yscale("log")
    ax2.set_xlabel("rotation angle (deg), mean over x, y, z axes")
    ax2.set_title("rotation sweep", fontsize=9)
    ax2.legend(fontsize=8, loc="center right")
    if a.title:
        fig.suptitle(a.title, fontsize=10)
    fig.tight_layout()
    with atomic_output(a.out, "wb", flag="--out") as f:
        fig.savefig(f, dpi=90, format="png")
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
