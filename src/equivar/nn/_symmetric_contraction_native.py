r"""Native CPU kernels of :class:`~equivar.nn.SymmetricContraction`: forward, backward and double backward.

At MACE's sizes (a few dozen nodes per batch, 32 channels, ~500 monomials) the PyTorch evaluation is a
few hundred small operations per training step (monomial gathers and products, per-element batched
matmuls, layout permutations, and their derivatives for the force loss), each too small for a second
thread. The kernels of :mod:`equivar.nn._symmetric_contraction_native_src` evaluate the whole polynomial
per node and block of 16 channels in registers and cache, read and write the e3nn ``mul_ir`` layout
directly, select each node's element coefficients by index (no grouping or one-hot sums), and run on
``equivar._threads.kernel_threads()`` threads of the shared native pool.

The contraction is ``y = f(x, M)`` with ``M [E, Q, Cp]`` the per-element coefficients that the basis can
make nonzero (``Q`` pairs of output component and monomial; path weights times the symmetric basis,
channels last, zero-padded to ``Cp``, a multiple of 16), built in PyTorch so that its gradient reaches the
weights through autograd. :class:`ContractionNative` is
differentiable twice (forward -> ``create_graph`` backward -> backward, a force loss): its backward is
:class:`ContractionNativeGrad`, whose own backward is the double-backward kernel (not differentiable
again: third derivatives raise).

The library is compiled on first use like the tensor-product kernels (:mod:`equivar.tp._native_build`);
without a compiler, with ``EQUIVAR_NATIVE=0`` or inside ``native_kernels(False)`` the module uses its
PyTorch path (same values to rounding).
"""

from __future__ import annotations

import ctypes

import numpy as np
import torch

from .._threads import kernel_threads
from ..tp import NativeLibrary
from ._native_grad import NotDifferentiable
from ._symmetric_contraction_native_src import C_SOURCE

_FLAGS = ["-O3", "-march=native", "-fPIC", "-shared", "-std=gnu99", "-pthread"]
VL = 16  # channel lanes per vector (channels are padded to a multiple)


def _declare(lib) -> None:
    i64, vp, i = ctypes.c_int64, ctypes.c_void_p, ctypes.c_int
    lib.equivar_sc_run.argtypes = [i, i, i] + [i64] * 9 + [vp] * 19
    lib.equivar_sc_run.restype = i


_LIB = NativeLibrary(C_SOURCE, _FLAGS, "equivar_sc", _declare)


def library():
    """The loaded kernel library, or ``None`` (``native_error()`` says why)."""
    return _LIB.get()


def native_error() -> str | None:
    """Why the native kernels are unavailable (``None`` if they are available or not tried yet)."""
    return _LIB.error


def usable(x: torch.Tensor) -> bool:
    """Whether the kernels can run on ``x`` (CPU float32/float64, not traced by ``torch.compile``)."""
    return (
        x.device.type == "cpu"
        and x.dtype in (torch.float32, torch.float64)
        and not torch.compiler.is_compiling()
        and library() is not None
    )


class Plan:
    """Index tables of one contraction (int64 tensors, built once per module by :func:`make_plan`)."""

    def __init__(self, C, D, d, J, xoff, xstr, yoff, ystr, prod, nzptr, nzj, columns):
        self.C, self.Cp, self.D, self.d, self.J = C, (C + VL - 1) // VL * VL, D, d, J
        self.xoff, self.xstr, self.yoff, self.ystr = xoff, xstr, yoff, ystr
        self.prod, self.nzptr, self.nzj = prod, nzptr, nzj
        self.columns = columns  # [Q] positions o * J + j of the pattern in a [d * J] row
        self.P, self.Q = prod.shape[0], nzj.shape[0]


def make_plan(C: int, irreps_in, irreps_out, prod: np.ndarray, pattern: np.ndarray) -> Plan:
    """Plan for inputs ``C x irreps_in`` (per-channel dim ``D``), outputs ``C x irreps_out`` (``d``).

    ``prod [P, 2]``: sources of value ``D + p`` (earlier value, input index); ``pattern [d, J]``: which
    coefficients ``(o, j)`` can be nonzero (bool).
    """

    def layout(irreps):
        off, stride, o = [], [], 0
        for mul, ir in irreps:
            for m in range(ir.dim):
                off.append(o + m)
                stride.append(ir.dim)
            o += mul * ir.dim
        return torch.tensor(off, dtype=torch.long), torch.tensor(stride, dtype=torch.long)

    xoff, xstr = layout(irreps_in)
    yoff, ystr = layout(irreps_out)
    d, J = pattern.shape
    rows = [np.flatnonzero(pattern[o]) for o in range(d)]
    nzptr = np.cumsum([0] + [len(r) for r in rows])
    nzj = np.concatenate(rows).astype(np.int64) if rows else np.zeros(0, dtype=np.int64)
    columns = np.concatenate([r + o * J for o, r in enumerate(rows)]).astype(np.int64) if rows else nzj
    return Plan(
        C,
        len(xoff),
        d,
        J,
        xoff,
        xstr,
        yoff,
        ystr,
        torch.tensor(np.asarray(prod, dtype=np.int64).reshape(-1, 2)),
        torch.tensor(nzptr, dtype=torch.long),
        torch.tensor(nzj, dtype=torch.long),
        columns,
    )


def _p(t) -> int | None:
    return None if t is None else t.data_ptr()


def _run(
    plan: Plan, mode: int, elem, x, M, gy=None, v=None, ggM=None, y=None, gx=None, gM=None, ggy=None, gx2=None, gM2=None
) -> None:
    st = library().equivar_sc_run(
        int(x.dtype == torch.float64),
        kernel_threads(),
        mode,
        x.shape[0],
        plan.C,
        plan.Cp,
        plan.D,
        plan.d,
        plan.J,
        plan.P,
        x.shape[1],
        plan.C * plan.d,
        *(_p(t) for t in (elem, plan.xoff, plan.xstr, plan.yoff, plan.ystr, plan.prod, plan.nzptr, plan.nzj)),
        *(_p(t) for t in (x, M, gy, v, ggM, y, gx, gM, ggy, gx2, gM2)),
    )
    if st != 0:
        raise MemoryError("equivar native symmetric-contraction kernel: allocation failed")


def _will_execute(t: torch.Tensor) -> bool:
    """Whether the running backward needs a gradient for ``t`` (False skips weight gradients in a forces pass)."""
    try:
        return bool(torch._C._will_engine_execute_node(torch.autograd.graph.get_gradient_edge(t).node))
    except Exception:  # API not available, or t is a leaf without a node: compute it
        return True


class ContractionNative(torch.autograd.Function):
    """``y [N, C * d_tot] = ContractionNative.apply(x [N, C * D], M [E, Q, Cp], elem [N] long, plan)``."""

    @staticmethod
    def forward(ctx, x, M, elem, plan):
        y = x.new_empty(x.shape[0], plan.C * plan.d)
        _run(plan, 0, elem, x, M, y=y)
        ctx.save_for_backward(x, M)
        ctx.elem, ctx.plan = elem, plan
        return y

    @staticmethod
    def backward(ctx, gy):
        x, M = ctx.saved_tensors
        need_x = ctx.needs_input_grad[0]
        need_M = ctx.needs_input_grad[1] and _will_execute(M)
        if gy is None or not (need_x or need_M):
            return None, None, None, None
        gx, gM = ContractionNativeGrad.apply(gy.contiguous(), x, M, ctx.elem, ctx.plan, need_x, need_M)
        return gx, gM, None, None


class ContractionNativeGrad(torch.autograd.Function):
    """``(gx, gM) = apply(gy, x, M, elem, plan, need_x, need_M)`` (``None`` where not needed); differentiable once."""

    @staticmethod
    def forward(ctx, gy, x, M, elem, plan, need_x, need_M):
        ctx.set_materialize_grads(False)
        gx = x.new_empty(x.shape) if need_x else None
        gM = torch.zeros_like(M) if need_M else None
        _run(plan, 1, elem, x, M, gy=gy, gx=gx, gM=gM)
        ctx.save_for_backward(gy, x, M)
        ctx.elem, ctx.plan = elem, plan
        return gx, gM

    @staticmethod
    def backward(ctx, ggx, ggM):
        gy, x, M = ctx.saved_tensors
        if ggx is None and ggM is None:
            return (None,) * 7
        ggx = None if ggx is None else ggx.contiguous()
        ggM = None if ggM is None else ggM.contiguous()
        need_gy, need_x, need_M = ctx.needs_input_grad[:3]
        ggy = gy.new_empty(gy.shape) if need_gy else None
        gx2 = x.new_empty(x.shape) if need_x else None
        gM2 = torch.zeros_like(M) if (need_M and ggx is not None) else None
        if ggy is None and gx2 is None and gM2 is None:
            return (None,) * 7
        with torch.no_grad():
            _run(ctx.plan, 2, ctx.elem, x, M, gy=gy, v=ggx, ggM=ggM, ggy=ggy, gx2=gx2, gM2=gM2)
        deps = [t for t in (gy, x, M, ggx, ggM) if t is not None and t.requires_grad]
        if torch.is_grad_enabled() and deps:  # a third derivative would be asked through these: refuse it
            what = "SymmetricContraction's native kernels"
            ggy, gx2, gM2 = (None if t is None else NotDifferentiable.apply(what, t, *deps) for t in (ggy, gx2, gM2))
        return ggy, gx2, gM2, None, None, None, None
