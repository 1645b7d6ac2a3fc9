"""Radial bases, cutoffs and radial networks for edge lengths.

Sources: Bessel basis and polynomial envelope from Gasteiger et al.,
"Directional Message Passing for Molecular Graphs" (DimeNet, ICLR 2020),
as used by MACE (Batatia et al., NeurIPS 2022) and NequIP.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from ._constants import ExactConstants
from ._mlp import MLP


class BesselBasis(ExactConstants):
    r"""Radial Bessel basis ``sqrt(2/r_max) sin(n pi r / r_max) / r``, ``n = 1..num_basis``.

    Parameters
    ----------
    r_max : float
        Cutoff radius (Å).
    num_basis : int
        Number of functions (MACE default 8).
    trainable : bool
        Learn the frequencies ``n pi / r_max`` (initialised at those values).

    Shapes: ``r [...]`` or ``[..., 1]`` (Å) -> ``[..., num_basis]``; float32
    or float64 (buffers follow the module dtype). At ``r -> 0`` the basis
    tends to ``sqrt(2/r_max) n pi / r_max`` (handled without dividing by 0).
    Invariant (depends on lengths only).

    Raises ``ValueError`` for ``r_max <= 0`` or ``num_basis < 1``.
    """

    def __init__(self, r_max: float, num_basis: int = 8, trainable: bool = False):
        super().__init__()
        if not r_max > 0:
            raise ValueError(f"r_max must be positive, got {r_max!r}")
        if num_basis < 1:
            raise ValueError(f"num_basis must be >= 1, got {num_basis!r}")
        self.r_max = float(r_max)
        self.num_basis = int(num_basis)
        freq = math.pi / r_max * torch.arange(1, num_basis + 1, dtype=torch.float64)
        if trainable:
            self.freq = torch.nn.Parameter(freq.to(torch.get_default_dtype()))
        else:
            self.register_constant("freq", freq)
        self.prefactor = math.sqrt(2.0 / r_max)

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        if r.dim() > 0 and r.shape[-1] == 1:
            r = r.squeeze(-1)
        # sin(f r) / r = f sinc(f r / pi): finite (-> f) at r = 0, no branch
        f = self.freq
        return torch.sinc(r.unsqueeze(-1) * (f / math.pi)) * (f * self.prefactor)

    def extra_repr(self) -> str:
        return f"r_max={self.r_max}, num_basis={self.num_basis}, trainable={isinstance(self.freq, torch.nn.Parameter)}"


class PolynomialCutoff(torch.nn.Module):
    r"""Smooth polynomial envelope (DimeNet / MACE), ``x = r / r_max``:

    ``f(x) = 1 - (p+1)(p+2)/2 x^p + p(p+2) x^(p+1) - p(p+1)/2 x^(p+2)`` for
    ``x < 1`` and 0 beyond; ``f(0)=1``, and ``f``, ``f'``, ``f''`` vanish at
    ``r_max``.

    Parameters
    ----------
    r_max : float
        Cutoff radius (Å).
    p : int
        Polynomial order (MACE default 5; 6 in some NequIP/Allegro configs).

    Shapes: ``r [...]`` or ``[..., 1]`` -> same shape as given (unsqueezed
    trailing 1 kept). Raises ``ValueError`` for ``r_max <= 0`` or ``p < 1``.
    """

    def __init__(self, r_max: float, p: int = 5):
        super().__init__()
        if not r_max > 0:
            raise ValueError(f"r_max must be positive, got {r_max!r}")
        if p < 1:
            raise ValueError(f"polynomial cutoff order p must be >= 1, got {p!r}")
        self.r_max = float(r_max)
        self.p = int(p)

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        p = self.p
        x = r * (1.0 / self.r_max)
        # Horner form of 1 - a x^p + b x^(p+1) - c x^(p+2)
        a, b, c = (p + 1) * (p + 2) / 2.0, p * (p + 2), p * (p + 1) / 2.0
        f = 1.0 + x.pow(p) * (x * (b - c * x) - a)
        return torch.where(x < 1.0, f, torch.zeros_like(f))

    def extra_repr(self) -> str:
        return f"r_max={self.r_max}, p={self.p}"


class RadialEmbedding(torch.nn.Module):
    r"""Edge-length features ``bessel(r) * cutoff(r)`` (MACE's ``RadialEmbeddingBlock``).

    Shapes: ``r [E]`` or ``[E, 1]`` (Å) -> ``[E, num_basis]``, zero for
    ``r >= r_max``. Parameters as :class:`BesselBasis` and
    :class:`PolynomialCutoff`.
    """

    def __init__(self, r_max: float, num_basis: int = 8, p: int = 5, trainable: bool = False):
        super().__init__()
        self.bessel = BesselBasis(r_max, num_basis, trainable)
        self.cutoff = PolynomialCutoff(r_max, p)
        self.out_dim = num_basis

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        if r.dim() > 0 and r.shape[-1] == 1:
            r = r.squeeze(-1)
        return self.bessel(r) * self.cutoff(r).unsqueeze(-1)


class RadialMLP(torch.nn.Module):
    r"""Per-edge tensor-product weights from edge lengths: ``MLP(bessel(r) * cutoff(r))``.

    MACE's radial network: ``[num_basis, *hidden, num_out]`` with SiLU and
    e3nn normalisation (:class:`MLP`, no biases), so the weights vanish
    smoothly at ``r_max``.

    Parameters
    ----------
    r_max : float
        Cutoff (Å).
    num_out : int
        Weights per edge (``tp.weight_numel``).
    num_basis : int
        Bessel functions (default 8).
    hidden : sequence of int
        Hidden widths (MACE: ``[64, 64, 64]``).
    p : int
        Polynomial cutoff order (default 5).
    act : str
        Hidden activation (default ``'silu'``).
    trainable_basis : bool
        Learn the Bessel frequencies.

    Shapes: ``r [E]`` (Å) -> ``[E, num_out]``. Invariant.
    """

    def __init__(
        self,
        r_max: float,
        num_out: int,
        num_basis: int = 8,
        hidden: Sequence[int] = (64, 64, 64),
        p: int = 5,
        act: str = "silu",
        trainable_basis: bool = False,
    ):
        super().__init__()
        self.embedding = RadialEmbedding(r_max, num_basis, p, trainable_basis)
        self.mlp = MLP([num_basis, *hidden, num_out], act=act)
        self.r_max = float(r_max)
        self.num_out = int(num_out)

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.embedding(r))
