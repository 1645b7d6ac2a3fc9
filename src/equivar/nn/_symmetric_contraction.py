"""MACE's symmetric contraction (the ACE product basis), evaluated on symmetric monomials."""
from __future__ import annotations

import math

import numpy as np
import torch

from ..o3 import Irrep, Irreps
from ._constants import ExactConstants
from ._symmetric_basis import multiplicities, sorted_monomials, symmetric_contraction_basis


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
    contraction is evaluated on the ``C(D+nu-1, nu)`` sorted monomials
    ``x_i1 x_i2 ... x_inu`` (``i1 <= ... <= inu``; those no basis tensor
    uses are pruned) with multiplicity-weighted coefficients. All orders
    and output irreps are then one batched matmul over channels:
    ``[C, E*d_out, J] @ [C, J, N]`` followed by an element selection
    (``E`` = number of elements; for ``num_elements > 8`` the per-node
    coefficients are gathered instead). No Python loop runs over nodes or
    elements.

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

    Weights: ``weights[i]`` for output block ``i`` and order ``nu`` is
    ``[num_elements, K_nu, C]``, initialised ``N(0,1) / K_nu`` as in MACE.

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
        pos = {nu: {t: i for i, t in enumerate(order[nu])} for nu in order}
        # recursive construction indices: mono_nu[j] = mono_{nu-1}[prefix] * x[last]
        for nu in range(2, correlation + 1):
            pre = torch.tensor([pos[nu - 1][t[:-1]] for t in order[nu]], dtype=torch.long)
            last = torch.tensor([t[-1] for t in order[nu]], dtype=torch.long)
            self.register_buffer(f"_pre{nu}", pre, persistent=False)
            self.register_buffer(f"_last{nu}", last, persistent=False)
        first = torch.tensor([t[0] for t in order[1]], dtype=torch.long)
        self.register_buffer("_first", first, persistent=False)
        # monomials actually contracted: the used ones of each order, concatenated
        sel, offs, J = [], {}, 0
        for nu in range(1, correlation + 1):
            idx = [pos[nu][t] for t in order[nu] if t in needed[nu] and used[nu][_flat_index(t, D)]]
            offs[nu] = (J, len(idx))
            J += len(idx)
            self.register_buffer(f"_sel{nu}", torch.tensor(idx, dtype=torch.long), persistent=False)
            sel.append(idx)
        self.J = J
        # 3) coefficient matrices U_sym[(o, nu)] : [K, d_o * J_nu] restricted to used monomials
        self.weights = torch.nn.ParameterList()
        self._paths = []  # (o, nu, K, buffer name)
        for (o, nu), vals in sorted(coef.items()):
            cols = [_flat_index(order[nu][j], D) for j in sel[nu - 1]]
            u = vals[:, :, cols]  # [K, d_o, J_nu]
            K = u.shape[0]
            name = f"_U_{o}_{nu}"
            self.register_constant(name, u.reshape(K, -1))
            self.weights.append(torch.nn.Parameter(torch.randn(self.num_elements, K, C) / K))
            self._paths.append((o, nu, K, name))
        self._offs = offs
        self.num_paths = {(o, nu): K for o, nu, K, _ in self._paths}

    def _monomials(self, xt: torch.Tensor) -> torch.Tensor:
        """``xt [D, B]`` (component-major) -> ``[J, B]`` used monomials of all orders.

        Component-major layout makes every gather a contiguous row copy.
        """
        m = xt.index_select(0, self._first) if self._first.numel() != self.D else xt
        outs = [m.index_select(0, self._sel1)]
        for nu in range(2, self.correlation + 1):
            m = m.index_select(0, getattr(self, f"_pre{nu}")) * xt.index_select(0, getattr(self, f"_last{nu}"))
            outs.append(m.index_select(0, getattr(self, f"_sel{nu}")))
        return torch.cat(outs, 0)

    def coefficients(self) -> torch.Tensor:
        """Per-element contraction tensor ``[E, C, d_tot, J]`` (weights times basis)."""
        E, C = self.num_elements, self.channels
        M = self.weights[0].new_zeros(E, C, self.d_tot, self.J)
        blocks = {}
        for (o, nu, K, name), w in zip(self._paths, self.weights):
            U = getattr(self, name)  # [K, d_o * J_nu]
            m = (w.permute(0, 2, 1).reshape(E * C, K) @ U).reshape(E, C, self.d_outs[o], -1)
            blocks.setdefault(o, {})[nu] = m
        rows = []
        for o, d in enumerate(self.d_outs):
            cols = []
            for nu in range(1, self.correlation + 1):
                j0, jn = self._offs[nu]
                if jn == 0:
                    continue
                b = blocks.get(o, {}).get(nu)
                cols.append(b if b is not None else M.new_zeros(E, C, d, jn))
            rows.append(torch.cat(cols, -1))
        return torch.cat(rows, 2)

    def forward(self, x: torch.Tensor, node_attrs: torch.Tensor) -> torch.Tensor:
        if x.dim() != 2 or x.shape[-1] != self.irreps_in.dim:
            raise ValueError(f"SymmetricContraction: x must be [N, {self.irreps_in.dim}] ({self.irreps_in}), got {tuple(x.shape)}")
        N, C, E = x.shape[0], self.channels, self.num_elements
        # mul_ir -> component-major [D, N, C]
        xt = torch.cat(
            [x[:, s].reshape(N, C, ir.dim).permute(2, 0, 1) for s, (_, ir) in zip(self.irreps_in.slices(), self.irreps_in)], 0
        )
        mono = self._monomials(xt.reshape(self.D, N * C)).view(self.J, N, C).permute(2, 0, 1)  # [C, J, N]
        M = self.coefficients()  # [E, C, d, J]
        if node_attrs.dtype in (torch.long, torch.int32, torch.int64):
            idx = node_attrs.long()
            onehot = None
        else:
            if node_attrs.shape != (N, E):
                raise ValueError(f"node_attrs must be one-hot [N={N}, {E}] or [N] indices, got {tuple(node_attrs.shape)}")
            onehot = node_attrs
            idx = None
        if onehot is not None and E <= 8:
            Mb = M.permute(1, 0, 2, 3).reshape(C, E * self.d_tot, self.J)
            y = torch.bmm(Mb, mono)  # [C, E*d, N]
            y = (y.view(C, E, self.d_tot, N) * onehot.t().to(y.dtype)[None, :, None, :]).sum(1)  # [C, d, N]
            y = y.permute(2, 0, 1)  # [N, C, d]
        else:
            if idx is None:
                idx = onehot.argmax(-1)
            y = torch.einsum("ncdj,cjn->ncd", M[idx], mono)
        # [N, C, d_tot] -> mul_ir blocks
        outs, i = [], 0
        for d in self.d_outs:
            outs.append(y[:, :, i : i + d].reshape(N, C * d))
            i += d
        return torch.cat(outs, -1) if len(outs) > 1 else outs[0]

    def extra_repr(self) -> str:
        return (f"{self.irreps_in} -> {self.irreps_out}, correlation={self.correlation}, "
                f"num_elements={self.num_elements}, monomials={self.J}, paths={dict(self.num_paths)}")


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
