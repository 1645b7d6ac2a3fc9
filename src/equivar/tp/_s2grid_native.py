r"""Native CPU kernel of the whole-product ``s2grid`` path (:func:`equivar.tp._s2grid_ops.fused_sym_product`).

It uses both reflection symmetries of the default grid, ``y -> -y`` (pairs
of Gauss-Legendre rings) and ``x -> -x`` (azimuths ``j -> n_alpha - j``):
each harmonic is even or odd under each, so a function is four parts
(class ``k = 2 [(l + m) odd] + [m < 0]``) given on a quarter of the grid
(L = 6: 5 rings x 10 azimuths = 50 points instead of 190), and the
pointwise product of two functions is the group product
``H_k = sum_i F_i G_(i xor k)`` there. Synthesis and projection are four
small matrix products each with the rows of one class (at L = 6 about
``49 x 50`` multiply-adds per channel instead of ``49 x 95`` on the half
grid, ``49 x 190`` on the full one), exact like the full grid (the
quadrature weights of mirrored points are folded into the projection).

Per sample it gathers the (weighted) input coefficients with the channels
in the SIMD lanes (``[row][channel]``), synthesizes, multiplies with the
second operand's quarter-grid values (one GEMM for the batch, outside the
kernel), projects back and scatters into e3nn's layout with the output
weights, all in L1/L2-sized buffers with register-blocked small matrix
products (GCC vector extensions, 6 rows x 2 vectors of accumulators); the
backward does the same for the gradients of x1, of the second operand and of
the weights (partial sums per block of 16 samples for shared weights, so results do
not depend on the thread count or scheduling). The PyTorch path
(:func:`~equivar.tp._s2grid_ops._whole_forward`, half grid) gives the same
results to rounding.

Compiled on first use with the system C compiler into ``$EQUIVAR_CACHE``
(default ``~/.cache/equivar``) and loaded with ``ctypes``, as the ``cg``
kernels of :mod:`equivar.tp._cg_native`; ``EQUIVAR_NATIVE=0``, a missing
compiler, non-CPU tensors or dtypes other than float32 / float64 select the
PyTorch path. Threads: ``equivar._threads.kernel_threads()``, taking blocks of 16
samples from a shared counter (a thread that is descheduled on a busy machine
does not hold up the others).
"""

from __future__ import annotations

import ctypes

import numpy as np
import torch

from .._threads import kernel_threads
from ._native_build import NativeLibrary

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
    int64_t *next, Z; /* samples are taken in blocks of 16 from a shared counter (balances a loaded machine) */
    int tid, status;
} job_SFX;

/* ip: U, Up, dim1, dout, nw, w_rs, nq, R1[4], Ry[4], need_x1, need_b, need_w, shared, has_wa, has_wc
   pp: d1[4] (x1 row descriptors (base, stride, weight offset or -1) per class), dy[4] (output rows),
       x1, W, Bg [Z][4][nq] (second operand on the quarter grid), S1T[4] [nq][R1], S1[4] [R1][nq],
       MT[4] [Ry][nq], M[4] [nq][Ry], out, raw, G, dx1, QB [Z][4][nq], dW */
#define UNPACK_SFX \
    const int64_t *ip = jb->ip; void **pp = jb->pp; \
    const int64_t U = ip[0], Up = ip[1], dim1 = ip[2], dout = ip[3], nw = ip[4], w_rs = ip[5], nq = ip[6]; \
    const int64_t *R1 = ip + 7, *Ry = ip + 11; \
    const int need_x1 = (int)ip[15], need_b = (int)ip[16], need_w = (int)ip[17], shared = (int)ip[18]; \
    const int wa = (int)ip[19], wc = (int)ip[20]; \
    const int64_t *const *d1 = (const int64_t *const *)pp, *const *dy = (const int64_t *const *)(pp + 4); \
    const REAL *x1 = pp[8], *W = pp[9], *Bg = pp[10]; \
    const REAL *const *S1T = (const REAL *const *)(pp + 11), *const *S1 = (const REAL *const *)(pp + 15); \
    const REAL *const *MT = (const REAL *const *)(pp + 19), *const *M = (const REAL *const *)(pp + 23); \
    REAL *out = pp[27], *raw = pp[28]; const REAL *G = pp[29]; \
    REAL *dx1 = pp[30], *QB = pp[31], *dW = pp[32]; \
    (void)nw; (void)S1; (void)M; (void)MT; (void)S1T; (void)need_x1; (void)need_b; (void)need_w; (void)shared; \
    (void)wa; (void)wc; (void)out; (void)raw; (void)G; (void)dx1; (void)QB; (void)dW; (void)dim1; (void)dout;

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

/* H_k[q][u] = sum_i F_i[q][u] g_(i xor k)[q] (group product on the quarter grid; in place) */
static inline void gprod_SFX(REAL *F, const REAL *g, int64_t nq, int64_t Up) {
    const int64_t V = VL_SFX, cs = nq * Up;
    for (int64_t q = 0; q < nq; ++q) {
        const REAL g0 = g[q], g1 = g[nq + q], g2 = g[2 * nq + q], g3 = g[3 * nq + q];
        REAL *f0 = F + q * Up, *f1 = f0 + cs, *f2 = f1 + cs, *f3 = f2 + cs;
        for (int64_t u = 0; u < Up; u += V) {
            VT_SFX a0 = *(VT_SFX *)(f0 + u), a1 = *(VT_SFX *)(f1 + u), a2 = *(VT_SFX *)(f2 + u), a3 = *(VT_SFX *)(f3 + u);
            *(VT_SFX *)(f0 + u) = a0 * g0 + a1 * g1 + a2 * g2 + a3 * g3;
            *(VT_SFX *)(f1 + u) = a0 * g1 + a1 * g0 + a2 * g3 + a3 * g2;
            *(VT_SFX *)(f2 + u) = a0 * g2 + a1 * g3 + a2 * g0 + a3 * g1;
            *(VT_SFX *)(f3 + u) = a0 * g3 + a1 * g2 + a2 * g1 + a3 * g0;
        }
    }
}

static void *fwd_SFX(void *arg) {
    job_SFX *jb = arg;
    UNPACK_SFX
    const int64_t R1t = R1[0] + R1[1] + R1[2] + R1[3], Ryt = Ry[0] + Ry[1] + Ry[2] + Ry[3];
    int64_t nb = Up * (R1t + 4 * nq + Ryt) + 64;
    REAL *buf = aligned_alloc(64, ((nb * sizeof(REAL) + 63) / 64) * 64);
    if (!buf) { jb->status = 1; return NULL; }
    memset(buf, 0, nb * sizeof(REAL));
    REAL *X = buf, *F = X + Up * R1t, *O = F + 4 * Up * nq;
    for (int64_t c0; (c0 = __atomic_fetch_add(jb->next, 16, __ATOMIC_RELAXED)) < jb->Z;)
    for (int64_t z = c0, c1 = c0 + 16 < jb->Z ? c0 + 16 : jb->Z; z < c1; ++z) {
        const REAL *x = x1 + z * dim1, *w = W + z * w_rs;
        REAL *o = out + z * dout, *rw = raw ? raw + z * dout : NULL;
        REAL *Xk = X;
        for (int k = 0; k < 4; Xk += Up * R1[k], ++k) {
            gat_SFX(d1[k], R1[k], x, w, U, Up, Xk);
            mt_SFX(S1T[k], R1[k], nq, R1[k], Xk, F + k * nq * Up, Up);
        }
        gprod_SFX(F, Bg + z * 4 * nq, nq, Up);
        REAL *Ok = O;
        for (int k = 0; k < 4; Ok += Up * Ry[k], ++k) {
            mt_SFX(MT[k], nq, Ry[k], nq, F + k * nq * Up, Ok, Up);
            sca_SFX(dy[k], Ry[k], Ok, w, U, Up, o, rw);
        }
    }
    free(buf);
    return NULL;
}

static void *bwd_SFX(void *arg) {
    job_SFX *jb = arg;
    UNPACK_SFX
    const int64_t R1t = R1[0] + R1[1] + R1[2] + R1[3], Ryt = Ry[0] + Ry[1] + Ry[2] + Ry[3];
    int64_t nb = Up * (R1t + 4 * nq * 3 + Ryt) + 64;
    REAL *buf = aligned_alloc(64, ((nb * sizeof(REAL) + 63) / 64) * 64);
    if (!buf) { jb->status = 1; return NULL; }
    memset(buf, 0, nb * sizeof(REAL));
    REAL *X = buf, *Hg = X + Up * R1t, *Q = Hg + 4 * Up * nq, *F = Q + 4 * Up * nq, *Gy = F + 4 * Up * nq;
    const int64_t V = VL_SFX, cs = nq * Up;
    for (int64_t c0; (c0 = __atomic_fetch_add(jb->next, 16, __ATOMIC_RELAXED)) < jb->Z;)
    for (int64_t z = c0, c1 = c0 + 16 < jb->Z ? c0 + 16 : jb->Z; z < c1; ++z) {
        const REAL *x = x1 + z * dim1, *w = W + z * w_rs, *g = G + z * dout, *b = Bg + z * 4 * nq;
        REAL *dw = need_w ? (shared ? dW + (z / 16) * nw : dW + z * nw) : NULL; /* shared: one row per block */
        REAL *Gk = Gy;
        for (int k = 0; k < 4; Gk += Up * Ry[k], ++k) {
            if (need_w && wc) wgrad_SFX(dy[k], Ry[k], g, raw + z * dout, 1, U, Up, dw);
            gat_SFX(dy[k], Ry[k], g, w, U, Up, Gk);
            mt_SFX(M[k], Ry[k], nq, Ry[k], Gk, Hg + k * cs, Up);
        }
        if (need_x1 || (need_w && wa)) {
            memcpy(Q, Hg, 4 * cs * sizeof(REAL));
            gprod_SFX(Q, b, nq, Up);
            REAL *Xk = X;
            for (int k = 0; k < 4; Xk += Up * R1[k], ++k) {
                mt_SFX(S1[k], nq, R1[k], nq, Q + k * cs, Xk, Up);
                if (need_w && wa) wgrad_SFX(d1[k], R1[k], x, Xk, 0, U, Up, dw);
                if (need_x1) sca_SFX(d1[k], R1[k], Xk, w, U, Up, dx1 + z * dim1, NULL);
            }
        }
        if (need_b) {
            REAL *Xk = X;
            for (int k = 0; k < 4; Xk += Up * R1[k], ++k) {
                gat_SFX(d1[k], R1[k], x, w, U, Up, Xk);
                mt_SFX(S1T[k], R1[k], nq, R1[k], Xk, F + k * cs, Up);
            }
            REAL *qb = QB + z * 4 * nq;
            for (int64_t q = 0; q < nq; ++q) {
                const REAL *h0 = Hg + q * Up, *h1 = h0 + cs, *h2 = h1 + cs, *h3 = h2 + cs;
                const REAL *f0 = F + q * Up, *f1 = f0 + cs, *f2 = f1 + cs, *f3 = f2 + cs;
                VT_SFX s0 = {0}, s1 = {0}, s2 = {0}, s3 = {0};
                for (int64_t u = 0; u < Up; u += V) {
                    VT_SFX a0 = *(const VT_SFX *)(f0 + u), a1 = *(const VT_SFX *)(f1 + u);
                    VT_SFX a2 = *(const VT_SFX *)(f2 + u), a3 = *(const VT_SFX *)(f3 + u);
                    VT_SFX e0 = *(const VT_SFX *)(h0 + u), e1 = *(const VT_SFX *)(h1 + u);
                    VT_SFX e2 = *(const VT_SFX *)(h2 + u), e3 = *(const VT_SFX *)(h3 + u);
                    /* QB_j = sum_i F_i H_(i xor j) */
                    s0 += a0 * e0 + a1 * e1 + a2 * e2 + a3 * e3;
                    s1 += a0 * e1 + a1 * e0 + a2 * e3 + a3 * e2;
                    s2 += a0 * e2 + a1 * e3 + a2 * e0 + a3 * e1;
                    s3 += a0 * e3 + a1 * e2 + a2 * e1 + a3 * e0;
                }
                REAL t0 = 0, t1 = 0, t2 = 0, t3 = 0;
                for (int64_t i = 0; i < V; ++i) { t0 += s0[i]; t1 += s1[i]; t2 += s2[i]; t3 += s3[i]; }
                qb[q] = t0; qb[nq + q] = t1; qb[2 * nq + q] = t2; qb[3 * nq + q] = t3;
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
    int64_t next = 0;
    for (int t = 0; t < nt; ++t) {
        jobs[t].ip = ip; jobs[t].pp = pp; jobs[t].tid = t; jobs[t].status = 0;
        jobs[t].next = &next; jobs[t].Z = Z;
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


def _declare(lib) -> None:
    for name in ("s2_run_f32", "s2_run_f64"):
        f = getattr(lib, name)
        f.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_void_p, ctypes.c_void_p]
        f.restype = ctypes.c_int


_LIB = NativeLibrary(C_SOURCE, _FLAGS, "equivar_s2grid", _declare)


def library():
    """The loaded kernel library, or ``None`` (``native_error()`` says why)."""
    return _LIB.get()


def native_error() -> str | None:
    """Why the native kernel is unavailable (``None`` if available or not tried yet)."""
    return _LIB.error


def usable(*tensors) -> bool:
    t0 = tensors[0]
    return (
        all(t.device.type == "cpu" and t.dtype == t0.dtype for t in tensors)
        and t0.dtype in (torch.float32, torch.float64)
        and library() is not None
    )


class NativeConsts:
    """The quarter-grid constants of an ``S2GridBackend`` (``_q_*`` buffers) in one dtype, as the kernel reads them."""

    def __init__(self, backend, dtype):
        g = lambda name: getattr(backend, name).to(dtype).contiguous()  # noqa: E731
        self.nq, U = backend._quarter
        self.Up = (U + 15) // 16 * 16
        self.d1 = [getattr(backend, f"_q_d1_{k}").contiguous() for k in range(4)]
        self.dy = [getattr(backend, f"_q_dy_{k}").contiguous() for k in range(4)]
        S1 = [g(f"_q_S1_{k}") for k in range(4)]  # [R1, nq]
        MT = [g(f"_q_M_{k}") for k in range(4)]  # [Ry, nq]
        self.mats = [s.t().contiguous() for s in S1] + S1 + MT + [m.t().contiguous() for m in MT]
        self.S2e, self.S2o = g("_q_S2e"), g("_q_S2o")
        self.R1 = tuple(int(d.shape[0]) for d in self.d1)
        self.Ry = tuple(int(d.shape[0]) for d in self.dy)

    def ints(self, P, W, need=(0, 0, 0)):
        shared = W.shape[0] == 1
        return (
            (P.U, self.Up, P.dim1, P.dim_out, W.shape[1], 0 if shared else W.shape[1], self.nq)
            + self.R1
            + self.Ry
            + tuple(int(b) for b in need)
            + (int(shared), int(P.wa is not None), int(P.wc is not None))
        )


def _ptrs(items) -> ctypes.Array:
    arr = (ctypes.c_void_p * len(items))()
    for i, t in enumerate(items):
        arr[i] = None if t is None or t.numel() == 0 else t.data_ptr()
    return arr


def _call(backward: bool, dtype, Z: int, ints, ptrs) -> None:
    ip = np.asarray(ints, dtype=np.int64)
    fn = library().s2_run_f64 if dtype == torch.float64 else library().s2_run_f32
    st = fn(int(backward), kernel_threads(), Z, ip.ctypes.data, ctypes.cast(ptrs, ctypes.c_void_p))
    if st != 0:
        raise MemoryError("equivar native s2grid kernel: allocation failed")


def _grid_b(be, bo, C):
    Z = be.shape[0]
    return torch.addmm(be.reshape(Z, -1) @ C.S2e, bo.reshape(Z, -1), C.S2o)  # [Z, 4 * nq]: one GEMM pair per batch


def forward(x1, be, bo, W, P, C: NativeConsts, keep_raw: bool):
    """``(out, raw)`` as :func:`equivar.tp._s2grid_ops._whole_forward` (contiguous inputs, ``be [Z, 1, De2]``)."""
    Z = x1.shape[0]
    out = x1.new_empty(Z, P.dim_out)
    raw = x1.new_empty(Z, P.dim_out) if keep_raw else None
    if Z == 0:
        return out, raw
    Bg = _grid_b(be, bo, C)  # (kept referenced while the kernel runs)
    ptrs = _ptrs(C.d1 + C.dy + [x1, W, Bg] + C.mats + [out, raw, None, None, None, None])
    _call(False, x1.dtype, Z, C.ints(P, W), ptrs)
    return out, raw


def backward(G, x1, be, bo, W, raw, P, C: NativeConsts, need_x1: bool, need_b: bool, need_w: bool):
    """``(dx1, dbe [Z, De2], dbo [Z, Do2], dW)`` as :func:`equivar.tp._s2grid_ops._whole_backward`."""
    Z = x1.shape[0]
    shared = W.shape[0] == 1
    dx1 = x1.new_empty(Z, P.dim1) if need_x1 else None
    QB = x1.new_empty(Z, 4 * C.nq) if need_b else None
    # shared weights: one partial sum per block of 16 samples, added up here (deterministic for any thread count)
    dW = (W.new_zeros((Z + 15) // 16 if shared else Z, W.shape[1])) if need_w else None
    if Z > 0:
        Bg = _grid_b(be, bo, C)
        ptrs = _ptrs(C.d1 + C.dy + [x1, W, Bg] + C.mats + [None, raw, G, dx1, QB, dW])
        _call(True, x1.dtype, Z, C.ints(P, W, (need_x1, need_b, need_w)), ptrs)
    dbe = dbo = None
    if need_b:
        dbe, dbo = QB @ C.S2e.t(), QB @ C.S2o.t()
    if need_w and shared:
        dW = dW.sum(0, keepdim=True)
    return dx1, dbe, dbo, dW
