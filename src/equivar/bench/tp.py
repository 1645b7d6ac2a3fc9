r"""Tensor-product benchmark: backends x L x channels x batch, e3nn measured in the same run.

Used by ``equivar bench tp`` and ``benchmarks/tp.py`` (whose flags live in ``equivar.cli.bench``). Two configurations,
both with features ``channels x (l = 0..L, parity (-1)^l)`` and the
spherical harmonics ``0..L`` of the edge (one irrep per degree):

- ``P`` (MACE / NequIP edge product): channelwise ``uvu``, every allowed path
  into its own output block with ``l3 <= L`` (both parities), external
  per-edge weights;
- ``S`` (function product): channelwise, the paths with even
  ``l1 + l2 + l3`` summed into one block ``channels x (l3, (-1)^l3)`` per
  ``l3 <= L``, external per-edge weights (per path for e3nn and ``cg``;
  the Gaunt-family backends use their own weight form).

For each (configuration, backend, L, channels, batch): forward time (no
autograd), forward+backward time (gradients of all three inputs for a fixed
upstream gradient), double-backward time (forces-style: gradient of the
input-2 gradient's squared norm), each the median of interleaved repeats
after warm-up (peers alternate within each round so that background load
affects them alike); peak memory held by tensors during one
forward+backward (CPU: PyTorch profiler allocation events; CUDA:
``torch.cuda.max_memory_allocated``); relative equivariance error (O(3),
float32, 64 samples); useful work ``2 * batch * sum_paths nnz(C) * u * v``
(the sparse Clebsch-Gordan multiply-adds) in GFLOP/s next to the machine's
float32 matrix-multiply GFLOP/s; and the ratio of e3nn's time to each
backend's.
"""

from __future__ import annotations

import statistics
import time

import numpy as np
import torch

from ..o3 import wigner_3j_np
from ..testing import equivariance_error
from ..tp import TensorProduct, p_config, s_config

CONFIGS = ("P", "S")
DEFAULT_L = (1, 2, 3, 4, 6)
ALL_BACKENDS = ("cg", "gaunt", "s2grid", "cp")


# --- configurations ------------------------------------------------------------
def config(name: str, L: int, channels: int):
    if name == "P":
        return p_config(L, channels)
    if name == "S":
        return s_config(L, channels)
    raise ValueError(f"unknown configuration {name!r}, expected one of {CONFIGS}")


def useful_flops(irreps_in1, irreps_in2, irreps_out, instructions, batch: int) -> int:
    """``2 * batch * sum_paths nnz(C) * mul1 * mul2``: the sparse CG multiply-adds of one forward."""
    total = 0
    for ins in instructions:
        (m1, ir1), (m2, ir2), (_, iro) = irreps_in1[ins[0]], irreps_in2[ins[1]], irreps_out[ins[2]]
        total += int(np.count_nonzero(wigner_3j_np(ir1.l, ir2.l, iro.l))) * m1 * m2
    return 2 * batch * total


def matmul_gflops(threads: int, device: str = "cpu", n: int = 1024) -> float:
    """Measured float32 ``[n, n] @ [n, n]`` throughput of this machine (median of 5)."""
    torch.set_num_threads(threads)
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    ts = []
    for _ in range(6):
        _sync(device)
        t0 = time.perf_counter()
        a @ b
        _sync(device)
        ts.append(time.perf_counter() - t0)
    return 2 * n**3 / statistics.median(ts[1:]) / 1e9


# --- modules ----------------------------------------------------------------------
def build(backend: str, cfg, dtype, device, backend_options=None):
    """The module for ``backend`` ('e3nn' for the peer) on configuration ``cfg``; raises on failure."""
    i1, i2, io, ins = cfg
    if backend == "e3nn":
        import e3nn.o3 as eo

        old = torch.get_default_dtype()
        torch.set_default_dtype(dtype)
        try:
            m = eo.TensorProduct(str(i1), str(i2), str(io), ins, shared_weights=False, internal_weights=False)
        finally:
            torch.set_default_dtype(old)
        return m.to(device)
    m = TensorProduct(
        i1, i2, io, ins, shared_weights=False, internal_weights=False, backend=backend, **(backend_options or {})
    )
    return m.to(device=device, dtype=dtype)


def _sync(device):
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


class _Inputs:
    def __init__(self, m, batch, dtype, device, seed):
        g = torch.Generator().manual_seed(seed)
        d1, d2 = m.irreps_in1.dim, m.irreps_in2.dim
        self.x1 = torch.randn(batch, d1, generator=g, dtype=dtype).to(device)
        self.x2 = torch.randn(batch, d2, generator=g, dtype=dtype).to(device)
        self.w = torch.randn(batch, m.weight_numel, generator=g, dtype=dtype).to(device)
        self.G = torch.randn(batch, m.irreps_out.dim, generator=g, dtype=dtype).to(device)


def _fwd(m, I):
    with torch.no_grad():
        m(I.x1, I.x2, I.w)


def _fwd_bwd(m, I):
    a = [t.detach().requires_grad_() for t in (I.x1, I.x2, I.w)]
    out = m(*a)
    torch.autograd.grad(out, a, I.G)


def _double(m, I):
    """Forces-style: e = <out, G>; f = de/dx2 (create_graph); backward of |f|^2 to x1 and w (f is linear in x2)."""
    a = [t.detach().requires_grad_() for t in (I.x1, I.x2, I.w)]
    e = (m(*a) * I.G).sum()
    (f,) = torch.autograd.grad(e, a[1], create_graph=True)
    torch.autograd.grad((f * f).sum(), [a[0], a[2]])


MEASURES = {"fwd": _fwd, "fwd_bwd": _fwd_bwd, "double": _double}


def _timed(fn, m, I, device):
    _sync(device)
    t0 = time.perf_counter()
    fn(m, I)
    _sync(device)
    return time.perf_counter() - t0


def peak_memory(m, I, device) -> int | None:
    """Peak bytes held by PyTorch tensors during one forward+backward, above the start.

    CUDA: ``torch.cuda.max_memory_allocated``. CPU: the allocation and free
    events of the PyTorch profiler (``profile_memory=True``) replayed in
    time order; transient allocations inside one operator and memory that
    is not allocated through PyTorch (e.g. the native kernels' small
    per-thread scratch) are not counted.
    """
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        _fwd_bwd(m, I)
        torch.cuda.synchronize()
        return int(torch.cuda.max_memory_allocated() - base)
    from torch.profiler import profile

    with profile(profile_memory=True) as prof:
        _fwd_bwd(m, I)
    events = []
    for e in prof.events():
        if e.name == "[memory]":
            events.append((e.time_range.start, e.cpu_memory_usage))
        elif e.self_cpu_memory_usage:
            events.append((e.time_range.end, e.self_cpu_memory_usage))
    events.sort()
    cur = peak = 0
    for _, delta in events:
        cur += delta
        peak = max(peak, cur)
    return int(peak)


def equivariance(m, dtype, device, seed: int = 0) -> float:
    """Largest relative O(3) equivariance error (64 samples)."""
    g = torch.Generator().manual_seed(seed)
    x1 = torch.randn(64, m.irreps_in1.dim, generator=g, dtype=dtype).to(device)
    x2 = torch.randn(64, m.irreps_in2.dim, generator=g, dtype=dtype).to(device)
    w = torch.randn(64, m.weight_numel, generator=g, dtype=dtype).to(device)
    rep = equivariance_error(
        lambda a, b: m(a, b, w).detach(),
        [x1, x2],
        [str(m.irreps_in1), str(m.irreps_in2)],
        str(m.irreps_out),
        n_trials=2,
        seed=seed,
    )
    return rep.max


# --- the run ------------------------------------------------------------------------
def run_benchmark(
    Ls=DEFAULT_L,
    channels=(32,),
    batches=(4096,),
    backends=ALL_BACKENDS,
    configs=CONFIGS,
    repeats: int = 5,
    threads: int = 2,
    dtype=torch.float32,
    device: str = "cpu",
    e3nn: bool = True,
    e3nn_max_L: int = 6,
    measures=("fwd", "fwd_bwd", "double"),
    memory: bool = True,
    backend_max_L: dict | None = None,
    backend_options: dict | None = None,
    seed: int = 0,
    log=print,
) -> list[dict]:
    """Rows (dicts) of the benchmark; see the module docstring. Backends that cannot build a configuration get an ``error``."""
    torch.set_num_threads(threads)
    rows = []
    for cname in configs:
        for L in Ls:
            for ch in channels:
                cfg = config(cname, L, ch)
                limits = backend_max_L or {}
                peers = [b for b in backends if L <= limits.get(b, L)]
                peers += ["e3nn"] if e3nn and L <= e3nn_max_L else []
                mods, errors = {}, {}
                for b in peers:
                    try:
                        mods[b] = build(b, cfg, dtype, device, (backend_options or {}).get(b))
                    except (ValueError, TypeError, ImportError, RuntimeError, NotImplementedError) as e:
                        errors[b] = str(e).split("\n")[0][:200]
                for batch in batches:
                    flops = useful_flops(*cfg, batch)
                    inputs = {b: _Inputs(m, batch, dtype, device, seed) for b, m in mods.items()}
                    times = {b: {k: [] for k in measures} for b in mods}
                    oom: dict = {}  # (backend, measure) -> message: reported in the row, the run goes on
                    for k in measures:
                        for b, m in mods.items():  # warm-up (also compiles native kernels, fills caches)
                            _guarded(oom, (b, k), MEASURES[k], m, inputs[b])
                        for _ in range(repeats):
                            for b, m in mods.items():
                                if (b, k) not in oom:
                                    _guarded(
                                        oom,
                                        (b, k),
                                        lambda *a: times[b][k].append(_timed(*a)),
                                        MEASURES[k],
                                        m,
                                        inputs[b],
                                        device,
                                    )
                    for b in peers:
                        row = {
                            "config": cname,
                            "L": L,
                            "channels": ch,
                            "batch": batch,
                            "backend": b,
                            "dtype": str(dtype).replace("torch.", ""),
                            "device": device,
                            "threads": threads,
                            "useful_gflop": flops / 1e9,
                        }
                        if b in errors:
                            row["error"] = errors[b]
                            rows.append(row)
                            log(f"{cname} L={L} ch={ch} batch={batch} {b}: n/a ({errors[b]})")
                            continue
                        m = mods[b]
                        for k in measures:
                            if (b, k) in oom:
                                row.setdefault("notes", []).append(f"{k}: {oom[(b, k)]}")
                                continue
                            row[f"{k}_ms"] = 1e3 * statistics.median(times[b][k])
                        if "fwd_ms" in row:
                            row["gflops"] = flops / (row["fwd_ms"] / 1e3) / 1e9
                        row["weight_numel"] = int(m.weight_numel)
                        if memory and not any(key[0] == b for key in oom):
                            peak = _guarded(oom, (b, "memory"), peak_memory, m, inputs[b], device)
                            row["peak_mem_mb"] = None if peak is None else peak / 2**20
                        try:
                            row["equivariance_error"] = equivariance(m, torch.float32, device, seed)
                        except Exception as e:  # noqa: BLE001 - report, do not abort the run
                            row["equivariance_error"] = None
                            row["equivariance_note"] = str(e)[:200]
                        res = getattr(getattr(m, "backend", None), "resolution", None)
                        if callable(res):
                            row["resolution"] = res()
                        rows.append(row)
                    if "e3nn" in mods:
                        ref = [r for r in rows[-len(peers) :] if r["backend"] == "e3nn"][0]
                        for r in rows[-len(peers) :]:
                            for k in measures:
                                if f"{k}_ms" in r and f"{k}_ms" in ref:
                                    r[f"{k}_vs_e3nn"] = ref[f"{k}_ms"] / r[f"{k}_ms"]
                    for r in rows[-len(peers) :]:
                        log(format_row(r))
    return rows


def _is_oom(e: BaseException) -> bool:
    msg = str(e).lower()
    return isinstance(e, MemoryError) or "out of memory" in msg or "can't allocate memory" in msg


def _guarded(failed: dict, key, fn, *args):
    """``fn(*args)``; an out-of-memory error is recorded in ``failed[key]`` (and None returned) instead of raised."""
    try:
        return fn(*args)
    except (MemoryError, RuntimeError) as e:
        if not _is_oom(e):
            raise
        failed[key] = "out of memory"
        import gc

        gc.collect()
        return None


def limit_address_space(fraction: float = 0.9) -> int | None:
    """Cap this process's address space at its current size plus ``fraction`` of the available memory (Linux).

    A measurement that would need more then fails with a ``RuntimeError``
    ("can't allocate memory") that the benchmark reports as "out of memory"
    in its row, instead of the kernel's out-of-memory killer ending the whole
    run (the P configuration at L >= 6 can exceed 20 GB with e3nn or in the
    double backward). Returns the limit in bytes, or None where unsupported.
    """
    try:
        import resource

        with open("/proc/meminfo") as f:
            info = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in f}
        with open("/proc/self/status") as f:
            vm = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize:"))
        limit = vm + int(fraction * info["MemAvailable"])
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
        return limit
    except (OSError, ValueError, KeyError, StopIteration, ImportError):
        return None


# --- output ---------------------------------------------------------------------------
def _f(v, fmt):
    return "-" if v is None else format(v, fmt)


def format_row(r: dict) -> str:
    if "error" in r:
        return f"{r['config']:>2} L={r['L']:<2} ch={r['channels']:<4} batch={r['batch']:<6} {r['backend']:<7} n/a: {r['error']}"
    return (
        f"{r['config']:>2} L={r['L']:<2} ch={r['channels']:<4} batch={r['batch']:<6} {r['backend']:<7}"
        f" fwd {_f(r.get('fwd_ms'), '9.2f')} ms ({_f(r.get('fwd_vs_e3nn'), '6.1f')}x)"
        f" fwd+bwd {_f(r.get('fwd_bwd_ms'), '9.2f')} ms ({_f(r.get('fwd_bwd_vs_e3nn'), '6.1f')}x)"
        f" 2nd {_f(r.get('double_ms'), '9.2f')} ms ({_f(r.get('double_vs_e3nn'), '6.1f')}x)"
        f" mem {_f(r.get('peak_mem_mb'), '7.1f')} MB  eq.err {_f(r.get('equivariance_error'), '.1e')}"
        f"  {_f(r.get('gflops'), '6.2f')} GFLOP/s" + ("  [" + "; ".join(r["notes"]) + "]" if r.get("notes") else "")
    )


def markdown_table(rows: list[dict], config_name: str | None = None) -> str:
    """Markdown table of the rows: times in ms with the e3nn ratio (e3nn time / this time) in parentheses."""
    head = (
        "| config | L | backend | fwd ms (x e3nn) | fwd+bwd ms (x e3nn) | double bwd ms (x e3nn) | peak MB | "
        "equiv. err | GFLOP/s |"
    )
    lines = [head, "|---" * (head.count("|") - 1) + "|"]

    def cell(r, k):
        t = r.get(f"{k}_ms")
        if t is None:
            return "-"
        x = r.get(f"{k}_vs_e3nn")
        return f"{t:.1f}" + ("" if x is None or r["backend"] == "e3nn" else f" ({x:.1f}x)")

    for r in rows:
        if config_name and r["config"] != config_name:
            continue
        if "error" in r:
            lines.append(f"| {r['config']} | {r['L']} | {r['backend']} | n/a | | | | | |")
            continue
        lines.append(
            f"| {r['config']} | {r['L']} | {r['backend']} | {cell(r, 'fwd')} | {cell(r, 'fwd_bwd')} | "
            f"{cell(r, 'double')} | {_f(r.get('peak_mem_mb'), '.0f')} | "
            f"{_f(r.get('equivariance_error'), '.1e')} | {_f(r.get('gflops'), '.2f')} |"
        )
    return "\n".join(lines)


def plot(rows: list[dict], path: str, measure: str = "fwd_bwd_ms") -> None:
    """Time against L per backend, one panel per configuration, log scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    configs = sorted({r["config"] for r in rows})
    fig, axes = plt.subplots(1, len(configs), figsize=(5.5 * len(configs), 4.2), squeeze=False)
    for ax, c in zip(axes[0], configs):
        for b in sorted({r["backend"] for r in rows if r["config"] == c}):
            pts = sorted((r["L"], r[measure]) for r in rows if r["config"] == c and r["backend"] == b and measure in r)
            if pts:
                ax.plot(*zip(*pts), marker="o", label=b, linestyle="--" if b == "e3nn" else "-")
        ax.set_yscale("log")
        ax.set_xticks(sorted({r["L"] for r in rows if r["config"] == c}))
        ax.set_xlabel("L")
        ax.set_ylabel(measure.replace("_ms", "").replace("_", "+") + " time (ms)")
        ax.set_title(f"configuration {c}")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
