"""Bases of symmetric equivariant tensors (generalised Clebsch-Gordan coefficients).

For per-channel input irreps ``V = ir_1 + ir_2 + ...`` (dimension ``D``),
an output irrep ``ir_out`` and an order ``nu``, this module computes an
orthonormal basis ``U_k [d_out, D, ..., D]`` (``nu`` input slots) of the
space of tensors that are

- equivariant: ``D_out(R) U_k = U_k (D_V(R) x ... x D_V(R))`` for all
  ``R`` in O(3) (parity included), and
- symmetric in the ``nu`` input slots.

These are the "generalised CG coefficients" of MACE's product basis
(Batatia et al., NeurIPS 2022, eq. 10; Drautz 2019, ACE): contracting
``U_k`` with ``x (x) ... (x) x`` gives the ``nu``-body features ``B``.
Only the symmetric part matters there, since ``x (x) ... (x) x`` is
symmetric.

Construction (our own, from ``wigner_3j``): couple one slot at a time,
``T_{k+1} = C(L, l_j, L') . (T_k (x) e_j)`` over intermediate irreps
``(L, p)``; after each step symmetrise over the slots coupled so far
and replace the tensors of each ``(L, p)`` by an orthonormal basis of
their span (SVD). Symmetrising early is exact, because
``Sym_{k+1} = Sym_{k+1} . (Sym_k (x) 1)``, and keeps the candidate sets
small. Intermediate ``L`` that cannot reach ``l_out`` with the remaining
slots are dropped. All arithmetic is float64 numpy; results are cached.
"""

from __future__ import annotations

import functools
import itertools
import math

import numpy as np

from ..o3 import Irrep, Irreps, wigner_3j_np


def _orthonormal_rows(M: np.ndarray, rtol: float = 1e-9) -> np.ndarray:
    """Orthonormal basis (rows) of the row span of ``M [n, m]`` with a deterministic sign."""
    if M.shape[0] == 0:
        return M
    # Gram route: eigen-decompose M M^T (n x n, small) instead of SVD of the wide matrix
    G = M @ M.T
    w, V = np.linalg.eigh(G)
    keep = w > max(rtol * w.max(), 1e-12)
    if not keep.any():
        return M[:0]
    w, V = w[keep][::-1], V[:, keep][:, ::-1]
    B = (V.T @ M) / np.sqrt(w)[:, None]
    # re-orthonormalise (one QR pass) for accuracy
    Q, _ = np.linalg.qr(B.T)
    B = Q.T
    # deterministic sign: largest-magnitude entry positive
    idx = np.abs(B).argmax(1)
    s = np.sign(B[np.arange(len(B)), idx])
    return B * s[:, None]


def _symmetrize(T: np.ndarray, k: int) -> np.ndarray:
    """Average of ``T [n, d, D x k]`` over all permutations of its last ``k`` axes."""
    if k == 1:
        return T
    base = (0, 1)
    acc = np.zeros_like(T)
    perms = list(itertools.permutations(range(k)))
    for p in perms:
        acc += T.transpose(base + tuple(2 + i for i in p))
    return acc / len(perms)


def _blocks(irreps: Irreps):
    out, off = [], 0
    for mul, ir in irreps:
        for _ in range(mul):
            out.append((ir, off))
            off += ir.dim
    return out, off


@functools.cache
def _basis_cached(irreps_in: str, ir_out: str, nu: int) -> np.ndarray:
    irreps = Irreps(irreps_in)
    ir_out = Irrep(ir_out)
    blocks, D = _blocks(irreps)
    lmax = max(ir.l for ir, _ in blocks)
    # stage 1: one tensor [d, D] per input block
    stage: dict = {}
    for ir, off in blocks:
        E = np.zeros((ir.dim, D))
        E[:, off : off + ir.dim] = np.eye(ir.dim)
        stage.setdefault(ir, []).append(E)
    stage = {ir: _orthonormal_rows(np.stack(v).reshape(len(v), -1)).reshape((-1, ir.dim, D)) for ir, v in stage.items()}
    for k in range(1, nu):
        remaining = nu - k - 1
        new: dict = {}
        for ir_a, Ts in stage.items():
            for ir_b, off in blocks:
                p = ir_a.p * ir_b.p
                for L in range(abs(ir_a.l - ir_b.l), ir_a.l + ir_b.l + 1):
                    if abs(L - ir_out.l) > remaining * lmax:
                        continue
                    if remaining == 0 and (L != ir_out.l or p != ir_out.p):
                        continue
                    C = wigner_3j_np(ir_a.l, ir_b.l, L)  # [da, db, dL]
                    # T_new[n, c, ..., i] = sum_ab C[a,b,c] T[n, a, ...] E_b[b, i]
                    Tn = np.einsum("abc,na...->nc...b", C, Ts)
                    full = np.zeros(Tn.shape[:-1] + (D,))
                    full[..., off : off + ir_b.dim] = Tn
                    new.setdefault(Irrep(L, p), []).append(full)
        stage = {}
        for ir, lst in new.items():
            T = np.concatenate(lst, 0)
            T = _symmetrize(T, k + 1)
            n = T.shape[0]
            B = _orthonormal_rows(T.reshape(n, -1))
            if len(B):
                stage[ir] = B.reshape((-1,) + T.shape[1:])
    if ir_out not in stage:
        return np.zeros((0, ir_out.dim) + (D,) * nu)
    U = stage[ir_out]
    if nu == 1:
        U = _symmetrize(U, 1)
    U = U.copy()
    U[np.abs(U) < 1e-13] = 0.0
    U.setflags(write=False)
    return U


def symmetric_contraction_basis(irreps_in, ir_out, nu: int) -> np.ndarray:
    r"""Orthonormal basis of symmetric O(3)-equivariant maps ``Sym^nu(V) -> ir_out``.

    Parameters
    ----------
    irreps_in : Irreps or str
        Per-channel input irreps ``V`` (e.g. ``"0e+1o+2e+3o"``), dimension ``D``.
    ir_out : Irrep or str
        Output irrep (dimension ``d``).
    nu : int
        Correlation order (number of input slots), ``>= 1``.

    Returns
    -------
    numpy.ndarray, float64, ``[K, d, D, ..., D]`` (``nu`` trailing axes)
        ``K`` basis tensors, orthonormal in the Frobenius inner product
        (``sum U_k U_k' = delta_kk'``), each symmetric in its ``nu`` input
        axes and equivariant: ``einsum(U_k, D_V(R) x nu) = D_out(R) U_k``
        (improper ``R`` act with parities). ``K = 0`` if no such map exists.
        Read-only, cached.

    Raises
    ------
    ValueError
        If ``nu < 1`` or the irreps are invalid.
    """
    if not isinstance(nu, int) or nu < 1:
        raise ValueError(f"correlation order nu must be an int >= 1, got {nu!r}")
    return _basis_cached(str(Irreps(irreps_in)), str(Irrep(ir_out)), nu)


def sorted_monomials(D: int, nu: int) -> np.ndarray:
    """All ``nu``-tuples ``i_1 <= ... <= i_nu`` of ``range(D)`` as ``[M, nu]`` (lexicographic)."""
    return np.array(list(itertools.combinations_with_replacement(range(D), nu)), dtype=np.int64).reshape(-1, nu)


def multiplicities(tuples: np.ndarray) -> np.ndarray:
    """Number of distinct orderings of each sorted tuple: ``nu! / prod(count!)``."""
    out = np.empty(len(tuples))
    for r, t in enumerate(tuples):
        _, counts = np.unique(t, return_counts=True)
        out[r] = math.factorial(len(t)) / np.prod([math.factorial(c) for c in counts])
    return out
