"""Real spherical harmonics in e3nn's basis: the numerical kernel (degrees as ints).

The recurrence, its analytic backward and the normalizations behind
:func:`equivar.o3.spherical_harmonics` (which adds the parsing of irreps
strings). Kept apart from ``_spherical_harmonics`` so that ``_wigner`` (and
through it ``Irreps.D_from_matrix``) can use the harmonics without importing
``_irreps``: the modules of ``o3`` then import one another in one direction
(``_limits``, ``_rotation``, ``_quadrature`` -> ``_sh_kernel`` -> ``_wigner``
-> ``_irreps`` -> ``_spherical_harmonics``).
"""

from __future__ import annotations

import functools
import math

import torch

from ._limits import MAX_L

MAX_SH_L = MAX_L


@functools.cache
def _coefficients(lmax: int):
    """Recurrence constants for P~_l^m = F(l,m) Q_l^m, F including sqrt(2) for m>0."""

    def logF(l, m):
        # component normalisation: sqrt((2l+1) (l-m)!/(l+m)!) * (sqrt2 if m>0)
        v = 0.5 * (math.log(2 * l + 1) + math.lgamma(l - m + 1) - math.lgamma(l + m + 1))
        if m > 0:
            v += 0.5 * math.log(2)
        return v

    diag = {}  # P~_m^m constant: F(m,m) (2m-1)!!
    for m in range(lmax + 1):
        log_df = sum(math.log(2 * k - 1) for k in range(1, m + 1))
        diag[m] = math.exp(logF(m, m) + log_df)
    rec = {}
    for m in range(lmax + 1):
        for l in range(m + 1, lmax + 1):
            a = math.exp(logF(l, m) - logF(l - 1, m)) * (2 * l - 1) / (l - m)
            b = math.exp(logF(l, m) - logF(l - 2, m)) * (l + m - 1) / (l - m) if l - 2 >= m else 0.0
            rec[(l, m)] = (a, b)
    return diag, rec


def _sh_rows(lmax: int, x, y, z, r2, out: torch.Tensor | None = None) -> list:
    """All component-normalised harmonics 0..lmax as rows ``[(lmax+1)^2]`` of ``[N]``.

    ``x, y, z`` are e3nn coordinates; the recurrence's polar axis is e3nn's y.
    With the real basis without Condon-Shortley phase the signs equal e3nn's
    for every l (checked against e3nn in the tests). ``r2`` is ``|v|^2`` (a
    tensor, or the float 1.0 for unit vectors). With ``out`` (``[D, N]``,
    no autograd) rows are written in place.
    """
    X_, Y_, Z_ = z, x, y  # standard frame: polar axis Z_ = y, X_ = z, Y_ = x
    diag, rec = _coefficients(lmax)
    # (X + iY)^m = c_m + i s_m
    c: list = [None, X_]
    s: list = [None, Y_]
    for m in range(2, lmax + 1):
        c.append(X_ * c[m - 1] - Y_ * s[m - 1])
        s.append(X_ * s[m - 1] + Y_ * c[m - 1])
    # P~_l^m by recurrence in l for fixed m (P~_m^m is a constant)
    P: dict = {}
    for m in range(lmax + 1):
        P[(m, m)] = diag[m]
        for l in range(m + 1, lmax + 1):
            a, b = rec[(l, m)]
            if l == m + 1:
                P[(l, m)] = Z_ * (a * diag[m])
            elif l == m + 2:
                P[(l, m)] = (Z_ * P[(l - 1, m)]) * a - r2 * (b * diag[m])
            else:
                P[(l, m)] = (Z_ * P[(l - 1, m)]) * a - (
                    r2 * P[(l - 2, m)] if isinstance(r2, torch.Tensor) else P[(l - 2, m)]
                ) * b
    rows = []
    k = 0
    for l in range(lmax + 1):
        for m in range(-l, l + 1):
            pm = P[(l, abs(m))]
            if out is not None:
                if m == 0:
                    if isinstance(pm, float):
                        out[k].fill_(pm)
                    else:
                        out[k].copy_(pm)
                else:
                    t = c[m] if m > 0 else s[-m]
                    torch.mul(t, pm, out=out[k])
            else:
                if m == 0:
                    v = torch.full_like(x, pm) if isinstance(pm, float) else pm
                else:
                    v = (c[m] if m > 0 else s[-m]) * pm
                rows.append(v)
            k += 1
    return rows


def _unit(v: torch.Tensor):
    """``(v / |v|, 1/|v|, ok)`` with 0 in place of the direction of a zero vector."""
    n2 = (v * v).sum(-1, keepdim=True)
    tiny = torch.finfo(v.dtype).tiny ** 0.5
    ok = n2 > tiny
    inv = torch.where(ok, torch.rsqrt(torch.where(ok, n2, torch.ones_like(n2))), torch.zeros_like(n2))
    return v * inv, inv, ok


def _sh_reference(lmax: int, v: torch.Tensor, normalize: bool) -> torch.Tensor:
    """Plain autograd version ``[N, (lmax+1)^2]`` (used to derive gradient tables and in tests)."""
    if normalize:
        v, _, ok = _unit(v)
        r2 = ok.squeeze(-1).to(v.dtype)
    else:
        r2 = (v * v).sum(-1)
    x, y, z = v.unbind(-1)
    return torch.stack(_sh_rows(lmax, x, y, z, r2), dim=-1)


@functools.cache
def _fast_plan(lmax: int):
    """Index plan of the vectorised forward: per l the recurrence coefficient
    vectors over m, and the gather indices combining P~_l^|m| with c_m / s_m."""
    diag, rec = _coefficients(lmax)
    coef = []
    for l in range(lmax + 1):
        if l >= 2:
            a = [rec[(l, m)][0] for m in range(l - 1)]
            b = [rec[(l, m)][1] for m in range(l - 1)]
        else:
            a, b = [], []
        top = rec[(l, l - 1)][0] * diag[l - 1] if l >= 1 else None
        coef.append((a, b, top, diag[l]))
    # P layout: block l holds m = 0..l at offset l(l+1)/2; CS layout: [s_L..s_1, 1, c_1..c_L]
    pidx, cidx = [], []
    for l in range(lmax + 1):
        for m in range(-l, l + 1):
            pidx.append(l * (l + 1) // 2 + abs(m))
            cidx.append(lmax + m)
    return coef, pidx, cidx


_PLAN_TENSORS: dict = {}


def _plan_tensors(lmax: int, dtype, device):
    key = (lmax, dtype, device)
    if key not in _PLAN_TENSORS:
        coef, pidx, cidx = _fast_plan(lmax)
        tens = [
            (
                torch.tensor(a, dtype=dtype, device=device)[:, None],
                torch.tensor(b, dtype=dtype, device=device)[:, None],
                top,
                d,
            )
            for a, b, top, d in coef
        ]
        _PLAN_TENSORS[key] = (
            tens,
            torch.tensor(pidx, dtype=torch.long, device=device),
            torch.tensor(cidx, dtype=torch.long, device=device),
        )
    return _PLAN_TENSORS[key]


#: Up to this degree the forward writes rows directly (fewer, cheaper ops);
#: above it the m-vectorised recurrence wins.
_ROWWISE_MAX_L = 4


def _sh_forward_fast(lmax: int, v: torch.Tensor, normalize: bool) -> torch.Tensor:
    """No-autograd forward ``[N, (lmax+1)^2]``, vectorised over m.

    The Legendre recurrence runs once per l on ``[N, l+1]`` blocks; the
    azimuthal parts ``(X + iY)^m`` come from one cumulative product; the
    output is one gather-multiply, written contiguously.
    """
    with torch.no_grad():
        N = v.shape[0]
        # [3, N]: component-major rows are contiguous; always a copy (normalised in place below)
        vt = v.t().clone(memory_format=torch.contiguous_format)
        r2 = None
        bad = None
        if normalize:
            n2 = vt[0] * vt[0]
            n2.addcmul_(vt[1], vt[1]).addcmul_(vt[2], vt[2])
            tiny = torch.finfo(v.dtype).tiny ** 0.5
            inv = n2.rsqrt_()
            bad = ~(inv < 1 / tiny)  # zero (or denormal) vectors, also catches inf
            vt.mul_(inv)
            if lmax > 0 and vt.device.type != "cpu":  # masked, not branched: no host-device synchronisation
                vt.masked_fill_(bad, 0.0)
            elif lmax > 0 and bool(bad.any()):
                vt[:, bad] = 0.0
            else:
                bad = None
        else:
            r2 = (vt * vt).sum(0, keepdim=True)
        if lmax <= _ROWWISE_MAX_L:
            # small l: each output row is one or two fused ops into its slot
            out = v.new_empty(((lmax + 1) ** 2, N))
            rr = r2[0] if r2 is not None else 1.0
            _sh_rows(lmax, vt[0], vt[1], vt[2], rr, out=out)
            if bad is not None:
                out[1:].masked_fill_(bad, 0.0)
            return out.t()
        X_, Y_, Z_ = vt[2:3], vt[0:1], vt[1:2]  # polar axis is e3nn's y
        tens, pidx, cidx = _plan_tensors(lmax, v.dtype, v.device)
        blocks = [v.new_full((1, N), tens[0][3])]
        for l in range(1, lmax + 1):
            a, b, top, d = tens[l]
            parts = []
            if l >= 2:
                t = (Z_ * blocks[l - 1][: l - 1]).mul_(a)
                t2 = blocks[l - 2] * b
                if r2 is not None:
                    t2.mul_(r2)
                parts.append(t.sub_(t2))
            parts.append(Z_ * top)
            parts.append(v.new_full((1, N), d))
            blocks.append(torch.cat(parts, dim=0))
        P = torch.cat(blocks, dim=0)  # [K, N]
        if lmax > 0:
            c, s = [X_], [Y_]
            for m in range(1, lmax):
                c.append(X_ * c[-1] - Y_ * s[-1])
                s.append(X_ * s[-1] + Y_ * c[-2])
            CS = torch.cat(s[::-1] + [v.new_ones(1, N)] + c, dim=0)  # [2L+1, N]
            out = P.index_select(0, pidx).mul_(CS.index_select(0, cidx))
        else:
            out = P
        if bad is not None:
            out[1:].masked_fill_(bad, 0.0)
        return out.t()


@functools.cache
def _derivative_table(l: int) -> torch.Tensor:
    """``M [3, 2l+1, 2l-1]`` with ``d/dx_a R_l = M[a] @ R_{l-1}`` for the solid harmonics.

    The derivative of a harmonic homogeneous polynomial of degree l is one
    of degree l-1, hence a linear combination of the ``R_{l-1,m'}``; the
    coefficients are fitted once, exactly up to rounding, in float64.
    """
    g = torch.Generator().manual_seed(1234 + l)
    with torch.enable_grad():
        pts = torch.randn(4 * (2 * l + 1), 3, generator=g, dtype=torch.float64).requires_grad_()
        R = _sh_reference(l, pts, normalize=False)
        Rl = R[:, l * l :]
        Rprev = R[:, (l - 1) ** 2 : l * l].detach()
        M = torch.empty(3, 2 * l + 1, 2 * l - 1, dtype=torch.float64)
        for m in range(2 * l + 1):
            (grad,) = torch.autograd.grad(Rl[:, m].sum(), pts, retain_graph=True)
            M[:, m, :] = torch.linalg.lstsq(Rprev, grad).solution.t()
    M[M.abs() < 1e-10] = 0.0
    return M


_TABLES: dict = {}


def _grad_table(l: int, dtype, device) -> torch.Tensor:
    """``[3 (2l-1), 2l+1]`` so that ``T @ g_l`` gives the three directional terms."""
    key = (l, dtype, device)
    if key not in _TABLES:
        M = _derivative_table(l)  # [3, 2l+1, 2l-1]
        _TABLES[key] = (
            M.permute(0, 2, 1).reshape(3 * (2 * l - 1), 2 * l + 1).to(dtype=dtype, device=device).contiguous()
        )
    return _TABLES[key]


def _sh_backward(g: torch.Tensor, v: torch.Tensor, Y: torch.Tensor, lmax: int, normalize: bool) -> torch.Tensor:
    """``d(sum g * Y)/dv`` from the harmonics of one degree lower (differentiable ops only).

    Works component-major (``[D, N]``) so every product is a contiguous GEMM
    or row operation.
    """
    gT = g.t().contiguous()
    YT = Y.t()
    N = g.shape[0]
    ghat = None
    for l in range(1, lmax + 1):
        H = (_grad_table(l, g.dtype, g.device) @ gT[l * l : (l + 1) ** 2]).view(3, 2 * l - 1, N)
        term = (H * YT[None, (l - 1) ** 2 : l * l]).sum(1)
        ghat = term if ghat is None else ghat + term
    if normalize:
        vt = v.t()
        n2 = (vt * vt).sum(0, keepdim=True)
        tiny = torch.finfo(v.dtype).tiny ** 0.5
        ok = n2 > tiny
        inv = torch.where(ok, torch.rsqrt(torch.where(ok, n2, torch.ones_like(n2))), torch.zeros_like(n2))
        u = vt * inv
        ghat = (ghat - (ghat * u).sum(0, keepdim=True) * u) * inv
    return ghat.t().contiguous()


class _SphericalHarmonics(torch.autograd.Function):
    """Harmonics 0..lmax with an analytic backward (itself differentiable, so
    forces, their training gradients and higher derivatives work)."""

    @staticmethod
    def forward(ctx, v, lmax, normalize):
        Y = _sh_forward_fast(lmax, v, normalize)
        ctx.save_for_backward(v, Y)
        ctx.lmax, ctx.normalize = lmax, normalize
        return Y

    @staticmethod
    def backward(ctx, g):
        v, Y = ctx.saved_tensors
        if ctx.lmax == 0:
            return torch.zeros_like(v), None, None
        if torch.is_grad_enabled():
            # double backward: the harmonics must be a differentiable function of v
            Y = _SphericalHarmonics.apply(v, ctx.lmax, ctx.normalize)
        return _sh_backward(g, v, Y, ctx.lmax, ctx.normalize), None, None


def harmonics(lst: list[int], vectors: torch.Tensor, normalize: bool, normalization: str) -> torch.Tensor:
    """The harmonics of degrees ``lst`` (validated ints) of ``vectors [..., 3]``, concatenated.

    See :func:`equivar.o3.spherical_harmonics` for the parameters and the errors raised.
    """
    if not isinstance(vectors, torch.Tensor):
        raise ValueError(f"vectors must be a torch.Tensor [..., 3], got {type(vectors).__name__}")
    if not vectors.is_floating_point():
        raise ValueError(f"vectors must be a floating-point tensor, got dtype {vectors.dtype}")
    if vectors.shape[-1:] != (3,):
        raise ValueError(f"vectors must have trailing dimension 3, got shape {tuple(vectors.shape)}")
    if normalization not in ("component", "norm", "integral"):
        raise ValueError(f"normalization must be 'component', 'norm' or 'integral', got {normalization!r}")
    lmax = max(lst)
    batch = vectors.shape[:-1]
    v = vectors.reshape(-1, 3)
    if torch.compiler.is_compiling():  # plain autograd ops: traceable (no data-dependent branch), any order
        Y = _sh_reference(lmax, v, normalize)
    else:
        Y = _SphericalHarmonics.apply(v, lmax, normalize)
    if lst != list(range(lmax + 1)):
        idx = torch.cat([torch.arange(l * l, (l + 1) ** 2) for l in lst]).to(Y.device)
        Y = Y.index_select(-1, idx)
    if normalization != "component":
        f = torch.cat(
            [
                torch.full(
                    (2 * l + 1,),
                    (1 / math.sqrt(2 * l + 1)) if normalization == "norm" else 1 / math.sqrt(4 * math.pi),
                    dtype=torch.float64,
                )
                for l in lst
            ]
        ).to(dtype=Y.dtype, device=Y.device)
        Y = Y * f
    return Y.reshape(batch + (Y.shape[-1],))
