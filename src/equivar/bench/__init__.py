"""Benchmarks against peers, measured in the same run (the top library layer: no benchmark code below it).

- :mod:`equivar.bench.tp` - tensor products: backends x L x channels x
  batch against e3nn (times, peak memory, useful GFLOP/s, equivariance);
- :mod:`equivar.bench.sh` - spherical harmonics against e3nn and
  sphericart;
- :mod:`equivar.bench.cp` - approximation and equivariance error of the CP
  tensor product against its rank.

The command-line glue (flags, one-line errors, JSON and PNG output) is in
``equivar.cli.bench`` (``equivar bench tp | sh``); ``benchmarks/*.py`` run
that command.
"""

from . import cp, sh, tp

__all__ = ["cp", "sh", "tp"]
