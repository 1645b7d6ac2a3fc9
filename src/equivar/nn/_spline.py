"""Learned spline radial functions (Facet-style replacement for the radial MLP).

Source: the "Facet" architecture (2025) replaces MACE's radial MLP with
learned splines of the edge length: each output channel is a function of
``r`` stored as values on a uniform grid, evaluated by a local cubic
formula. Evaluation costs a gather of 4 grid rows and a 4-term sum per
edge instead of a 3-hidden-layer MLP.
"""

from __future__ import annotations

import torch

from ._radial import BesselBasis, PolynomialCutoff


class SplineRadial(torch.nn.Module):
    r"""Uniform cubic B-spline radial functions times a polynomial cutoff.

    ``R_c(r) = cutoff(r) * sum_{j=0..3} B_j(u) c[i + j, c]`` with knot
    spacing ``h = r_max / num_knots``, ``i = floor(r / h)``,
    ``u = r / h - i``, and the uniform cubic B-spline blending functions
    ``B_j``. ``R`` is twice continuously differentiable in ``r`` (smooth
    forces); the cutoff makes it vanish with two derivatives at ``r_max``.

    Parameters
    ----------
    r_max : float
        Cutoff (Å); inputs ``r >= r_max`` give 0.
    num_out : int
        Number of radial functions (``tp.weight_numel``).
    num_knots : int
        Grid intervals on ``[0, r_max]`` (default 32; ``num_knots + 3``
        control values per function are learned).
    p : int
        Polynomial cutoff order (default 5).
    init_basis : int
        The control values are initialised from a random combination of
        this many Bessel functions (so initial functions are smooth with
        about unit variance, like an MLP of the Bessel basis).
    seed : int, optional
        Seed for that initialisation (default: torch's global generator).

    Shapes: ``r [E]`` or ``[E, 1]`` (Å) -> ``[E, num_out]``; module dtype.
    Invariant. Raises ``ValueError`` for ``num_knots < 1``.
    """

    def __init__(
        self, r_max: float, num_out: int, num_knots: int = 32, p: int = 5, init_basis: int = 8, seed: int | None = None
    ):
        super().__init__()
        if num_knots < 1:
            raise ValueError(f"num_knots must be >= 1, got {num_knots!r}")
        self.r_max = float(r_max)
        self.num_out = int(num_out)
        self.num_knots = int(num_knots)
        self.h = self.r_max / num_knots
        self.cutoff = PolynomialCutoff(r_max, p)
        gen = torch.Generator().manual_seed(seed) if seed is not None else None
        # control points sit at r = (k - 1) h, k = 0..num_knots+2
        rk = (torch.arange(num_knots + 3, dtype=torch.float64) - 1.0) * self.h
        basis = BesselBasis(r_max, init_basis).double()(rk.clamp(min=0.0))  # [K+3, nb]
        basis = basis / basis.pow(2).mean(0).clamp(min=1e-12).sqrt()
        coef = torch.randn(init_basis, num_out, generator=gen, dtype=torch.float64) / init_basis**0.5
        self.values = torch.nn.Parameter((basis @ coef).to(torch.get_default_dtype()))  # [K+3, num_out]

    def blend(self, r: torch.Tensor) -> torch.Tensor:
        """Cutoff-weighted blending matrix ``[E, num_knots + 3]`` (4 nonzeros per row).

        ``forward(r) == blend(r) @ values``; layers sharing ``r_max``,
        ``num_knots`` and ``p`` can share one ``blend(r)``.
        """
        if r.dim() > 1 and r.shape[-1] == 1:
            r = r.squeeze(-1)
        t = (r / self.h).clamp(min=0.0)
        i = t.detach().floor().clamp(max=self.num_knots - 1)
        u = (t - i).clamp(max=1.0).unsqueeze(-1)
        u2 = u * u
        u3 = u2 * u
        w = torch.cat([(1 - u) ** 3, 3 * u3 - 6 * u2 + 4, -3 * u3 + 3 * u2 + 3 * u + 1, u3], dim=-1) / 6.0  # [E, 4]
        w = w * self.cutoff(r).unsqueeze(-1)
        idx = i.long().unsqueeze(-1) + torch.arange(4, device=r.device)  # [E, 4]
        return torch.zeros(r.shape + (self.num_knots + 3,), dtype=w.dtype, device=w.device).scatter(-1, idx, w)

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        return self.blend(r) @ self.values

    def extra_repr(self) -> str:
        return f"r_max={self.r_max}, num_out={self.num_out}, num_knots={self.num_knots}"
