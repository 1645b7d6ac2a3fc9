"""Spherical harmonics: equivar vs e3nn (and sphericart) on 100,000 vectors.

    .venv/bin/python benchmarks/sh.py [--L 3 8] [--json out.json]

Same as ``equivar bench sh`` (it runs that command, so bad flags and values
get the command's one-line errors).
"""

import sys

from equivar.cli.main import main

if __name__ == "__main__":
    raise SystemExit(main(["bench", "sh", *sys.argv[1:]]))
