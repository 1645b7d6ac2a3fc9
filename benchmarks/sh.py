"""Spherical harmonics: equivar vs e3nn (and sphericart) on 100,000 vectors.

    .venv/bin/python benchmarks/sh.py [--L 3 8] [--json out.json]
"""
import argparse

from equivar.o3._bench import add_arguments, run_sh

if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__)
    add_arguments(p)
    raise SystemExit(run_sh(p.parse_args()))
