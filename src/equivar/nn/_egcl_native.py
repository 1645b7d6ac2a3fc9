r"""Native CPU kernel of the edge part of :func:`equivar.nn.egcl_dense_fused` (EGNN's per-edge work in one pass).

On EGNN's N-body batches (100 complete graphs of 5 nodes: 2000 edges, 64
features) the per-edge chain of an EGCL layer is

.. math::

    p = W_i h_i + W_j h_j + w_r r_{ij} + W_a a_{ij} + b,\quad
    s_1 = \mathrm{silu}(p),\quad m = \mathrm{silu}(W_2 s_1 + b_2),\quad
    s_3 = \mathrm{silu}(W_{c1} m + b_{c1}),\quad \phi = w_{c2} \cdot s_3,

followed by ``agg_i = sum_j m_ij`` and ``trans_i = sum_j (x_i - x_j) phi_ij``
(Satorras et al. 2021, eqs. 3-6; ``phi_e`` and ``phi_x``). In eager PyTorch
that is a few dozen passes over ``[E, F]`` tensors (pair sums and their
off-diagonal copies, three SiLUs, two matrix products, sums over senders and
receivers, and about twice as many in the backward). This kernel runs it edge
tile by edge tile (4 edges, register-blocked products with GCC vector
extensions, 64-byte vectors, 16 accumulators; the tile's activations stay in
L1): the forward keeps only the three pre-activations and ``phi``; the
backward recomputes the SiLUs and their derivatives
``silu'(z) = \sigma(z) (1 + z (1 - \sigma(z)))`` (PyTorch's
``silu_backward`` formula) and takes the whole chain rule, the sums of
``g_p`` over each node's edges as receiver and as sender, the coordinate
gradient through ``r_ij`` and the messages, and every weight gradient of the
edge and coordinate MLPs (outer products accumulated per tile) in one pass.

``exp`` is computed in the kernel (range reduction by ``ln 2``, Taylor
polynomial of degree 7 in float32 and 13 in float64 on ``|r| <= ln(2)/2``,
arguments clamped to +-87 / +-708) and ``1 / (1 + e^{-z})`` by the 14-bit
reciprocal estimate and Newton steps where AVX-512 is present, so values
agree with the PyTorch path to rounding, not bit for bit (tested: values and
all gradients of layer and model, float32 and float64, far tails of SiLU).

Work is split in units of 16 graphs: a unit owns its graphs' node rows, so
the sums over neighbours need no locks, and its weight-gradient sums are
added up in unit order after the threads join, so results do not depend on
the number of threads. Below :data:`PARALLEL_EDGES` edges per call the kernel
runs on one thread.

Compiled on first use with the system C compiler into ``$EQUIVAR_CACHE``
and loaded with ``ctypes``, as the ``cg`` and ``s2grid`` kernels
(:mod:`equivar.tp._native_build`: ``EQUIVAR_NATIVE=0``,
``EQUIVAR_REQUIRE_NATIVE=1``, ``native_kernels(False)``). Used for CPU
tensors in float32 / float64 with ``F`` a multiple of 16.
"""

from __future__ import annotations

import ctypes

import torch

from .._threads import kernel_threads
from ..tp import NativeLibrary

_TEMPLATE = r"""
typedef REAL VT_SFX __attribute__((vector_size(64), aligned(sizeof(REAL)), may_alias));
typedef ITYPE IVT_SFX __attribute__((vector_size(64), aligned(sizeof(REAL)), may_alias));
#define VL_SFX ((int64_t)(64 / sizeof(REAL)))
#define LD_SFX(p) (*(const VT_SFX *)(p))
#define ST_SFX(p, v) (*(VT_SFX *)(p) = (v))

static inline VT_SFX splat_SFX(REAL a) { VT_SFX v = {0}; return v + a; }

/* exp(x): x = n ln2 + r, |r| <= ln2 / 2, Taylor polynomial of degree DEG, times 2^n built in the exponent bits */
static inline VT_SFX vexp_SFX(VT_SFX x) {
    const REAL xmax = sizeof(REAL) == 4 ? (REAL)87.0 : (REAL)708.0;
    const REAL magic = sizeof(REAL) == 4 ? (REAL)12582912.0 : (REAL)6755399441055744.0; /* 1.5 * 2^(mantissa bits) */
    const VT_SFX hi = splat_SFX(xmax), lo = splat_SFX(-xmax);
    IVT_SFX over = x > hi, under = x < lo;
    x = (VT_SFX)(((IVT_SFX)x & ~over) | ((IVT_SFX)hi & over));
    x = (VT_SFX)(((IVT_SFX)x & ~under) | ((IVT_SFX)lo & under));
    VT_SFX t = x * (REAL)1.4426950408889634074 + magic; /* n + magic, rounded to an integer */
    VT_SFX n = t - magic;
    VT_SFX r = x - n * (REAL)0.693145751953125 - n * (REAL)1.42860682030941723212e-6;
    const int deg = sizeof(REAL) == 4 ? 7 : 13;
    static const REAL inv_fact[14] = {1.0, 1.0, 1.0 / 2, 1.0 / 6, 1.0 / 24, 1.0 / 120, 1.0 / 720, 1.0 / 5040,
                                      1.0 / 40320, 1.0 / 362880, 1.0 / 3628800, 1.0 / 39916800, 1.0 / 479001600,
                                      1.0 / 6227020800.0};
    VT_SFX p = splat_SFX(inv_fact[deg]);
    for (int i = deg - 1; i >= 0; --i) p = p * r + inv_fact[i];
    IVT_SFX e = ((IVT_SFX)t - (IVT_SFX)splat_SFX(magic) + (ITYPE)BIAS) << (ITYPE)MANT;
    return p * (VT_SFX)e;
}

/* 1 / x: the 14-bit hardware estimate refined by Newton steps (one in float, two in double: a division's
   rounding to an ulp or two, at a fraction of its cost); a plain division without AVX-512 */
static inline VT_SFX vrecip_SFX(VT_SFX x) {
#ifdef __AVX512F__
    VT_SFX y = sizeof(REAL) == 4 ? (VT_SFX)_mm512_rcp14_ps((__m512)x) : (VT_SFX)_mm512_rcp14_pd((__m512d)x);
    y = y * (2 - x * y);
    if (sizeof(REAL) == 8) y = y * (2 - x * y);
    return y;
#else
    return 1 / x;
#endif
}

/* silu(z) = z sigma(z) and silu'(z) = sigma(z) (1 + z (1 - sigma(z))) */
static inline void vsilu_SFX(VT_SFX z, VT_SFX *s, VT_SFX *d) {
    VT_SFX sg = vrecip_SFX(1 + vexp_SFX(-z));
    *s = z * sg;
    *d = sg * (1 + z * (1 - sg));
}

static inline REAL hsum_SFX(VT_SFX v) {
    REAL s = 0;
    for (int64_t i = 0; i < VL_SFX; ++i) s += v[i];
    return s;
}

/* OUT[t][c] = sum_k IN[t][k] M[k][c] for t < R <= 4, c < F (rows of IN and OUT F apart, M [F][F] row-major);
   register blocks of 4 rows x 4 vectors. */
static void tile_mm_SFX(const REAL *IN, const REAL *M, REAL *OUT, int64_t R, int64_t F) {
    const int64_t V = VL_SFX;
    int64_t c = 0;
    if (R == 4) {
        for (; c + 4 * V <= F; c += 4 * V) {
            VT_SFX a00 = {0}, a01 = {0}, a02 = {0}, a03 = {0}, a10 = {0}, a11 = {0}, a12 = {0}, a13 = {0};
            VT_SFX a20 = {0}, a21 = {0}, a22 = {0}, a23 = {0}, a30 = {0}, a31 = {0}, a32 = {0}, a33 = {0};
            const REAL *m = M + c;
            for (int64_t k = 0; k < F; ++k, m += F) {
                VT_SFX m0 = LD_SFX(m), m1 = LD_SFX(m + V), m2 = LD_SFX(m + 2 * V), m3 = LD_SFX(m + 3 * V);
                REAL x0 = IN[k], x1 = IN[F + k], x2 = IN[2 * F + k], x3 = IN[3 * F + k];
                a00 += x0 * m0; a01 += x0 * m1; a02 += x0 * m2; a03 += x0 * m3;
                a10 += x1 * m0; a11 += x1 * m1; a12 += x1 * m2; a13 += x1 * m3;
                a20 += x2 * m0; a21 += x2 * m1; a22 += x2 * m2; a23 += x2 * m3;
                a30 += x3 * m0; a31 += x3 * m1; a32 += x3 * m2; a33 += x3 * m3;
            }
            REAL *o = OUT + c;
            ST_SFX(o, a00); ST_SFX(o + V, a01); ST_SFX(o + 2 * V, a02); ST_SFX(o + 3 * V, a03); o += F;
            ST_SFX(o, a10); ST_SFX(o + V, a11); ST_SFX(o + 2 * V, a12); ST_SFX(o + 3 * V, a13); o += F;
            ST_SFX(o, a20); ST_SFX(o + V, a21); ST_SFX(o + 2 * V, a22); ST_SFX(o + 3 * V, a23); o += F;
            ST_SFX(o, a30); ST_SFX(o + V, a31); ST_SFX(o + 2 * V, a32); ST_SFX(o + 3 * V, a33);
        }
    }
    for (int64_t t = 0; t < R; ++t) {
        for (int64_t cc = c; cc < F; cc += V) {
            VT_SFX a = {0};
            const REAL *m = M + cc, *in = IN + t * F;
            for (int64_t k = 0; k < F; ++k, m += F) a += in[k] * LD_SFX(m);
            ST_SFX(OUT + t * F + cc, a);
        }
    }
}

/* G[o][c] += sum_t A[t][o] S[t][c] for t < R <= 4, o, c < F (rows of A and S F apart, G [F][F] row-major) */
static void tile_outer_SFX(const REAL *A, const REAL *S, REAL *G, int64_t R, int64_t F) {
    const int64_t V = VL_SFX;
    int64_t c = 0;
    if (R == 4) {
        for (; c + 4 * V <= F; c += 4 * V) {
            const REAL *s = S + c;
            VT_SFX s00 = LD_SFX(s), s01 = LD_SFX(s + V), s02 = LD_SFX(s + 2 * V), s03 = LD_SFX(s + 3 * V);
            s += F;
            VT_SFX s10 = LD_SFX(s), s11 = LD_SFX(s + V), s12 = LD_SFX(s + 2 * V), s13 = LD_SFX(s + 3 * V);
            s += F;
            VT_SFX s20 = LD_SFX(s), s21 = LD_SFX(s + V), s22 = LD_SFX(s + 2 * V), s23 = LD_SFX(s + 3 * V);
            s += F;
            VT_SFX s30 = LD_SFX(s), s31 = LD_SFX(s + V), s32 = LD_SFX(s + 2 * V), s33 = LD_SFX(s + 3 * V);
            for (int64_t o = 0; o < F; ++o) {
                REAL a0 = A[o], a1 = A[F + o], a2 = A[2 * F + o], a3 = A[3 * F + o];
                REAL *g = G + o * F + c;
                ST_SFX(g, LD_SFX(g) + a0 * s00 + a1 * s10 + a2 * s20 + a3 * s30);
                ST_SFX(g + V, LD_SFX(g + V) + a0 * s01 + a1 * s11 + a2 * s21 + a3 * s31);
                ST_SFX(g + 2 * V, LD_SFX(g + 2 * V) + a0 * s02 + a1 * s12 + a2 * s22 + a3 * s32);
                ST_SFX(g + 3 * V, LD_SFX(g + 3 * V) + a0 * s03 + a1 * s13 + a2 * s23 + a3 * s33);
            }
        }
    }
    for (int64_t o = 0; o < F; ++o)
        for (int64_t cc = c; cc < F; cc += V) {
            VT_SFX g = LD_SFX(G + o * F + cc);
            for (int64_t t = 0; t < R; ++t) g += A[t * F + o] * LD_SFX(S + t * F + cc);
            ST_SFX(G + o * F + cc, g);
        }
}

/* scratch of n values, 64-byte aligned (whole vectors never straddle cache lines); NULL on failure */
static REAL *aligned_buffer_SFX(int64_t n) {
    void *p = NULL;
    return posix_memalign(&p, 64, (size_t)n * sizeof(REAL)) == 0 ? (REAL *)p : NULL;
}

typedef struct {
    const int64_t *ip;
    void **pp;
    int64_t *next;
    double scale;
    int status;
} job_SFX;

/* Work units are UNIT graphs, taken in tiles of 4: edge rows (i (N-1) + k) B + b of the graphs b of a tile are
   contiguous for every (i, k), and a unit owns the node rows i B + b of its graphs, so receiver and sender sums need
   no locks; sums over edges (weight gradients) are kept per unit and added up by the caller in unit order, so every
   sum is taken in one order whatever the number of threads. */
#define UNIT_SFX 16

/* ip: B, N, F, D, NA, update.  pp: NODES [N B][2F] (W_i h | W_j h), X [N B][D], PA [E][NA] or NULL,
   WP [1 + NA][F] (row 0: r_ij), bn, W2T [F][F], b2, Wc1T [F][F], bc1, wc2 |
   PRE, Z2, Z3 [E][F] (pre-activations), PHI [E], AGG [N B][F] (if update), TRANS [N B][D]. */
static void *fwd_SFX(void *arg) {
    job_SFX *J = (job_SFX *)arg;
    const int64_t *ip = J->ip;
    void **pp = J->pp;
    const int64_t B = ip[0], N = ip[1], F = ip[2], D = ip[3], NA = ip[4], update = ip[5], K = N - 1, V = VL_SFX;
    const REAL *NODES = pp[0], *X = pp[1], *PA = pp[2], *WP = pp[3], *bn = pp[4], *W2T = pp[5], *b2 = pp[6];
    const REAL *Wc1T = pp[7], *bc1 = pp[8], *wc2 = pp[9];
    REAL *PRE = pp[10], *Z2 = pp[11], *Z3 = pp[12], *PHI = pp[13], *AGG = pp[14], *TRANS = pp[15];
    REAL *buf = aligned_buffer_SFX(8 * F + 4 * D);
    if (!buf) { J->status = 1; return NULL; }
    REAL *act = buf + 4 * F, *diff = act + 4 * F;
    for (;;) {
        const int64_t g0 = __atomic_fetch_add(J->next, UNIT_SFX, __ATOMIC_RELAXED);
        if (g0 >= B) break;
        const int64_t g1 = g0 + UNIT_SFX < B ? g0 + UNIT_SFX : B;
        for (int64_t i = 0; i < N; ++i)
            for (int64_t nr = i * B + g0; nr < i * B + g1; ++nr) {
                for (int64_t d = 0; d < D; ++d) TRANS[nr * D + d] = 0;
                if (update)
                    for (int64_t v = 0; v < F; v += V) ST_SFX(AGG + nr * F + v, splat_SFX(0));
            }
        for (int64_t b0 = g0; b0 < g1; b0 += 4) {
            const int64_t R = g1 - b0 < 4 ? g1 - b0 : 4;
            for (int64_t i = 0; i < N; ++i)
                for (int64_t k = 0; k < K; ++k) {
                    const int64_t j = k + (k >= i), t0 = (i * K + k) * B + b0;
                    for (int64_t t = 0; t < R; ++t) {
                        const int64_t r = t0 + t, ni = i * B + b0 + t, nj = j * B + b0 + t;
                        REAL r2 = 0;
                        for (int64_t d = 0; d < D; ++d) {
                            REAL df = X[ni * D + d] - X[nj * D + d];
                            diff[t * D + d] = df;
                            r2 += df * df;
                        }
                        const REAL *a = NODES + ni * 2 * F, *c = NODES + nj * 2 * F + F, *p = PA ? PA + r * NA : NULL;
                        for (int64_t v = 0; v < F; v += V) {
                            VT_SFX z = LD_SFX(a + v) + LD_SFX(c + v) + r2 * LD_SFX(WP + v);
                            for (int64_t u = 0; u < NA; ++u) z += p[u] * LD_SFX(WP + (1 + u) * F + v);
                            z += LD_SFX(bn + v);
                            VT_SFX s, dd;
                            vsilu_SFX(z, &s, &dd);
                            ST_SFX(PRE + r * F + v, z);
                            ST_SFX(act + t * F + v, s);
                        }
                    }
                    tile_mm_SFX(act, W2T, buf, R, F);
                    for (int64_t t = 0; t < R; ++t) {
                        const int64_t r = t0 + t;
                        REAL *ag = update ? AGG + (i * B + b0 + t) * F : NULL;
                        for (int64_t v = 0; v < F; v += V) {
                            VT_SFX z = LD_SFX(buf + t * F + v) + LD_SFX(b2 + v), s, dd;
                            vsilu_SFX(z, &s, &dd);
                            ST_SFX(Z2 + r * F + v, z);
                            ST_SFX(act + t * F + v, s);
                            if (ag) ST_SFX(ag + v, LD_SFX(ag + v) + s);
                        }
                    }
                    tile_mm_SFX(act, Wc1T, buf, R, F);
                    for (int64_t t = 0; t < R; ++t) {
                        const int64_t r = t0 + t;
                        VT_SFX acc = {0};
                        for (int64_t v = 0; v < F; v += V) {
                            VT_SFX z = LD_SFX(buf + t * F + v) + LD_SFX(bc1 + v), s, dd;
                            vsilu_SFX(z, &s, &dd);
                            ST_SFX(Z3 + r * F + v, z);
                            acc += s * LD_SFX(wc2 + v);
                        }
                        REAL phi = hsum_SFX(acc);
                        PHI[r] = phi;
                        REAL *tr = TRANS + (i * B + b0 + t) * D;
                        for (int64_t d = 0; d < D; ++d) tr[d] += diff[t * D + d] * phi;
                    }
                }
        }
    }
    free(buf);
    return NULL;
}

/* ip: B, N, F, D, NA, ldga, nparts.  pp: (unused), GX [N B][D] or NULL, GAGG [N B][ldga] or NULL, X, PA or
   NULL, WP, wc2, Wc1 [F][F], W2 [F][F], PRE, Z2, Z3, PHI | GNT [N B][2F] (receiver | sender sums of g_pre),
   GXIN [N B][D] or NULL, PART [ceil(B / UNIT)][nparts]: per unit sums of g_z3^T m (F F), g_z2^T s1 (F F), g_pre (F),
   [r, a]^T g_pre ((1 + NA) F), g_z2 (F), g_z3 (F), g_phi s3 (F). */
static void *bwd_SFX(void *arg) {
    job_SFX *J = (job_SFX *)arg;
    const int64_t *ip = J->ip;
    void **pp = J->pp;
    const int64_t B = ip[0], N = ip[1], F = ip[2], D = ip[3], NA = ip[4], ldga = ip[5], nparts = ip[6];
    const int64_t K = N - 1, V = VL_SFX;
    const REAL scale = (REAL)J->scale;
    const REAL *GX = pp[1], *GAGG = pp[2], *X = pp[3], *PA = pp[4], *WP = pp[5], *wc2 = pp[6], *Wc1 = pp[7];
    const REAL *W2 = pp[8], *PRE = pp[9], *Z2 = pp[10], *Z3 = pp[11], *PHI = pp[12];
    REAL *GNT = pp[13], *GXIN = pp[14], *PART = pp[15];
    REAL *buf = aligned_buffer_SFX(5 * 4 * F + 4 * D);
    if (!buf) { J->status = 1; return NULL; }
    REAL *gz = buf + 4 * F, *act = gz + 4 * F, *der = act + 4 * F, *der2 = der + 4 * F, *diff = der2 + 4 * F;
    for (;;) {
        const int64_t g0 = __atomic_fetch_add(J->next, UNIT_SFX, __ATOMIC_RELAXED);
        if (g0 >= B) break;
        const int64_t g1 = g0 + UNIT_SFX < B ? g0 + UNIT_SFX : B;
        REAL *part = PART + (g0 / UNIT_SFX) * nparts;
        REAL *p_wc1 = part, *p_w2 = part + F * F, *p_pre = p_w2 + F * F, *p_pair = p_pre + F;
        REAL *p_z2 = p_pair + (1 + NA) * F, *p_z3 = p_z2 + F, *p_phi = p_z3 + F;
        for (int64_t q = 0; q < nparts; ++q) part[q] = 0;
        for (int64_t i = 0; i < N; ++i)
            for (int64_t nr = i * B + g0; nr < i * B + g1; ++nr) {
                for (int64_t v = 0; v < 2 * F; v += V) ST_SFX(GNT + nr * 2 * F + v, splat_SFX(0));
                if (GXIN)
                    for (int64_t d = 0; d < D; ++d) GXIN[nr * D + d] = GX ? GX[nr * D + d] : 0;
            }
        for (int64_t b0 = g0; b0 < g1; b0 += 4) {
            const int64_t R = g1 - b0 < 4 ? g1 - b0 : 4;
            for (int64_t i = 0; i < N; ++i)
                for (int64_t k = 0; k < K; ++k) {
                    const int64_t j = k + (k >= i), t0 = (i * K + k) * B + b0;
                    for (int64_t t = 0; t < R; ++t) {  /* g_z3 = g_phi w_c2 silu'(z3); sums of g_z3 and g_phi s3 */
                        const int64_t r = t0 + t, ni = i * B + b0 + t, nj = j * B + b0 + t;
                        REAL g = 0;
                        for (int64_t d = 0; d < D; ++d) {
                            REAL df = X[ni * D + d] - X[nj * D + d];
                            diff[t * D + d] = df;
                            if (GX) g += df * GX[ni * D + d];
                        }
                        g *= scale;
                        for (int64_t v = 0; v < F; v += V) {
                            VT_SFX s, dd;
                            vsilu_SFX(LD_SFX(Z3 + r * F + v), &s, &dd);
                            VT_SFX gzv = g * LD_SFX(wc2 + v) * dd;
                            ST_SFX(gz + t * F + v, gzv);
                            ST_SFX(p_z3 + v, LD_SFX(p_z3 + v) + gzv);
                            ST_SFX(p_phi + v, LD_SFX(p_phi + v) + g * s);
                        }
                    }
                    for (int64_t t = 0; t < R; ++t) {  /* m = silu(z2) and silu'(z2) */
                        const int64_t r = t0 + t;
                        for (int64_t v = 0; v < F; v += V) {
                            VT_SFX s, dd;
                            vsilu_SFX(LD_SFX(Z2 + r * F + v), &s, &dd);
                            ST_SFX(act + t * F + v, s);
                            ST_SFX(der + t * F + v, dd);
                        }
                    }
                    tile_outer_SFX(gz, act, p_wc1, R, F);
                    tile_mm_SFX(gz, Wc1, buf, R, F);
                    for (int64_t t = 0; t < R; ++t) {  /* g_z2 = (g_z3 Wc1 + g_agg_i) silu'(z2); s1, silu'(pre) */
                        const int64_t r = t0 + t;
                        const REAL *ga = GAGG ? GAGG + (i * B + b0 + t) * ldga : NULL;
                        for (int64_t v = 0; v < F; v += V) {
                            VT_SFX gm = LD_SFX(buf + t * F + v);
                            if (ga) gm += LD_SFX(ga + v);
                            VT_SFX gzv = gm * LD_SFX(der + t * F + v);
                            ST_SFX(gz + t * F + v, gzv);
                            ST_SFX(p_z2 + v, LD_SFX(p_z2 + v) + gzv);
                            VT_SFX s, dd;
                            vsilu_SFX(LD_SFX(PRE + r * F + v), &s, &dd);
                            ST_SFX(act + t * F + v, s);
                            ST_SFX(der2 + t * F + v, dd);
                        }
                    }
                    tile_outer_SFX(gz, act, p_w2, R, F);
                    tile_mm_SFX(gz, W2, buf, R, F);
                    for (int64_t t = 0; t < R; ++t) {  /* g_pre = g_z2 W2 silu'(pre): node sums, weights, r_ij path */
                        const int64_t r = t0 + t, ni = i * B + b0 + t, nj = j * B + b0 + t;
                        REAL r2 = 0;
                        for (int64_t d = 0; d < D; ++d) r2 += diff[t * D + d] * diff[t * D + d];
                        const REAL *p = PA ? PA + r * NA : NULL;
                        REAL *gi = GNT + ni * 2 * F, *gj = GNT + nj * 2 * F + F;
                        VT_SFX dot = {0};
                        for (int64_t v = 0; v < F; v += V) {
                            VT_SFX gp = LD_SFX(buf + t * F + v) * LD_SFX(der2 + t * F + v);
                            ST_SFX(gi + v, LD_SFX(gi + v) + gp);
                            ST_SFX(gj + v, LD_SFX(gj + v) + gp);
                            ST_SFX(p_pre + v, LD_SFX(p_pre + v) + gp);
                            ST_SFX(p_pair + v, LD_SFX(p_pair + v) + r2 * gp);
                            for (int64_t u = 0; u < NA; ++u)
                                ST_SFX(p_pair + (1 + u) * F + v, LD_SFX(p_pair + (1 + u) * F + v) + p[u] * gp);
                            dot += gp * LD_SFX(WP + v);
                        }
                        if (GXIN) {
                            REAL w = 2 * hsum_SFX(dot), sp = GX ? scale * PHI[r] : 0;
                            for (int64_t d = 0; d < D; ++d) {
                                REAL gd = diff[t * D + d] * w + (GX ? sp * GX[ni * D + d] : 0);
                                GXIN[ni * D + d] += gd;
                                GXIN[nj * D + d] -= gd;
                            }
                        }
                    }
                }
        }
    }
    free(buf);
    return NULL;
}

/* backward: the per-unit sums of PART added up in unit order into PART's first row, then copied to the outputs
   pp[16 ...]: g_wc1 (F F), g_w2 (F F), g_bn (F), g_wp ((1 + NA) F), g_b2 (F), g_bc1 (F), g_wc2 (F) */
static void reduce_parts_SFX(const int64_t *ip, void **pp) {
    const int64_t B = ip[0], F = ip[2], NA = ip[4], nparts = ip[6], units = (B + UNIT_SFX - 1) / UNIT_SFX;
    REAL *PART = pp[15];
    for (int64_t u = 1; u < units; ++u)
        for (int64_t q = 0; q < nparts; ++q) PART[q] += PART[u * nparts + q];
    const int64_t sizes[7] = {F * F, F * F, F, (1 + NA) * F, F, F, F};
    const REAL *src = PART;
    for (int o = 0; o < 7; ++o) {
        REAL *dst = pp[16 + o];
        for (int64_t q = 0; q < sizes[o]; ++q) dst[q] = src[q];
        src += sizes[o];
    }
}

int egcl_run_SFX(int backward, int nt, const int64_t *ip, void **pp, double scale) {
    job_SFX jobs[64];
    pthread_t th[64];
    int started[64] = {0};
    const int64_t units = (ip[0] + UNIT_SFX - 1) / UNIT_SFX;
    if (nt < 1) nt = 1;
    if (nt > 64) nt = 64;
    if (nt > units) nt = units < 1 ? 1 : (int)units;
    int64_t next = 0;
    for (int t = 0; t < nt; ++t) {
        jobs[t].ip = ip; jobs[t].pp = pp; jobs[t].next = &next; jobs[t].status = 0; jobs[t].scale = scale;
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
    if (backward && st == 0) reduce_parts_SFX(ip, pp);
    return st;
}
"""


def _instance(real: str, sfx: str, itype: str, bias: int, mant: int) -> str:
    out = _TEMPLATE.replace("REAL", real).replace("_SFX", sfx).replace("ITYPE", itype)
    return out.replace("BIAS", str(bias)).replace("MANT", str(mant))


C_SOURCE = (
    "#include <stdint.h>\n#include <stdlib.h>\n#include <pthread.h>\n#ifdef __AVX512F__\n#include <immintrin.h>\n#endif\n"
    + _instance("float", "_f32", "int32_t", 127, 23)
    + _instance("double", "_f64", "int64_t", 1023, 52)
)

_FLAGS = ["-O3", "-march=native", "-fPIC", "-shared", "-std=gnu11", "-pthread"]


def _declare(lib) -> None:
    for name in ("egcl_run_f32", "egcl_run_f64"):
        f = getattr(lib, name)
        f.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_double]
        f.restype = ctypes.c_int


_LIB = NativeLibrary(C_SOURCE, _FLAGS, "equivar_egcl", _declare)
_UNIT = 16  # graphs per work unit (UNIT_SFX in the kernel)
#: edges per call from which the kernel uses :func:`equivar._threads.kernel_threads` threads (below: one)
PARALLEL_EDGES = 16384


def library():
    """The loaded kernel library, or ``None`` (:func:`native_error` says why)."""
    return _LIB.get()


def native_error() -> str | None:
    """Why the kernel is unavailable (``None`` if available or not tried yet)."""
    return _LIB.error


def usable(h: torch.Tensor) -> bool:
    """Whether the kernel computes a layer on node features ``h [N B, F]``: CPU, float32/float64, ``F % 16 == 0``."""
    return (
        h.device.type == "cpu"
        and h.dtype in (torch.float32, torch.float64)
        and h.shape[-1] % 16 == 0
        and library() is not None
    )


def _call(backward: bool, dtype, ints, tensors, scale: float = 0.0) -> None:
    ip = (ctypes.c_int64 * len(ints))(*ints)
    pp = (ctypes.c_void_p * len(tensors))(*[None if t is None else t.data_ptr() for t in tensors])
    lib = library()
    fn = lib.egcl_run_f64 if dtype == torch.float64 else lib.egcl_run_f32
    # one thread below PARALLEL_EDGES: at EGNN's N-body size (2,000 edges) two kernel threads took 4.5x the wall
    # time of one on the shared 2-core machine (BENCHMARKS.md), the work per call being well under a millisecond
    nt = kernel_threads() if ints[0] * ints[1] * (ints[1] - 1) >= PARALLEL_EDGES else 1
    if fn(int(backward), nt, ip, pp, scale) != 0:
        raise MemoryError("equivar native EGCL kernel: allocation failed")


def edge_forward(nodes, x, pair_attr, wp, bn, w2, b2, wc1, bc1, wc2, n: int, update: bool) -> dict:
    """The edge chain of the module docstring on ``B`` complete graphs of ``n`` nodes (node-major rows).

    Parameters
    ----------
    nodes : Tensor [n B, 2 F]
        ``[W_i h | W_j h]`` per node row (receiver and sender terms).
    x : Tensor [n B, D]
        Positions; ``r_ij = |x_i - x_j|^2``.
    pair_attr : Tensor [E, A] or None
        Invariant pair attributes per edge row, ``E = n (n - 1) B``.
    wp : Tensor [1 + A, F]
        Their weights (row 0: ``r_ij``); ``bn, b2, bc1 : [F]``, ``wc2 : [1, F]``, ``w2, wc1 : [F, F]``
        (``Linear`` weights, out x in).
    update : bool
        Also return ``agg_i = sum_j m_ij`` (the node update's input).

    Returns
    -------
    dict
        ``pre, z2, z3`` [E, F] (the three pre-activations, kept for :func:`edge_backward`), ``phi`` [E],
        ``agg`` [n B, F] or None, ``trans`` [n B, D] (``sum_j (x_i - x_j) phi_ij``, unscaled).
    """
    rows, f2 = nodes.shape
    f = f2 // 2
    e = rows * (n - 1)
    d = x.shape[1]
    new = nodes.new_empty
    out = {"pre": new(e, f), "z2": new(e, f), "z3": new(e, f), "phi": new(e)}
    out["agg"] = new(rows, f) if update else None
    out["trans"] = new(rows, d)
    if e:
        na = 0 if pair_attr is None else pair_attr.shape[1]
        ins = [nodes.contiguous(), x.contiguous(), None if pair_attr is None else pair_attr.contiguous()]
        ins += [wp.contiguous(), bn.contiguous(), w2.t().contiguous(), b2.contiguous(), wc1.t().contiguous()]
        ins += [bc1.contiguous(), wc2.contiguous()]
        outs = [out[k] for k in ("pre", "z2", "z3", "phi", "agg", "trans")]
        _call(False, nodes.dtype, (rows // n, n, f, d, na, int(update)), ins + outs)
    return out


def edge_backward(saved: dict, g_x, g_agg, x, pair_attr, wp, wc2, wc1, w2, n: int, scale: float, need_x: bool):
    """Backward of :func:`edge_forward` (``saved``: its outputs) given the gradients of the layer's coordinate
    output ``g_x [n B, D]`` (or None: zero) and of ``agg`` (``g_agg [n B, F]``, rows may be strided, or None).

    ``x_new = x + scale trans + ...``: the coordinate path ``g_phi_ij = scale (x_i - x_j) . g_x_i`` is taken here.

    Returns
    -------
    dict
        ``g_nt`` [n B, 2F] (the sums of ``g_pre`` over each node's edges as receiver | as sender), ``g_x``
        [n B, D] (the gradient of ``x``, the identity path ``g_x`` included; None unless ``need_x``), and the
        weight gradients ``g_wc1``, ``g_w2`` [F, F], ``g_bn`` [F], ``g_wp`` [1 + A, F], ``g_b2`` [F],
        ``g_bc1`` [F], ``g_wc2`` [1, F].
    """
    pre = saved["pre"]
    e, f = pre.shape
    rows = saved["trans"].shape[0]
    d = x.shape[1]
    na = 0 if pair_attr is None else pair_attr.shape[1]
    b = rows // n
    nparts = 2 * f * f + (5 + na) * f
    new = pre.new_empty
    out = {"g_nt": new(rows, 2 * f), "g_x": new(rows, d) if need_x else None}
    out.update(g_wc1=new(f, f), g_w2=new(f, f), g_bn=new(f), g_wp=new(1 + na, f), g_b2=new(f), g_bc1=new(f))
    out["g_wc2"] = new(1, f)
    if g_agg is not None and g_agg.stride(1) != 1:
        g_agg = g_agg.contiguous()
    if not e:
        for k in _SUMS:
            out[k].zero_()
        return out
    part = new((b + _UNIT - 1) // _UNIT, nparts)
    ins = [None, None if g_x is None else g_x.contiguous(), g_agg, x.contiguous()]
    ins += [None if pair_attr is None else pair_attr.contiguous(), wp.contiguous(), wc2.contiguous()]
    ins += [wc1.contiguous(), w2.contiguous(), saved["pre"], saved["z2"], saved["z3"], saved["phi"]]
    ins += [out["g_nt"], out["g_x"], part] + [out[k] for k in _SUMS]
    lda = 0 if g_agg is None else g_agg.stride(0)
    _call(True, pre.dtype, (b, n, f, d, na, lda, nparts), ins, scale)
    return out


_SUMS = ("g_wc1", "g_w2", "g_bn", "g_wp", "g_b2", "g_bc1", "g_wc2")
