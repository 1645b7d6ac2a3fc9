r"""Spherical harmonics of edge vectors for message passing, with native CPU kernels for forward, backward and
the force loss's double backward.

A potential's training step evaluates the edge harmonics once and differentiates them twice (forces, then
the force loss's gradient). :func:`equivar.o3.spherical_harmonics` does this with a few dozen small PyTorch
operations per pass; on the CPU at the sizes of a molecule batch (hundreds of edges) that is a millisecond
per step. :func:`edge_harmonics` computes the same function (``normalize=True``, 'component'
normalization, degrees ``0..lmax``) in the C kernels of :mod:`equivar.nn._edge_harmonics_src`: the
harmonics are the solid harmonics' monomials of the unit vector (coefficients fitted exactly once from
:mod:`equivar.o3`), differentiated analytically through the normalization ``u = v / |v|``. Elsewhere (other
devices, ``torch.compile``, no C compiler, ``EQUIVAR_NATIVE=0``, degrees above 6) it calls
:func:`equivar.o3.spherical_harmonics`.
"""

from __future__ import annotations

import ctypes
import functools
import itertools

import numpy as np
import torch

from .._threads import kernel_threads
from ..o3 import Irreps, spherical_harmonics
from ..tp import NativeLibrary
from ._edge_harmonics_src import C_SOURCE
from ._native_grad import NotDifferentiable

_FLAGS = ["-O3", "-march=native", "-fPIC", "-shared", "-std=gnu99", "-pthread"]
MAX_NATIVE_L = 6  # the monomial form loses digits to cancellation at high degree (float32 ~1e-6 relative at 6)


def _declare(lib) -> None:
    i64, vp, i = ctypes.c_int64, ctypes.c_void_p, ctypes.c_int
    lib.equivar_sh_run.argtypes = [i, i, i, i64, i64, i64, i64] + [vp] * 10
    lib.equivar_sh_run.restype = i


_LIB = NativeLibrary(C_SOURCE, _FLAGS, "equivar_sh", _declare)


def library():
    """The loaded kernel library, or ``None`` (``native_error()`` says why)."""
    return _LIB.get()


def native_error() -> str | None:
    """Why the native kernels are unavailable (``None`` if they are available or not tried yet)."""
    return _LIB.error


@functools.cache
def _terms(lmax: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(tk [T], te [T, 3], tc [T] float64)``: output index, exponents and coefficient of every monomial term of
    the solid harmonics ``0..lmax`` (homogeneous of degree ``l``; fitted by least squares, exact to rounding)."""
    gen = torch.Generator().manual_seed(4321)
    tk, te, tc = [], [], []
    for l in range(lmax + 1):
        exps = [(a, b, l - a - b) for a in range(l + 1) for b in range(l + 1 - a)]
        pts = torch.randn(4 * len(exps) + 8, 3, generator=gen, dtype=torch.float64)
        R = spherical_harmonics([l], pts, normalize=False, normalization="component")  # [n, 2l + 1]
        A = torch.stack([pts[:, 0] ** a * pts[:, 1] ** b * pts[:, 2] ** c for a, b, c in exps], 1)
        coef = R[:1] if l == 0 else torch.linalg.lstsq(A, R).solution  # [monomials, 2l + 1]; Y_0 exactly
        if float((A @ coef - R).abs().max()) > 1e-9 * max(1.0, float(R.abs().max())):
            raise RuntimeError(f"edge harmonics: the degree-{l} harmonics are not fitted by monomials of degree {l}")
        scale = float(coef.abs().max())
        for m, k in itertools.product(range(len(exps)), range(2 * l + 1)):
            c = float(coef[m, k])
            if abs(c) > 1e-12 * scale:
                tk.append(l * l + k)
                te.append(exps[m])
                tc.append(c)
    return (
        torch.tensor(tk, dtype=torch.long),
        torch.tensor(np.asarray(te, dtype=np.int64).reshape(-1, 3)),
        torch.tensor(tc, dtype=torch.float64),
    )


def _run(mode: int, lmax: int, v, g=None, w=None, Y=None, gv=None, gg=None, gv2=None) -> None:
    tk, te, tc = _terms(lmax)
    p = lambda t: None if t is None else t.data_ptr()  # noqa: E731
    st = library().equivar_sh_run(
        int(v.dtype == torch.float64),
        kernel_threads(),
        mode,
        v.shape[0],
        (lmax + 1) ** 2,
        lmax,
        tk.shape[0],
        *(p(t) for t in (tk, te, tc, v, g, w, Y, gv, gg, gv2)),
    )
    if st != 0:
        raise RuntimeError("equivar native edge-harmonics kernel failed (degree above the native limit)")


class HarmonicsNative(torch.autograd.Function):
    """``Y [E, (lmax+1)^2] = HarmonicsNative.apply(v [E, 3] contiguous, lmax)``; differentiable twice."""

    @staticmethod
    def forward(ctx, v, lmax):
        Y = v.new_empty(v.shape[0], (lmax + 1) ** 2)
        _run(0, lmax, v, Y=Y)
        ctx.save_for_backward(v)
        ctx.lmax = lmax
        return Y

    @staticmethod
    def backward(ctx, g):
        (v,) = ctx.saved_tensors
        if g is None or not ctx.needs_input_grad[0]:
            return None, None
        return HarmonicsNativeGrad.apply(g.contiguous(), v, ctx.lmax), None


class HarmonicsNativeGrad(torch.autograd.Function):
    """``gv = apply(g, v, lmax)``: the harmonics' vector-Jacobian product; its backward is the double-backward
    kernel (third derivatives raise)."""

    @staticmethod
    def forward(ctx, g, v, lmax):
        gv = torch.empty_like(v)
        _run(1, lmax, v, g=g, gv=gv)
        ctx.save_for_backward(g, v)
        ctx.lmax = lmax
        return gv

    @staticmethod
    def backward(ctx, w):
        g, v = ctx.saved_tensors
        if w is None:
            return None, None, None
        gg = torch.empty_like(g) if ctx.needs_input_grad[0] else None
        gv2 = torch.empty_like(v) if ctx.needs_input_grad[1] else None
        if gg is None and gv2 is None:
            return None, None, None
        w = w.contiguous()
        with torch.no_grad():
            _run(2, ctx.lmax, v, g=g, w=w, gg=gg, gv2=gv2)
        deps = [t for t in (g, v, w) if t.requires_grad]
        if torch.is_grad_enabled() and deps:  # a third derivative would be asked through these: refuse it
            what = "edge_harmonics' native kernels"
            gg, gv2 = (None if t is None else NotDifferentiable.apply(what, t, *deps) for t in (gg, gv2))
        return gg, gv2, None


def native_usable(vectors: torch.Tensor) -> bool:
    """Whether the native kernels can run on ``vectors`` (CPU float32/float64, not traced by ``torch.compile``)."""
    return (
        vectors.device.type == "cpu"
        and vectors.dtype in (torch.float32, torch.float64)
        and not torch.compiler.is_compiling()
        and library() is not None
    )


def edge_harmonics(irreps_sh, vectors: torch.Tensor, native: bool = True) -> torch.Tensor:
    """Spherical harmonics ``0e + 1o + ... + lmax`` of the normalized ``vectors`` in e3nn's basis, 'component'
    normalization: ``equivar.o3.spherical_harmonics(irreps_sh, vectors, normalize=True,
    normalization="component")``, with native CPU kernels where they apply.

    Parameters
    ----------
    irreps_sh : Irreps or str
        Usually ``Irreps.spherical_harmonics(lmax)``; other degree lists take the :mod:`equivar.o3` path.
    vectors : Tensor ``[E, 3]``
        Edge vectors (Å), float32 or float64; differentiable twice (forces and their training gradients).
        A zero vector gives ``Y_0`` alone (the other components and all gradients 0).
    native : bool
        ``False`` forces the :mod:`equivar.o3` path.

    Returns
    -------
    Tensor ``[E, (lmax + 1)^2]``, the dtype of ``vectors``.

    Raises
    ------
    ValueError
        What :func:`equivar.o3.spherical_harmonics` raises for bad irreps or vectors.
    RuntimeError
        A third derivative through the native kernels.
    """
    irreps_sh = Irreps(irreps_sh)
    lmax = irreps_sh.lmax if len(irreps_sh) else -1
    if (
        native
        and 0 <= lmax <= MAX_NATIVE_L
        and irreps_sh == Irreps.spherical_harmonics(lmax)
        and vectors.dim() == 2
        and vectors.shape[-1] == 3
        and native_usable(vectors)
    ):
        return HarmonicsNative.apply(vectors.contiguous(), lmax)
    return spherical_harmonics(irreps_sh, vectors, normalize=True, normalization="component")
