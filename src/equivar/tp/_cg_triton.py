r"""Triton kernels (GPU) for the channelwise paths of the ``cg`` backend.

Same contract as the native CPU kernels (:mod:`equivar.tp._cg_native`):
``uvu_forward`` computes, for every channelwise sub-path ``s`` (one copy of
an x2 irrep coupled with the ``u`` channels of one x1 block),

    out[z, os + u d3 + k] += w_s[z, u] * sum_{(i, j, k) in nnz(C_s)} C_s[i, j, k] x1[z, xs + u d1 + i] x2[z, j]

and ``uvu_backward`` the three gradients of ``<G, out>``. The map is
trilinear, so derivatives of the backward are the same contractions with
some operands replaced: ``uvu_double_backward`` (the second backward of a
force loss) is one launch per output, each kernel summing the terms with
the substituted operands (flags fixed at compile time) and writing its output
once; under gradient recording (third derivatives) the autograd Functions of
:class:`equivar.tp._cg_fused.FusedTPBackward` compose forward and backward
calls instead (derivatives of any order).

The kernels are data driven: the Clebsch-Gordan structure is read from small
integer tables (built once per module by :func:`pack_plan`), so one compiled
kernel per dtype serves every irreps configuration (no code generation, no
compile time that grows with ``L``). Each program owns a tile of ``BZ``
samples x ``BU`` channels and accumulates in registers:

- forward: one program per (output block, channel tile, sample tile); it walks
  the output rows ``k`` of its block, and for each the *runs* (sub-paths
  writing that row: several when paths are summed into one output block) and
  their non-zero coefficients; every output element is written once;
- ``dx1``: one program per (x1 block, channel tile, sample tile), rows ``i``;
- ``dw``: one program per (weighted sub-path, channel tile, sample tile);
- ``dx2``: one program per sample tile, the x2 columns ``j`` in turn, each a
  sum over channels (a reduction inside the program, so no atomics: results
  are deterministic).

Per-sample weights ``[Z, W]`` or no weights (``W = 0``) are supported; shared
weights ``[W]`` use the PyTorch kernels. Accumulation is in the data's dtype
(float32 or float64). Tested on the CPU under Triton's interpreter
(``interpret=True``), where the kernels run as NumPy code.
"""

from __future__ import annotations

import contextlib
import functools
import os

import numpy as np
import torch

try:  # triton is optional: without it (or without CUDA) the PyTorch kernels are used
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover - exercised where triton is missing
    triton = None
    tl = None

#: Whether triton was imported in interpreter mode (``TRITON_INTERPRET=1`` set before its import): only
#: then can the kernels run on CPU tensors (tests).
INTERPRETED = triton is not None and os.environ.get("TRITON_INTERPRET", "0") == "1"

#: Table names this module adds to the fused plan's constants.
TABLES = (
    "t_ftask",
    "t_fkptr",
    "t_frun",
    "t_fnz",
    "t_fcoef",
    "t_xtask",
    "t_xiptr",
    "t_xrun",
    "t_xnz",
    "t_xcoef",
    "t_wtask",
    "t_wnz",
    "t_wcoef",
    "t_jptr",
    "t_jrun",
    "t_jnz",
    "t_jcoef",
)

#: Test hook: run the kernels through Triton's interpreter on CPU tensors (see :func:`interpret_on_cpu`).
_CPU_INTERPRET = False


def available() -> bool:
    """Whether triton is importable (kernels can be built); ``EQUIVAR_TRITON=0`` turns them off."""
    return triton is not None and os.environ.get("EQUIVAR_TRITON", "1") != "0"


class interpret_on_cpu:
    """Context manager (tests): dispatch CPU tensors to the kernels, run by Triton's interpreter."""

    def __enter__(self):
        global _CPU_INTERPRET
        self._old, _CPU_INTERPRET = _CPU_INTERPRET, True
        return self

    def __exit__(self, *exc):
        global _CPU_INTERPRET
        _CPU_INTERPRET = self._old


def usable(x1: torch.Tensor, x2: torch.Tensor, w: torch.Tensor) -> bool:
    """Whether the Triton kernels take these tensors: CUDA (or the CPU test hook), float32/float64 alike,
    per-sample weights ``[Z, W]`` or none."""
    if not available():
        return False
    dev = x1.device.type
    if not (dev == "cuda" or (dev == "cpu" and _CPU_INTERPRET and INTERPRETED)):
        return False
    return (
        x1.dtype in (torch.float32, torch.float64)
        and x2.dtype == x1.dtype
        and w.dtype == x1.dtype
        and x2.device == x1.device
        and w.device == x1.device
        and x1.dim() == 2
        and x2.shape[0] == x1.shape[0]
        and ((w.dim() == 2 and w.shape[0] == x1.shape[0]) or w.shape[-1] == 0)
    )


def _on(t: torch.Tensor):
    """Launch on ``t``'s GPU (Triton launches on the current device)."""
    return torch.cuda.device(t.device) if t.device.type == "cuda" else contextlib.nullcontext()


# --- plan tables ----------------------------------------------------------------------------------------
def pack_plan(irreps_in1, irreps_in2, irreps_out, instructions, offsets, cg_np, n_weights) -> tuple[dict, tuple]:
    """Integer tables and coefficient vectors (numpy) for the four kernels, and the sizes
    ``(D1, D2, Dout, W, max_mul, x1_covered, out_covered, w_covered)``.

    ``instructions``: ``(index, Instruction)`` pairs of channelwise paths; ``offsets[index]`` the
    weight offset of the instruction; ``cg_np(l1, l2, l3)`` the real CG tensor (float64). The
    ``*_covered`` flags say whether every x1 / output / weight element is written by some sub-path
    (otherwise the output starts from zeros).
    """
    s1, s2, so = irreps_in1.slices(), irreps_in2.slices(), irreps_out.slices()
    subs = []  # dict per sub-path
    for n, ins in instructions:
        mul, ir1 = irreps_in1[ins.i_in1]
        m2, ir2 = irreps_in2[ins.i_in2]
        iro = irreps_out[ins.i_out].ir
        C = cg_np(ir1.l, ir2.l, iro.l) * ins.path_weight
        idx = np.argwhere(C != 0)
        for vi in range(m2):
            subs.append(
                dict(
                    xs=s1[ins.i_in1].start,
                    mul=mul,
                    d1=ir1.dim,
                    j0=s2[ins.i_in2].start + vi * ir2.dim,
                    os=so[ins.i_out].start,
                    d3=iro.dim,
                    wb=offsets[n] + vi if ins.has_weight else -1,
                    ws=m2 if ins.has_weight else 0,
                    idx=idx,
                    coef=C[tuple(idx.T)],
                    block1=ins.i_in1,
                    blocko=ins.i_out,
                )
            )
    max_mul = max([s["mul"] for s in subs], default=1)
    D2 = irreps_in2.dim
    t: dict[str, list] = {k: [] for k in TABLES}

    def chunks(mul):
        return range(0, mul, _BU_MAX)

    # forward: per output block, per row k, the runs (sub-path, k)
    for b in sorted({s["blocko"] for s in subs}):
        bs = [s for s in subs if s["blocko"] == b]
        mul, d3, os_ = bs[0]["mul"], bs[0]["d3"], bs[0]["os"]
        kp = len(t["t_fkptr"])
        for k in range(d3):
            t["t_fkptr"].append(len(t["t_frun"]))
            for s in bs:
                sel = s["idx"][:, 2] == k
                if not sel.any():
                    continue
                t["t_frun"].append([s["xs"], s["d1"], s["wb"], s["ws"], len(t["t_fcoef"]), int(sel.sum())])
                for (i, j, _), c in zip(s["idx"][sel], s["coef"][sel]):
                    t["t_fnz"].append([i, s["j0"] + j])
                    t["t_fcoef"].append(c)
        t["t_fkptr"].append(len(t["t_frun"]))
        for u0 in chunks(mul):
            t["t_ftask"].append([os_, mul, d3, u0, kp])
    # dx1: per x1 block, per row i, the runs (sub-path, i)
    for b in sorted({s["block1"] for s in subs}):
        bs = [s for s in subs if s["block1"] == b]
        mul, d1, xs = bs[0]["mul"], bs[0]["d1"], bs[0]["xs"]
        ip = len(t["t_xiptr"])
        for i in range(d1):
            t["t_xiptr"].append(len(t["t_xrun"]))
            for s in bs:
                sel = s["idx"][:, 0] == i
                if not sel.any():
                    continue
                t["t_xrun"].append([s["os"], s["d3"], s["wb"], s["ws"], len(t["t_xcoef"]), int(sel.sum())])
                for (_, j, k), c in zip(s["idx"][sel], s["coef"][sel]):
                    t["t_xnz"].append([s["j0"] + j, k])
                    t["t_xcoef"].append(c)
        t["t_xiptr"].append(len(t["t_xrun"]))
        for u0 in chunks(mul):
            t["t_xtask"].append([xs, mul, d1, u0, ip])
    # dw: per weighted sub-path, all its coefficients
    for s in subs:
        if s["wb"] < 0:
            continue
        n0 = len(t["t_wcoef"])
        for (i, j, k), c in zip(s["idx"], s["coef"]):
            t["t_wnz"].append([i, s["j0"] + j, k])
            t["t_wcoef"].append(c)
        for u0 in chunks(s["mul"]):
            t["t_wtask"].append(
                [s["xs"], s["d1"], s["os"], s["d3"], s["wb"], s["ws"], s["mul"], u0, n0, len(s["coef"])]
            )
    # dx2: per x2 column j, the runs (sub-path, j)
    for jj in range(D2):
        t["t_jptr"].append(len(t["t_jrun"]))
        for s in subs:
            j = jj - s["j0"]
            sel = s["idx"][:, 1] == j
            if not sel.any():
                continue
            t["t_jrun"].append(
                [s["xs"], s["d1"], s["os"], s["d3"], s["mul"], s["wb"], s["ws"], len(t["t_jcoef"]), int(sel.sum())]
            )
            for (i, _, k), c in zip(s["idx"][sel], s["coef"][sel]):
                t["t_jnz"].append([i, k])
                t["t_jcoef"].append(c)
    t["t_jptr"].append(len(t["t_jrun"]))

    widths = {
        "t_ftask": 5,
        "t_frun": 6,
        "t_fnz": 2,
        "t_xtask": 5,
        "t_xrun": 6,
        "t_xnz": 2,
        "t_wtask": 10,
        "t_wnz": 3,
        "t_jrun": 9,
        "t_jnz": 2,
    }
    arrays = {}
    for k, v in t.items():
        if k.endswith("coef"):
            arrays[k] = np.asarray(v, dtype=np.float64).reshape(-1)
        elif k in widths:
            arrays[k] = np.asarray(v, dtype=np.int64).reshape(-1, widths[k])
        else:
            arrays[k] = np.asarray(v, dtype=np.int64).reshape(-1)
    x1_cov = sum(irreps_in1[b].dim for b in {s["block1"] for s in subs}) == irreps_in1.dim
    out_cov = sum(irreps_out[b].dim for b in {s["blocko"] for s in subs}) == irreps_out.dim
    w_cov = sum(s["mul"] for s in subs if s["wb"] >= 0) == n_weights
    sizes = (irreps_in1.dim, D2, irreps_out.dim, n_weights, max_mul, int(x1_cov), int(out_cov), int(w_cov))
    return arrays, sizes


#: Largest channel tile; tasks are split into chunks of this many channels.
_BU_MAX = 32
#: Elements of one program's [samples x channels] tile (``EQUIVAR_TRITON_TILE`` overrides: 256..4096).
#: Measured on an H200 (configuration P, L=3, 128 channels, 100k edges, float32; forward / forward+backward):
#: 256 elements 20.0 / 81.6 ms, 512 30.6 / 131.6 ms, 1024 54.2 / 232.2 ms (benchmarks/results/
#: 2026-12-04_gpu_h200_run2.json); smaller tiles, more programs in flight, hide the latency of the
#: table-driven loads better.
TILE_ELEMS = 256


def _blocks(max_mul: int, dtype: torch.dtype) -> tuple[int, int]:
    """(BZ, BU): sample and channel tile sizes."""
    elems = int(os.environ.get("EQUIVAR_TRITON_TILE", TILE_ELEMS))
    if elems not in (256, 512, 1024, 2048, 4096):
        raise ValueError(f"EQUIVAR_TRITON_TILE={elems}: expected one of 256, 512, 1024, 2048, 4096")
    bu = min(_BU_MAX, max(8, triton.next_power_of_2(max_mul)))
    return max(8, min(128, elems // bu)), bu


# --- kernels ---------------------------------------------------------------------------------------------
# Addressing: each program shifts the tensors' base pointers to its first sample (int64, once), then all
# tile offsets are int32 (a sample tile spans at most BZ rows), which halves the registers a pointer tile
# takes; table entries are loaded as int64 and narrowed to int32.
#
# Terms: every kernel sums up to four trilinear terms over the same coefficients, chosen by constexpr flags:
# T0 the product itself (x1, x2, w); TA with y1 in place of x1; TB with y2 in place of x2; TC with yw in
# place of w (the weighted paths alone: unweighted ones do not depend on w). The plain forward and backward
# use T0; the double backward (derivatives of <gg1, dx1> + <gg2, dx2> + <ggw, dw>) is one launch per output
# with the other flags, each output written once.
def _fwd_kernel(
    x1, x2, w, y1, y2, yw, out, task, kptr, run, nz, coef, Z, D1, D2, DO, W, uw,
    BZ: tl.constexpr, BU: tl.constexpr, T0: tl.constexpr, TA: tl.constexpr, TB: tl.constexpr, TC: tl.constexpr,
):  # fmt: skip
    t = tl.program_id(0)
    z0 = tl.program_id(1).to(tl.int64) * BZ
    zl = tl.arange(0, BZ)
    zm = zl < Z - z0
    x1 += z0 * D1
    y1 += z0 * D1
    x2 += z0 * D2
    y2 += z0 * D2
    w += z0 * W
    yw += z0 * W
    out += z0 * DO
    os_ = tl.load(task + t * 5).to(tl.int32)
    mul = tl.load(task + t * 5 + 1).to(tl.int32)
    d3 = tl.load(task + t * 5 + 2).to(tl.int32)
    u = tl.load(task + t * 5 + 3).to(tl.int32) + tl.arange(0, BU)
    kp = tl.load(task + t * 5 + 4)
    m = zm[:, None] & (u < mul)[None, :]
    r1 = zl[:, None] * D1
    r2 = zl * D2
    rw = zl[:, None] * W
    ro = zl[:, None] * DO + os_ + u[None, :] * d3
    for k in range(0, d3):
        acc = tl.zeros([BZ, BU], dtype=out.dtype.element_ty)
        for r in range(tl.load(kptr + kp + k), tl.load(kptr + kp + k + 1)):
            xs = tl.load(run + r * 6).to(tl.int32)
            d1 = tl.load(run + r * 6 + 1).to(tl.int32)
            wb = tl.load(run + r * 6 + 2).to(tl.int32)
            ws = tl.load(run + r * 6 + 3).to(tl.int32)
            n0 = tl.load(run + r * 6 + 4)
            nn = tl.load(run + r * 6 + 5)
            xo = r1 + xs + u[None, :] * d1
            pw = tl.zeros([BZ, BU], dtype=out.dtype.element_ty)  # terms weighted by w
            py = tl.zeros([BZ, BU], dtype=out.dtype.element_ty)  # term weighted by yw
            for n in range(n0, n0 + nn):
                i = tl.load(nz + n * 2).to(tl.int32)
                j = tl.load(nz + n * 2 + 1).to(tl.int32)
                c = tl.load(coef + n)
                if T0 or TA or TC:
                    b = tl.load(x2 + r2 + j, mask=zm, other=0.0) * c
                if T0 or TB or TC:
                    a = tl.load(x1 + xo + i, mask=m, other=0.0)
                if T0:
                    pw += b[:, None] * a
                if TA:
                    pw += b[:, None] * tl.load(y1 + xo + i, mask=m, other=0.0)
                if TB:
                    pw += (tl.load(y2 + r2 + j, mask=zm, other=0.0) * c)[:, None] * a
                if TC:
                    py += b[:, None] * a
            wo = tl.maximum(wb, 0) + u[None, :] * ws
            if T0 or TA or TB:
                acc += pw * tl.where(wb >= 0, tl.load(w + rw + wo, mask=m, other=0.0), uw)
            if TC:
                acc += py * tl.where(wb >= 0, tl.load(yw + rw + wo, mask=m, other=0.0), 0.0)
        tl.store(out + ro + k, acc, mask=m)


def _dx1_kernel(
    G, x2, w, y2, yw, gx1, task, iptr, run, nz, coef, Z, D1, D2, DO, W, uw,
    BZ: tl.constexpr, BU: tl.constexpr, T0: tl.constexpr, TB: tl.constexpr, TC: tl.constexpr,
):  # fmt: skip
    t = tl.program_id(0)
    z0 = tl.program_id(1).to(tl.int64) * BZ
    zl = tl.arange(0, BZ)
    zm = zl < Z - z0
    G += z0 * DO
    x2 += z0 * D2
    y2 += z0 * D2
    w += z0 * W
    yw += z0 * W
    gx1 += z0 * D1
    xs = tl.load(task + t * 5).to(tl.int32)
    mul = tl.load(task + t * 5 + 1).to(tl.int32)
    d1 = tl.load(task + t * 5 + 2).to(tl.int32)
    u = tl.load(task + t * 5 + 3).to(tl.int32) + tl.arange(0, BU)
    ip = tl.load(task + t * 5 + 4)
    m = zm[:, None] & (u < mul)[None, :]
    rg = zl[:, None] * DO
    r2 = zl * D2
    rw = zl[:, None] * W
    rx = zl[:, None] * D1 + xs + u[None, :] * d1
    for i in range(0, d1):
        acc = tl.zeros([BZ, BU], dtype=gx1.dtype.element_ty)
        for r in range(tl.load(iptr + ip + i), tl.load(iptr + ip + i + 1)):
            os_ = tl.load(run + r * 6).to(tl.int32)
            d3 = tl.load(run + r * 6 + 1).to(tl.int32)
            wb = tl.load(run + r * 6 + 2).to(tl.int32)
            ws = tl.load(run + r * 6 + 3).to(tl.int32)
            n0 = tl.load(run + r * 6 + 4)
            nn = tl.load(run + r * 6 + 5)
            go = rg + os_ + u[None, :] * d3
            pw = tl.zeros([BZ, BU], dtype=gx1.dtype.element_ty)
            py = tl.zeros([BZ, BU], dtype=gx1.dtype.element_ty)
            for n in range(n0, n0 + nn):
                j = tl.load(nz + n * 2).to(tl.int32)
                k = tl.load(nz + n * 2 + 1).to(tl.int32)
                c = tl.load(coef + n)
                g = tl.load(G + go + k, mask=m, other=0.0)
                if T0 or TC:
                    b = tl.load(x2 + r2 + j, mask=zm, other=0.0) * c
                if T0:
                    pw += b[:, None] * g
                if TB:
                    pw += (tl.load(y2 + r2 + j, mask=zm, other=0.0) * c)[:, None] * g
                if TC:
                    py += b[:, None] * g
            wo = tl.maximum(wb, 0) + u[None, :] * ws
            if T0 or TB:
                acc += pw * tl.where(wb >= 0, tl.load(w + rw + wo, mask=m, other=0.0), uw)
            if TC:
                acc += py * tl.where(wb >= 0, tl.load(yw + rw + wo, mask=m, other=0.0), 0.0)
        tl.store(gx1 + rx + i, acc, mask=m)


def _dw_kernel(
    G, x1, x2, y1, y2, gw, task, nz, coef, Z, D1, D2, DO, W,
    BZ: tl.constexpr, BU: tl.constexpr, T0: tl.constexpr, TA: tl.constexpr, TB: tl.constexpr,
):  # fmt: skip
    t = tl.program_id(0)
    z0 = tl.program_id(1).to(tl.int64) * BZ
    zl = tl.arange(0, BZ)
    zm = zl < Z - z0
    G += z0 * DO
    x1 += z0 * D1
    y1 += z0 * D1
    x2 += z0 * D2
    y2 += z0 * D2
    gw += z0 * W
    xs = tl.load(task + t * 10).to(tl.int32)
    d1 = tl.load(task + t * 10 + 1).to(tl.int32)
    os_ = tl.load(task + t * 10 + 2).to(tl.int32)
    d3 = tl.load(task + t * 10 + 3).to(tl.int32)
    wb = tl.load(task + t * 10 + 4).to(tl.int32)
    ws = tl.load(task + t * 10 + 5).to(tl.int32)
    mul = tl.load(task + t * 10 + 6).to(tl.int32)
    u = tl.load(task + t * 10 + 7).to(tl.int32) + tl.arange(0, BU)
    n0 = tl.load(task + t * 10 + 8)
    nn = tl.load(task + t * 10 + 9)
    m = zm[:, None] & (u < mul)[None, :]
    xo = zl[:, None] * D1 + xs + u[None, :] * d1
    go = zl[:, None] * DO + os_ + u[None, :] * d3
    r2 = zl * D2
    acc = tl.zeros([BZ, BU], dtype=gw.dtype.element_ty)
    for n in range(n0, n0 + nn):
        i = tl.load(nz + n * 3).to(tl.int32)
        j = tl.load(nz + n * 3 + 1).to(tl.int32)
        k = tl.load(nz + n * 3 + 2).to(tl.int32)
        c = tl.load(coef + n)
        g = tl.load(G + go + k, mask=m, other=0.0)
        if T0 or TA:
            b = tl.load(x2 + r2 + j, mask=zm, other=0.0) * c
        if T0 or TB:
            a = tl.load(x1 + xo + i, mask=m, other=0.0)
        if T0:
            acc += b[:, None] * a * g
        if TA:
            acc += b[:, None] * tl.load(y1 + xo + i, mask=m, other=0.0) * g
        if TB:
            acc += (tl.load(y2 + r2 + j, mask=zm, other=0.0) * c)[:, None] * a * g
    tl.store(gw + zl[:, None] * W + wb + u[None, :] * ws, acc, mask=m)


def _dx2_kernel(
    G, x1, w, y1, yw, gx2, jptr, run, nz, coef, Z, D1, D2, DO, W, uw,
    BZ: tl.constexpr, BU: tl.constexpr, T0: tl.constexpr, TA: tl.constexpr, TC: tl.constexpr,
):  # fmt: skip
    z0 = tl.program_id(0).to(tl.int64) * BZ
    zl = tl.arange(0, BZ)
    zm = zl < Z - z0
    G += z0 * DO
    x1 += z0 * D1
    y1 += z0 * D1
    w += z0 * W
    yw += z0 * W
    gx2 += z0 * D2
    r1 = zl[:, None] * D1
    rg = zl[:, None] * DO
    rw = zl[:, None] * W
    for j in range(0, D2):
        acc = tl.zeros([BZ], dtype=gx2.dtype.element_ty)
        for r in range(tl.load(jptr + j), tl.load(jptr + j + 1)):
            xs = tl.load(run + r * 9).to(tl.int32)
            d1 = tl.load(run + r * 9 + 1).to(tl.int32)
            os_ = tl.load(run + r * 9 + 2).to(tl.int32)
            d3 = tl.load(run + r * 9 + 3).to(tl.int32)
            mul = tl.load(run + r * 9 + 4).to(tl.int32)
            wb = tl.load(run + r * 9 + 5).to(tl.int32)
            ws = tl.load(run + r * 9 + 6).to(tl.int32)
            n0 = tl.load(run + r * 9 + 7)
            nn = tl.load(run + r * 9 + 8)
            for u0 in range(0, mul, BU):
                u = u0 + tl.arange(0, BU)
                m = zm[:, None] & (u < mul)[None, :]
                xo = r1 + xs + u[None, :] * d1
                go = rg + os_ + u[None, :] * d3
                pw = tl.zeros([BZ, BU], dtype=gx2.dtype.element_ty)
                py = tl.zeros([BZ, BU], dtype=gx2.dtype.element_ty)
                for n in range(n0, n0 + nn):
                    i = tl.load(nz + n * 2).to(tl.int32)
                    k = tl.load(nz + n * 2 + 1).to(tl.int32)
                    cg = tl.load(coef + n) * tl.load(G + go + k, mask=m, other=0.0)
                    if T0 or TC:
                        a = tl.load(x1 + xo + i, mask=m, other=0.0)
                    if T0:
                        pw += cg * a
                    if TA:
                        pw += cg * tl.load(y1 + xo + i, mask=m, other=0.0)
                    if TC:
                        py += cg * a
                wo = tl.maximum(wb, 0) + u[None, :] * ws
                if T0 or TA:
                    acc += tl.sum(pw * tl.where(wb >= 0, tl.load(w + rw + wo, mask=m, other=0.0), uw), axis=1)
                if TC:
                    acc += tl.sum(py * tl.where(wb >= 0, tl.load(yw + rw + wo, mask=m, other=0.0), 0.0), axis=1)
        tl.store(gx2 + zl * D2 + j, acc, mask=zm)


@functools.cache
def _kernels() -> dict:
    """The four kernels: compiled by Triton, or run by its interpreter when :data:`INTERPRETED`."""
    fns = {"fwd": _fwd_kernel, "dx1": _dx1_kernel, "dw": _dw_kernel, "dx2": _dx2_kernel}
    return {k: triton.jit(f) for k, f in fns.items()}


def _launch_ok(tab: torch.Tensor) -> bool:
    return tab.shape[0] > 0


# --- entry points ----------------------------------------------------------------------------------------
def _fwd(consts, sizes, x1, x2, w, uw, y1=None, y2=None, yw=None, t0=True):
    """Sum of the forward terms (see the kernels' comment); ``None`` operands switch their term off."""
    D1, D2, DO, W, max_mul, _, out_cov, _ = sizes
    Z = x1.shape[0]
    out = (x1.new_empty if out_cov else x1.new_zeros)(Z, DO)
    task = consts["t_ftask"]
    if Z == 0 or not _launch_ok(task):
        return out
    no_w = w.shape[-1] == 0
    if no_w:
        w, yw, W = x1, None, 0
    TA, TB, TC = y1 is not None, y2 is not None, yw is not None
    BZ, BU = _blocks(max_mul, x1.dtype)
    c = consts["t_fcoef"].to(x1.dtype)
    with _on(x1):
        _kernels()["fwd"][(task.shape[0], triton.cdiv(Z, BZ))](
            x1, x2, w, y1 if TA else x1, y2 if TB else x2, yw if TC else w, out,
            task, consts["t_fkptr"], consts["t_frun"], consts["t_fnz"], c,
            Z, D1, D2, DO, W, float(uw), BZ=BZ, BU=BU, T0=t0, TA=TA, TB=TB, TC=TC,
        )  # fmt: skip
    return out


def _dx1(consts, sizes, G, x2, w, uw, y2=None, yw=None, t0=True, like=None):
    D1, D2, DO, W, max_mul, x1_cov, _, _ = sizes
    Z = G.shape[0]
    gx1 = (G.new_empty if x1_cov else G.new_zeros)(like.shape)
    task = consts["t_xtask"]
    if Z == 0 or not _launch_ok(task):
        return gx1
    if w.shape[-1] == 0:
        w, yw, W = G, None, 0
    TB, TC = y2 is not None, yw is not None
    BZ, BU = _blocks(max_mul, G.dtype)
    c = consts["t_xcoef"].to(G.dtype)
    with _on(G):
        _kernels()["dx1"][(task.shape[0], triton.cdiv(Z, BZ))](
            G, x2, w, y2 if TB else x2, yw if TC else w, gx1,
            task, consts["t_xiptr"], consts["t_xrun"], consts["t_xnz"], c,
            Z, D1, D2, DO, W, float(uw), BZ=BZ, BU=BU, T0=t0, TB=TB, TC=TC,
        )  # fmt: skip
    return gx1


def _dx2(consts, sizes, G, x1, w, uw, y1=None, yw=None, t0=True, like=None):
    D1, D2, DO, W, max_mul, _, _, _ = sizes
    Z = G.shape[0]
    gx2 = G.new_empty(like.shape)
    if Z == 0:
        return gx2
    if w.shape[-1] == 0:
        w, yw, W = G, None, 0
    TA, TC = y1 is not None, yw is not None
    BZ, BU = _blocks(max_mul, G.dtype)
    c = consts["t_jcoef"].to(G.dtype)
    with _on(G):
        _kernels()["dx2"][(triton.cdiv(Z, BZ),)](
            G, x1, w, y1 if TA else x1, yw if TC else w, gx2,
            consts["t_jptr"], consts["t_jrun"], consts["t_jnz"], c,
            Z, D1, D2, DO, W, float(uw), BZ=BZ, BU=BU, T0=t0, TA=TA, TC=TC,
        )  # fmt: skip
    return gx2


def _dw(consts, sizes, G, x1, x2, y1=None, y2=None, t0=True, like=None):
    D1, D2, DO, W, max_mul, _, _, w_cov = sizes
    Z = G.shape[0]
    gw = (G.new_empty if w_cov else G.new_zeros)(like.shape)
    task = consts["t_wtask"]
    if Z == 0 or like.shape[-1] == 0 or not _launch_ok(task):
        return gw
    TA, TB = y1 is not None, y2 is not None
    BZ, BU = _blocks(max_mul, G.dtype)
    c = consts["t_wcoef"].to(G.dtype)
    with _on(G):
        _kernels()["dw"][(task.shape[0], triton.cdiv(Z, BZ))](
            G, x1, x2, y1 if TA else x1, y2 if TB else x2, gw, task, consts["t_wnz"], c,
            Z, D1, D2, DO, W, BZ=BZ, BU=BU, T0=t0, TA=TA, TB=TB,
        )  # fmt: skip
    return gw


def uvu_forward(consts: dict, sizes: tuple, x1, x2, w, uw: float) -> torch.Tensor:
    """``out [Z, Dout]`` of the channelwise sub-paths; ``w``: ``[Z, W]`` or ``[0]``/``[Z, 0]`` (none)."""
    return _fwd(consts, sizes, x1.contiguous(), x2.contiguous(), w.contiguous(), uw)


def uvu_backward(consts: dict, sizes: tuple, G, x1, x2, w, need_x1: bool, need_x2: bool, need_w: bool, uw: float):
    """Gradients ``(dx1, dx2, dw)`` of ``<G, out>`` (``None`` where not needed); ``dw`` only for the
    weighted sub-paths (the unweighted ones do not depend on ``w``)."""
    G, x1, x2, w = G.contiguous(), x1.contiguous(), x2.contiguous(), w.contiguous()
    gx1 = _dx1(consts, sizes, G, x2, w, uw, like=x1) if need_x1 else None
    gx2 = _dx2(consts, sizes, G, x1, w, uw, like=x2) if need_x2 else None
    gw = _dw(consts, sizes, G, x1, x2, like=w) if need_w else None
    return gx1, gx2, gw


def uvu_double_backward(consts: dict, sizes: tuple, G, x1, x2, w, gg1, gg2, ggw, need, uw: float):
    """Derivatives of ``<gg1, dx1> + <gg2, dx2> + <ggw, dw>`` (the backward's outputs against directions
    ``gg*``, ``None`` = zero) with respect to ``(G, x1, x2, w)``: one launch per output that ``need``
    asks for (others ``None``), the same contract as :func:`equivar.tp._cg_native.uvu_double_backward`.
    Not differentiable (called with gradient recording off; the composed form in
    :class:`equivar.tp._cg_fused.FusedTPBackward` is the differentiable one)::

        dG  = TP(gg1, x2, w) + TP(x1, gg2, w) + TP_weighted(x1, x2, ggw)
        dx1 = dx1[G](x2 -> gg2) + dx1_weighted[G](w -> ggw)
        dx2 = dx2[G](x1 -> gg1) + dx2_weighted[G](w -> ggw)
        dw  = dw[G](x2 -> gg2) + dw[G](x1 -> gg1)
    """
    nG, n1, n2, nW = need
    G, x1, x2, w = G.contiguous(), x1.contiguous(), x2.contiguous(), w.contiguous()
    gg1, gg2, ggw = (None if t is None else t.contiguous() for t in (gg1, gg2, ggw))
    if w.shape[-1] == 0:
        ggw = None
    oG = o1 = o2 = oW = None
    if nG:
        oG = _fwd(consts, sizes, x1, x2, w, uw, y1=gg1, y2=gg2, yw=ggw, t0=False)
    if n1:
        o1 = _dx1(consts, sizes, G, x2, w, uw, y2=gg2, yw=ggw, t0=False, like=x1)
    if n2:
        o2 = _dx2(consts, sizes, G, x1, w, uw, y1=gg1, yw=ggw, t0=False, like=x2)
    if nW:
        oW = _dw(consts, sizes, G, x1, x2, y1=gg1, y2=gg2, t0=False, like=w)
    return oG, o1, o2, oW
