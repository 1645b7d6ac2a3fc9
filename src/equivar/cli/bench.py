"""``equivar bench {sh,tp}``: benchmarks against e3nn (and other peers) measured in the same run.

- ``equivar bench tp``: tensor products, backends x L x channels x batch
  (:mod:`equivar.tp._bench`; options ``--json``, ``--png``, ``--L``,
  ``--channels``, ``--batch``, ``--backends``, ``--quick`` ...);
- ``equivar bench sh``: spherical harmonics (``equivar.o3._bench``).
"""

from __future__ import annotations

import argparse
import importlib


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="bench", metavar="WHAT", required=True)
    tp = sub.add_parser("tp", help="tensor products: backends vs e3nn", description="Tensor-product benchmark")
    from ..tp._bench import add_arguments as tp_args

    tp_args(tp)
    try:
        sh_mod = importlib.import_module("equivar.o3._bench")
    except ImportError:
        sh_mod = None
    if sh_mod is not None and hasattr(sh_mod, "run_sh"):
        sh = sub.add_parser("sh", help="spherical harmonics vs e3nn", description="Spherical-harmonics benchmark")
        if hasattr(sh_mod, "add_arguments"):
            sh_mod.add_arguments(sh)


def run(args) -> int:
    if args.bench == "tp":
        from ..tp._bench import run_tp

        return int(run_tp(args) or 0)
    if args.bench == "sh":
        from ..o3._bench import run_sh

        return int(run_sh(args) or 0)
    raise ValueError(f"unknown benchmark {args.bench!r}")
