r"""Native CPU kernel of the whole-product ``s2grid`` path (:func:`equivar.tp._s2grid_ops.fused_sym_product`).

Per sample and block of four channels it gathers the (weighted) input
coefficients, synthesizes the reflection-even / -odd grid values on the
northern half grid, forms the twisted products with the second operand and
projects back, all in L1-sized buffers with register-blocked small matrix
products (GCC vector extensions, 2 vectors x 4 rows of accumulators), and
scatters the result into e3nn's layout with the output weights; the backward
does the same for the gradients of x1, of the second operand and of the
weights (per-thread accumulators for shared weights). The arithmetic is the
same as the PyTorch path (same matrices; only the summation order differs).

Compiled on first use with the system C compiler into ``$EQUIVAR_CACHE``
(default ``~/.cache/equivar``) and loaded with ``ctypes``, as the ``cg``
kernels of :mod:`equivar.tp._cg_native`; ``EQUIVAR_NATIVE=0``, a missing
compiler, non-CPU tensors or dtypes other than float32 / float64 select the
PyTorch path. Threads: ``torch.get_num_threads()`` (samples split evenly).
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import subprocess
import sys
import tempfile
import threading

import numpy as np
import torch

_TEMPLATE = r"""
typedef REAL VT_SFX __attribute__((vector_size(32), aligned(sizeof(REAL)), may_alias));
#define VL_SFX ((int64_t)(32 / sizeof(REAL)))

/* OUT[n][0:Up] = sum_k Mat[n * ldm + k] * IN[k][0:Up] for n < N, k < K (channels in the vectors;
   Up a multiple of 2 vectors). Register blocks of 6 rows x 2 vectors (12 accumulators). */
static void mt_SFX(const REAL *Mat, int64_t ldm, int64_t N, int64_t K, const REAL *IN, REAL *OUT, int64_t Up) {
    const int64_t V = VL_SFX;
    for (int64_t u0 = 0; u0 < Up; u0 += 2 * V) {
        int64_t n = 0;
        for (; n + 6 <= N; n += 6) {
            VT_SFX a00 = {0}, a01 = {0}, a10 = {0}, a11 = {0}, a20 = {0}, a21 = {0};
            VT_SFX a30 = {0}, a31 = {0}, a40 = {0}, a41 = {0}, a50 = {0}, a51 = {0};
            const REAL *m = Mat + n * ldm, *in = IN + u0;
            for (int64_t k = 0; k < K; ++k, in += Up) {
                VT_SFX i0 = *(const VT_SFX *)in, i1 = *(const VT_SFX *)(in + V);
                REAL s0 = m[k], s1 = m[ldm + k], s2 = m[2 * ldm + k], s3 = m[3 * ldm + k], s4 = m[4 * ldm + k], s5 = m[5 * ldm + k];
                a00 += s0 * i0; a01 += s0 * i1;
                a10 += s1 * i0; a11 += s1 * i1;
                a20 += s2 * i0; a21 += s2 * i1;
                a30 += s3 * i0; a31 += s3 * i1;
                a40 += s4 * i0; a41 += s4 * i1;
                a50 += s5 * i0; a51 += s5 * i1;
            }
            REAL *o = OUT + n * Up + u0;
            *(VT_SFX *)o = a00; *(VT_SFX *)(o + V) = a01; o += Up;
            *(VT_SFX *)o = a10; *(VT_SFX *)(o + V) = a11; o += Up;
            *(VT_SFX *)o = a20; *(VT_SFX *)(o + V) = a21; o += Up;
            *(VT_SFX *)o = a30; *(VT_SFX *)(o + V) = a31; o += Up;
            *(VT_SFX *)o = a40; *(VT_SFX *)(o + V) = a41; o += Up;
            *(VT_SFX *)o = a50; *(VT_SFX *)(o + V) = a51;
        }
        for (; n < N; ++n) {
            VT_SFX a0 = {0}, a1 = {0};
            const REAL *m = Mat + n * ldm, *in = IN + u0;
            for (int64_t k = 0; k < K; ++k, in += Up) {
                a0 += m[k] * *(const VT_SFX *)in;
                a1 += m[k] * *(const VT_SFX *)(in + V);
            }
            *(VT_SFX *)(OUT + n * Up + u0) = a0;
            *(VT_SFX *)(OUT + n * Up + u0 + V) = a1;
        }
    }
}

typedef struct {
    const int64_t *ip;
    void **pp;
    int64_t z0, z1;
    int tid, status;
} job_SFX;

/* ip: U, Up, dim1, dout, nw, w_rs, nh, De, Do, Dte, Dto, need_x1, need_b, need_w, shared, has_wa, has_wc
   pp: row descriptors (base, stride, weight offset or -1) [rows][3] of x1 even / odd rows and output even / odd
       rows, -, -, x1, W, Bge [Z][nh], Bgo, S1eT [nh][De], S1oT, MeT [Dte][nh], MoT,
       S1e [De][nh], S1o, Me [nh][Dte], Mo, out, raw, G, dx1, QBe [Z][nh], QBo, dW */
#define UNPACK_SFX \
    const int64_t *ip = jb->ip; void **pp = jb->pp; \
    const int64_t U = ip[0], Up = ip[1], dim1 = ip[2], dout = ip[3], nw = ip[4], w_rs = ip[5]; \
    const int64_t nh = ip[6], De = ip[7], Do = ip[8], Dte = ip[9], Dto = ip[10]; \
    const int64_t *d1e = pp[0], *d1o = pp[1], *dye = pp[2], *dyo = pp[3]; \
    const int wa = (int)ip[15], wc = (int)ip[16]; \
    const REAL *x1 = pp[6], *W = pp[7], *Bge = pp[8], *Bgo = pp[9]; \
    const REAL *S1eT = pp[10], *S1oT = pp[11], *MeT = pp[12], *MoT = pp[13]; \
    const REAL *S1e = pp[14], *S1o = pp[15], *Me = pp[16], *Mo = pp[17]; \
    (void)nw; (void)S1e; (void)S1o; (void)Me; (void)Mo; (void)MeT; (void)MoT;

/* X[r][u] = x[base_r + u * stride_r] (* w[woff_r + u]) for the rows r of descriptor D */
static inline void gat_SFX(const int64_t *D, int64_t R, const REAL *x, const REAL *w, int64_t U, int64_t Up, REAL *X) {
    for (int64_t r = 0; r < R; ++r, D += 3) {
        const REAL *xs = x + D[0];
        const int64_t st = D[1];
        REAL *Xr = X + r * Up;
        if (D[2] >= 0) {
            const REAL *ws = w + D[2];
            for (int64_t u = 0; u < U; ++u) Xr[u] = xs[u * st] * ws[u];
        } else {
            for (int64_t u = 0; u < U; ++u) Xr[u] = xs[u * st];
        }
    }
}

/* y[base_r + u * stride_r] = Y[r][u] (* w[woff_r + u]); raw (if given) gets the unweighted values */
static inline void sca_SFX(const int64_t *D, int64_t R, const REAL *Y, const REAL *w, int64_t U, int64_t Up, REAL *y, REAL *raw) {
    for (int64_t r = 0; r < R; ++r, D += 3) {
        REAL *ys = y + D[0];
        const int64_t st = D[1];
        const REAL *Yr = Y + r * Up;
        if (raw) {
            REAL *rs = raw + D[0];
            for (int64_t u = 0; u < U; ++u) rs[u * st] = Yr[u];
        }
        if (D[2] >= 0) {
            const REAL *ws = w + D[2];
            for (int64_t u = 0; u < U; ++u) ys[u * st] = Yr[u] * ws[u];
        } else {
            for (int64_t u = 0; u < U; ++u) ys[u * st] = Yr[u];
        }
    }
}

/* dw[woff_r + u] += a[base_r + u * stride_r] * b[r][u] (b_strided: b[base_r + u * stride_r] instead) */
static inline void wgrad_SFX(const int64_t *D, int64_t R, const REAL *a, const REAL *b, int b_strided, int64_t U, int64_t Up, REAL *dw) {
    for (int64_t r = 0; r < R; ++r, D += 3) {
        const REAL *as = a + D[0];
        const int64_t st = D[1];
        REAL *d = dw + D[2];
        if (b_strided) {
            const REAL *bs = b + D[0];
            for (int64_t u = 0; u < U; ++u) d[u] += as[u * st] * bs[u * st];
        } else {
            const REAL *br = b + r * Up;
            for (int64_t u = 0; u < U; ++u) d[u] += as[u * st] * br[u];
        }
    }
}

static void *fwd_SFX(void *arg) {
    job_SFX *jb = arg;
    UNPACK_SFX
    REAL *out = pp[18], *raw = pp[19];
    int64_t nb = Up * (De + Do + 2 * nh + Dte + Dto) + 64;
    REAL *buf = aligned_alloc(64, ((nb * sizeof(REAL) + 63) / 64) * 64);
    if (!buf) { jb->status = 1; return NULL; }
    memset(buf, 0, nb * sizeof(REAL));
    REAL *Xe = buf, *Xo = Xe + Up * De, *Ae = Xo + Up * Do, *Ao = Ae + Up * nh, *Oe = Ao + Up * nh, *Oo = Oe + Up * Dte;
    for (int64_t z = jb->z0; z < jb->z1; ++z) {
        const REAL *x = x1 + z * dim1, *w = W + z * w_rs, *Be = Bge + z * nh, *Bo = Bgo + z * nh;
        REAL *o = out + z * dout, *rw = raw ? raw + z * dout : NULL;
        gat_SFX(d1e, De, x, w, U, Up, Xe);
        gat_SFX(d1o, Do, x, w, U, Up, Xo);
        mt_SFX(S1eT, De, nh, De, Xe, Ae, Up);
        mt_SFX(S1oT, Do, nh, Do, Xo, Ao, Up);
        for (int64_t p = 0; p < nh; ++p) {
            REAL be = Be[p], bo = Bo[p];
            REAL *ae = Ae + p * Up, *ao = Ao + p * Up;
            for (int64_t u = 0; u < Up; ++u) {
                REAL a = ae[u], b = ao[u];
                ae[u] = a * be + b * bo;
                ao[u] = a * bo + b * be;
            }
        }
        mt_SFX(MeT, nh, Dte, nh, Ae, Oe, Up);
        mt_SFX(MoT, nh, Dto, nh, Ao, Oo, Up);
        sca_SFX(dye, Dte, Oe, w, U, Up, o, rw);
        sca_SFX(dyo, Dto, Oo, w, U, Up, o, rw);
    }
    free(buf);
    return NULL;
}

static void *bwd_SFX(void *arg) {
    job_SFX *jb = arg;
    UNPACK_SFX
    const REAL *G = pp[20], *raw = pp[19];
    REAL *dx1 = pp[21], *QBe_all = pp[22], *QBo_all = pp[23], *dW = pp[24];
    const int need_x1 = (int)ip[11], need_b = (int)ip[12], need_w = (int)ip[13], shared = (int)ip[14];
    int64_t nb = Up * (Dte + Dto + 2 * (De + Do) + 6 * nh) + 64;
    REAL *buf = aligned_alloc(64, ((nb * sizeof(REAL) + 63) / 64) * 64);
    if (!buf) { jb->status = 1; return NULL; }
    memset(buf, 0, nb * sizeof(REAL));
    REAL *ge = buf, *go = ge + Up * Dte, *Xe = go + Up * Dto, *Xo = Xe + Up * De, *dXe = Xo + Up * Do, *dXo = dXe + Up * De;
    REAL *Hp = dXo + Up * Do, *Hm = Hp + Up * nh, *Qe = Hm + Up * nh, *Qo = Qe + Up * nh, *Ae = Qo + Up * nh, *Ao = Ae + Up * nh;
    for (int64_t z = jb->z0; z < jb->z1; ++z) {
        const REAL *x = x1 + z * dim1, *w = W + z * w_rs, *g = G + z * dout, *Be = Bge + z * nh, *Bo = Bgo + z * nh;
        REAL *dw = need_w ? (shared ? dW + (int64_t)jb->tid * nw : dW + z * nw) : NULL;
        if (need_w && wc) {
            const REAL *rw = raw + z * dout;
            wgrad_SFX(dye, Dte, g, rw, 1, U, Up, dw);
            wgrad_SFX(dyo, Dto, g, rw, 1, U, Up, dw);
        }
        gat_SFX(dye, Dte, g, w, U, Up, ge);
        gat_SFX(dyo, Dto, g, w, U, Up, go);
        mt_SFX(Me, Dte, nh, Dte, ge, Hp, Up);
        mt_SFX(Mo, Dto, nh, Dto, go, Hm, Up);
        if (need_x1 || (need_w && wa)) {
            for (int64_t p = 0; p < nh; ++p) {
                REAL be = Be[p], bo = Bo[p];
                const REAL *hp = Hp + p * Up, *hm = Hm + p * Up;
                REAL *qe = Qe + p * Up, *qo = Qo + p * Up;
                for (int64_t u = 0; u < Up; ++u) {
                    qe[u] = hp[u] * be + hm[u] * bo;
                    qo[u] = hp[u] * bo + hm[u] * be;
                }
            }
            mt_SFX(S1e, nh, De, nh, Qe, dXe, Up);
            mt_SFX(S1o, nh, Do, nh, Qo, dXo, Up);
            if (need_w && wa) {
                wgrad_SFX(d1e, De, x, dXe, 0, U, Up, dw);
                wgrad_SFX(d1o, Do, x, dXo, 0, U, Up, dw);
            }
            if (need_x1) {
                sca_SFX(d1e, De, dXe, w, U, Up, dx1 + z * dim1, NULL);
                sca_SFX(d1o, Do, dXo, w, U, Up, dx1 + z * dim1, NULL);
            }
        }
        if (need_b) {
            gat_SFX(d1e, De, x, w, U, Up, Xe);
            gat_SFX(d1o, Do, x, w, U, Up, Xo);
            mt_SFX(S1eT, De, nh, De, Xe, Ae, Up);
            mt_SFX(S1oT, Do, nh, Do, Xo, Ao, Up);
            REAL *qbe = QBe_all + z * nh, *qbo = QBo_all + z * nh;
            const int64_t V = VL_SFX;
            for (int64_t p = 0; p < nh; ++p) {
                const REAL *hp = Hp + p * Up, *hm = Hm + p * Up, *ae = Ae + p * Up, *ao = Ao + p * Up;
                VT_SFX se = {0}, so = {0};
                for (int64_t u = 0; u < Up; u += V) {
                    VT_SFX vhp = *(const VT_SFX *)(hp + u), vhm = *(const VT_SFX *)(hm + u);
                    VT_SFX vae = *(const VT_SFX *)(ae + u), vao = *(const VT_SFX *)(ao + u);
                    se += vhp * vae + vhm * vao;
                    so += vhp * vao + vhm * vae;
                }
                REAL te = 0, to = 0;
                for (int64_t i = 0; i < V; ++i) { te += se[i]; to += so[i]; }
                qbe[p] = te;
                qbo[p] = to;
            }
        }
    }
    free(buf);
    return NULL;
}

int s2_run_SFX(int backward, int nt, int64_t Z, const int64_t *ip, void **pp) {
    job_SFX jobs[64];
    pthread_t th[64];
    int started[64] = {0};
    if (nt < 1) nt = 1;
    if (nt > 64) nt = 64;
    if (nt > Z) nt = Z < 1 ? 1 : (int)Z;
    for (int t = 0; t < nt; ++t) {
        jobs[t].ip = ip; jobs[t].pp = pp; jobs[t].tid = t; jobs[t].status = 0;
        jobs[t].z0 = Z * t / nt; jobs[t].z1 = Z * (t + 1) / nt;
    }
    void *(*fn)(void *) = backward ? bwd_SFX : fwd_SFX;
    for (int t = 1; t < nt; ++t) started[t] = pthread_create(&th[t], NULL, fn, &jobs[t]) == 0;
    fn(&jobs[0]);
    for (int t = 1; t < nt; ++t) {
        if (started[t]) pthread_join(th[t], NULL);
        else fn(&jobs[t]);
    }
    int st = 0;
    for (int t = 0; t < nt; ++t) st |= jobs[t].status;
    return st;
}
"""

C_SOURCE = (
    "#include <stdint.h>\n#include <stdlib.h>\n#include <string.h>\n#include <pthread.h>\n"
    + _TEMPLATE.replace("REAL", "float").replace("_SFX", "_f32")
    + _TEMPLATE.replace("REAL", "double").replace("_SFX", "_f64")
)

_FLAGS = ["-O3", "-march=native", "-fPIC", "-shared", "-std=gnu11", "-pthread"]
_lock = threading.Lock()
_lib = None
_tried = False
_error: str | None = None


def _compile() -> str:
    from ._cg_native import _cache_dir, _cpu_id

    cc = os.environ.get("CC", "cc")
    key = hashlib.sha256((C_SOURCE + " ".join(_FLAGS) + cc + platform.machine() + _cpu_id()).encode()).hexdigest()[:16]
    d = _cache_dir()
    os.makedirs(d, exist_ok=True)
    so = os.path.join(d, f"equivar_s2grid_{key}.so")
    if os.path.exists(so):
        return so
    with tempfile.TemporaryDirectory(dir=d) as tmp:
        src = os.path.join(tmp, "k.c")
        with open(src, "w") as f:
            f.write(C_SOURCE)
        out = os.path.join(tmp, "k.so")
        r = subprocess.run([cc, *_FLAGS, src, "-o", out], capture_output=True, text=True, timeout=300)
        if r.returncode != 0:
            raise RuntimeError(f"{cc} failed: {r.stderr.strip()[:2000]}")
        os.replace(out, so)  # atomic: concurrent processes never see a partial file
    return so


def library():
    """The loaded kernel library, or ``None`` (``native_error()`` says why)."""
    global _lib, _tried, _error
    if _tried:
        return _lib
    with _lock:
        if _tried:
            return _lib
        _tried = True
        if os.environ.get("EQUIVAR_NATIVE", "1") == "0":
            _error = "disabled by EQUIVAR_NATIVE=0"
            return None
        if sys.platform == "win32":
            _error = "native kernels are built for POSIX systems only"
            return None
        try:
            lib = ctypes.CDLL(_compile())
            for name in ("s2_run_f32", "s2_run_f64"):
                f = getattr(lib, name)
                f.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_void_p, ctypes.c_void_p]
                f.restype = ctypes.c_int
            _lib = lib
        except (OSError, RuntimeError, subprocess.SubprocessError) as e:
            _error = str(e)
            _lib = None
        return _lib


def native_error() -> str | None:
    """Why the native kernel is unavailable (``None`` if available or not tried yet)."""
    return _error


def usable(*tensors) -> bool:
    t0 = tensors[0]
    return (
        all(t.device.type == "cpu" and t.dtype == t0.dtype for t in tensors)
        and t0.dtype in (torch.float32, torch.float64)
        and library() is not None
    )


class NativeConsts:
    """Contiguous copies of one :class:`~equivar.tp._s2grid_ops.FusedPlan`'s matrices (both orientations)."""

    def __init__(self, P):
        c = lambda t: t.contiguous()  # noqa: E731
        self.nh, self.De, self.Do = P.Me.shape[0], P.S1e.shape[0], P.S1o.shape[0]
        self.Dte, self.Dto = P.Me.shape[1], P.Mo.shape[1]
        self.Up = (P.U + 15) // 16 * 16
        self.mats = [c(P.S1e.t()), c(P.S1o.t()), c(P.Me.t()), c(P.Mo.t()), c(P.S1e), c(P.S1o), c(P.Me), c(P.Mo)]
        self.S2e, self.S2o = P.S2e, P.S2o
        U = P.U

        def desc(g, w):  # per row: (base, stride, weight offset or -1), from the [U * rows] index maps
            g = g.view(U, -1)
            base = g[0]
            stride = g[1] - g[0] if U > 1 else torch.zeros_like(base)
            woff = w[base] if w is not None else torch.full_like(base, -1)
            return torch.stack([base, stride, woff], 1).contiguous()

        self.idx = [desc(P.g1e, P.wa), desc(P.g1o, P.wa), desc(P.gye, P.wc), desc(P.gyo, P.wc), None, None]
        self.flags = (int(P.wa is not None), int(P.wc is not None))

    def ints(self, P, W, need=(0, 0, 0)):
        shared = W.shape[0] == 1
        return (P.U, self.Up, P.dim1, P.dim_out, W.shape[1], 0 if shared else W.shape[1], self.nh, self.De, self.Do,
                self.Dte, self.Dto) + tuple(int(b) for b in need) + (int(shared),) + self.flags


def _ptrs(items) -> ctypes.Array:
    arr = (ctypes.c_void_p * len(items))()
    for i, t in enumerate(items):
        arr[i] = None if t is None else t.data_ptr()
    return arr


def _call(backward: bool, dtype, Z: int, ints, ptrs) -> None:
    ip = np.asarray(ints, dtype=np.int64)
    fn = library().s2_run_f64 if dtype == torch.float64 else library().s2_run_f32
    st = fn(int(backward), max(1, torch.get_num_threads()), Z, ip.ctypes.data, ctypes.cast(ptrs, ctypes.c_void_p))
    if st != 0:
        raise MemoryError("equivar native s2grid kernel: allocation failed")


def forward(x1, be, bo, W, P, C: NativeConsts, keep_raw: bool):
    """``(out, raw)`` as :func:`equivar.tp._s2grid_ops._whole_forward` (contiguous inputs, ``be [Z, 1, De2]``)."""
    Z = x1.shape[0]
    out = x1.new_empty(Z, P.dim_out)
    raw = x1.new_empty(Z, P.dim_out) if keep_raw else None
    if Z == 0:
        return out, raw
    Bge = be.reshape(Z, -1) @ C.S2e  # the second operand on the half grid: one GEMM for the batch
    Bgo = bo.reshape(Z, -1) @ C.S2o
    ptrs = _ptrs(C.idx + [x1, W, Bge, Bgo] + C.mats + [out, raw])
    _call(False, x1.dtype, Z, C.ints(P, W), ptrs)
    return out, raw


def backward(G, x1, be, bo, W, raw, P, C: NativeConsts, need_x1: bool, need_b: bool, need_w: bool):
    """``(dx1, dbe [Z, De2], dbo [Z, Do2], dW)`` as :func:`equivar.tp._s2grid_ops._whole_backward`."""
    Z = x1.shape[0]
    shared = W.shape[0] == 1
    nt = max(1, min(64, torch.get_num_threads(), Z))
    dx1 = x1.new_empty(Z, P.dim1) if need_x1 else None
    QBe = x1.new_empty(Z, C.nh) if need_b else None
    QBo = x1.new_empty(Z, C.nh) if need_b else None
    dW = (W.new_zeros(nt if shared else Z, W.shape[1])) if need_w else None
    if Z > 0:
        Bge = be.reshape(Z, -1) @ C.S2e
        Bgo = bo.reshape(Z, -1) @ C.S2o
        ptrs = _ptrs(C.idx + [x1, W, Bge, Bgo] + C.mats + [None, raw, G, dx1, QBe, QBo, dW])
        _call(True, x1.dtype, Z, C.ints(P, W, (need_x1, need_b, need_w)), ptrs)
    dbe = dbo = None
    if need_b:
        dbe, dbo = QBe @ C.S2e.t(), QBo @ C.S2o.t()
    if need_w and shared:
        dW = dW.sum(0, keepdim=True)
    return dx1, dbe, dbo, dW
