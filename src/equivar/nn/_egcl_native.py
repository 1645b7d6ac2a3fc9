r"""Native CPU kernel of a whole EGCL layer on complete graphs (:func:`equivar.nn.egcl_dense_fused`).

On EGNN's N-body batches (100 complete graphs of 5 nodes: 500 nodes, 2000
edges, 64 features) a layer is, per edge,

.. math::

    p = W_i h_i + W_j h_j + w_r r_{ij} + W_a a_{ij} + b,\quad
    s_1 = \mathrm{silu}(p),\quad m = \mathrm{silu}(W_2 s_1 + b_2),\quad
    \phi = w_{c2} \cdot \mathrm{silu}(W_{c1} m + b_{c1}),

and per node ``x_i + c sum_j (x_i - x_j) phi_ij + phi_v(h_i) v_i`` and
``h_i + phi_h([h_i, sum_j m_ij])`` (Satorras et al. 2021, eqs. 3-6 and the
velocity variant). In eager PyTorch that is about a hundred operations per
layer and step, forward and backward, most of them passes over ``[E, F]``
tensors or small products whose dispatch costs as much as their arithmetic.
This kernel runs the layer in work units of 16 graphs: the unit's node terms,
then its edges tile by tile (4 edges, register-blocked products with GCC
vector extensions, 64-byte vectors, 16 accumulators; a tile's activations
stay in L1), then its nodes' positions and update. The forward keeps the
pre-activations (three per edge, two per node) and ``phi``; the backward
recomputes the SiLUs and their derivatives
``silu'(z) = \sigma(z) (1 + z (1 - \sigma(z)))`` (PyTorch's
``silu_backward`` formula) and takes the whole chain rule in the reverse
order, including the sums over each node's edges as receiver and sender, the
coordinate gradient through ``r_ij`` and the messages, and every weight
gradient (outer products accumulated per tile).

``exp`` is computed in the kernel (range reduction by ``ln 2``, Taylor
polynomial of degree 7 in float32 and 13 in float64 on ``|r| <= ln(2)/2``,
arguments clamped to +-87 / +-708) and ``1 / (1 + e^{-z})`` by the 14-bit
reciprocal estimate and Newton steps where AVX-512 is present, so values
agree with the PyTorch path to rounding, not bit for bit (tested: values and
all gradients of layer and model, float32 and float64, far tails of SiLU).

A unit owns its graphs' node rows, so sums over neighbours need no locks,
and its weight-gradient sums are added up in unit order after the threads
join, so results do not depend on the number of threads. Below
:data:`PARALLEL_EDGES` edges per call the kernel runs on one thread.

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

/* OUT[t ldo + c] (+)= sum_{k < K} IN[t ldi + k] M[k ldm + c] for t < R <= 4, c < Fo (a multiple of the vector
   length); register blocks of 4 rows x 4 vectors. acc: add to OUT instead of overwriting it. */
static void mm_SFX(const REAL *IN, int64_t ldi, int64_t K, const REAL *M, int64_t ldm, REAL *OUT, int64_t ldo,
                   int64_t R, int64_t Fo, int acc) {
    const int64_t V = VL_SFX;
    int64_t c = 0;
    if (R == 4) {
        for (; c + 4 * V <= Fo; c += 4 * V) {
            VT_SFX a00 = {0}, a01 = {0}, a02 = {0}, a03 = {0}, a10 = {0}, a11 = {0}, a12 = {0}, a13 = {0};
            VT_SFX a20 = {0}, a21 = {0}, a22 = {0}, a23 = {0}, a30 = {0}, a31 = {0}, a32 = {0}, a33 = {0};
            const REAL *m = M + c;
            for (int64_t k = 0; k < K; ++k, m += ldm) {
                VT_SFX m0 = LD_SFX(m), m1 = LD_SFX(m + V), m2 = LD_SFX(m + 2 * V), m3 = LD_SFX(m + 3 * V);
                REAL x0 = IN[k], x1 = IN[ldi + k], x2 = IN[2 * ldi + k], x3 = IN[3 * ldi + k];
                a00 += x0 * m0; a01 += x0 * m1; a02 += x0 * m2; a03 += x0 * m3;
                a10 += x1 * m0; a11 += x1 * m1; a12 += x1 * m2; a13 += x1 * m3;
                a20 += x2 * m0; a21 += x2 * m1; a22 += x2 * m2; a23 += x2 * m3;
                a30 += x3 * m0; a31 += x3 * m1; a32 += x3 * m2; a33 += x3 * m3;
            }
            REAL *o = OUT + c;
            if (acc) {
                a00 += LD_SFX(o); a01 += LD_SFX(o + V); a02 += LD_SFX(o + 2 * V); a03 += LD_SFX(o + 3 * V);
                a10 += LD_SFX(o + ldo); a11 += LD_SFX(o + ldo + V); a12 += LD_SFX(o + ldo + 2 * V);
                a13 += LD_SFX(o + ldo + 3 * V);
                a20 += LD_SFX(o + 2 * ldo); a21 += LD_SFX(o + 2 * ldo + V); a22 += LD_SFX(o + 2 * ldo + 2 * V);
                a23 += LD_SFX(o + 2 * ldo + 3 * V);
                a30 += LD_SFX(o + 3 * ldo); a31 += LD_SFX(o + 3 * ldo + V); a32 += LD_SFX(o + 3 * ldo + 2 * V);
                a33 += LD_SFX(o + 3 * ldo + 3 * V);
            }
            ST_SFX(o, a00); ST_SFX(o + V, a01); ST_SFX(o + 2 * V, a02); ST_SFX(o + 3 * V, a03); o += ldo;
            ST_SFX(o, a10); ST_SFX(o + V, a11); ST_SFX(o + 2 * V, a12); ST_SFX(o + 3 * V, a13); o += ldo;
            ST_SFX(o, a20); ST_SFX(o + V, a21); ST_SFX(o + 2 * V, a22); ST_SFX(o + 3 * V, a23); o += ldo;
            ST_SFX(o, a30); ST_SFX(o + V, a31); ST_SFX(o + 2 * V, a32); ST_SFX(o + 3 * V, a33);
        }
    }
    for (int64_t t = 0; t < R; ++t)
        for (int64_t cc = c; cc < Fo; cc += V) {
            VT_SFX a = acc ? LD_SFX(OUT + t * ldo + cc) : splat_SFX(0);
            const REAL *m = M + cc, *in = IN + t * ldi;
            for (int64_t k = 0; k < K; ++k, m += ldm) a += in[k] * LD_SFX(m);
            ST_SFX(OUT + t * ldo + cc, a);
        }
}

/* G[o ldg + c] += sum_t A[t lda + o] S[t lds + c] for t < R, o < Fa, c < Fs (a multiple of the vector length):
   blocks of 4 G rows x 4 vectors held in registers over all R rows (G read and written once per call). */
static void outer_SFX(const REAL *A, int64_t lda, int64_t Fa, const REAL *S, int64_t lds, int64_t Fs, REAL *G,
                      int64_t ldg, int64_t R) {
    const int64_t V = VL_SFX;
    int64_t o = 0;
    for (; o + 4 <= Fa; o += 4) {
        int64_t c = 0;
        for (; c + 4 * V <= Fs; c += 4 * V) {
            REAL *g = G + o * ldg + c;
            VT_SFX g00 = LD_SFX(g), g01 = LD_SFX(g + V), g02 = LD_SFX(g + 2 * V), g03 = LD_SFX(g + 3 * V);
            VT_SFX g10 = LD_SFX(g + ldg), g11 = LD_SFX(g + ldg + V), g12 = LD_SFX(g + ldg + 2 * V);
            VT_SFX g13 = LD_SFX(g + ldg + 3 * V);
            VT_SFX g20 = LD_SFX(g + 2 * ldg), g21 = LD_SFX(g + 2 * ldg + V), g22 = LD_SFX(g + 2 * ldg + 2 * V);
            VT_SFX g23 = LD_SFX(g + 2 * ldg + 3 * V);
            VT_SFX g30 = LD_SFX(g + 3 * ldg), g31 = LD_SFX(g + 3 * ldg + V), g32 = LD_SFX(g + 3 * ldg + 2 * V);
            VT_SFX g33 = LD_SFX(g + 3 * ldg + 3 * V);
            const REAL *a = A + o, *s = S + c;
            for (int64_t t = 0; t < R; ++t, a += lda, s += lds) {
                VT_SFX s0 = LD_SFX(s), s1 = LD_SFX(s + V), s2 = LD_SFX(s + 2 * V), s3 = LD_SFX(s + 3 * V);
                REAL a0 = a[0], a1 = a[1], a2 = a[2], a3 = a[3];
                g00 += a0 * s0; g01 += a0 * s1; g02 += a0 * s2; g03 += a0 * s3;
                g10 += a1 * s0; g11 += a1 * s1; g12 += a1 * s2; g13 += a1 * s3;
                g20 += a2 * s0; g21 += a2 * s1; g22 += a2 * s2; g23 += a2 * s3;
                g30 += a3 * s0; g31 += a3 * s1; g32 += a3 * s2; g33 += a3 * s3;
            }
            ST_SFX(g, g00); ST_SFX(g + V, g01); ST_SFX(g + 2 * V, g02); ST_SFX(g + 3 * V, g03); g += ldg;
            ST_SFX(g, g10); ST_SFX(g + V, g11); ST_SFX(g + 2 * V, g12); ST_SFX(g + 3 * V, g13); g += ldg;
            ST_SFX(g, g20); ST_SFX(g + V, g21); ST_SFX(g + 2 * V, g22); ST_SFX(g + 3 * V, g23); g += ldg;
            ST_SFX(g, g30); ST_SFX(g + V, g31); ST_SFX(g + 2 * V, g32); ST_SFX(g + 3 * V, g33);
        }
        for (; c < Fs; c += V)
            for (int64_t q = 0; q < 4; ++q) {
                VT_SFX gv = LD_SFX(G + (o + q) * ldg + c);
                for (int64_t t = 0; t < R; ++t) gv += A[t * lda + o + q] * LD_SFX(S + t * lds + c);
                ST_SFX(G + (o + q) * ldg + c, gv);
            }
    }
    for (; o < Fa; ++o)
        for (int64_t c = 0; c < Fs; c += V) {
            VT_SFX gv = LD_SFX(G + o * ldg + c);
            for (int64_t t = 0; t < R; ++t) gv += A[t * lda + o] * LD_SFX(S + t * lds + c);
            ST_SFX(G + o * ldg + c, gv);
        }
}

static void tile_mm_SFX(const REAL *IN, const REAL *M, REAL *OUT, int64_t R, int64_t F) {
    mm_SFX(IN, F, F, M, F, OUT, F, R, F, 0);
}

/* V += sum_t T[t ld + c] for t < R, c < F */
static void colsum_SFX(const REAL *T, int64_t ld, int64_t R, int64_t F, REAL *Vout) {
    for (int64_t c = 0; c < F; c += VL_SFX) {
        VT_SFX a = LD_SFX(Vout + c);
        for (int64_t t = 0; t < R; ++t) a += LD_SFX(T + t * ld + c);
        ST_SFX(Vout + c, a);
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

/* Forward of a whole layer. ip: B, N, F, D, NA, update, has_vel, residual.
   pp: H [N B][F], X [N B][D], PA [E][NA] or NULL, WN [F][2F], WP [1 + NA][F], bn, W2T [F][F], b2, Wc1T [F][F], bc1,
   wc2, VEL [N B][D] or NULL, Wv1T [F][F], bv1, wv2, bv2 [1], Wh1T [2F][F], bh1, Wh2T [F][F], bh2 |
   NODES [N B][2F] (scratch), PRE, Z2, Z3 [E][F], PHI [E], AGG [N B][F], ZV [N B][F], ZU [N B][F], XNEW [N B][D],
   HNEW [N B][F], TRANS [N B][D] (scratch). Edge row r = (i (N-1) + k) B + b: receiver i, sender j = k + (k >= i). */
static void *fwd_SFX(void *arg) {
    job_SFX *J = (job_SFX *)arg;
    const int64_t *ip = J->ip;
    void **pp = J->pp;
    const int64_t B = ip[0], N = ip[1], F = ip[2], D = ip[3], NA = ip[4], update = ip[5], has_vel = ip[6];
    const int64_t residual = ip[7], K = N - 1, V = VL_SFX;
    const REAL scale = (REAL)J->scale;
    const REAL *H = pp[0], *X = pp[1], *PA = pp[2], *WN = pp[3], *WP = pp[4], *bn = pp[5], *W2T = pp[6];
    const REAL *b2 = pp[7], *Wc1T = pp[8], *bc1 = pp[9], *wc2 = pp[10], *VEL = pp[11], *Wv1T = pp[12];
    const REAL *bv1 = pp[13], *wv2 = pp[14], *bv2 = pp[15], *Wh1T = pp[16], *bh1 = pp[17], *Wh2T = pp[18];
    const REAL *bh2 = pp[19];
    REAL *NODES = pp[20], *PRE = pp[21], *Z2 = pp[22], *Z3 = pp[23], *PHI = pp[24], *AGG = pp[25], *ZV = pp[26];
    REAL *ZU = pp[27], *XNEW = pp[28], *HNEW = pp[29], *TRANS = pp[30];
    REAL *buf = aligned_buffer_SFX(8 * F + 4 * D);
    if (!buf) { J->status = 1; return NULL; }
    REAL *act = buf + 4 * F, *diff = act + 4 * F;
    for (;;) {
        const int64_t g0 = __atomic_fetch_add(J->next, UNIT_SFX, __ATOMIC_RELAXED);
        if (g0 >= B) break;
        const int64_t g1 = g0 + UNIT_SFX < B ? g0 + UNIT_SFX : B;
        for (int64_t i = 0; i < N; ++i)  /* node terms of the unit's nodes: W_i h | W_j h, and phi_v's first map */
            for (int64_t b0 = g0; b0 < g1; b0 += 4) {
                const int64_t R = g1 - b0 < 4 ? g1 - b0 : 4, r0 = i * B + b0;
                mm_SFX(H + r0 * F, F, F, WN, 2 * F, NODES + r0 * 2 * F, 2 * F, R, 2 * F, 0);
                if (has_vel) {
                    mm_SFX(H + r0 * F, F, F, Wv1T, F, buf, F, R, F, 0);
                    for (int64_t t = 0; t < R; ++t)
                        for (int64_t v = 0; v < F; v += V) ST_SFX(ZV + (r0 + t) * F + v, LD_SFX(buf + t * F + v) + LD_SFX(bv1 + v));
                }
                for (int64_t t = 0; t < R; ++t) {
                    for (int64_t d = 0; d < D; ++d) TRANS[(r0 + t) * D + d] = 0;
                    if (update)
                        for (int64_t v = 0; v < F; v += V) ST_SFX(AGG + (r0 + t) * F + v, splat_SFX(0));
                }
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
        for (int64_t i = 0; i < N; ++i)  /* positions, and the node update */
            for (int64_t b0 = g0; b0 < g1; b0 += 4) {
                const int64_t R = g1 - b0 < 4 ? g1 - b0 : 4, r0 = i * B + b0;
                for (int64_t t = 0; t < R; ++t) {
                    const int64_t nr = r0 + t;
                    REAL sv = 0;
                    if (has_vel) {
                        VT_SFX acc = {0};
                        for (int64_t v = 0; v < F; v += V) {
                            VT_SFX s, dd;
                            vsilu_SFX(LD_SFX(ZV + nr * F + v), &s, &dd);
                            acc += s * LD_SFX(wv2 + v);
                        }
                        sv = hsum_SFX(acc) + bv2[0];
                    }
                    for (int64_t d = 0; d < D; ++d)
                        XNEW[nr * D + d] = X[nr * D + d] + scale * TRANS[nr * D + d] + (has_vel ? sv * VEL[nr * D + d] : 0);
                }
                if (update) {
                    mm_SFX(H + r0 * F, F, F, Wh1T, F, buf, F, R, F, 0);
                    mm_SFX(AGG + r0 * F, F, F, Wh1T + F * F, F, buf, F, R, F, 1);
                    for (int64_t t = 0; t < R; ++t)
                        for (int64_t v = 0; v < F; v += V) {
                            VT_SFX z = LD_SFX(buf + t * F + v) + LD_SFX(bh1 + v), s, dd;
                            vsilu_SFX(z, &s, &dd);
                            ST_SFX(ZU + (r0 + t) * F + v, z);
                            ST_SFX(act + t * F + v, s);
                        }
                    mm_SFX(act, F, F, Wh2T, F, buf, F, R, F, 0);
                    for (int64_t t = 0; t < R; ++t)
                        for (int64_t v = 0; v < F; v += V) {
                            VT_SFX o = LD_SFX(buf + t * F + v) + LD_SFX(bh2 + v);
                            if (residual) o += LD_SFX(H + (r0 + t) * F + v);
                            ST_SFX(HNEW + (r0 + t) * F + v, o);
                        }
                }
            }
    }
    free(buf);
    return NULL;
}

/* Backward of a whole layer. ip: B, N, F, D, NA, nparts, has_vel, residual, need_h, need_x.
   pp: GX [N B][D] or NULL, GH [N B][F] or NULL, H, X, PA or NULL, (unused), WNT [2F][F], WP, wc2, Wc1 [F][F],
   W2 [F][F], PRE, Z2, Z3, PHI, VEL or NULL, ZV, wv2, Wv1 [F][F], AGG, ZU, Wh1 [F][2F], Wh2 [F][F] |
   GHIN [N B][F] (or NULL), GXIN [N B][D] (or NULL), GAGG [N B][F] (scratch), GNT [N B][2F] (scratch),
   PART [units][nparts], then the summed weight gradients (reduce_parts order). Rows of a unit that share a node
   i (nodes) or a pair (i, k) (edges) are contiguous: they are taken as slabs of up to UNIT rows, products in tiles
   of 4 rows, weight gradients over the whole slab. */
static void *bwd_SFX(void *arg) {
    job_SFX *J = (job_SFX *)arg;
    const int64_t *ip = J->ip;
    void **pp = J->pp;
    const int64_t B = ip[0], N = ip[1], F = ip[2], D = ip[3], NA = ip[4], nparts = ip[5], has_vel = ip[6];
    const int64_t residual = ip[7], K = N - 1, V = VL_SFX, U = UNIT_SFX;
    const REAL scale = (REAL)J->scale;
    const REAL *GX = pp[0], *GH = pp[1], *H = pp[2], *X = pp[3], *PA = pp[4], *WNT = pp[6];
    const REAL *WP = pp[7], *wc2 = pp[8], *Wc1 = pp[9], *W2 = pp[10], *PRE = pp[11], *Z2 = pp[12], *Z3 = pp[13];
    const REAL *PHI = pp[14], *VEL = pp[15], *ZV = pp[16], *wv2 = pp[17], *Wv1 = pp[18], *AGG = pp[19];
    const REAL *ZU = pp[20], *Wh1 = pp[21], *Wh2 = pp[22];
    REAL *GHIN = pp[23], *GXIN = pp[24], *GAGG = pp[25], *GNT = pp[26], *PART = pp[27];
    REAL *buf = aligned_buffer_SFX(4 * F + 7 * U * F + U * D);
    if (!buf) { J->status = 1; return NULL; }
    REAL *SA = buf + 4 * F, *SB = SA + U * F, *SC = SB + U * F, *SD = SC + U * F, *SE = SD + U * F;
    REAL *SF = SE + U * F, *GHS = SF + U * F, *diff = GHS + U * F;
    for (;;) {
        const int64_t g0 = __atomic_fetch_add(J->next, U, __ATOMIC_RELAXED);
        if (g0 >= B) break;
        const int64_t g1 = g0 + U < B ? g0 + U : B, Rt = g1 - g0;
        REAL *part = PART + (g0 / U) * nparts;
        REAL *p_wn = part, *p_wc1 = p_wn + 2 * F * F, *p_w2 = p_wc1 + F * F, *p_wv1 = p_w2 + F * F;
        REAL *p_wh1 = p_wv1 + F * F, *p_wh2 = p_wh1 + 2 * F * F, *p_pre = p_wh2 + F * F, *p_pair = p_pre + F;
        REAL *p_z2 = p_pair + (1 + NA) * F, *p_z3 = p_z2 + F, *p_phi = p_z3 + F, *p_bv1 = p_phi + F;
        REAL *p_wv2 = p_bv1 + F, *p_bh1 = p_wv2 + F, *p_bh2 = p_bh1 + F, *p_bv2 = p_bh2 + F;
        for (int64_t q = 0; q < nparts; ++q) part[q] = 0;
        for (int64_t i = 0; i < N; ++i) {  /* node update and velocity term: g_agg and g_h's first part */
            const int64_t r0 = i * B + g0;
            for (int64_t v = 0; v < Rt * F; v += V) ST_SFX(GHS + v, splat_SFX(0));
            if (GH) {
                const REAL *gh = GH + r0 * F;
                colsum_SFX(gh, F, Rt, F, p_bh2);
                for (int64_t t = 0; t < Rt; ++t)
                    for (int64_t v = 0; v < F; v += V) {
                        VT_SFX s, dd;
                        vsilu_SFX(LD_SFX(ZU + (r0 + t) * F + v), &s, &dd);
                        ST_SFX(SB + t * F + v, s);
                        ST_SFX(SC + t * F + v, dd);
                    }
                outer_SFX(gh, F, F, SB, F, F, p_wh2, F, Rt);
                for (int64_t st = 0; st < Rt; st += 4) {
                    const int64_t R = Rt - st < 4 ? Rt - st : 4;
                    mm_SFX(gh + st * F, F, F, Wh2, F, SA + st * F, F, R, F, 0);
                }
                for (int64_t v = 0; v < Rt * F; v += V) ST_SFX(SA + v, LD_SFX(SA + v) * LD_SFX(SC + v));
                colsum_SFX(SA, F, Rt, F, p_bh1);
                outer_SFX(SA, F, F, H + r0 * F, F, F, p_wh1, 2 * F, Rt);
                outer_SFX(SA, F, F, AGG + r0 * F, F, F, p_wh1 + F, 2 * F, Rt);
                for (int64_t st = 0; st < Rt; st += 4) {
                    const int64_t R = Rt - st < 4 ? Rt - st : 4;
                    mm_SFX(SA + st * F, F, F, Wh1, 2 * F, GHS + st * F, F, R, F, 0);          /* g_h via [h, agg] */
                    mm_SFX(SA + st * F, F, F, Wh1 + F, 2 * F, GAGG + (r0 + st) * F, F, R, F, 0); /* g_agg */
                }
                if (residual)
                    for (int64_t v = 0; v < Rt * F; v += V) ST_SFX(GHS + v, LD_SFX(GHS + v) + LD_SFX(gh + v));
            }
            if (GX && has_vel) {
                for (int64_t t = 0; t < Rt; ++t) {
                    const int64_t nr = r0 + t;
                    REAL gsv = 0;
                    for (int64_t d = 0; d < D; ++d) gsv += VEL[nr * D + d] * GX[nr * D + d];
                    p_bv2[0] += gsv;
                    for (int64_t v = 0; v < F; v += V) {
                        VT_SFX s, dd;
                        vsilu_SFX(LD_SFX(ZV + nr * F + v), &s, &dd);
                        ST_SFX(p_wv2 + v, LD_SFX(p_wv2 + v) + gsv * s);
                        ST_SFX(SA + t * F + v, gsv * LD_SFX(wv2 + v) * dd);
                    }
                }
                colsum_SFX(SA, F, Rt, F, p_bv1);
                outer_SFX(SA, F, F, H + r0 * F, F, F, p_wv1, F, Rt);
                for (int64_t st = 0; st < Rt; st += 4) {
                    const int64_t R = Rt - st < 4 ? Rt - st : 4;
                    mm_SFX(SA + st * F, F, F, Wv1, F, GHS + st * F, F, R, F, 1);
                }
            }
            for (int64_t t = 0; t < Rt; ++t) {
                const int64_t nr = r0 + t;
                if (GHIN)
                    for (int64_t v = 0; v < F; v += V) ST_SFX(GHIN + nr * F + v, LD_SFX(GHS + t * F + v));
                for (int64_t v = 0; v < 2 * F; v += V) ST_SFX(GNT + nr * 2 * F + v, splat_SFX(0));
                if (GXIN)
                    for (int64_t d = 0; d < D; ++d) GXIN[nr * D + d] = GX ? GX[nr * D + d] : 0;
            }
        }
        for (int64_t i = 0; i < N; ++i)  /* the edges, a slab per (i, k) */
            for (int64_t k = 0; k < K; ++k) {
                const int64_t j = k + (k >= i), t0 = (i * K + k) * B + g0;
                for (int64_t t = 0; t < Rt; ++t) {  /* g_z3 = g_phi w_c2 silu'(z3); sums of g_phi s3; m, silu'(z2) */
                    const int64_t r = t0 + t, ni = i * B + g0 + t, nj = j * B + g0 + t;
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
                        ST_SFX(SA + t * F + v, g * LD_SFX(wc2 + v) * dd);
                        ST_SFX(p_phi + v, LD_SFX(p_phi + v) + g * s);
                        vsilu_SFX(LD_SFX(Z2 + r * F + v), &s, &dd);
                        ST_SFX(SB + t * F + v, s);
                        ST_SFX(SC + t * F + v, dd);
                    }
                }
                colsum_SFX(SA, F, Rt, F, p_z3);
                outer_SFX(SA, F, F, SB, F, F, p_wc1, F, Rt);
                for (int64_t st = 0; st < Rt; st += 4) {  /* g_z2 = (g_z3 Wc1 + g_agg_i) silu'(z2); s1, silu'(pre) */
                    const int64_t R = Rt - st < 4 ? Rt - st : 4;
                    tile_mm_SFX(SA + st * F, Wc1, buf, R, F);
                    for (int64_t t = st; t < st + R; ++t) {
                        const int64_t r = t0 + t;
                        const REAL *ga = GH ? GAGG + (i * B + g0 + t) * F : NULL;
                        for (int64_t v = 0; v < F; v += V) {
                            VT_SFX gm = LD_SFX(buf + (t - st) * F + v);
                            if (ga) gm += LD_SFX(ga + v);
                            ST_SFX(SD + t * F + v, gm * LD_SFX(SC + t * F + v));
                            VT_SFX s, dd;
                            vsilu_SFX(LD_SFX(PRE + r * F + v), &s, &dd);
                            ST_SFX(SE + t * F + v, s);
                            ST_SFX(SF + t * F + v, dd);
                        }
                    }
                }
                colsum_SFX(SD, F, Rt, F, p_z2);
                outer_SFX(SD, F, F, SE, F, F, p_w2, F, Rt);
                for (int64_t st = 0; st < Rt; st += 4) {  /* g_pre = g_z2 W2 silu'(pre): node sums, weights, r_ij */
                    const int64_t R = Rt - st < 4 ? Rt - st : 4;
                    tile_mm_SFX(SD + st * F, W2, buf, R, F);
                    for (int64_t t = st; t < st + R; ++t) {
                        const int64_t r = t0 + t, ni = i * B + g0 + t, nj = j * B + g0 + t;
                        REAL r2 = 0;
                        for (int64_t d = 0; d < D; ++d) r2 += diff[t * D + d] * diff[t * D + d];
                        const REAL *p = PA ? PA + r * NA : NULL;
                        REAL *gi = GNT + ni * 2 * F, *gj = GNT + nj * 2 * F + F;
                        VT_SFX dot = {0};
                        for (int64_t v = 0; v < F; v += V) {
                            VT_SFX gp = LD_SFX(buf + (t - st) * F + v) * LD_SFX(SF + t * F + v);
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
        for (int64_t i = 0; i < N; ++i) {  /* the node terms W_i h | W_j h: their weight and h */
            const int64_t r0 = i * B + g0;
            outer_SFX(H + r0 * F, F, F, GNT + r0 * 2 * F, 2 * F, 2 * F, p_wn, 2 * F, Rt);
            if (GHIN)
                for (int64_t st = 0; st < Rt; st += 4) {
                    const int64_t R = Rt - st < 4 ? Rt - st : 4;
                    mm_SFX(GNT + (r0 + st) * 2 * F, 2 * F, 2 * F, WNT, F, GHIN + (r0 + st) * F, F, R, F, 1);
                }
        }
    }
    free(buf);
    return NULL;
}

/* backward: the per-unit sums of PART added up in unit order into PART's first row, then copied to the outputs
   pp[28 ...] in the order of the parts: g_wn (2 F F), g_wc1, g_w2, g_wv1 (F F), g_wh1 (2 F F), g_wh2 (F F), g_bn (F),
   g_wp ((1 + NA) F), g_b2, g_bc1, g_wc2, g_bv1, g_wv2, g_bh1, g_bh2 (F), g_bv2 (1) */
static void reduce_parts_SFX(const int64_t *ip, void **pp) {
    const int64_t B = ip[0], F = ip[2], NA = ip[4], nparts = ip[5], units = (B + UNIT_SFX - 1) / UNIT_SFX;
    REAL *PART = pp[27];
    for (int64_t u = 1; u < units; ++u)
        for (int64_t q = 0; q < nparts; ++q) PART[q] += PART[u * nparts + q];
    const int64_t sizes[16] = {2 * F * F, F * F, F * F, F * F, 2 * F * F, F * F, F, (1 + NA) * F, F, F, F, F, F, F, F, 1};
    const REAL *src = PART;
    for (int o = 0; o < 16; ++o) {
        REAL *dst = pp[28 + o];
        if (dst)
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


def layer_forward(h, x, pair_attr, vel, params, n: int, scale: float, residual: bool, update: bool) -> dict:
    """A whole EGCL layer on ``B`` complete graphs of ``n`` nodes (node-major rows, :func:`egcl_dense_fused`).

    Parameters
    ----------
    h : Tensor [n B, F]; x : Tensor [n B, D]
        Node features and positions.
    pair_attr : Tensor [E, A] or None
        Invariant pair attributes per edge row, ``E = n (n - 1) B``.
    vel : Tensor [n B, D] or None
        Velocities (the layer's ``phi_v`` term; None: no velocity term).
    params : sequence of 16 tensors
        ``edge_in_nodes [F, 2F], edge_in_bias, edge_in_pairs [1 + A, F], edge_out.weight, .bias,
        coord_mlp.0.weight, .bias, coord_mlp.2.weight [1, F]``, ``coord_mlp_vel`` (``0.weight, 0.bias,
        2.weight, 2.bias``; None without ``vel``), ``node_mlp`` (``0.weight [F, 2F], 0.bias, 2.weight, 2.bias``).
    scale : float
        Coordinate aggregation (``1 / (n - 1)`` for the mean).
    residual, update : bool
        ``h + phi_h``; compute the node update at all.

    Returns
    -------
    dict
        ``x`` [n B, D], ``h`` [n B, F] (None unless ``update``), and what :func:`layer_backward` needs.
    """
    wn, bn, wp, w2, b2, wc1, bc1, wc2, wv1, bv1, wv2, bv2, wh1, bh1, wh2, bh2 = params
    rows, f = h.shape
    e = rows * (n - 1)
    d = x.shape[1]
    new = h.new_empty
    has_vel = vel is not None
    out = {"pre": new(e, f), "z2": new(e, f), "z3": new(e, f), "phi": new(e), "x": new(rows, d)}
    out["agg"] = new(rows, f) if update else None
    out["zu"] = new(rows, f) if update else None
    out["h"] = new(rows, f) if update else None
    out["zv"] = new(rows, f) if has_vel else None
    if rows:
        c = _contiguous
        ins = [c(h), c(x), c(pair_attr), c(wn), c(wp), bn, w2.t().contiguous(), b2, wc1.t().contiguous(), bc1, c(wc2)]
        ins += [c(vel)] + ([wv1.t().contiguous(), bv1, c(wv2), bv2] if has_vel else [None] * 4)
        ins += [wh1.t().contiguous(), bh1, wh2.t().contiguous(), bh2]
        outs = [new(rows, 2 * f)] + [out[k] for k in ("pre", "z2", "z3", "phi", "agg", "zv", "zu", "x", "h")]
        outs.append(new(rows, d))
        na = 0 if pair_attr is None else pair_attr.shape[1]
        ints = (rows // n, n, f, d, na, int(update), int(has_vel), int(residual))
        _call(False, h.dtype, ints, ins + outs, scale)
    return out


def _contiguous(t):
    return None if t is None else t.contiguous()


#: the weight gradients :func:`layer_backward` returns, in the kernel's order, and their positions in ``params``
_PARTS = (
    ("wn", 0),
    ("wc1", 5),
    ("w2", 3),
    ("wv1", 8),
    ("wh1", 12),
    ("wh2", 14),
    ("bn", 1),
    ("wp", 2),
    ("b2", 4),
    ("bc1", 6),
    ("wc2", 7),
    ("bv1", 9),
    ("wv2", 10),
    ("bh1", 13),
    ("bh2", 15),
    ("bv2", 11),
)


def layer_backward(
    saved: dict,
    g_x,
    g_h,
    h,
    x,
    pair_attr,
    vel,
    params,
    n: int,
    scale: float,
    residual: bool,
    need_h: bool,
    need_x: bool,
):
    """Backward of :func:`layer_forward` (``saved``: its outputs) for the gradients ``g_x [n B, D]`` and
    ``g_h [n B, F]`` of its outputs (either may be None: zero).

    Returns
    -------
    (g_h_in, g_x_in, grads)
        The gradients of ``h`` and ``x`` (None unless ``need_h`` / ``need_x``; ``g_x_in`` includes the identity
        path), and ``grads``: the gradient of each of the 16 parameters by position (None for the velocity
        term's without ``vel``; the node update's and ``phi_x``'s / ``phi_v``'s are None when ``g_h`` / ``g_x`` is None).
    """
    wn, bn, wp, w2, b2, wc1, bc1, wc2, wv1, bv1, wv2, bv2, wh1, bh1, wh2, bh2 = params
    rows, f = h.shape
    d = x.shape[1]
    na = 0 if pair_attr is None else pair_attr.shape[1]
    b = rows // n
    has_vel = vel is not None
    new = h.new_empty
    grads = [None] * 16
    for name, i in _PARTS:
        if params[i] is not None:
            grads[i] = new(params[i].shape)
    g_hin = new(rows, f) if need_h else None
    g_xin = new(rows, d) if need_x else None
    if rows:
        nparts = 8 * f * f + (10 + na) * f + 1
        part = new((b + _UNIT - 1) // _UNIT, nparts)
        c = _contiguous
        ins = [c(g_x), c(g_h), c(h), c(x), c(pair_attr), None, wn.t().contiguous(), c(wp), c(wc2), c(wc1), c(w2)]
        ins += [saved["pre"], saved["z2"], saved["z3"], saved["phi"], c(vel), saved["zv"]]
        ins += [c(wv2), c(wv1)] if has_vel else [None, None]
        ins += [saved["agg"], saved["zu"], c(wh1), c(wh2)]
        outs = [g_hin, g_xin, new(rows, f), new(rows, 2 * f), part] + [grads[i] for _, i in _PARTS]
        ints = (b, n, f, d, na, nparts, int(has_vel), int(residual), int(need_h), int(need_x))
        _call(True, h.dtype, ints, ins + outs, scale)
    else:
        for g in grads:
            if g is not None:
                g.zero_()
    if g_h is None:  # no gradient reached the node update, nor phi_x's when none reached the positions
        grads[12:16] = [None] * 4
    if g_x is None:
        grads[5:12] = [None] * 7
    return g_hin, g_xin, grads
