"""``cg`` backend: exact Clebsch-Gordan tensor product.

Every path is ``out[k] += path_weight * sum_ij C[i,j,k] x1[i] x2[j]`` with
``C = wigner_3j(l1, l2, l3)`` (e3nn's real basis), multiplicities connected
as the instruction's connection mode says. No ``[batch, u, v, i, j]`` outer
product is ever formed.

Channelwise (``'uvu'``) paths, the edge product of MACE and NequIP, go
through the fused kernels of :mod:`equivar.tp._cg_fused`: on the CPU a
native C kernel (:mod:`equivar.tp._cg_native`, one pass per sample over the
non-zero coefficients, all three gradients in one backward sweep), elsewhere
batched matrix products and gathers in PyTorch; the hand-written backward is
itself differentiable, to any order. Other modes use per-path products: x2
is first contracted with the coefficients (``[Z*v, d2] @ [d2, d1*d3]``),
then with x1, then with the weights; autograd differentiates them.

Cost of the channelwise kernel: ``2 * nnz(C) * u * v`` multiply-adds per
sample and path (the "useful" sparse work), plus one write of the output.
"""

from __future__ import annotations

import math

import torch

from ..o3 import Irreps, wigner_3j_np
from ._cg_fused import FusedTP, build_plan, fused_forward_torch
from ._constants import ConstantsModule
from ._instructions import Instruction, weight_offsets


class CGBackend(ConstantsModule):
    """Exact CG backend (see the backend contract in :mod:`equivar.tp`).

    Option ``fused`` (default True): route channelwise paths through the
    fused kernels; ``False`` computes every path with the per-path code
    (a reference, used in tests).
    """

    exact = True

    def __init__(
        self,
        irreps_in1,
        irreps_in2,
        irreps_out,
        instructions: list[Instruction],
        *,
        irrep_normalization: str = "component",
        path_normalization: str = "element",
        fused: bool = True,
    ) -> None:
        super().__init__()
        self.irreps_in1, self.irreps_in2, self.irreps_out = Irreps(irreps_in1), Irreps(irreps_in2), Irreps(irreps_out)
        self.instructions = list(instructions)
        self._offsets = weight_offsets(self.instructions)
        self._s1 = [(s.start, s.stop) for s in self.irreps_in1.slices()]
        self._s2 = [(s.start, s.stop) for s in self.irreps_in2.slices()]
        self._paths = []
        fused_ins = []
        for n, ins in enumerate(self.instructions):
            (m1, ir1), (m2, ir2), (mo, iro) = (
                self.irreps_in1[ins.i_in1],
                self.irreps_in2[ins.i_in2],
                self.irreps_out[ins.i_out],
            )
            if m1 * m2 * mo == 0 or ins.path_weight == 0:
                continue
            if fused and ins.connection_mode == "uvu":
                fused_ins.append((n, ins))
                continue
            C = wigner_3j_np(ir1.l, ir2.l, iro.l) * ins.path_weight  # [d1, d2, d3]
            name = f"_cg{n}"
            # [d2, d1*d3]: contracts x2 first
            self.register_constant(name, C.transpose(1, 0, 2).reshape(ir2.dim, ir1.dim * iro.dim))
            self._paths.append((n, name))
        self._plan = None
        self._const_names: tuple = ()
        if fused_ins:
            n_weights = sum(math.prod(i.path_shape) for i in self.instructions if i.has_weight)
            self._plan, consts = build_plan(
                self.irreps_in1, self.irreps_in2, self.irreps_out, fused_ins, self._offsets, wigner_3j_np, n_weights
            )
            self._const_names = tuple(consts)
            for k, v in consts.items():
                self.register_constant("_f" + k, v)

    def _fused_consts(self, dtype: torch.dtype) -> dict:
        """The fused plan's constants in ``dtype`` (cached; the cache is dropped when the module moves)."""
        cache = self.__dict__.setdefault("_consts_cache", {})
        consts = cache.get(dtype)
        if consts is None:
            consts = {}
            for k in self._const_names:
                t = getattr(self, "_f" + k)
                consts[k] = t.to(dtype) if t.is_floating_point() else t
            cache[dtype] = consts
        return consts

    def _apply(self, fn, recurse=True):
        self.__dict__.pop("_consts_cache", None)
        return super()._apply(fn, recurse)

    def expressible(self, instruction) -> bool:
        """Every path allowed by the selection rules is exact here."""
        return True

    def forward(self, x1: torch.Tensor, x2: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        Z = x1.shape[0]
        shared = weight.dim() == 1
        outs: list[list[torch.Tensor]] = [[] for _ in self.irreps_out]
        fused_out = None
        if self._plan is not None:
            args = (x1.contiguous(), x2.contiguous(), weight.contiguous(), 1.0)
            if torch.compiler.is_compiling():
                # plain PyTorch operations: a custom Function traced by dynamo loses its double backward
                consts = {k: getattr(self, "_f" + k) for k in self._const_names}
                consts = {k: t.to(x1.dtype) if t.is_floating_point() else t for k, t in consts.items()}
                fused_out = fused_forward_torch(self._plan, consts, *args)
            else:
                fused_out = FusedTP.apply(self._plan, self._fused_consts(x1.dtype), *args)
            if not self._paths:
                return fused_out
        for n, name in self._paths:
            ins = self.instructions[n]
            (m1, ir1), (m2, ir2), (mo, iro) = (
                self.irreps_in1[ins.i_in1],
                self.irreps_in2[ins.i_in2],
                self.irreps_out[ins.i_out],
            )
            d1, d3 = ir1.dim, iro.dim
            a, b = self._s1[ins.i_in1]
            x1b = x1[:, a:b].reshape(Z, m1, d1)
            a, b = self._s2[ins.i_in2]
            x2b = x2[:, a:b].reshape(Z * m2, ir2.dim)
            B = (x2b @ getattr(self, name).to(x2.dtype)).reshape(Z, m2, d1, d3)
            w = None
            if ins.has_weight:
                o = self._offsets[n]
                w = weight[..., o : o + math.prod(ins.path_shape)].reshape(
                    ins.path_shape if shared else (Z,) + tuple(ins.path_shape)
                )
            z = "" if shared else "z"
            mode = ins.connection_mode
            if mode in ("uuw", "uuu"):
                T = torch.einsum("zui,zuik->zuk", x1b, B)
                if mode == "uuu":
                    r = T * (w.unsqueeze(-1) if w is not None else 1.0)
                elif w is not None:
                    r = torch.einsum(f"{z}uw,zuk->zwk", w, T)
                else:
                    r = T.sum(1, keepdim=True)
            else:
                T = torch.einsum("zui,zvik->zuvk", x1b, B)
                if mode == "uvw":
                    r = torch.einsum(f"{z}uvw,zuvk->zwk", w, T)
                elif mode == "uvu":
                    r = torch.einsum(f"{z}uv,zuvk->zuk", w, T) if w is not None else T.sum(2)
                elif mode == "uvv":
                    r = torch.einsum(f"{z}uv,zuvk->zvk", w, T) if w is not None else T.sum(1)
                else:  # uvuv
                    r = (T * w.unsqueeze(-1)) if w is not None else T
            outs[ins.i_out].append(r.reshape(Z, mo * d3))
        pieces = []
        for (mul, ir), rs in zip(self.irreps_out, outs):
            if rs:
                acc = rs[0]
                for r in rs[1:]:
                    acc = acc + r
                pieces.append(acc)
            elif mul * ir.dim > 0:
                pieces.append(x1.new_zeros(Z, mul * ir.dim))
        if not pieces:
            return x1.new_zeros(Z, 0)
        out = torch.cat(pieces, dim=1) if len(pieces) > 1 else pieces[0]
        return out if fused_out is None else out + fused_out
