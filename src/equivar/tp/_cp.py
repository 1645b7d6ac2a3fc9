"""``cp`` backend: CP-decomposed tensor products (Tensor Decomposition Networks).

Source: Fu, Kucukbenli, Yu, ..., Ji et al., "Tensor Decomposition Networks for
Fast Machine Learning Interatomic Potential Computations" (2025, arXiv
2507.01131). A channelwise tensor product is, for every channel, a bilinear
map given by a three-way coefficient tensor ``T [D1, D2, Do]`` (the
Clebsch-Gordan blocks of all paths, times their path weights, placed in
the irrep rows of the two inputs and the output). A rank-``R`` CP
decomposition ``T ~ sum_r a_r (x) b_r (x) c_r`` turns the product into three
dense matrix products and an elementwise product::

    out[z, u] = ((x1[z, u] @ A) * (x2[z] @ B) * w[z, u, r]) @ C^T

with ``A [D1, R]``, ``B [D2, R]``, ``C [Do, R]``.

Two weight forms:

- ``path_weight_sharing=False`` (default): each path is decomposed on its
  own (rank ``min(rank, exact rank)`` per path), so the per-path weights of
  the ``TensorProduct`` (e3nn's layout) act in the rank space:
  ``w[z, u, r] = W_path(r)[z, u]``. A drop-in replacement.
- ``path_weight_sharing=True`` (TDN's path-weight sharing): one weight per
  channel shared by all paths (``weight_numel = mul``), and the *whole*
  tensor ``sum_paths path_weight * C_path`` is decomposed at rank ``rank``.

``rank='exact'`` uses an exact decomposition: unit vectors along the two
modes with the fewest non-zero fibres times the fibres themselves (rank =
number of non-zero fibres). An integer rank at least that large is exact
too; a smaller one is fitted by alternating least squares (ALS) in float64
from a deterministic start (the largest fibres) plus seeded noise, and the
factors are cached on disk (``$EQUIVAR_CACHE`` or ``~/.cache/equivar``,
``cp/<sha256>.npz``, written atomically). Approximate factors break
equivariance slightly; :func:`equivar.bench.cp.cp_error_table` reports the approximation and
the measured equivariance error for each rank.
"""

from __future__ import annotations

import hashlib
import math
import os
import tempfile
from collections.abc import Sequence

import numpy as np
import torch

from ..o3 import Irreps, wigner_3j_np
from ._constants import ConstantsModule
from ._instructions import weight_offsets

_CACHE_VERSION = "cp-als-v1"


# ----------------------------------------------------------------------------
# CP decompositions (float64, numpy)
# ----------------------------------------------------------------------------
def exact_cp(T: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """An exact CP decomposition ``(A [I, R], B [J, R], C [K, R])`` of ``T [I, J, K]``.

    Unit vectors along the two modes with the fewest non-zero fibres, the
    fibre itself along the third; ``R`` = number of non-zero fibres.
    Deterministic (fibres in lexicographic order).
    """
    I, J, K = T.shape
    nz = np.abs(T) > 0
    counts = {"k": int(nz.any(2).sum()), "j": int(nz.any(1).sum()), "i": int(nz.any(0).sum())}
    free = min(counts, key=lambda m: (counts[m], "kji".index(m)))
    if free == "k":  # fibres T[i, j, :]
        idx = np.argwhere(nz.any(2))
        A = np.eye(I)[:, idx[:, 0]]
        B = np.eye(J)[:, idx[:, 1]]
        C = T[idx[:, 0], idx[:, 1], :].T
    elif free == "j":  # fibres T[i, :, k]
        idx = np.argwhere(nz.any(1))
        A = np.eye(I)[:, idx[:, 0]]
        C = np.eye(K)[:, idx[:, 1]]
        B = T[idx[:, 0], :, idx[:, 1]].T
    else:  # fibres T[:, j, k]
        idx = np.argwhere(nz.any(0))
        B = np.eye(J)[:, idx[:, 0]]
        C = np.eye(K)[:, idx[:, 1]]
        A = T[:, idx[:, 0], idx[:, 1]]
    return A, B, C


def cp_reconstruct(A: np.ndarray, B: np.ndarray, C: np.ndarray) -> np.ndarray:
    """``sum_r A[:, r] (x) B[:, r] (x) C[:, r]``."""
    return np.einsum("ir,jr,kr->ijk", A, B, C)


def _khatri_rao(X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    return (X[:, None, :] * Y[None, :, :]).reshape(-1, X.shape[1])


def cp_als(T: np.ndarray, rank: int, seed: int = 0, n_iter: int = 1000, tol: float = 1e-13):
    """Rank-``rank`` CP decomposition of ``T`` by alternating least squares (float64).

    Start: the ``rank`` largest fibres of :func:`exact_cp` (so the start is
    exact when ``rank`` is at least the number of fibres) plus seeded noise of
    relative size 1e-2; stops after ``n_iter`` sweeps or when the relative
    error changes by less than ``tol``. Returns ``(A, B, C, rel_error)``.
    """
    T = np.asarray(T, dtype=np.float64)
    nrm = np.linalg.norm(T)
    if nrm == 0 or rank <= 0:
        I, J, K = T.shape
        return (
            np.zeros((I, max(rank, 0))),
            np.zeros((J, max(rank, 0))),
            np.zeros((K, max(rank, 0))),
            0.0 if nrm == 0 else 1.0,
        )
    A0, B0, C0 = exact_cp(T)
    if rank >= A0.shape[1]:
        return A0, B0, C0, float(np.linalg.norm(cp_reconstruct(A0, B0, C0) - T) / nrm)
    s = np.linalg.norm(A0, axis=0) * np.linalg.norm(B0, axis=0) * np.linalg.norm(C0, axis=0)
    keep = np.sort(np.argsort(-s, kind="stable")[:rank])
    rng = np.random.default_rng(seed)
    A, B, C = (X[:, keep] + 1e-2 * rng.standard_normal((X.shape[0], rank)) * np.abs(X).max() for X in (A0, B0, C0))
    I, J, K = T.shape
    T1 = T.reshape(I, J * K)
    T2 = T.transpose(1, 0, 2).reshape(J, I * K)
    T3 = T.transpose(2, 0, 1).reshape(K, I * J)
    prev = np.inf
    err = np.inf
    for _ in range(n_iter):
        for mode in range(3):
            if mode == 0:
                G, M = (B.T @ B) * (C.T @ C), T1 @ _khatri_rao(B, C)
            elif mode == 1:
                G, M = (A.T @ A) * (C.T @ C), T2 @ _khatri_rao(A, C)
            else:
                G, M = (A.T @ A) * (B.T @ B), T3 @ _khatri_rao(A, B)
            G = G + 1e-12 * np.trace(G) / rank * np.eye(rank)
            X = np.linalg.solve(G, M.T).T
            if mode == 0:
                A = X
            elif mode == 1:
                B = X
            else:
                C = X
        # balance the column norms (keeps the problem well conditioned)
        na, nb, nc = (np.linalg.norm(X, axis=0) + 1e-300 for X in (A, B, C))
        g = np.cbrt(na * nb * nc)
        A, B, C = A * (g / na), B * (g / nb), C * (g / nc)
        err = float(np.linalg.norm(T1 - A @ _khatri_rao(B, C).T) / nrm)
        if abs(prev - err) < tol * max(1.0, err) or err < 1e-14:
            break
        prev = err
    return A, B, C, err


def cache_dir() -> str:
    """``$EQUIVAR_CACHE`` or ``~/.cache/equivar``."""
    return os.environ.get("EQUIVAR_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "equivar")


def cached_cp(T: np.ndarray, rank, seed: int = 0, n_iter: int = 1000, use_cache: bool = True):
    """CP factors of ``T`` (``rank`` int or ``'exact'``), from the disk cache when fitted before.

    Returns ``(A, B, C, rel_error)``. Only ALS fits are cached (exact ones are
    cheap); the key hashes the tensor, rank, seed, iterations and algorithm
    version; files are written to a temporary name and renamed (atomic).
    """
    T = np.ascontiguousarray(T, dtype=np.float64)
    if rank == "exact":
        A, B, C = exact_cp(T)
        return A, B, C, 0.0
    if not isinstance(rank, (int, np.integer)) or isinstance(rank, bool) or rank < 1:
        raise ValueError(f"rank must be a positive int or 'exact', got {rank!r}")
    if rank >= exact_cp(T)[0].shape[1] or not use_cache:
        return cp_als(T, int(rank), seed, n_iter)
    h = hashlib.sha256()
    h.update(_CACHE_VERSION.encode())
    h.update(np.asarray(T.shape, dtype=np.int64).tobytes())
    h.update(np.round(T, 14).tobytes())
    h.update(f"{int(rank)}/{seed}/{n_iter}".encode())
    path = os.path.join(cache_dir(), "cp", h.hexdigest() + ".npz")
    if os.path.exists(path):
        try:
            with np.load(path) as f:
                return f["A"], f["B"], f["C"], float(f["err"])
        except Exception:  # a corrupt file is refitted and replaced
            pass
    A, B, C, err = cp_als(T, int(rank), seed, n_iter)
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            np.savez(f, A=A, B=B, C=C, err=np.float64(err))
        os.replace(tmp, path)
    except OSError:  # a read-only cache directory is not an error
        pass
    return A, B, C, err


# ----------------------------------------------------------------------------
# Backend
# ----------------------------------------------------------------------------
class CPBackend(ConstantsModule):
    r"""CP-decomposed channelwise tensor product (``backend='cp'``).

    ``TensorProduct(irreps_in1, irreps_in2, irreps_out, instructions,
    backend='cp', rank=..., path_weight_sharing=...)``.

    Parameters
    ----------
    irreps_in1, irreps_in2, irreps_out, instructions
        As passed by ``TensorProduct``. Supported: channelwise paths
        (``'uvu'`` with ``mul_in2 == 1``, or ``'uuu'``) all with the same
        multiplicity; others are reported unexpressible.
    rank : int or 'exact'
        CP rank (per path without sharing, of the whole tensor with sharing).
    path_weight_sharing : bool
        TDN's path-weight sharing (see the module docstring).
    seed, n_iter : int
        ALS start noise seed and maximum number of sweeps.
    use_cache : bool
        Read / write fitted factors in the disk cache.

    Attributes
    ----------
    exact : bool
        True when the decomposition is exact (``rank='exact'`` or large enough).
    rank : int
        Total number of rank-1 terms (the width of the factor matrices).
    approx_error : float
        Relative Frobenius error ``|T - T_cp| / |T|`` of the coefficient tensor.
    weight_numel : int

    Shapes: ``forward(x1 [Z, dim1], x2 [Z, dim2], weight) -> [Z, dim_out]``;
    float32/float64, any device, differentiable twice.

    Raises
    ------
    ValueError
        A rank that is not a positive int or 'exact'.
    """

    exact = False

    def __init__(
        self,
        irreps_in1,
        irreps_in2,
        irreps_out,
        instructions: Sequence,
        *,
        irrep_normalization: str = "component",
        path_normalization: str = "element",
        rank="exact",
        path_weight_sharing: bool = False,
        seed: int = 0,
        n_iter: int = 1000,
        use_cache: bool = True,
    ) -> None:
        super().__init__()
        if not (rank == "exact" or (isinstance(rank, (int, np.integer)) and not isinstance(rank, bool) and rank >= 1)):
            raise ValueError(f"rank must be a positive int or 'exact', got {rank!r}")
        self.irreps_in1, self.irreps_in2, self.irreps_out = Irreps(irreps_in1), Irreps(irreps_in2), Irreps(irreps_out)
        self.instructions = list(instructions)
        self.path_weight_sharing = bool(path_weight_sharing)
        self.requested_rank = rank
        self.unexpressible: dict = {}
        live = []
        for n, ins in enumerate(self.instructions):
            r = self._check(ins)
            if r is not None:
                self.unexpressible[tuple(ins)] = r
                continue
            (m1, _), (m2, _), (mo, _) = (
                self.irreps_in1[ins.i_in1],
                self.irreps_in2[ins.i_in2],
                self.irreps_out[ins.i_out],
            )
            if m1 * m2 * mo == 0 or ins.path_weight == 0:
                continue
            live.append((n, ins))
        muls = {self.irreps_in1[ins.i_in1].mul for _, ins in live}
        if len(muls) > 1:
            for n, ins in live:
                self.unexpressible[tuple(ins)] = (
                    f"the cp backend needs one multiplicity for all paths (got {sorted(muls)})"
                )
            live = []
        if self.path_weight_sharing:
            weighted = {ins.has_weight for _, ins in live}
            if len(weighted) > 1:
                for n, ins in live:
                    if not ins.has_weight:
                        self.unexpressible[tuple(ins)] = "path-weight sharing needs every path weighted (or none)"
                live = [(n, ins) for n, ins in live if ins.has_weight]
        self._live = live
        self.U = next(iter(muls)) if live else 0
        U = self.U

        # rows of the coefficient tensor: every (block, m) of the blocks used
        b1 = sorted({ins.i_in1 for _, ins in live})
        b2 = sorted({ins.i_in2 for _, ins in live})
        bo = sorted({ins.i_out for _, ins in live})
        off = lambda irreps, blocks: {b: o for b, o in zip(blocks, np.cumsum([0] + [irreps[b].ir.dim for b in blocks]))}  # noqa: E731
        o1, o2, oo = off(self.irreps_in1, b1), off(self.irreps_in2, b2), off(self.irreps_out, bo)
        D1 = sum(self.irreps_in1[b].ir.dim for b in b1)
        D2 = sum(self.irreps_in2[b].ir.dim for b in b2)
        Do = sum(self.irreps_out[b].ir.dim for b in bo)

        def embed(ins):
            l1, l2, l3 = (
                self.irreps_in1[ins.i_in1].ir.l,
                self.irreps_in2[ins.i_in2].ir.l,
                self.irreps_out[ins.i_out].ir.l,
            )
            T = np.zeros((D1, D2, Do))
            a, b, c = o1[ins.i_in1], o2[ins.i_in2], oo[ins.i_out]
            T[a : a + 2 * l1 + 1, b : b + 2 * l2 + 1, c : c + 2 * l3 + 1] = ins.path_weight * wigner_3j_np(l1, l2, l3)
            return T

        offs = weight_offsets(self.instructions)
        factors, col_w, err2, nrm2 = [], [], 0.0, 0.0
        if live and self.path_weight_sharing:
            T = sum(embed(ins) for _, ins in live)
            A, B, C, err = cached_cp(T, rank, seed, n_iter, use_cache)
            factors.append((A, B, C))
            nrm2 = float((T**2).sum())
            err2 = (err**2) * nrm2
        else:
            for n, ins in live:
                l1, l2, l3 = (
                    self.irreps_in1[ins.i_in1].ir.l,
                    self.irreps_in2[ins.i_in2].ir.l,
                    self.irreps_out[ins.i_out].ir.l,
                )
                a, b, c, e = cached_cp(wigner_3j_np(l1, l2, l3), rank, seed, n_iter, use_cache)
                R = a.shape[1]
                A = np.zeros((D1, R))
                B = np.zeros((D2, R))
                C = np.zeros((Do, R))
                A[o1[ins.i_in1] : o1[ins.i_in1] + 2 * l1 + 1] = a
                B[o2[ins.i_in2] : o2[ins.i_in2] + 2 * l2 + 1] = b
                C[oo[ins.i_out] : oo[ins.i_out] + 2 * l3 + 1] = c * ins.path_weight
                factors.append((A, B, C))
                col_w.append((offs[n] if ins.has_weight else None, R))
                err2 += (e**2) * ins.path_weight**2  # |w3j| = 1
                nrm2 += ins.path_weight**2
        A = np.concatenate([f[0] for f in factors], 1) if factors else np.zeros((D1, 0))
        B = np.concatenate([f[1] for f in factors], 1) if factors else np.zeros((D2, 0))
        C = np.concatenate([f[2] for f in factors], 1) if factors else np.zeros((Do, 0))
        self.rank = A.shape[1]
        self.approx_error = math.sqrt(err2 / nrm2) if nrm2 > 0 else 0.0
        self.exact = self.approx_error <= 1e-13
        self.register_constant("_A", A)
        self.register_constant("_B", B)
        self.register_constant("_C", C.T.copy())  # [R, Do]

        # weights
        if self.path_weight_sharing:
            self.weight_numel = U if any(ins.has_weight for _, ins in live) else 0
            self._wmode = "shared" if self.weight_numel else None
        else:
            self.weight_numel = sum(math.prod(i.path_shape) for i in self.instructions if i.has_weight)
            if any(w is not None for w, _ in col_w):
                # weight index [U, R] into the weight vector (+1 appended for unweighted paths)
                idx = np.concatenate(
                    [
                        np.repeat((np.arange(U)[:, None] + (w if w is not None else 0)), R, 1)
                        if w is not None
                        else np.full((U, R), self.weight_numel)
                        for w, R in col_w
                    ],
                    1,
                )
                self.register_constant("_widx", idx.reshape(-1))
                self._wmode = "rank"
            else:
                self._wmode = None

        # gathers: x1 -> [Z, U, D1], x2 -> [Z, 1 or U, D2], [Z, U, Do] -> out
        self._mode = live[0][1].connection_mode if live else "uvu"
        if live and len({ins.connection_mode for _, ins in live}) > 1:
            raise ValueError("the cp backend needs a single connection mode ('uvu' or 'uuu') for all paths")
        U2 = U if self._mode == "uuu" else 1
        self._dims = (U, U2, D1, D2, Do)
        self._blocks = (b1, b2, bo)

    def _check(self, ins) -> str | None:
        if ins.connection_mode not in ("uvu", "uuu"):
            return (
                f"connection mode {ins.connection_mode!r} is not channelwise; the cp backend supports 'uvu' and 'uuu'"
            )
        if ins.connection_mode == "uvu" and self.irreps_in2[ins.i_in2].mul != 1:
            return "'uvu' with mul_in2 > 1 is not supported by the cp backend"
        return None

    def expressible(self, instruction) -> bool:
        """Whether ``instruction`` is realized (approximately, at the chosen rank)."""
        return tuple(instruction) not in self.unexpressible and self._check(instruction) is None

    def why_not(self, instruction) -> str | None:
        """``None`` if ``instruction`` is expressible, else the reason (a sentence), shown in the ``ValueError``."""
        return self.unexpressible.get(tuple(instruction)) or self._check(instruction)

    def resolution(self) -> dict:
        """Rank and approximation error of the decomposition."""
        return {
            "rank": self.rank,
            "requested_rank": self.requested_rank,
            "approx_error": self.approx_error,
            "exact": self.exact,
        }

    def forward(self, x1: torch.Tensor, x2: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """``x1 [Z, dim1]``, ``x2 [Z, dim2]``, ``weight [weight_numel]`` or ``[Z, weight_numel]`` -> ``[Z, dim_out]``."""
        Z = x1.shape[0]
        U, U2, D1, D2, Do = self._dims
        dt = x1.dtype
        if not self._live:
            return x1.new_zeros(Z, self.irreps_out.dim)
        b1, b2, bo = self._blocks
        # blocks as [Z, mul, 2l+1] views (split / cat: cheap backward, no index gathers)
        v1 = [
            t.view(Z, m, ir.dim)
            for t, (m, ir) in zip(torch.split(x1, [m * ir.dim for m, ir in self.irreps_in1], 1), self.irreps_in1)
        ]
        v2 = [
            t.view(Z, m, ir.dim)
            for t, (m, ir) in zip(torch.split(x2, [m * ir.dim for m, ir in self.irreps_in2], 1), self.irreps_in2)
        ]
        X1 = torch.cat([v1[b] for b in b1], -1) if len(b1) > 1 else v1[b1[0]].contiguous()
        X2 = torch.cat([v2[b] for b in b2], -1) if len(b2) > 1 else v2[b2[0]].contiguous()
        P = (X1 @ self._A.to(dt)) * (X2 @ self._B.to(dt))  # [Z, U, R]
        if self._wmode == "rank":
            w = torch.cat([weight, weight.new_ones(weight.shape[:-1] + (1,))], -1).index_select(-1, self._widx)
            P = P * w.view(-1, U, self.rank)
        Y = P @ self._C.to(dt)  # [Z, U, Do]
        if self._wmode == "shared":
            Y = Y * weight.view(-1, U, 1)
        ys = dict(zip(bo, torch.split(Y, [self.irreps_out[b].ir.dim for b in bo], -1)))
        pieces = [
            ys[k].reshape(Z, mul * ir.dim) if k in ys else x1.new_zeros(Z, mul * ir.dim)
            for k, (mul, ir) in enumerate(self.irreps_out)
        ]
        return torch.cat(pieces, 1) if len(pieces) > 1 else pieces[0]

    def extra_repr(self) -> str:
        return f"rank={self.rank}, approx_error={self.approx_error:.2e}, path_weight_sharing={self.path_weight_sharing}"


from ._registry import register_backend  # noqa: E402

register_backend("cp", CPBackend)
