"""Tensor products: equivar backends (cg, gaunt, s2grid, cp) vs e3nn, configurations P and S.

    .venv/bin/python benchmarks/tp.py [--L 1 2 3 4 6] [--batch 4096] [--json tp.json] [--png tp.png] [--quick]

Same as ``equivar bench tp``; see ``equivar.tp._bench`` for what is measured.
"""
import argparse

from equivar.tp._bench import add_arguments, run_tp

if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p)
    raise SystemExit(run_tp(p.parse_args()))
