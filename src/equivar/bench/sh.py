"""Spherical-harmonics benchmark: equivar vs e3nn (and sphericart) in one run.

Used by ``equivar bench sh`` and ``benchmarks/sh.py`` (flags in ``equivar.cli.bench``). Each measurement is
the median of interleaved repeats (peers alternate within each round so
that background load affects them alike), after warm-up.
"""

from __future__ import annotations

import statistics
import time

import torch

from ..o3 import spherical_harmonics


def _impls(L: int):
    ls = list(range(L + 1))
    impls = {"equivar": lambda x: spherical_harmonics(ls, x, normalize=True, normalization="component")}
    try:
        import e3nn.o3 as e3o3

        impls["e3nn"] = lambda x: e3o3.spherical_harmonics(ls, x, True, normalization="component")
    except ImportError:
        pass
    try:
        import sphericart.torch as sct

        sc = sct.SphericalHarmonics(L)
        impls["sphericart"] = sc.compute
    except Exception:  # noqa: BLE001 - optional peer
        pass
    return impls


def _time(fn, x, backward: bool) -> float:
    if backward:
        xr = x.detach().requires_grad_()
        t0 = time.perf_counter()
        y = fn(xr)
        y.backward(torch.ones_like(y))
    else:
        with torch.no_grad():
            t0 = time.perf_counter()
            fn(x)
    return time.perf_counter() - t0


def run_benchmark(n: int = 100_000, Ls=(3, 8), repeats: int = 15, threads: int = 2, seed: int = 0) -> list[dict]:
    torch.set_num_threads(threads)
    x = torch.randn(n, 3, generator=torch.Generator().manual_seed(seed))
    rows = []
    for L in Ls:
        impls = _impls(L)
        for backward in (False, True):
            times = {k: [] for k in impls}
            for _ in range(2):
                for k, f in impls.items():
                    _time(f, x, backward)
            for _ in range(repeats):
                for k, f in impls.items():
                    times[k].append(_time(f, x, backward))
            med = {k: statistics.median(v) * 1e3 for k, v in times.items()}
            rows.append({"L": L, "pass": "fwd+bwd" if backward else "fwd", "n": n, "ms": med})
    return rows


def format_table(rows: list[dict]) -> str:
    peers = sorted({k for r in rows for k in r["ms"]} - {"equivar"})
    head = "| L | pass | equivar ms | " + " | ".join(f"{p} ms | {p}/equivar" for p in peers) + " |"
    sep = "|" + "---|" * (3 + 2 * len(peers))
    lines = [head, sep]
    for r in rows:
        cells = [str(r["L"]), r["pass"], f"{r['ms']['equivar']:.1f}"]
        for p in peers:
            if p in r["ms"]:
                cells += [f"{r['ms'][p]:.1f}", f"{r['ms'][p] / r['ms']['equivar']:.2f}x"]
            else:
                cells += ["-", "-"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
