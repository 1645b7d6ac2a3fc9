"""Variance-preserving noise schedules: cosine and polynomial, in continuous and discrete time.

Notation (Ho et al. 2020; Kingma et al. 2021; EDM, Hoogeboom et al. ICML 2022):
``alpha_bar_t`` is the signal variance of ``q(x_t | x_0) = N(sqrt(alpha_bar_t) x_0, (1 - alpha_bar_t) I)``;
``alpha_t = sqrt(alpha_bar_t)``, ``sigma_t = sqrt(1 - alpha_bar_t)`` (EDM's alpha and sigma),
``SNR(t) = alpha_bar_t / (1 - alpha_bar_t)`` and EDM's ``gamma(t) = -log SNR(t)``. The same
``alpha_bar_t`` drives the categorical transitions ``Q_t = (alpha_bar_t / alpha_bar_{t-1}) I + (1 - ...) 1 m^T``
(EQGAT-diff uses one schedule family for coordinates and types, with different exponents ``nu``).

Discrete time: ``t = 0, 1, ..., T`` (integers); level 0 is the least noisy (``alpha_bar_0`` just
below 1, or exactly 1 for DDPM's clean ``x_0``: :func:`linear_schedule`), level ``T`` the prior
(``alpha_bar_T`` near 0). Continuous time: ``u`` in ``[0, 1]``.
"""

from __future__ import annotations

import math

import torch

__all__ = [
    "NoiseSchedule",
    "cosine_alpha_bar",
    "cosine_schedule",
    "linear_schedule",
    "polynomial_alpha_bar",
    "polynomial_schedule",
]


def cosine_alpha_bar(u: torch.Tensor, s: float = 0.008, nu: float = 1.0) -> torch.Tensor:
    """Continuous-time cosine schedule ``alpha_bar(u) = f(u) / f(0)``, ``f(u) = cos^2(pi/2 (u^nu + s) / (1 + s))``.

    Nichol & Dhariwal 2021 (``nu = 1``); the exponent ``nu`` is EQGAT-diff's "adaptive" schedule
    (Le et al. ICLR 2024, ``experiments/diffusion/continuous.py``: ``nu = 2.5`` for coordinates,
    ``1`` for atom types and charges, ``1.5`` for bonds).

    Parameters
    ----------
    u : Tensor
        Times in ``[0, 1]``, any shape, floating dtype.
    s, nu : float
        Offset (0.008) and exponent (1).

    Returns
    -------
    Tensor
        ``alpha_bar(u)``, the shape and dtype of ``u``; 1 at ``u = 0``, 0 at ``u = 1``.
    """
    f = torch.cos(0.5 * math.pi * (u.pow(nu) + s) / (1 + s)) ** 2
    f0 = math.cos(0.5 * math.pi * s / (1 + s)) ** 2
    return f / f0


def polynomial_alpha_bar(u: torch.Tensor, power: float = 2.0, s: float = 1e-5) -> torch.Tensor:
    """Continuous-time polynomial schedule ``alpha_bar(u) = (1 - 2 s) (1 - u^power)^2 + s`` (EDM).

    EDM (``equivariant_diffusion/en_diffusion.py``, ``polynomial_schedule``) without the per-step
    clipping of its discrete version; ``s`` is EDM's precision (``1e-5`` in its QM9 runs), so
    ``alpha_bar`` runs from ``1 - s`` at ``u = 0`` to ``s`` at ``u = 1``.

    Parameters
    ----------
    u : Tensor
        Times in ``[0, 1]``, any shape, floating dtype.
    power, s : float
        Exponent (2; EDM's ``polynomial_2``) and precision.

    Returns
    -------
    Tensor
        ``alpha_bar(u)``, the shape and dtype of ``u``.
    """
    return (1 - 2 * s) * (1 - u.pow(power)) ** 2 + s


def _clip_steps(alpha_bar: torch.Tensor, clip_min: float) -> torch.Tensor:
    """Clip the step ratios ``alpha_bar_t / alpha_bar_{t-1}`` (with ``alpha_bar_{-1} = 1``) at ``clip_min``.

    EDM's ``clip_noise_schedule``: cumulative product of the clipped ratios.
    """
    prev = torch.cat([alpha_bar.new_ones(1), alpha_bar[:-1]])
    ratio = (alpha_bar / prev).clamp(min=clip_min, max=1.0)
    return torch.cumprod(ratio, 0)


def _check_int(name: str, value, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")


def _check_positive(name: str, value, high: float | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (value > 0):
        raise ValueError(f"{name} must be a number > 0, got {value!r}")
    if high is not None and not value < high:
        raise ValueError(f"{name} must be < {high}, got {value!r}")


def polynomial_schedule(timesteps: int, power: float = 2.0, s: float = 1e-5, clip_min: float = 0.001):
    """EDM's discrete polynomial schedule (``polynomial_<power>``, precision ``s``), ``T + 1`` levels.

    EDM, ``en_diffusion.py``: on the grid ``u_t = t / T`` (``t = 0..T``), ``(1 - u^power)^2`` with its
    step ratios clipped at ``clip_min`` (0.001; ``clip_noise_schedule``), then mapped to
    ``(1 - 2 s) alpha_bar + s``. ``alpha_bar_0 = 1 - s``, ``alpha_bar_T`` about ``s``.
    EDM's QM9 model: ``T = 1000``, ``power = 2``, ``s = 1e-5``.

    Raises
    ------
    ValueError
        ``timesteps`` not an integer >= 1, ``power`` <= 0, ``s`` not in ``(0, 0.5)``, ``clip_min`` not in ``(0, 1)``.
    """
    _check_int("timesteps", timesteps, 1)
    _check_positive("power", power)
    _check_positive("s", s, 0.5)
    _check_positive("clip_min", clip_min, 1.0)
    u = torch.arange(timesteps + 1, dtype=torch.float64) / timesteps
    a2 = _clip_steps((1 - u.pow(power)) ** 2, clip_min)
    return NoiseSchedule((1 - 2 * s) * a2 + s, name=f"polynomial(T={timesteps}, power={power}, s={s})")


def cosine_schedule(timesteps: int, s: float = 0.008, nu: float = 1.0, clip_min: float = 0.001):
    """The discrete cosine schedule of EDM (``nu = 1``, ``clip_min = 0.001``) and EQGAT-diff (``clip_min = 0.05``).

    On the grid ``u_i = i / (T + 1)`` (``i = 0..T+1``), ``f(u_i) / f(u_0)`` with
    ``f(u) = cos^2(pi/2 (u^nu + s) / (1 + s))``; the step ratios are clipped at ``clip_min`` and
    ``alpha_bar_t`` (``t = 0..T``) is the product of the first ``t + 1`` ratios. EDM's
    ``cosine_beta_schedule`` (betas clipped at 0.999 = ratios at 0.001) is ``nu = 1, clip_min = 0.001``;
    EQGAT-diff's ``get_beta_schedule(kind="cosine" | "adaptive")`` first clips the ratios at its
    ``clamp_alpha_min = 0.05`` (then at 0.001, which no longer binds): ``clip_min = 0.05``, with
    ``nu = 2.5`` (coordinates), ``1`` (atoms, charges), ``1.5`` (bonds) and ``T = 500``.

    Raises
    ------
    ValueError
        ``timesteps`` not an integer >= 1, ``s`` or ``nu`` <= 0, ``clip_min`` not in ``(0, 1)``.
    """
    _check_int("timesteps", timesteps, 1)
    _check_positive("s", s)
    _check_positive("nu", nu)
    _check_positive("clip_min", clip_min, 1.0)
    u = torch.arange(timesteps + 2, dtype=torch.float64) / (timesteps + 1)
    f = cosine_alpha_bar(u, s=s, nu=nu)
    ratios = (f[1:] / f[:-1]).clamp(min=clip_min, max=1.0)
    return NoiseSchedule(torch.cumprod(ratios, 0), name=f"cosine(T={timesteps}, s={s}, nu={nu}, clip_min={clip_min})")


def linear_schedule(timesteps: int, beta_start: float = 1e-4, beta_end: float = 0.02):
    """DDPM's linear schedule (Ho et al. 2020), ``T + 1`` levels with level 0 the clean data.

    ``beta_t`` for ``t = 1..T`` evenly spaced from ``beta_start * 1000 / T`` to ``beta_end * 1000 / T``
    (guided-diffusion's ``get_named_beta_schedule("linear", T)``, the schedule of GeoTDM, Han et al.
    NeurIPS 2024, ``hanjq17/GeoTDM`` ``diffusion/GeoTDM.py``, ``T = 1000``), ``alpha_bar_t = prod_{i <= t}
    (1 - beta_i)`` and ``alpha_bar_0 = 1``. Level ``t`` here is DDPM's ``x_t``: guided-diffusion's index
    ``t - 1`` (its ``alphas_cumprod[t - 1]``), and the last ancestral step (to level 0) returns the
    posterior mean, DDPM's noise-free final step.

    Raises
    ------
    ValueError
        ``timesteps`` not an integer >= 1; ``beta_start`` or ``beta_end`` not in ``(0, 1)`` after the
        ``1000 / T`` scaling, or ``beta_start > beta_end``.
    """
    _check_int("timesteps", timesteps, 1)
    _check_positive("beta_start", beta_start)
    _check_positive("beta_end", beta_end)
    scale = 1000 / timesteps
    lo, hi = beta_start * scale, beta_end * scale
    if not (lo <= hi < 1):
        raise ValueError(f"beta_start * 1000/T = {lo!r} and beta_end * 1000/T = {hi!r} must satisfy start <= end < 1")
    betas = torch.linspace(lo, hi, timesteps, dtype=torch.float64)
    ab = torch.cat([torch.ones(1, dtype=torch.float64), torch.cumprod(1 - betas, 0)])
    return NoiseSchedule(ab, name=f"linear(T={timesteps}, beta {beta_start}..{beta_end})")


class NoiseSchedule:
    """A discrete-time variance-preserving schedule: ``alpha_bar_t`` for ``t = 0..T`` (float64).

    Every method takes integer levels ``t`` (a long tensor of any shape, values in ``0..T``) and
    returns a tensor of that shape in the requested dtype (float64 by default), on ``t``'s device.

    Parameters
    ----------
    alpha_bar : Tensor or sequence of float
        ``[T + 1]``, non-increasing, every value in ``(0, 1)``; ``alpha_bar_0`` may be exactly 1 (the
        clean data, DDPM; then ``SNR(0)`` is infinite and ``sigma_0 = 0``).
    name : str
        Shown in ``repr``.

    Raises
    ------
    ValueError
        fewer than 2 levels, a value outside ``(0, 1)`` or an increase (the message names the level).
    """

    def __init__(self, alpha_bar, name: str = "custom"):
        ab = torch.as_tensor(alpha_bar, dtype=torch.float64).detach().cpu().clone()
        if ab.dim() != 1 or ab.numel() < 2:
            raise ValueError(f"alpha_bar must be 1-D with at least 2 levels, got shape {tuple(ab.shape)}")
        ok = (ab > 0) & (ab < 1)
        ok[0] = ok[0] | (ab[0] == 1)
        bad = torch.nonzero(~ok).flatten()
        if bad.numel():
            i = int(bad[0])
            raise ValueError(f"alpha_bar[{i}] = {float(ab[i])!r} is outside (0, 1)")
        up = torch.nonzero(ab[1:] > ab[:-1]).flatten()
        if up.numel():
            i = int(up[0]) + 1
            raise ValueError(f"alpha_bar must not increase: alpha_bar[{i}] = {float(ab[i])!r} > alpha_bar[{i - 1}]")
        self.alpha_bar_table = ab
        self.name = name
        self._cache: dict = {}

    @property
    def timesteps(self) -> int:
        """``T``: the number of noising steps (levels ``0..T``)."""
        return self.alpha_bar_table.numel() - 1

    def __repr__(self) -> str:
        return f"NoiseSchedule({self.name})"

    def _table(self, device) -> torch.Tensor:
        key = torch.device(device)
        if key not in self._cache:
            self._cache[key] = self.alpha_bar_table.to(key)
        return self._cache[key]

    def _check_t(self, t: torch.Tensor) -> torch.Tensor:
        if not isinstance(t, torch.Tensor) or t.dtype != torch.long:
            raise TypeError(f"levels t must be a long tensor, got {type(t).__name__} {getattr(t, 'dtype', '')}")
        if t.numel() and (int(t.min()) < 0 or int(t.max()) > self.timesteps):
            raise ValueError(f"levels t must be in 0..{self.timesteps}, got values in {int(t.min())}..{int(t.max())}")
        return t

    def alpha_bar(self, t: torch.Tensor, dtype: torch.dtype = torch.float64) -> torch.Tensor:
        """``alpha_bar_t``: the signal variance at level ``t``."""
        return self._table(self._check_t(t).device)[t].to(dtype)

    def alpha(self, t: torch.Tensor, dtype: torch.dtype = torch.float64) -> torch.Tensor:
        """``alpha_t = sqrt(alpha_bar_t)``: the signal scale of ``x_t = alpha_t x_0 + sigma_t eps``."""
        return self.alpha_bar(t).sqrt().to(dtype)

    def sigma(self, t: torch.Tensor, dtype: torch.dtype = torch.float64) -> torch.Tensor:
        """``sigma_t = sqrt(1 - alpha_bar_t)``: the noise scale."""
        return (1 - self.alpha_bar(t)).sqrt().to(dtype)

    def snr(self, t: torch.Tensor, dtype: torch.dtype = torch.float64) -> torch.Tensor:
        """``SNR(t) = alpha_bar_t / (1 - alpha_bar_t)`` (Kingma et al. 2021; EDM ``SNR = exp(-gamma)``)."""
        ab = self.alpha_bar(t)
        return (ab / (1 - ab)).to(dtype)

    def gamma(self, t: torch.Tensor, dtype: torch.dtype = torch.float64) -> torch.Tensor:
        """EDM's ``gamma(t) = -log SNR(t) = log(1 - alpha_bar_t) - log(alpha_bar_t)``."""
        ab = self.alpha_bar(t)
        return (torch.log1p(-ab) - torch.log(ab)).to(dtype)

    def alpha_bar_ratio(self, s: torch.Tensor, t: torch.Tensor, dtype: torch.dtype = torch.float64) -> torch.Tensor:
        """``alpha_bar_t / alpha_bar_s`` for ``s <= t``: the signal variance of ``q(x_t | x_s)``.

        For the Gaussian, ``alpha_{t|s}^2`` (``sigma_{t|s}^2 = 1 - alpha_bar_t / alpha_bar_s``); for the
        categorical kernel, the weight of the identity in ``Q_{t|s}``. Raises ``ValueError`` if any ``s > t``.
        """
        if (s > t).any():
            raise ValueError("alpha_bar_ratio needs s <= t for every element")
        return (self.alpha_bar(t) / self.alpha_bar(s)).to(dtype)

    def index(self, u: torch.Tensor) -> torch.Tensor:
        """Continuous time ``u`` in ``[0, 1]`` -> level ``round(u T)`` (EDM's ``PredefinedNoiseSchedule``); long.

        Raises ``ValueError`` for ``u`` outside ``[0, 1]``.
        """
        if u.numel() and (float(u.min()) < 0 or float(u.max()) > 1):
            raise ValueError(f"continuous times must be in [0, 1], got values in {float(u.min())}..{float(u.max())}")
        return torch.round(u.to(torch.float64) * self.timesteps).long()
