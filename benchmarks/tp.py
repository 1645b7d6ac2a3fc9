"""Tensor products: equivar backends (cg, gaunt, s2grid, cp) vs e3nn, configurations P and S.

    .venv/bin/python benchmarks/tp.py [--L 1 2 3 4 6] [--batch 4096] [--json tp.json] [--png tp.png] [--quick]

Same as ``equivar bench tp`` (it runs that command, so bad flags and values
get the command's one-line errors); see ``equivar.bench.tp`` for what is measured.
"""

import sys

from equivar.cli.main import main

if __name__ == "__main__":
    raise SystemExit(main(["bench", "tp", *sys.argv[1:]]))
