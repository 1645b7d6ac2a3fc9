r"""Native CPU kernels for the channelwise paths of the ``cg`` backend.

The sparse Clebsch-Gordan work of a channelwise product is tiny per
coefficient (one ``mul``-long multiply-add) and its output layout
(``[path, u, k]`` per sample) is a transpose of the natural accumulation
layout; in PyTorch that costs several strided passes over the large
output. A small C kernel (:mod:`equivar.tp._cg_native_src`) does it in one
pass per sample, in cache, with ``equivar._threads.kernel_threads()`` threads
(``torch.get_num_threads()`` unless a thread policy is active).

The library is compiled on first use with the system C compiler (``cc``,
about a second) into ``$EQUIVAR_CACHE`` (default ``~/.cache/equivar``) and
loaded with ``ctypes``; the calls are registered as ``torch.library``
custom ops so ``torch.compile`` sees them as opaque operators. If no
compiler is available, or ``EQUIVAR_NATIVE=0``, or the tensors are not
float32/float64 on the CPU, the pure-PyTorch kernels of
:mod:`equivar.tp._cg_fused` are used instead (same results to rounding).
"""

from __future__ import annotations

import ctypes
import os
import sys

import numpy as np
import torch

from .._threads import kernel_threads
from ._cg_native_src import C_SOURCE
from ._native_build import NativeLibrary

_FLAGS = ["-O3", "-march=native", "-fopenmp-simd", "-fPIC", "-shared", "-std=gnu99", "-pthread"]


def _declare(lib) -> None:
    i64, vp, i = ctypes.c_int64, ctypes.c_void_p, ctypes.c_int
    lib.equivar_uvu_forward.argtypes = [
        i,
        i,
        i64,
        vp,
        vp,
        vp,
        i64,
        vp,
        i64,
        i64,
        i64,
        i64,
        vp,
        i64,
        vp,
        vp,
        vp,
        vp,
        i64,
        i64,
        i64,
        i64,
        i64,
        ctypes.c_double,
    ]
    lib.equivar_uvu_forward.restype = i
    lib.equivar_uvu_backward.argtypes = [
        i,
        i,
        i64,
        vp,
        vp,
        vp,
        vp,
        i64,
        vp,
        vp,
        vp,
        i,
        i,
        i,
        i64,
        i64,
        i64,
        i64,
        vp,
        i64,
        vp,
        vp,
        vp,
        i64,
        i64,
        i64,
        i64,
        ctypes.c_double,
    ]
    lib.equivar_uvu_backward.restype = i
    lib.equivar_uvu_double_backward.argtypes = [
        i,
        i,
        i64,
        vp,
        vp,
        vp,
        vp,
        i64,
        vp,
        vp,
        vp,
        vp,
        vp,
        vp,
        vp,
        i64,
        i64,
        i64,
        i64,
        vp,
        i64,
        vp,
        vp,
        vp,
        vp,
        i64,
        i64,
        i64,
        i64,
        i64,
        ctypes.c_double,
    ]
    lib.equivar_uvu_double_backward.restype = i


_LIB = NativeLibrary(C_SOURCE, _FLAGS, "equivar_cg", _declare)


def library():
    """The loaded kernel library, or ``None`` (``native_error()`` says why)."""
    return _LIB.get()


def native_error() -> str | None:
    """Why the native kernels are unavailable (``None`` if they are available or not tried yet)."""
    return _LIB.error


def usable(x1: torch.Tensor, x2: torch.Tensor, w: torch.Tensor) -> bool:
    """Whether the native kernels can run on these tensors (the library itself is checked at construction)."""
    return (
        x1.device.type == "cpu"
        and x1.dtype in (torch.float32, torch.float64)
        and x2.device.type == "cpu"
        and w.device.type == "cpu"
        and x2.dtype == x1.dtype
        and w.dtype == x1.dtype
    )


def pack_plan(irreps_in1, irreps_in2, irreps_out, instructions, offsets, cg_np) -> tuple[dict, tuple]:
    """Plan arrays (numpy) and sizes ``(D1, D2, Dout, max_mulp, max_d1, max_d3, max_nn)`` for the kernels.

    ``instructions``: ``(index, Instruction)`` pairs of channelwise paths;
    see :mod:`equivar.tp._cg_native_src` for the layout.
    """
    s1, s2, so = irreps_in1.slices(), irreps_in2.slices(), irreps_out.slices()
    by_group: dict[int, list] = {}
    for n, ins in instructions:
        by_group.setdefault(ins.i_in1, []).append((n, ins))
    groups, subs, nnz, coef, nnz_i, coef_i = [], [], [], [], [], []
    written: set = set()
    max_mul = max_d1 = max_d3 = max_nn = 1
    for a in sorted(by_group):
        mul, ir1 = irreps_in1[a]
        mp = (mul + 7) // 8 * 8
        s_first = len(subs)
        for n, ins in by_group[a]:
            m2, ir2 = irreps_in2[ins.i_in2]
            iro = irreps_out[ins.i_out].ir
            C = cg_np(ir1.l, ir2.l, iro.l) * ins.path_weight
            idx = np.argwhere(C != 0)  # (i, j, k)
            by_k = idx[np.lexsort((idx[:, 1], idx[:, 0], idx[:, 2]))]
            by_i = idx[np.lexsort((idx[:, 1], idx[:, 2], idx[:, 0]))]
            max_nn = max(max_nn, len(idx))
            for vi in range(m2):
                j0 = s2[ins.i_in2].start + vi * ir2.dim
                out_start = so[ins.i_out].start
                wb, ws = (offsets[n] + vi, m2) if ins.has_weight else (-1, 0)
                assign = 0 if out_start in written else 1
                written.add(out_start)
                subs.append([iro.dim, out_start, wb, ws, len(nnz), len(idx), assign])
                for (i, j, k), (i2, j2, k2) in zip(by_k, by_i):
                    nnz.append([i * mp, j0 + j, k * mp])
                    coef.append(C[i, j, k])
                    nnz_i.append([i2 * mp, j0 + j2, k2 * mp])
                    coef_i.append(C[i2, j2, k2])
            max_d3 = max(max_d3, iro.dim)
        groups.append([s1[a].start, mul, ir1.dim, s_first, len(subs) - s_first])
        max_mul, max_d1 = max(max_mul, mp), max(max_d1, ir1.dim)
    zero = [[s.start, s.stop] for s, (mul, ir) in zip(so, irreps_out) if s.start not in written and mul * ir.dim > 0]
    arrays = {
        "n_groups": np.asarray(groups, dtype=np.int64).reshape(-1, 5),
        "n_subs": np.asarray(subs, dtype=np.int64).reshape(-1, 7),
        "n_nnz": np.asarray(nnz, dtype=np.int64).reshape(-1, 3),
        "n_coef": np.asarray(coef, dtype=np.float64),
        "n_nnz_i": np.asarray(nnz_i, dtype=np.int64).reshape(-1, 3),
        "n_coef_i": np.asarray(coef_i, dtype=np.float64),
        "n_zero": np.asarray(zero, dtype=np.int64).reshape(-1, 2),
    }
    return arrays, (irreps_in1.dim, irreps_in2.dim, irreps_out.dim, max_mul, max_d1, max_d3, max_nn)


def _ptr(t: torch.Tensor) -> int:
    return t.data_ptr()


_MADV_HUGEPAGE = 14
_HUGE = 2 * 2**20
_madvise = None


def _empty(shape, like: torch.Tensor) -> torch.Tensor:
    """``torch.empty``; with ``EQUIVAR_HUGEPAGES=1``, large interiors are advised to use huge pages (Linux).

    A fresh multi-megabyte output costs one page fault per 4 KiB on first
    write (about 40 ms for the 80 MB output of the L=3 edge product on the
    benchmark machine); with transparent 2 MiB pages it is a few
    milliseconds when huge pages are readily available. Measured
    interleaved with other large allocations (a model, or e3nn in the
    benchmark) the huge-page faults became slower than small pages at
    200 MB outputs, so this is opt-in. Only this buffer is advised.
    """
    global _madvise
    t = torch.empty(shape, dtype=like.dtype, device=like.device)
    n = t.numel() * t.element_size()
    if n < 4 * _HUGE or not sys.platform.startswith("linux") or os.environ.get("EQUIVAR_HUGEPAGES", "0") != "1":
        return t
    if _madvise is None:
        try:
            f = ctypes.CDLL(None, use_errno=True).madvise
            f.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
            f.restype = ctypes.c_int
            _madvise = f
        except (OSError, AttributeError):
            _madvise = False
    if _madvise:
        p = t.data_ptr()
        a, e = (p + _HUGE - 1) // _HUGE * _HUGE, (p + n) // _HUGE * _HUGE
        if e > a:
            _madvise(a, e - a, _MADV_HUGEPAGE)  # advisory: failure just means small pages
    return t


def uvu_forward(x1, x2, w, groups, subs, nnz, coef, zero, sizes, uw: float) -> torch.Tensor:
    """``out [Z, Dout]`` of the channelwise paths (native CPU kernel); ``w`` per sample [Z, W] or shared [W].

    ``uw``: weight of the unweighted paths (1; 0 to compute the weighted paths alone). Called
    directly in eager mode; :func:`cg_uvu_forward` is the same as a ``torch.library`` custom op,
    what ``torch.compile`` sees (its dispatch costs ~40 µs per call, which is as much as the
    kernel itself for a few hundred edges).
    """
    D1, D2, Dout, max_mulp, max_d1, max_d3, max_nn = sizes
    Z = x1.shape[0]
    out = _empty((Z, Dout), x1)
    if Z == 0:
        return out
    x1, x2, w, coef = x1.contiguous(), x2.contiguous(), w.contiguous(), coef.contiguous()
    W = w.shape[-1]
    w_rs = 0 if w.dim() == 1 else W
    if W == 0:
        w = x1.new_zeros(1)
    st = library().equivar_uvu_forward(
        int(x1.dtype == torch.float64),
        kernel_threads(),
        Z,
        _ptr(x1),
        _ptr(x2),
        _ptr(w),
        w_rs,
        _ptr(out),
        D1,
        D2,
        Dout,
        W,
        _ptr(groups),
        groups.shape[0],
        _ptr(subs),
        _ptr(nnz),
        _ptr(coef),
        _ptr(zero),
        zero.shape[0],
        max_mulp,
        max_d1,
        max_d3,
        max_nn,
        float(uw),
    )
    if st != 0:
        raise MemoryError("equivar native cg kernel: allocation failed")
    return out


@torch.library.custom_op("equivar::cg_uvu_forward", mutates_args=())
def cg_uvu_forward(
    x1: torch.Tensor,
    x2: torch.Tensor,
    w: torch.Tensor,
    groups: torch.Tensor,
    subs: torch.Tensor,
    nnz: torch.Tensor,
    coef: torch.Tensor,
    zero: torch.Tensor,
    sizes: list[int],
    uw: float,
) -> torch.Tensor:
    """:func:`uvu_forward` as a custom op (opaque to ``torch.compile``)."""
    return uvu_forward(x1, x2, w, groups, subs, nnz, coef, zero, sizes, uw)


@cg_uvu_forward.register_fake
def _(x1, x2, w, groups, subs, nnz, coef, zero, sizes, uw):
    return x1.new_empty(x1.shape[0], sizes[2])


def uvu_backward(G, x1, x2, w, groups, subs, nnz, coef, sizes, need, uw: float):
    """Gradients (dx1, dx2, dw) of ``<G, out>``; tensors not in ``need`` are returned empty.

    Eager entry point; :func:`cg_uvu_backward` is the custom op for ``torch.compile``.
    """
    D1, D2, Dout, max_mulp, max_d1, max_d3, max_nn = sizes
    nx1, nx2, nw = need
    Z = x1.shape[0]
    G, x1, x2, w, coef = G.contiguous(), x1.contiguous(), x2.contiguous(), w.contiguous(), coef.contiguous()
    W = w.shape[-1]
    shared = w.dim() == 1
    gx1 = _empty(x1.shape, x1) if nx1 else x1.new_empty(0)
    gx2 = x2.new_empty(x2.shape) if nx2 else x2.new_empty(0)
    gw = (torch.zeros_like(w) if shared else _empty(w.shape, w)) if nw else w.new_empty(0)
    if Z == 0:
        return gx1.zero_(), gx2.zero_(), gw.zero_()
    wp = w if W > 0 else x1.new_zeros(1)
    st = library().equivar_uvu_backward(
        int(x1.dtype == torch.float64),
        kernel_threads(),
        Z,
        _ptr(G),
        _ptr(x1),
        _ptr(x2),
        _ptr(wp),
        0 if shared else W,
        _ptr(gx1) if nx1 else None,
        _ptr(gx2) if nx2 else None,
        _ptr(gw) if nw else None,
        int(nx1),
        int(nx2),
        int(nw),
        D1,
        D2,
        Dout,
        W,
        _ptr(groups),
        groups.shape[0],
        _ptr(subs),
        _ptr(nnz),
        _ptr(coef),
        max_mulp,
        max_d1,
        max_d3,
        max_nn,
        float(uw),
    )
    if st != 0:
        raise MemoryError("equivar native cg kernel: allocation failed")
    return gx1, gx2, gw


@torch.library.custom_op("equivar::cg_uvu_backward", mutates_args=())
def cg_uvu_backward(
    G: torch.Tensor,
    x1: torch.Tensor,
    x2: torch.Tensor,
    w: torch.Tensor,
    groups: torch.Tensor,
    subs: torch.Tensor,
    nnz: torch.Tensor,
    coef: torch.Tensor,
    sizes: list[int],
    need: list[bool],
    uw: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`uvu_backward` as a custom op (opaque to ``torch.compile``)."""
    return uvu_backward(G, x1, x2, w, groups, subs, nnz, coef, sizes, need, uw)


@cg_uvu_backward.register_fake
def _(G, x1, x2, w, groups, subs, nnz, coef, sizes, need, uw):
    nx1, nx2, nw = need
    return (
        x1.new_empty(x1.shape) if nx1 else x1.new_empty(0),
        x2.new_empty(x2.shape) if nx2 else x2.new_empty(0),
        w.new_empty(w.shape) if nw else w.new_empty(0),
    )


def uvu_double_backward(G, x1, x2, w, gg1, gg2, ggw, groups, subs, nnz, coef, zero, sizes, need, uw: float):
    """Derivatives of ``<gg1, dx1> + <gg2, dx2> + <ggw, dw>`` (the backward's outputs against directions
    ``gg*``, ``None`` = zero) with respect to ``(G, x1, x2, w)``, in one sweep over the coefficients.

    This is the second backward of a force loss. Equivalent to the three forward and three backward
    calls of :class:`equivar.tp._cg_fused.FusedTPBackward`'s ``backward`` (which stays the
    differentiable path); ``need``: which of the four to return (others ``None``). Not differentiable:
    called with gradient recording off. ``zero``: output ranges no sub-path writes (the forward's).
    """
    D1, D2, Dout, max_mulp, max_d1, max_d3, max_nn = sizes
    nG, n1, n2, nW = need
    Z = x1.shape[0]
    G, x1, x2, w, coef = G.contiguous(), x1.contiguous(), x2.contiguous(), w.contiguous(), coef.contiguous()
    gg1, gg2, ggw = (None if t is None else t.contiguous() for t in (gg1, gg2, ggw))
    W = w.shape[-1]
    shared = w.dim() == 1
    oG = x1.new_empty(G.shape) if nG else None
    o1 = x1.new_empty(x1.shape) if n1 else None
    o2 = x2.new_empty(x2.shape) if n2 else None
    oW = (torch.zeros_like(w) if shared else w.new_empty(w.shape)) if nW else None
    if Z == 0:
        return tuple(None if t is None else t.zero_() for t in (oG, o1, o2, oW))
    wp = w if W > 0 else x1.new_zeros(1)
    if W == 0:
        ggw = None
    p = lambda t: None if t is None else t.data_ptr()  # noqa: E731
    st = library().equivar_uvu_double_backward(
        int(x1.dtype == torch.float64),
        kernel_threads(),
        Z,
        p(G),
        p(x1),
        p(x2),
        p(wp),
        0 if shared else W,
        p(gg1),
        p(gg2),
        p(ggw),
        p(oG),
        p(o1),
        p(o2),
        p(oW),
        D1,
        D2,
        Dout,
        W,
        p(groups),
        groups.shape[0],
        p(subs),
        p(nnz),
        p(coef),
        p(zero),
        zero.shape[0],
        max_mulp,
        max_d1,
        max_d3,
        max_nn,
        float(uw),
    )
    if st != 0:
        raise MemoryError("equivar native cg kernel: allocation failed")
    return oG, o1, o2, oW
