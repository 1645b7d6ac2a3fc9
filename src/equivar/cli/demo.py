"""``equivar demo``: a short tour of the O(3) core (the main job replaces it once models land)."""
from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seed", type=int, default=0)


def run(args) -> int:
    import torch

    from .. import o3
    from ..testing import equivariance_error

    g = torch.Generator().manual_seed(args.seed)
    irreps = o3.Irreps("0e+1o+2e+3o")
    x = torch.randn(1000, 3, generator=g, dtype=torch.float64)
    Y = o3.spherical_harmonics(irreps, x)
    print(f"spherical harmonics {irreps} of 1000 vectors: shape {tuple(Y.shape)}")
    rep = equivariance_error(lambda v: o3.spherical_harmonics(irreps, v), [x], ["vector"], irreps, translations=False)
    print(f"equivariance error of Y under O(3): {rep.max:.2e}")
    return 0
