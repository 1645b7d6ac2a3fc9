#!/usr/bin/env python
"""GPU check and benchmark in one run: correctness on CUDA against the CPU, then tensor products and MACE
against their GPU peers. Writes ``gpu.json`` and ``gpu.md`` to the output folder (after every section, so a
run stopped by its time limit still leaves what it measured).

    python benchmarks/gpu.py OUT [--dry-run] [--budget-s 300] [--data aspirin.npz] [--mace-python PY]

Sections (each timed and guarded: a failure is recorded and the run goes on):

1. ``tp_cuda_vs_cpu``: every TP backend (configuration P, L=2, 8 channels, per-edge weights), forward,
   gradients of the three inputs, and the forces-style double backward, CUDA against CPU; pass when the
   relative error ``|a - b| / |b|`` is below 1e-5 (float32) / 1e-10 (float64).
2. ``equivariance_cuda``: ``equivar.testing.equivariance_error`` of every backend and of MACE on CUDA
   (exact backends and MACE: 1e-5 float32 / 1e-10 float64; the approximate ones are reported).
3. ``mace_cuda_vs_cpu``: MACE energies, forces, stress (rMD17 aspirin batch of 5 and a small periodic
   cell), and one training step (loss, gradients, parameters after one SGD step), CUDA against CPU.
4. ``sync``: host-device synchronisations in a warm training step, recorded with
   ``torch.cuda.set_sync_debug_mode('warn')`` (every synchronising call warns; the warnings are listed).
5. ``tp_bench``: configurations P (L=1..4) and S (L=2..8) at 32 and 128 channels and 100k edges (fewer when
   the inputs and outputs would not fit the memory cap; the row says how many), forward, forward+backward,
   double backward (CUDA-event medians), peak memory; equivar ``cg`` (Triton kernels) vs e3nn vs
   cuEquivariance (``ChannelWiseTensorProduct``, its ``uniform_1d`` CUDA kernel, configuration P only: S sums
   paths into shared output blocks, which that module does not express) where importable.
6. ``mace_bench``: MACE training step (energy + forces loss, backward, Adam) and MD step (energy + forces)
   on the aspirin batch and a ~5,000-atom periodic cell, equivar vs mace-torch (e3nn) vs mace-torch with
   cuEquivariance, each mace-torch variant in a subprocess (``benchmarks/_gpu_mace.py``).

``--dry-run`` runs every section on the CPU with tiny sizes (the test suite does this); without a GPU the
"device" is the CPU and the comparisons are CPU against CPU.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import platform
import statistics
import subprocess
import time
import traceback
import warnings

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_DATA = [
    os.path.join(ROOT, ".devcarry", "aspirin.npz"),
    os.path.join(ROOT, "..", "shared", "data", "rmd17", "rmd17_aspirin_train_01.npz"),
]
TOL = {torch.float32: 1e-5, torch.float64: 1e-10}
#: seconds of the budget the tensor-product benchmark leaves for the MACE benchmark
TP_RESERVE_S = 100
DTYPES = {"float32": torch.float32, "float64": torch.float64}


# --- plumbing ------------------------------------------------------------------------------------------
class Run:
    """Results, output files and the time budget of one run."""

    def __init__(self, out: str, budget_s: float, dry: bool, device: str):
        self.out, self.dry, self.device = out, dry, device
        self.t0 = time.perf_counter()
        self.deadline = self.t0 + budget_s
        self.res: dict = {"meta": meta(device, dry), "sections": {}}
        os.makedirs(out, exist_ok=True)

    def left(self) -> float:
        return self.deadline - time.perf_counter()

    def section(self, name, fn, *args):
        t = time.perf_counter()
        rec = {"ok": None}
        self.res["sections"][name] = rec
        print(f"== {name} (budget left {self.left():.0f} s)", flush=True)
        try:
            rec.update(fn(self, *args) or {})
            if rec["ok"] is None:
                rec["ok"] = True
        except Exception as e:  # recorded, the run goes on
            rec["ok"] = False
            rec["error"] = f"{type(e).__name__}: {e}"
            rec["traceback"] = traceback.format_exc()[-3000:]
            print(rec["traceback"], flush=True)
        rec["seconds"] = round(time.perf_counter() - t, 2)
        print(f"   {name}: ok={rec['ok']} in {rec['seconds']} s", flush=True)
        self.save()

    def save(self):
        write_atomic(os.path.join(self.out, "gpu.json"), json.dumps(self.res, indent=1, default=str))
        write_atomic(os.path.join(self.out, "gpu.md"), markdown(self.res))


def write_atomic(path: str, text: str) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def meta(device: str, dry: bool) -> dict:
    m = {
        "dry_run": dry,
        "device": device,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "host": platform.node(),
        "date_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
    }
    if device == "cuda":
        p = torch.cuda.get_device_properties(0)
        m.update(gpu=p.name, gpu_memory_gb=round(p.total_memory / 2**30, 1), sms=p.multi_processor_count)
    for name in ("triton", "e3nn", "cuequivariance_torch", "cuequivariance_ops_torch"):
        try:
            mod = __import__(name)
            m[name] = getattr(mod, "__version__", "?")
        except Exception as e:  # noqa: BLE001 - any import failure means "not available"
            m[name] = f"unavailable ({type(e).__name__}: {str(e)[:120]})"
    return m


def sync(device):
    if device == "cuda":
        torch.cuda.synchronize()


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.detach().double().cpu(), b.detach().double().cpu()
    if not torch.isfinite(a).all():
        return float("inf")
    d = (a - b).norm().item()
    n = b.norm().item()
    return d / n if n > 0 else d


def time_fn(fn, device, min_reps=3, max_reps=20, target_s=0.3, warmup=1) -> float:
    """Median milliseconds of ``fn()`` after ``warmup`` calls (CUDA events on the GPU); one timed call when a
    warm-up call took over a second."""
    for _ in range(warmup):
        t = time.perf_counter()
        fn()
        sync(device)
    if time.perf_counter() - t > 1.0:
        min_reps = max_reps = 1
    ts = []
    t_start = time.perf_counter()
    while len(ts) < max_reps and (len(ts) < min_reps or time.perf_counter() - t_start < target_s):
        if device == "cuda":
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record()
            fn()
            b.record()
            b.synchronize()
            ts.append(a.elapsed_time(b))
        else:
            t = time.perf_counter()
            fn()
            ts.append(1e3 * (time.perf_counter() - t))
    return statistics.median(ts)


def peak_mb(fn, device) -> float | None:
    if device != "cuda":
        return None
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    fn()
    torch.cuda.synchronize()
    return round((torch.cuda.max_memory_allocated() - base) / 2**20, 1)


def is_oom(e: BaseException) -> bool:
    return isinstance(e, torch.OutOfMemoryError) or "out of memory" in str(e).lower()


# --- 1. TP backends CUDA vs CPU -----------------------------------------------------------------------
def _tp_all(m, x1, x2, w, G):
    """forward, (dx1, dx2, dw) of <out, G>, and the forces-style double backward (d|f|^2/d(x1, w), f = de/dx2)."""
    a = [t.detach().clone().requires_grad_() for t in (x1, x2, w)]
    out = m(*a)
    e = (out * G).sum()
    g = torch.autograd.grad(e, a, create_graph=True)
    f = g[1]
    dd = torch.autograd.grad((f * f).sum(), [a[0], a[2]])
    return {"out": out, "dx1": g[0], "dx2": g[1], "dw": g[2], "dd_x1": dd[0], "dd_w": dd[1]}


def tp_cuda_vs_cpu(run: Run):
    from equivar.bench.tp import build
    from equivar.tp import _cg_triton, available_backends, p_config

    cfg = p_config(1, 4) if run.dry else p_config(2, 8)
    rows, ok = [], True
    Z = 16 if run.dry else 300
    for backend in available_backends():
        for dname, dtype in DTYPES.items():
            row = {"backend": backend, "dtype": dname}
            try:
                m_cpu = build(backend, cfg, dtype, "cpu")
                m_dev = copy.deepcopy(m_cpu).to(run.device)
                g = torch.Generator().manual_seed(0)
                x1 = torch.randn(Z, m_cpu.irreps_in1.dim, generator=g, dtype=dtype)
                x2 = torch.randn(Z, m_cpu.irreps_in2.dim, generator=g, dtype=dtype)
                w = torch.randn(Z, m_cpu.weight_numel, generator=g, dtype=dtype)
                G = torch.randn(Z, m_cpu.irreps_out.dim, generator=g, dtype=dtype)
                ref = _tp_all(m_cpu, x1, x2, w, G)
                dv = [t.to(run.device) for t in (x1, x2, w, G)]
                got = _tp_all(m_dev, *dv)
                errs = {k: rel(got[k], ref[k]) for k in ref}
                row["rel_err"] = errs
                row["max_rel_err"] = max(errs.values())
                row["pass"] = row["max_rel_err"] <= TOL[dtype]
                if backend == "cg":
                    row["triton_kernels"] = _cg_triton.usable(*dv[:3])
            except Exception as e:  # noqa: BLE001
                row["error"] = f"{type(e).__name__}: {e}"
                row["pass"] = False
            ok = ok and row["pass"]
            rows.append(row)
            print("  ", row.get("backend"), dname, row.get("max_rel_err"), row.get("error", ""), flush=True)
    return {"ok": ok, "rows": rows, "config": "P L=2 8 channels", "samples": Z}


# --- 2. equivariance on CUDA ----------------------------------------------------------------------------
def equivariance_cuda(run: Run):
    from equivar.bench.tp import build
    from equivar.testing import equivariance_error
    from equivar.tp import available_backends, p_config

    rows, ok = [], True
    for backend in ["cg"] if run.dry else available_backends():
        for dname, dtype in DTYPES.items():
            row = {"what": f"tp {backend}", "dtype": dname}
            try:
                m = build(backend, p_config(1, 4) if run.dry else p_config(2, 8), dtype, run.device)
                g = torch.Generator().manual_seed(1)
                x1 = torch.randn(32, m.irreps_in1.dim, generator=g, dtype=dtype).to(run.device)
                x2 = torch.randn(32, m.irreps_in2.dim, generator=g, dtype=dtype).to(run.device)
                w = torch.randn(32, m.weight_numel, generator=g, dtype=dtype).to(run.device)
                rep = equivariance_error(
                    lambda a, b, m=m, w=w: m(a, b, w).detach(),
                    [x1, x2],
                    [str(m.irreps_in1), str(m.irreps_in2)],
                    str(m.irreps_out),
                    n_trials=2,
                )
                row["max_rel_err"] = rep.max
                exact = getattr(m.backend, "exact", True)
                row["exact"] = exact
                row["pass"] = rep.max <= TOL[dtype] if exact else None
            except Exception as e:  # noqa: BLE001
                row["error"] = f"{type(e).__name__}: {e}"
                row["pass"] = False
            ok = ok and row["pass"] is not False
            rows.append(row)
    for dname, dtype in DTYPES.items():
        row = {"what": "MACE (energy, forces)", "dtype": dname}
        try:
            model = _mace(run, dtype, small=True).to(run.device)
            batch = _aspirin_batches(run, 1, dtype)[0]
            fn, it, ot, args = _mace_symmetry(model, batch, run.device)
            rep = equivariance_error(fn, args, it, ot, permutations=True, translations=True, n_trials=2)
            row["max_rel_err"] = rep.max
            row["pass"] = rep.max <= TOL[dtype]
        except Exception as e:  # noqa: BLE001
            row["error"] = f"{type(e).__name__}: {e}"
            row["pass"] = False
        ok = ok and row["pass"]
        rows.append(row)
    for r in rows:
        print("  ", r["what"], r["dtype"], r.get("max_rel_err"), r.get("error", ""), flush=True)
    return {"ok": ok, "rows": rows}


def _mace_symmetry(model, batch, device):
    from equivar.testing import Typed

    n = batch["positions"].shape[0]

    def fn(pos, z, edge_index, shifts):
        b = dict(
            positions=pos,
            atomic_numbers=z.squeeze(-1).round().long(),
            edge_index=edge_index,
            shifts=shifts,
            batch=torch.zeros(len(pos), dtype=torch.long, device=device),
            ptr=torch.tensor([0, len(pos)], device=device),
        )
        out = model(b)
        return {"energy": out["energy"].detach().unsqueeze(-1), "forces": out["forces"].detach()}

    dtype = model.dtype
    args = [
        batch["positions"][:n].to(device, dtype),
        batch["atomic_numbers"][:n, None].to(device, dtype),
        batch["edge_index"].to(device),
        batch["shifts"].to(device, dtype),
    ]
    it = [Typed("positions", nodes=True), Typed("0e", nodes=True), "index", "1o"]
    ot = {"energy": "0e", "forces": Typed("1o", nodes=True)}
    return fn, it, ot, args


# --- MACE helpers ---------------------------------------------------------------------------------------
def mace_hp(run: Run, small: bool = False) -> dict:
    ch = 4 if run.dry else 8 if small else 128
    return dict(
        r_max=5.0,
        num_bessel=8,
        num_polynomial_cutoff=5,
        max_ell=3 if not run.dry else 1,
        num_channels=ch,
        max_L=1,
        correlation=3 if not run.dry else 2,
        num_interactions=2,
        atomic_numbers=[1, 6, 8],
        atomic_energies=[-13.6, -1029.0, -2041.0],
        avg_num_neighbors=15.0,
        radial_mlp=[64, 64, 64] if not run.dry else [16],
        readout_mlp=16,
    )


def _mace(run: Run, dtype, small=False, seed=0):
    from equivar.models import MACE

    return MACE(**mace_hp(run, small), dtype="float64" if dtype == torch.float64 else "float32", seed=seed)


def _configs(run: Run, n: int):
    from equivar import data as D

    path = next((p for p in ([run.data] if run.data else DEFAULT_DATA) if p and os.path.exists(p)), None)
    if path is None:
        raise FileNotFoundError(f"no aspirin data among {DEFAULT_DATA} (pass --data)")
    run.res["meta"]["data"] = path
    return D.read_rmd17(path, indices=list(range(n)))


def _aspirin_batches(run: Run, n_batches: int, dtype, size: int = 5):
    from equivar import data as D

    configs = _configs(run, size * n_batches)
    graphs = [D.config_to_graph(c, 5.0) for c in configs]
    return [D.batch_to(D.collate(graphs[size * i : size * i + size]), dtype=dtype) for i in range(n_batches)]


def periodic_cell(run: Run, reps=(6, 6, 7), spacing: float = 9.0):
    """Aspirin molecules (frames 0.. of the data) on a periodic ``reps`` grid, ``spacing`` Å apart."""
    from equivar.data import Configuration

    configs = _configs(run, 1)
    c0 = configs[0]
    pos, Z = [], []
    for ix in range(reps[0]):
        for iy in range(reps[1]):
            for iz in range(reps[2]):
                pos.append(c0.positions - c0.positions.mean(0) + spacing * np.array([ix, iy, iz]))
                Z.append(c0.atomic_numbers)
    cell = np.diag([spacing * r for r in reps]).astype(float)
    return Configuration(
        atomic_numbers=np.concatenate(Z), positions=np.concatenate(pos), cell=cell, pbc=np.ones(3, dtype=bool)
    )


def _graph_batch(config, dtype):
    from equivar import data as D

    return D.batch_to(D.collate([D.config_to_graph(config, 5.0)]), dtype=dtype)


def _to(batch, device):
    return {k: v.to(device) for k, v in batch.items()}


def _loss(out, b):
    n = (b["ptr"][1:] - b["ptr"][:-1]).to(out["energy"].dtype)
    return ((out["energy"] - b["energy"]) / n).square().mean() + 1000.0 * (out["forces"] - b["forces"]).square().mean()


# --- 3. MACE CUDA vs CPU --------------------------------------------------------------------------------
def mace_cuda_vs_cpu(run: Run):
    rows, ok = [], True
    small_cell = periodic_cell(run, reps=(2, 1, 1))
    for dname, dtype in DTYPES.items():
        row = {"dtype": dname}
        try:
            m_cpu = _mace(run, dtype)
            m_dev = copy.deepcopy(m_cpu).to(run.device)
            batch = _aspirin_batches(run, 1, dtype)[0]
            cellb = _graph_batch(small_cell, dtype)
            errs = {}
            m_cpu.eval()
            m_dev.eval()
            for name, b in (("aspirin", batch), ("cell", cellb)):
                stress = name == "cell"
                r = m_cpu(b, compute_forces=True, compute_stress=stress)
                o = m_dev(_to(b, run.device), compute_forces=True, compute_stress=stress)
                for k in ("energy", "forces") + (("stress",) if stress else ()):
                    errs[f"{name}_{k}"] = rel(o[k], r[k])
            # one training step
            m_cpu.train()
            m_dev.train()
            # plain SGD: Adam's first step is lr * g / (|g| + eps), which turns a rounding difference in a
            # near-zero gradient into an O(lr) parameter difference (ill-conditioned for this comparison)
            opt_c = torch.optim.SGD(m_cpu.parameters(), lr=0.01)
            opt_d = torch.optim.SGD(m_dev.parameters(), lr=0.01)
            losses = []
            for m, opt, b in ((m_cpu, opt_c, batch), (m_dev, opt_d, _to(batch, run.device))):
                loss = _loss(m(b, compute_forces=True), b)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                losses.append(loss.detach())
                opt.step()
            errs["train_loss"] = rel(losses[1], losses[0])
            gc = torch.cat([p.grad.flatten() for p in m_cpu.parameters() if p.grad is not None])
            gd = torch.cat([p.grad.flatten() for p in m_dev.parameters() if p.grad is not None])
            errs["train_grads"] = rel(gd, gc)
            pc = torch.cat([p.detach().flatten() for p in m_cpu.parameters()])
            pd = torch.cat([p.detach().flatten() for p in m_dev.parameters()])
            errs["train_params_after_step"] = rel(pd, pc)
            row["rel_err"] = errs
            row["max_rel_err"] = max(errs.values())
            row["pass"] = row["max_rel_err"] <= TOL[dtype]
            row["atoms"] = {"aspirin_batch": int(batch["positions"].shape[0]), "cell": len(small_cell.atomic_numbers)}
        except Exception as e:  # noqa: BLE001
            row["error"] = f"{type(e).__name__}: {e}"
            row["traceback"] = traceback.format_exc()[-2000:]
            row["pass"] = False
        ok = ok and row["pass"]
        rows.append(row)
        print("  ", dname, row.get("rel_err"), row.get("error", ""), flush=True)
    return {"ok": ok, "rows": rows, "hyperparameters": mace_hp(run)}


# --- 4. host-device synchronisation in a training step ------------------------------------------------
def sync_check(run: Run):
    if run.device != "cuda":
        return {"ok": None, "note": "no CUDA device: nothing to check"}
    model = _mace(run, torch.float32).to(run.device)
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    b = _to(_aspirin_batches(run, 1, torch.float32)[0], run.device)

    def step():
        loss = _loss(model(b, compute_forces=True), b)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(2):
        step()
    torch.cuda.synchronize()
    events = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            step()
        finally:
            torch.cuda.set_sync_debug_mode(0)
    for w in caught:
        msg = str(w.message)
        if "synchroniz" in msg.lower() and "prototype feature" not in msg:  # (not the mode's own notice)
            events.append({"message": msg[:300], "where": f"{w.filename}:{w.lineno}"})
    torch.cuda.synchronize()
    return {
        "ok": not events,
        "synchronising_calls": len(events),
        "events": events[:20],
        "how": "torch.cuda.set_sync_debug_mode('warn') around one warm training step "
        "(forward with forces, force loss, backward, Adam step); every synchronising CUDA call warns",
    }


# --- 5. tensor-product benchmark ------------------------------------------------------------------------
def _e3nn_ok():
    try:
        import e3nn  # noqa: F401

        return True
    except Exception:  # noqa: BLE001
        return False


def _cueq_module(cfg, channels, dtype, device):
    import cuequivariance as cue
    import cuequivariance_torch as cuet

    i1, i2, io, ins = cfg
    m = cuet.ChannelWiseTensorProduct(
        cue.Irreps(cue.O3, str(i1)),
        cue.Irreps(cue.O3, str(i2)),
        filter_irreps_out=[cue.O3(ir.l, ir.p) for _, ir in io],
        layout=cue.ir_mul,
        shared_weights=False,
        internal_weights=False,
        dtype=dtype,
        device=device,
    )
    return m


class _Peer:
    """A TP module and its inputs on the device; ``irreps_out_dim`` for the upstream gradient."""

    def __init__(self, name, m, d1, d2, dw, dout, Z, dtype, device):
        g = torch.Generator(device=device).manual_seed(0)
        self.name, self.m = name, m
        self.x1 = torch.randn(Z, d1, generator=g, dtype=dtype, device=device)
        self.x2 = torch.randn(Z, d2, generator=g, dtype=dtype, device=device)
        self.w = torch.randn(Z, dw, generator=g, dtype=dtype, device=device)
        self.G = torch.randn(Z, dout, generator=g, dtype=dtype, device=device)

    def fwd(self):
        with torch.no_grad():
            self.m(self.x1, self.x2, self.w)

    def fwd_bwd(self):
        a = [t.detach().requires_grad_() for t in (self.x1, self.x2, self.w)]
        torch.autograd.grad(self.m(*a), a, self.G)

    def double(self):
        a = [t.detach().requires_grad_() for t in (self.x1, self.x2, self.w)]
        e = (self.m(*a) * self.G).sum()
        (f,) = torch.autograd.grad(e, a[1], create_graph=True)
        torch.autograd.grad((f * f).sum(), [a[0], a[2]])


def tp_bench(run: Run):
    from equivar.bench.tp import build, useful_flops
    from equivar.tp import p_config, s_config

    dtype = torch.float32
    if run.dry:
        plan = [("P", 1, 4), ("S", 2, 4)]
        edges = 64
    else:
        plan = [("P", L, ch) for ch in (32, 128) for L in (1, 2, 3, 4)]
        plan += [("S", L, ch) for ch in (32, 128) for L in range(2, 9)]
        plan = [x for x in plan if x[0] in run.configs and x[2] in run.channels]
        edges = 100_000
    have_e3nn = _e3nn_ok()
    try:
        import cuequivariance_torch  # noqa: F401

        have_cueq = run.device == "cuda"
    except Exception:  # noqa: BLE001
        have_cueq = False
    rows = []
    mem_cap = 12 * 2**30  # bytes of inputs + outputs (float32) per measured product: keeps double backward in memory
    # tile size sweep of the Triton kernels (elements per program) on one configuration
    sweep_cfg = ("P", 1, 4) if run.dry else ("P", 3, 128)
    if run.left() > run.reserve:
        cfg = p_config(sweep_cfg[1], sweep_cfg[2])
        Z = 64 if run.dry else 100_000
        old = os.environ.get("EQUIVAR_TRITON_TILE")
        try:
            m = build("cg", cfg, dtype, run.device)
            P = _Peer(
                "equivar", m, m.irreps_in1.dim, m.irreps_in2.dim, m.weight_numel, m.irreps_out.dim, Z, dtype, run.device
            )
            for elems in (256, 512, 1024):
                os.environ["EQUIVAR_TRITON_TILE"] = str(elems)
                row = {"config": sweep_cfg[0], "L": sweep_cfg[1], "channels": sweep_cfg[2], "edges": Z}
                row.update(backend=f"equivar tile {elems}", tile_elems=elems, sweep=True)
                for meas in ("fwd", "fwd_bwd"):
                    row[meas + "_ms"] = round(
                        time_fn(getattr(P, meas), run.device, max_reps=10 if not run.dry else 1), 3
                    )
                rows.append(row)
                print("  ", row, flush=True)
            del P, m
        except Exception as e:  # noqa: BLE001
            rows.append(
                {
                    "config": sweep_cfg[0],
                    "L": sweep_cfg[1],
                    "channels": sweep_cfg[2],
                    "backend": "tile sweep",
                    "error": str(e)[:300],
                }
            )
        finally:
            if old is None:
                os.environ.pop("EQUIVAR_TRITON_TILE", None)
            else:
                os.environ["EQUIVAR_TRITON_TILE"] = old
    for cname, L, ch in plan:
        if run.left() < run.reserve:  # the rest is kept for the MACE benchmark
            rows.append({"config": cname, "L": L, "channels": ch, "skipped": "time budget"})
            continue
        cfg = (p_config if cname == "P" else s_config)(L, ch)
        i1, i2, io, ins = cfg
        per_edge = 4 * (i1.dim + i2.dim + io.dim)
        Z = min(edges, max(1024, int(mem_cap // per_edge)))
        flops = useful_flops(i1, i2, io, ins, Z)
        peers = [("equivar", lambda: build("cg", cfg, dtype, run.device))]
        if have_e3nn and (cname == "P" and L <= 3 or cname == "S" and L <= 4) and not (run.dry and cname == "S"):
            peers.append(("e3nn", lambda: build("e3nn", cfg, dtype, run.device)))
        if have_cueq and cname == "P":
            peers.append(("cueq", lambda: _cueq_module(cfg, ch, dtype, run.device)))
        for pname, make in peers:
            row = {"config": cname, "L": L, "channels": ch, "edges": Z, "backend": pname, "useful_gflop": flops / 1e9}
            try:
                t = time.perf_counter()
                m = make()
                row["build_s"] = round(time.perf_counter() - t, 2)
                if pname == "cueq":  # the implementation it chose (it falls back to PyTorch ops without its CUDA ops)
                    row["impl"] = type(getattr(getattr(m, "f", None), "m", None)).__name__
                dw = m.weight_numel
                dout = m.irreps_out.dim if hasattr(m.irreps_out, "dim") else io.dim
                P = _Peer(pname, m, i1.dim, i2.dim, dw, dout, Z, dtype, run.device)
                for meas in ("fwd", "fwd_bwd", "double"):
                    if run.left() < run.reserve - 20:
                        row[meas + "_ms"] = None
                        row["note"] = "time budget"
                        continue
                    try:
                        row[meas + "_ms"] = round(
                            time_fn(getattr(P, meas), run.device, max_reps=10 if not run.dry else 1), 3
                        )
                    except Exception as e:  # noqa: BLE001
                        row[meas + "_ms"] = None
                        row[meas + "_error"] = "OOM" if is_oom(e) else f"{type(e).__name__}: {str(e)[:200]}"
                        if run.device == "cuda":
                            torch.cuda.empty_cache()
                with contextlib.suppress(Exception):
                    row["peak_mb_fwd_bwd"] = peak_mb(P.fwd_bwd, run.device)
                    row["peak_mb_double"] = peak_mb(P.double, run.device)
                if row.get("fwd_ms"):
                    row["useful_tflops_fwd"] = round(flops / (row["fwd_ms"] * 1e-3) / 1e12, 3)
                del P, m
            except Exception as e:  # noqa: BLE001
                row["error"] = "OOM" if is_oom(e) else f"{type(e).__name__}: {str(e)[:300]}"
            if run.device == "cuda":
                torch.cuda.empty_cache()
            rows.append(row)
            print("  ", {k: v for k, v in row.items() if k not in ("useful_gflop",)}, flush=True)
    # ratios against the peers measured in the same run
    for r in rows:
        if r.get("backend") != "equivar" or r.get("sweep"):
            continue
        for peer in ("e3nn", "cueq"):
            p = next(
                (
                    x
                    for x in rows
                    if x.get("backend") == peer
                    and not x.get("sweep")
                    and (x["config"], x["L"], x["channels"]) == (r["config"], r["L"], r["channels"])
                ),
                None,
            )
            if p is None:
                continue
            for meas in ("fwd", "fwd_bwd", "double"):
                a, b = r.get(meas + "_ms"), p.get(meas + "_ms")
                if a and b:
                    r[f"{meas}_speedup_vs_{peer}"] = round(b / a, 3)
    return {"rows": rows, "dtype": "float32", "ok": True}


# --- 6. MACE benchmark ----------------------------------------------------------------------------------
def _equivar_mace_times(run: Run, cell_cfg):
    dtype = torch.float32
    out = {}
    model = _mace(run, dtype).to(run.device)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    batches = [_to(b, run.device) for b in _aspirin_batches(run, 2, dtype)]
    single = _to(_aspirin_batches(run, 1, dtype, size=1)[0], run.device)
    cell = _to(_graph_batch(cell_cfg, dtype), run.device) if cell_cfg is not None else None
    if cell is not None:
        cell["energy"] = torch.zeros(1, dtype=dtype, device=run.device)
        cell["forces"] = torch.zeros_like(cell["positions"])

    def train(b):
        def f():
            model.train()
            loss = _loss(model(b, compute_forces=True), b)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        return f

    def md(b):
        def f():
            model.eval()
            o = model(b, compute_forces=True)
            o["forces"].detach()

        return f

    items = [("train_aspirin_batch5", train(batches[0])), ("md_aspirin_1mol", md(single))]
    if cell is not None:
        items += [("md_cell", md(cell)), ("train_cell", train(cell))]
    for name, fn in items:
        if run.left() < 10:
            out[name] = {"skipped": "time budget"}
            continue
        try:
            out[name] = {
                "ms": round(
                    time_fn(
                        fn, run.device, max_reps=20 if not run.dry else 1, target_s=1.0, warmup=1 if run.dry else 3
                    ),
                    3,
                )
            }
            out[name]["peak_mb"] = peak_mb(fn, run.device)
        except Exception as e:  # noqa: BLE001
            out[name] = {"error": "OOM" if is_oom(e) else f"{type(e).__name__}: {str(e)[:300]}"}
        print("   equivar", name, out[name], flush=True)
    out["edges"] = {"aspirin_batch5": int(batches[0]["edge_index"].shape[1])}
    if cell is not None:
        out["edges"]["cell"] = int(cell["edge_index"].shape[1])
        out["atoms_cell"] = int(cell["positions"].shape[0])
    return out


def mace_bench(run: Run):
    reps = (6, 6, 7) if not run.dry else (1, 1, 2)
    cell_cfg = periodic_cell(run, reps=reps)
    res = {"hyperparameters": mace_hp(run), "cell_reps": reps, "equivar": _equivar_mace_times(run, cell_cfg)}
    py = run.mace_python
    worker = os.path.join(ROOT, "benchmarks", "_gpu_mace.py")
    for variant in ("e3nn", "cueq"):
        if py is None:
            res["mace_" + variant] = {"skipped": "no --mace-python"}
            continue
        if run.left() < 30:
            res["mace_" + variant] = {"skipped": "time budget"}
            continue
        spec = dict(
            data=run.res["meta"].get("data"),
            device=run.device,
            dry=run.dry,
            hp=mace_hp(run),
            reps=list(reps),
            variant=variant,
        )
        try:
            p = subprocess.run(
                [py, worker, json.dumps(spec)],
                capture_output=True,
                text=True,
                timeout=max(20, min(200, run.left() - 5)),
                env={**os.environ, "PYTHONPATH": run.mace_path, "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1"},
            )
            line = next((x for x in reversed(p.stdout.splitlines()) if x.startswith("{")), None)
            res["mace_" + variant] = (
                json.loads(line) if line else {"error": (p.stderr or p.stdout)[-1500:], "rc": p.returncode}
            )
        except Exception as e:  # noqa: BLE001
            res["mace_" + variant] = {"error": f"{type(e).__name__}: {e}"}
        print("   mace-torch", variant, str(res["mace_" + variant])[:600], flush=True)
    for variant in ("e3nn", "cueq"):
        peer = res.get("mace_" + variant, {})
        for k, v in res["equivar"].items():
            if isinstance(v, dict) and v.get("ms") and isinstance(peer.get(k), dict) and peer[k].get("ms"):
                v[f"speedup_vs_mace_{variant}"] = round(peer[k]["ms"] / v["ms"], 3)
    return res


# --- report ---------------------------------------------------------------------------------------------
def markdown(res: dict) -> str:
    m = res["meta"]
    L = [f"# equivar GPU run ({'dry run, CPU' if m.get('dry_run') else m.get('gpu', m.get('device'))})", ""]
    L.append(
        f"torch {m.get('torch')} (CUDA {m.get('torch_cuda')}), triton {m.get('triton')}, e3nn {m.get('e3nn')}, "
        f"cuequivariance_torch {m.get('cuequivariance_torch')}; {m.get('date_utc')} UTC"
    )
    L.append("")
    L.append("| section | ok | seconds | note |")
    L.append("|---|---|---|---|")
    for name, s in res["sections"].items():
        L.append(f"| {name} | {s.get('ok')} | {s.get('seconds')} | {s.get('error', '')[:120]} |")
    sec = res["sections"]
    for name in ("tp_cuda_vs_cpu", "mace_cuda_vs_cpu", "equivariance_cuda"):
        rows = sec.get(name, {}).get("rows")
        if rows:
            L += ["", f"## {name}", "", "| what | dtype | max rel err | pass |", "|---|---|---|---|"]
            for r in rows:
                what = r.get("backend") or r.get("what") or "MACE"
                e = r.get("max_rel_err")
                L.append(
                    f"| {what} | {r['dtype']} | {e:.2e} | {r.get('pass')} |"
                    if e is not None
                    else f"| {what} | {r['dtype']} | {r.get('error', '')[:100]} | {r.get('pass')} |"
                )
    s = sec.get("sync", {})
    if s:
        L += [
            "",
            "## host-device synchronisation in a training step",
            "",
            f"{s.get('synchronising_calls', s.get('note'))} synchronising calls ({s.get('how', '')})",
        ]
        for e in s.get("events", []):
            L.append(f"- `{e['where']}`: {e['message'][:150]}")
    rows = sec.get("tp_bench", {}).get("rows")
    if rows:
        L += [
            "",
            "## tensor products (float32; ms, median; x = peer time / equivar time)",
            "",
            "| config | L | ch | edges | backend | fwd | fwd+bwd | double bwd | peak MB (fwd+bwd / double) | note |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in rows:
            if "backend" not in r:
                L.append(f"| {r['config']} | {r['L']} | {r['channels']} | | | | | | | {r.get('skipped', '')} |")
                continue

            def c(r, k):
                v = r.get(k + "_ms")
                if v is None:
                    return r.get(k + "_error", "n/a")
                xs = [f"x{r[x]:.2f} vs {x.rsplit('_', 1)[1]}" for x in r if x.startswith(k + "_speedup_vs_")]
                return f"{v:.2f}" + (f" ({', '.join(xs)})" if xs else "")

            L.append(
                f"| {r['config']} | {r['L']} | {r['channels']} | {r.get('edges')} | {r['backend']} | {c(r, 'fwd')} | "
                f"{c(r, 'fwd_bwd')} | {c(r, 'double')} | {r.get('peak_mb_fwd_bwd')} / {r.get('peak_mb_double')} | "
                f"{r.get('error', r.get('note', ''))} |"
            )
    mb = sec.get("mace_bench", {})
    if mb.get("equivar"):
        L += [
            "",
            "## MACE (float32; ms per step, median)",
            "",
            "| step | equivar | mace-torch (e3nn) | mace-torch + cuEquivariance |",
            "|---|---|---|---|",
        ]
        for k, v in mb["equivar"].items():
            if not isinstance(v, dict) or k == "edges":
                continue

            def cell(d):
                if not isinstance(d, dict):
                    return "n/a"
                return (
                    f"{d['ms']:.2f} ({d.get('peak_mb')} MB)"
                    if d.get("ms")
                    else str(d.get("error", d.get("skipped", "n/a")))[:80]
                )

            L.append(
                f"| {k} | {cell(v)} | {cell(mb.get('mace_e3nn', {}).get(k))} | {cell(mb.get('mace_cueq', {}).get(k))} |"
            )
        L.append("")
        L.append(f"edges: {mb['equivar'].get('edges')}; cell atoms: {mb['equivar'].get('atoms_cell')}")
    return "\n".join(L) + "\n"


SECTIONS = [
    ("tp_cuda_vs_cpu", tp_cuda_vs_cpu),
    ("equivariance_cuda", equivariance_cuda),
    ("mace_cuda_vs_cpu", mace_cuda_vs_cpu),
    ("sync", sync_check),
    ("tp_bench", tp_bench),
    ("mace_bench", mace_bench),
]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("out", help="output folder (gpu.json, gpu.md)")
    p.add_argument("--dry-run", action="store_true", help="CPU, tiny sizes: checks that the script runs")
    p.add_argument("--budget-s", type=float, default=300.0, help="wall-clock budget; later items are skipped")
    p.add_argument("--data", default=None, help="rMD17 aspirin .npz (default: .devcarry/aspirin.npz or shared data)")
    p.add_argument("--mace-python", default=None, help="interpreter for the mace-torch worker (omit: skip it)")
    p.add_argument("--mace-path", default="", help="PYTHONPATH for the mace-torch worker")
    p.add_argument("--sections", nargs="+", default=None, help="run only these sections, in this order")
    p.add_argument("--configs", nargs="+", default=["P", "S"], choices=["P", "S"], help="TP benchmark configurations")
    p.add_argument("--channels", nargs="+", type=int, default=[32, 128], help="TP benchmark channel counts")
    a = p.parse_args(argv)
    device = "cuda" if (torch.cuda.is_available() and not a.dry_run) else "cpu"
    run = Run(a.out, a.budget_s, a.dry_run, device)
    run.data, run.mace_python, run.mace_path = a.data, a.mace_python, a.mace_path
    order = a.sections or [n for n, _ in SECTIONS]
    mace_after_tp = (
        "mace_bench" in order and "tp_bench" in order and order.index("mace_bench") > order.index("tp_bench")
    )
    run.reserve = TP_RESERVE_S if (mace_after_tp and not a.dry_run) else 0.0
    run.configs, run.channels = a.configs, a.channels
    fns = dict(SECTIONS)
    for name in order:
        run.section(name, fns[name])
    run.res["meta"]["total_s"] = round(time.perf_counter() - run.t0, 1)
    run.save()
    print(markdown(run.res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
