"""MACE's symmetric contraction (the ACE product basis), evaluated on symmetric monomials."""

from __future__ import annotations

import math

import numpy as np
import torch

from ..o3 import Irreps
from . import _symmetric_contraction_native as _native
from ._constants import ExactConstants
from ._symmetric_basis import multiplicities, sorted_monomials, symmetric_contraction_basis
from ._symmetric_contraction_fn import ContractionFunction, init_derivatives


def _channel_irreps(irreps: Irreps) -> tuple[int, Irreps]:
    muls = {mul for mul, _ in irreps}
    if len(muls) != 1:
        raise ValueError(f"SymmetricContraction needs the same multiplicity in every block, got {irreps}")
    return muls.pop(), Irreps([(1, ir) for _, ir in irreps])


class SymmetricContraction(ExactConstants):
    r"""Channelwise product basis up to correlation order ``nu`` with element-dependent weights.

    For every node ``b`` with element ``e_b``, channel ``c`` and output irrep
    ``ir_out``:

    .. math::
        m^{ir_out}_{bc} = \sum_{\nu=1}^{\nu_{max}} \sum_k w^{\nu}_{e_b k c}
        \, \langle U^{\nu}_k, x_{bc} \otimes \dots \otimes x_{bc} \rangle

    where ``x_bc [D]`` is channel ``c`` of the input (one copy of each
    per-channel irrep) and ``U^nu_k`` is the orthonormal basis of symmetric
    equivariant tensors from :func:`symmetric_contraction_basis` (scaled by
    ``sqrt(d_out)`` so that ``nu = 1`` passes the matching block through
    unchanged). This is MACE's ``EquivariantProductBasisBlock``
    contraction (Batatia et al., NeurIPS 2022, eqs. 10-11).

    Implementation: because ``x (x) ... (x) x`` is symmetric, the
    contraction is evaluated on the sorted monomials
    ``x_i1 x_i2 ... x_inu`` (``i1 <= ... <= inu``; only those some basis
    tensor uses, e.g. 410 of 968 for ``0e+1o+2e+3o`` -> ``0e+1o`` at
    ``nu = 3``) with multiplicity-weighted coefficients. Orders below the
    top are built recursively, ``m_1 = x``, ``m_k = m_{k-1}[prefix] *
    x[last]`` (on the monomials needed), and the top order is one
    gather-multiply ``m_{nu-1}[prefix] * x[last]`` on the contracted
    monomials only (355 for the example above). The weights are contracted
    with the basis first (``[E*C, K] @ [K, d*J]``, independent of the number
    of nodes), then each order is one channel-batched matmul
    ``[C, E*d_out, J_nu] @ [C, J_nu, N]`` accumulated with ``baddbmm``,
    followed by selecting each node's
    element with its one-hot row (``E <= 8``; for more elements, or long
    indices, the per-node coefficients are gathered instead).

    Backward: when ``analytic_backward`` (chosen at construction: outputs
    beyond scalars, e.g. ``0e+1o``), nodes are grouped by element and the
    contraction runs through
    :class:`~equivar.nn._symmetric_contraction_fn.ContractionFunction`,
    whose backward is the analytic Jacobian ``J = (W U_G) b(x)``
    (``U_G``: the basis differentiated, ``b``: monomials of degree
    ``< nu_max``, in parity blocks) written in differentiable ops, so a
    force loss's second backward is a few matmuls and the Jacobian is
    computed once for both backward passes. Otherwise plain autograd
    differentiates the monomial products (cheaper for scalar outputs).

    Native kernels: on the CPU in float32/float64 (and not under
    ``torch.compile``), when the native library builds (a C compiler; see
    :mod:`equivar.tp._native_build`), forward, backward and the force loss's
    double backward run in the C kernels of
    :mod:`equivar.nn._symmetric_contraction_native` instead (the whole
    polynomial per node and 16-channel block, on
    ``equivar._threads.kernel_threads()`` threads, bit-identical for any
    thread count); the PyTorch paths above are the fallback and the test
    oracle (same values to rounding). ``module.native = False`` selects
    them. Third derivatives through the native kernels raise
    ``RuntimeError``.

    Parameters
    ----------
    irreps_in : Irreps
        ``C x (ir_1 + ir_2 + ...)`` in e3nn ``mul_ir`` layout, the same
        multiplicity ``C`` for every block (e.g. ``"32x0e+32x1o+32x2e+32x3o"``).
    irreps_out : Irreps
        ``C x ...`` with the same ``C`` (e.g. ``"32x0e+32x1o"``).
    correlation : int
        Maximal order ``nu_max >= 1`` (MACE default 3).
    num_elements : int
        Number of chemical element types (weights per element).

    Forward
    -------
    x : Tensor ``[N, irreps_in.dim]``
    node_attrs : Tensor ``[N, num_elements]`` one-hot (float), or ``[N]``
        long element indices in ``0..num_elements-1``.

    Returns ``[N, irreps_out.dim]`` in the module's dtype.

    Weights: ``weights[i]`` is the ``[num_elements, K, C]`` weight of path
    group ``_paths[i] = (output block, nu, K)`` (ordered by output block,
    then ``nu``), initialised ``N(0,1) / K`` as in MACE.

    Raises
    ------
    ValueError
        Unequal multiplicities, ``correlation < 1``, an output irrep that
        no order can produce, or wrongly shaped inputs.
    """

    def __init__(self, irreps_in, irreps_out, correlation: int, num_elements: int):
        super().__init__()
        self.irreps_in = Irreps(irreps_in)
        self.irreps_out = Irreps(irreps_out)
        if not isinstance(correlation, int) or correlation < 1:
            raise ValueError(f"correlation must be an int >= 1, got {correlation!r}")
        if correlation >= 5:
            import warnings

            warnings.warn(
                f"SymmetricContraction: correlation={correlation}: the symmetric basis grows "
                "combinatorially with the order and takes a while to build (for 0e+1o+2e+3o inputs about "
                "7 s at 5 and minutes at 6, once per process); MACE uses 3",
                stacklevel=2,
            )
        C, per_in = _channel_irreps(self.irreps_in)
        C_out, _ = _channel_irreps(self.irreps_out)
        if C_out != C:
            raise ValueError(f"irreps_out multiplicity {C_out} differs from irreps_in multiplicity {C}")
        self.channels = C
        self.per_channel_in = per_in
        self.correlation = correlation
        self.num_elements = int(num_elements)
        D = per_in.dim
        self.D = D
        self.d_outs = [ir.dim for _, ir in self.irreps_out]
        d_tot = sum(self.d_outs)
        self.d_tot = d_tot

        # layout permutations: mul_ir input [N, C*d blocks] -> [C, D] order, and [C, d_tot] -> mul_ir output
        perm_in, off = np.zeros((C, D), dtype=np.int64), 0
        k = 0
        for _, ir in self.irreps_in:
            for c in range(C):
                perm_in[c, k : k + ir.dim] = off + c * ir.dim + np.arange(ir.dim)
            off += C * ir.dim
            k += ir.dim
        self.register_buffer("_perm_in", torch.tensor(perm_in.reshape(-1)), persistent=False)
        perm_out, k = [], 0
        for _, ir in self.irreps_out:
            for c in range(C):
                perm_out.extend(c * d_tot + k + np.arange(ir.dim))
            k += ir.dim
        self.register_buffer("_perm_out", torch.tensor(np.array(perm_out, dtype=np.int64)), persistent=False)

        # 1) basis tensors -> coefficients on sorted monomials, per (output, nu)
        coef: dict = {}  # (o, nu) -> [K, d_o, M_nu] on all sorted monomials of order nu
        used = {nu: np.zeros(len(sorted_monomials(D, nu)), dtype=bool) for nu in range(1, correlation + 1)}
        for o, (_, ir) in enumerate(self.irreps_out):
            any_path = False
            for nu in range(1, correlation + 1):
                U = symmetric_contraction_basis(per_in, ir, nu)  # [K, d, D..]
                if U.shape[0] == 0:
                    continue
                any_path = True
                tup = sorted_monomials(D, nu)
                vals = U[(slice(None), slice(None)) + tuple(tup.T)]  # [K, d, M]
                vals = vals * multiplicities(tup) * math.sqrt(ir.dim)
                coef[(o, nu)] = vals
                used[nu] |= np.abs(vals).max(axis=(0, 1)) > 0
            if not any_path:
                raise ValueError(f"no symmetric product of {per_in} up to order {correlation} gives {ir}")
        # 2) monomials needed per order (plus prefixes needed by the next order)
        needed = {nu: set(map(tuple, sorted_monomials(D, nu)[used[nu]])) for nu in used}
        for nu in range(correlation, 1, -1):
            needed[nu - 1] |= {t[:-1] for t in needed[nu]}
        order = {nu: sorted(needed[nu]) for nu in needed}
        order[1] = [(i,) for i in range(D)]  # the order-1 pool is x itself
        pos = {nu: {t: i for i, t in enumerate(order[nu])} for nu in order}
        # Construction. Orders 1..nu_max-1 are a "pool" of separate tensors,
        # m_1 = x and m_k[t] = m_{k-1}[prefix(t)] * x[last(t)] on the monomials
        # needed; the top order is m_{nu_max-1}[prefix] * x[last] on the
        # contracted monomials only. The output is a sum of one batched matmul
        # per order (no constant-1 products, no concatenation: the big top-order
        # tensor is one gather-multiply).
        top = correlation if correlation > 1 else None
        self._pool_orders = list(range(2, correlation))
        for k in self._pool_orders:
            self.register_buffer(
                f"_pre{k}", torch.tensor([pos[k - 1][t[:-1]] for t in order[k]], dtype=torch.long), persistent=False
            )
            self.register_buffer(
                f"_last{k}", torch.tensor([t[-1] for t in order[k]], dtype=torch.long), persistent=False
            )
        contracted = {nu: [t for t in order[nu] if used[nu][_flat_index(t, D)]] for nu in order}
        if top is not None:
            ts = contracted[top]
            self.register_buffer(
                "_a", torch.tensor([pos[top - 1][t[:-1]] for t in ts], dtype=torch.long), persistent=False
            )
            self.register_buffer("_b", torch.tensor([t[-1] for t in ts], dtype=torch.long), persistent=False)
        # column segments of U: order 1 (all D), pool orders 2..nu_max-1 (all needed), top (contracted)
        seg_cols = {}
        for nu in range(1, correlation + 1):
            seg_cols[nu] = contracted[nu] if nu == top else order[nu]
        self._segments, c = [], 0
        for nu in range(1, correlation + 1):
            self._segments.append((c, len(seg_cols[nu])))
            c += len(seg_cols[nu])
        J = c
        self.J = J
        # 3) one coefficient matrix U [K_all, d_tot * J]: rows = (output, order, path)
        self.weights = torch.nn.ParameterList()
        self._paths = []  # (o, nu, K)
        d_off = np.cumsum([0] + self.d_outs)
        rows = []
        for (o, nu), vals in sorted(coef.items()):
            cols = [_flat_index(t, D) for t in seg_cols[nu]]
            c0 = self._segments[nu - 1][0]
            K = vals.shape[0]
            u = np.zeros((K, d_tot, J))
            u[:, d_off[o] : d_off[o + 1], c0 : c0 + len(cols)] = vals[:, :, cols]
            rows.append(u.reshape(K, -1))
            self.weights.append(torch.nn.Parameter(torch.randn(self.num_elements, K, C) / K))
            self._paths.append((o, nu, K))
        self.register_constant("_U", np.concatenate(rows, 0))
        self.num_paths = {(o, nu): K for o, nu, K in self._paths}
        init_derivatives(self, coef, d_off)
        # native CPU kernels (used where available; `native = False` selects the PyTorch paths): index tables and
        # the basis columns the kernels read, [Q, K_all] (only the (output, monomial) pairs some path uses)
        self.native = True
        D, start = self.D, [c0 for c0, _ in self._segments]
        prod = []
        for k in self._pool_orders:  # value start[k-1] + pre times x[last]
            prod += [
                (start[k - 2] + int(a), int(b)) for a, b in zip(getattr(self, f"_pre{k}"), getattr(self, f"_last{k}"))
            ]
        if top is not None:
            prod += [(start[top - 2] + int(a), int(b)) for a, b in zip(self._a, self._b)]
        Unp = np.concatenate(rows, 0)
        self._native_plan = _native.make_plan(
            C, self.irreps_in, self.irreps_out, np.array(prod), np.abs(Unp.reshape(-1, d_tot, J)).max(axis=0) > 0
        )
        self.register_constant("_U_native", Unp[:, self._native_plan.columns].T)

    def native_coefficients(self) -> torch.Tensor:
        """Per-element coefficients in the native kernels' layout ``[E, Q, Cp]`` (channels last, zero-padded)."""
        W = torch.cat(list(self.weights), 1) if len(self.weights) > 1 else self.weights[0]  # [E, K_all, C]
        M = torch.matmul(self._U_native, W)
        Cp = self._native_plan.Cp
        return M if Cp == self.channels else torch.nn.functional.pad(M, (0, Cp - self.channels))

    def _derivative_monomials(self, xt: torch.Tensor) -> torch.Tensor:
        """``xt [C, D, N]`` -> ``b [C, P, N]``, the monomials of degree ``< nu_max`` that derivatives produce."""
        C, _, N = xt.shape
        if self.correlation == 1:
            return xt.new_ones(C, 1, N)
        xe = torch.cat([xt.new_ones(C, 1, N), xt], 1)
        b = xe.index_select(1, self._bf0)
        for f in range(1, self.correlation - 1):
            b = b * xe.index_select(1, getattr(self, f"_bf{f}"))
        return b

    def _monomial_matrix(self, xt: torch.Tensor) -> torch.Tensor:
        """``xt [C, D, N]`` -> all monomials ``[C, J, N]`` in U's column order (differentiable)."""
        ms = self._monomials(xt)
        return ms[0] if len(ms) == 1 else torch.cat(ms, 1)

    @torch.no_grad()
    def _monomial_buffer(self, xt: torch.Tensor) -> torch.Tensor:
        """``_monomial_matrix`` without autograd, each order written in place (no concatenation)."""
        C, D, N = xt.shape
        out = xt.new_empty(C, self.J, N)
        out.narrow(1, 0, D).copy_(xt)
        m, c = xt, D
        for k in self._pool_orders:
            pre = getattr(self, f"_pre{k}")
            seg = out.narrow(1, c, pre.numel())
            torch.mul(m.index_select(1, pre), xt.index_select(1, getattr(self, f"_last{k}")), out=seg)
            m, c = seg, c + pre.numel()
        if self.correlation > 1:
            torch.mul(m.index_select(1, self._a), xt.index_select(1, self._b), out=out.narrow(1, c, self._a.numel()))
        return out

    def _monomials(self, xt: torch.Tensor) -> list:
        """``xt [C, D, N]`` -> per order ``nu = 1..nu_max`` the monomials ``[C, J_nu, N]`` (U's column segments)."""
        ms = [xt]
        m = xt
        for k in self._pool_orders:
            m = m.index_select(1, getattr(self, f"_pre{k}")) * xt.index_select(1, getattr(self, f"_last{k}"))
            ms.append(m)
        if self.correlation > 1:
            ms.append(m.index_select(1, self._a) * xt.index_select(1, self._b))
        return ms

    def coefficient_matrix(self) -> torch.Tensor:
        """Stacked path weights ``[E*C, K_all]`` (row ``e*C + c``; columns in ``_paths`` order)."""
        E, C = self.num_elements, self.channels
        W = (
            torch.cat([w.transpose(1, 2) for w in self.weights], -1)
            if len(self.weights) > 1
            else self.weights[0].transpose(1, 2)
        )
        return W.reshape(E * C, -1)

    def coefficients(self) -> torch.Tensor:
        """Per-element contraction tensor ``[E, C, d_tot, J]`` (weights times basis)."""
        return (self.coefficient_matrix() @ self._U).view(self.num_elements, self.channels, self.d_tot, self.J)

    def forward(self, x: torch.Tensor, node_attrs: torch.Tensor) -> torch.Tensor:
        if x.dim() != 2 or x.shape[-1] != self.irreps_in.dim:
            raise ValueError(
                f"SymmetricContraction: x must be [N, {self.irreps_in.dim}] ({self.irreps_in}), got {tuple(x.shape)}"
            )
        N, C, E = x.shape[0], self.channels, self.num_elements
        if node_attrs.dtype in (torch.long, torch.int32, torch.int64):
            elem = node_attrs.long()
        else:
            if node_attrs.shape != (N, E):
                raise ValueError(
                    f"node_attrs must be one-hot [N={N}, {E}] or [N] indices, got {tuple(node_attrs.shape)}"
                )
            elem = node_attrs.argmax(-1)
        if getattr(self, "native", False) and x.dtype == self._U.dtype and _native.usable(x):
            if not node_attrs.is_floating_point() and x.shape[0] and bool(((elem < 0) | (elem >= E)).any()):
                raise ValueError(f"element indices must be in 0..{E - 1}")
            M = self.native_coefficients()
            return _native.ContractionNative.apply(x.contiguous(), M, elem.contiguous(), self._native_plan)
        # (a traced Function loses its double backward; on a GPU, grouping nodes by element needs the counts
        # on the host, a synchronisation per call: the batched form below needs none)
        if not self.analytic_backward or torch.compiler.is_compiling() or x.device.type != "cpu":
            return self._forward_autograd(x, node_attrs, elem)
        # group nodes by element: mul_ir [N, C*D blocks] -> [C, D, N sorted] with one gather
        if E == 1:
            counts, order = [N], None
            src = self._perm_in[:, None] + x.shape[1] * torch.arange(N, device=x.device)
        else:
            counts = torch.bincount(elem, minlength=E).tolist()
            if len(counts) != E or bool((elem < 0).any()):
                raise ValueError(f"element indices must be in 0..{E - 1}")
            order = torch.argsort(elem, stable=True)
            src = self._perm_in[:, None] + x.shape[1] * order
        xt = x.reshape(-1).index_select(0, src.reshape(-1)).view(C, self.D, N)
        y = ContractionFunction.apply(xt, self.coefficient_matrix(), self, counts)  # [C, d, N sorted]
        # [C, d, N sorted] -> mul_ir [N, C*d blocks] with one gather
        pos = (
            torch.arange(N, device=x.device)
            if order is None
            else torch.empty_like(order).scatter_(0, order, torch.arange(N, device=x.device))
        )
        dst = self._perm_out[None, :] * N + pos[:, None]
        return y.reshape(-1).index_select(0, dst.reshape(-1)).view(N, C * self.d_tot)

    def _forward_autograd(self, x: torch.Tensor, node_attrs: torch.Tensor, elem: torch.Tensor) -> torch.Tensor:
        """Forward in plain differentiable ops (autograd differentiates the monomial products)."""
        N, C, E = x.shape[0], self.channels, self.num_elements
        xt = x.t().index_select(0, self._perm_in).view(C, self.D, N)  # mul_ir -> [C, D, N] with one gather
        mono = self._monomials(xt)  # per order [C, J_nu, N]
        M = self.coefficients()  # [E, C, d, J]
        if node_attrs.is_floating_point() and E <= 8:  # every element's output, then the node's one-hot row
            Mb = M.permute(1, 0, 2, 3).reshape(C, E * self.d_tot, self.J)
            y = None
            for (c0, n), m in zip(self._segments, mono):
                if n:
                    y = torch.bmm(Mb.narrow(2, c0, n), m) if y is None else torch.baddbmm(y, Mb.narrow(2, c0, n), m)
            y = (y.view(C, E, self.d_tot, N) * node_attrs.t().to(y.dtype)[None, :, None, :]).sum(1).permute(2, 0, 1)
        else:
            y = torch.einsum("ncdj,cjn->ncd", M[elem], torch.cat(mono, 1))
        return y.reshape(N, C * self.d_tot).index_select(1, self._perm_out)  # [N, C, d] -> mul_ir

    def extra_repr(self) -> str:
        return (
            f"{self.irreps_in} -> {self.irreps_out}, correlation={self.correlation}, "
            f"num_elements={self.num_elements}, monomials={self.J}, paths={dict(self.num_paths)}"
        )


def _flat_index(t, D: int) -> int:
    """Position of sorted tuple ``t`` in ``sorted_monomials(D, len(t))``."""
    return _combo_rank(tuple(int(v) for v in t), D)


_RANK_CACHE: dict = {}


def _combo_rank(t, D):
    key = (D, len(t))
    table = _RANK_CACHE.get(key)
    if table is None:
        table = {tuple(v): i for i, v in enumerate(sorted_monomials(D, len(t)).tolist())}
        _RANK_CACHE[key] = table
    return table[t]
