"""``equivar bench {sh,tp}``: benchmarks against e3nn (and other peers) measured in the same run.

The measurements live in :mod:`equivar.bench`; this module holds only the
command-line glue (flags, their one-line errors, printing and writing the
results):

- ``equivar bench tp``: tensor products, backends x L x channels x batch
  (:mod:`equivar.bench.tp`; options ``--json``, ``--png``, ``--L``,
  ``--channels``, ``--batch``, ``--backends``, ``--quick`` ...);
- ``equivar bench sh``: spherical harmonics (:mod:`equivar.bench.sh`).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import torch

from .._allocator import allocator_state
from .._device import check_device
from .._paths import check_output_file, write_json_atomic
from ..bench import sh as bench_sh
from ..bench import tp as bench_tp
from ..tp import available_backends


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="bench", metavar="WHAT", required=True)
    tp = sub.add_parser("tp", help="tensor products: backends vs e3nn", description="Tensor-product benchmark")
    add_tp_arguments(tp)
    sh = sub.add_parser("sh", help="spherical harmonics vs e3nn", description="Spherical-harmonics benchmark")
    add_sh_arguments(sh)


def run(args) -> int:
    if args.bench == "tp":
        return int(run_tp(args) or 0)
    if args.bench == "sh":
        return int(run_sh(args) or 0)
    raise ValueError(f"unknown benchmark {args.bench!r}")


# --- equivar bench sh ----------------------------------------------------------------
def add_sh_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--n", type=int, default=100_000, help="number of vectors")
    p.add_argument("--L", type=int, nargs="+", default=[3, 8], help="l_max values")
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", default=None, help="write results to this JSON file")


def run_sh(args) -> int:
    for flag, v in (("--n", args.n), ("--repeats", args.repeats), ("--threads", args.threads)):
        if v < 1:
            raise ValueError(f"{flag} must be >= 1, got {v}")
    bad = [l for l in args.L if l < 0 or l > 64]
    if bad:
        raise ValueError(f"--L must be in 0..64, got {bad[0]}")
    check_output_file(args.json, "--json")
    rows = bench_sh.run_benchmark(n=args.n, Ls=tuple(args.L), repeats=args.repeats, threads=args.threads)
    print(f"spherical harmonics, {args.n} vectors, float32, {args.threads} threads, median of {args.repeats}")
    print(bench_sh.format_table(rows))
    if args.json:
        write_json_atomic(args.json, rows, indent=2, flag="--json")
    return 0


# --- equivar bench tp ----------------------------------------------------------------
def add_tp_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--L", type=int, nargs="+", default=list(bench_tp.DEFAULT_L), help="degrees L (default 1 2 3 4 6)")
    p.add_argument("--channels", type=int, nargs="+", default=[32])
    p.add_argument("--batch", type=int, nargs="+", default=[4096], help="number of edges")
    p.add_argument("--backends", nargs="+", default=list(bench_tp.ALL_BACKENDS))
    p.add_argument("--configs", nargs="+", default=list(bench_tp.CONFIGS), choices=list(bench_tp.CONFIGS))
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    p.add_argument("--device", default="cpu")
    p.add_argument("--no-e3nn", action="store_true", help="skip the e3nn peer")
    p.add_argument("--e3nn-max-L", type=int, default=6, help="largest L at which e3nn is measured")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory measurement")
    p.add_argument(
        "--measures",
        nargs="+",
        default=list(bench_tp.MEASURES),
        choices=list(bench_tp.MEASURES),
        help="what to time: fwd, fwd_bwd, double (default all)",
    )
    p.add_argument(
        "--backend-max-L",
        nargs="+",
        default=[],
        metavar="BACKEND=L",
        help="largest L measured for a backend, e.g. gaunt=4 (slow configurations)",
    )
    p.add_argument("--quick", action="store_true", help="L 1 2 3, 512 edges, 2 repeats (smoke test)")
    p.add_argument("--json", metavar="PATH", help="write the rows and machine info as JSON")
    p.add_argument("--png", metavar="PATH", help="plot time against L per backend (log scale)")
    p.add_argument("--seed", type=int, default=0)


def _parse_limits(items) -> dict:
    known = set(available_backends())
    out = {}
    for it in items:
        b, sep, v = it.partition("=")
        if not sep or not v.strip().isdigit():
            raise ValueError(f"--backend-max-L expects BACKEND=L, got {it!r}")
        if b.strip() not in known:
            raise ValueError(f"--backend-max-L: unknown backend {b.strip()!r}; available: {sorted(known)}")
        out[b.strip()] = int(v)
    return out


def check_args(args) -> None:
    """One-line ``ValueError`` naming the flag for a bad value, before any measurement starts."""
    for flag, values, least in (("--L", args.L, 0), ("--channels", args.channels, 1), ("--batch", args.batch, 1)):
        bad = [v for v in values if v < least]
        if bad:
            raise ValueError(f"{flag} must be >= {least}, got {bad[0]}")
    if any(v > 32 for v in args.L):  # the products reach l = 2L, and irreps stop at l = 64
        raise ValueError(f"--L must be at most 32 (outputs reach l = 2L <= 64), got {max(args.L)}")
    _parse_limits(args.backend_max_L)
    for flag, v, least in (
        ("--repeats", args.repeats, 1),
        ("--threads", args.threads, 1),
        ("--e3nn-max-L", args.e3nn_max_L, 0),
    ):
        if v < least:
            raise ValueError(f"{flag} must be >= {least}, got {v}")
    check_device(args.device, "--device")
    check_output_file(args.json, "--json")
    check_output_file(args.png, "--png")


def run_tp(args) -> int:
    check_args(args)  # the flags as given (--quick then only substitutes valid values)
    if args.quick:
        args.L, args.batch, args.repeats = [l for l in args.L if l <= 3] or [1, 2, 3], [512], 2
    known = set(available_backends())
    unknown = [b for b in args.backends if b not in known]
    if unknown:
        raise ValueError(f"unknown backend(s) {unknown}; available: {sorted(known)}")
    limits = _parse_limits(args.backend_max_L)
    dtype = getattr(torch, args.dtype)
    t0 = time.time()
    mm = bench_tp.matmul_gflops(args.threads, args.device)
    cap = bench_tp.limit_address_space() if str(args.device).startswith("cpu") else None
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"# equivar bench tp: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"{args.threads} threads, {args.device}, {args.dtype}; float32 matmul {mm:.1f} GFLOP/s; "
        f"load average {load:.1f}; {allocator_state()}"
        + (f"; address space capped at {cap / 2**30:.0f} GiB (out-of-memory rows are reported)" if cap else "")
    )
    rows = bench_tp.run_benchmark(
        Ls=args.L,
        channels=args.channels,
        batches=args.batch,
        backends=args.backends,
        configs=args.configs,
        repeats=args.repeats,
        threads=args.threads,
        dtype=dtype,
        device=args.device,
        e3nn=not args.no_e3nn,
        e3nn_max_L=args.e3nn_max_L,
        memory=not args.no_memory,
        seed=args.seed,
        measures=tuple(args.measures),
        backend_max_L=limits,
    )
    print()
    print(bench_tp.markdown_table(rows))
    meta = {
        "command": " ".join([os.path.basename(sys.argv[0])] + sys.argv[1:]),
        "machine": platform.platform(),
        "processor": platform.processor(),
        "cpu_count": os.cpu_count(),
        "threads": args.threads,
        "device": args.device,
        "dtype": args.dtype,
        "matmul_gflops": mm,
        "torch": torch.__version__,
        "load_average_start": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "seconds": time.time() - t0,
    }
    try:
        import e3nn

        meta["e3nn"] = e3nn.__version__
    except ImportError:
        pass
    if args.json:
        write_json_atomic(args.json, {"meta": meta, "rows": rows}, flag="--json")
        print(f"wrote {args.json}")
    if args.png:
        bench_tp.plot(rows, args.png)
        print(f"wrote {args.png}")
    return 0
