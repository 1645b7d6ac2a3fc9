"""Gaussian diffusion of positions in each graph's zero-centre-of-mass subspace (EDM).

Hoogeboom, Satorras, Vignac, Welling, "Equivariant Diffusion for Molecule Generation in 3D", ICML
2022 (code ``ehoogeboom/e3_diffusion_for_molecules``, ``equivariant_diffusion/en_diffusion.py``):

- forward: ``q(x_t | x_0) = N(alpha_t x_0, sigma_t^2 I)`` restricted to the subspace, i.e.
  ``x_t = alpha_t x_0 + sigma_t eps`` with ``eps`` isotropic Gaussian noise projected onto it;
- posterior, for levels ``s < t`` (``alpha_{t|s} = alpha_t / alpha_s``,
  ``sigma_{t|s}^2 = sigma_t^2 - alpha_{t|s}^2 sigma_s^2``): ``q(x_s | x_t, x_0) = N(mu, sigma^2 I)`` with
  ``mu = alpha_{t|s} sigma_s^2 / sigma_t^2 x_t + alpha_s sigma_{t|s}^2 / sigma_t^2 x_0`` and
  ``sigma = sigma_{t|s} sigma_s / sigma_t`` (EDM eq. 5-6; the same as its eps form ``sample_p_zs_given_zt``);
- every Gaussian density or KL on a graph with ``n`` nodes counts ``(n - 1) * 3`` dimensions.

With ``zero_com=False`` the same process runs in the full space (no projection, ``n * prod(P) * D``
dimensions): GeoTDM's conditional mode (Han et al., NeurIPS 2024, ``hanjq17/GeoTDM``,
``diffusion/GeoTDM.py``), which diffuses ``x_0 - x_ref`` around an equivariant prior mean ``x_ref``
built from the observed frames; translations are then carried by ``x_ref``, not removed.

The network predicts ``x_0`` (``parameterization='x0'``; EQGAT-diff's ``continuous_param='data'``)
or the noise (``'eps'``; EDM). Positions may carry middle axes (``[N, F, D]`` trajectories); see
:mod:`equivar.diffusion._com` for the subspace then.
"""

from __future__ import annotations

import math

import torch

from ..nn import scatter_sum
from ._com import check_batch, remove_mean, subspace_dim
from ._noise import NoiseSource
from ._schedules import NoiseSchedule

__all__ = ["GaussianDiffusion"]


def _per_node(v: torch.Tensor, batch: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A per-graph value ``[G]`` broadcast over ``like [N, *P, D]``: ``[N, 1, ..., 1]``."""
    return v[batch].reshape((like.shape[0],) + (1,) * (like.dim() - 1)).to(like.dtype)


def _per_graph_sum(x: torch.Tensor, batch: torch.Tensor, num_graphs: int) -> torch.Tensor:
    return scatter_sum(x.reshape(x.shape[0], -1).sum(1), batch, num_graphs)


class GaussianDiffusion:
    """Variance-preserving Gaussian diffusion of zero-CoM positions, one noise level per graph.

    Parameters
    ----------
    schedule : NoiseSchedule
        ``alpha_bar_t`` for ``t = 0..T`` (EDM: ``polynomial_schedule(1000, 2, 1e-5)``; EQGAT-diff:
        ``cosine_schedule(500, nu=2.5, clip_min=0.05)``).
    parameterization : str
        What the network predicts: ``'x0'`` (the clean positions) or ``'eps'`` (the noise).
    zero_com : bool
        Diffuse in each graph's zero-CoM subspace (True, EDM) or in the full space (False: GeoTDM's
        conditional mode, where an equivariant prior mean carries the translations).

    Raises
    ------
    ValueError
        an unknown ``parameterization``; TypeError for a ``schedule`` that is not a ``NoiseSchedule``.

    Notes
    -----
    Shapes: positions ``[N, *P, D]`` (float32 or float64), ``batch [N]`` long (graph of each node),
    levels ``t, s [G]`` long (one per graph), per-graph results ``[G]`` in the positions' dtype.
    Inputs that should lie in the subspace (``x_0``, predictions) are projected onto it
    (:meth:`project`; the identity when ``zero_com`` is False).
    """

    def __init__(self, schedule: NoiseSchedule, parameterization: str = "x0", zero_com: bool = True):
        if not isinstance(schedule, NoiseSchedule):
            raise TypeError(f"schedule must be a NoiseSchedule, got {type(schedule).__name__}")
        if parameterization not in ("x0", "eps"):
            raise ValueError(f"parameterization must be 'x0' or 'eps', got {parameterization!r}")
        if not isinstance(zero_com, bool):
            raise ValueError(f"zero_com must be True or False, got {zero_com!r}")
        self.schedule = schedule
        self.parameterization = parameterization
        self.zero_com = zero_com

    def project(self, x: torch.Tensor, batch: torch.Tensor, num_graphs: int) -> torch.Tensor:
        """``x [N, *P, D]`` onto the space the process lives in: each graph's zero-CoM subspace, or itself."""
        return remove_mean(x, batch, num_graphs) if self.zero_com else x

    def dims(self, x: torch.Tensor, batch: torch.Tensor, num_graphs: int) -> torch.Tensor:
        """Dimension of each graph's space ``[G]`` (long): ``(n prod(P) - 1) D`` with ``zero_com``, else ``n prod(P) D``."""
        if self.zero_com:
            return subspace_dim(x, batch, num_graphs)
        check_batch(x, batch, num_graphs)
        return torch.bincount(batch, minlength=num_graphs) * math.prod(x.shape[1:])

    @property
    def timesteps(self) -> int:
        return self.schedule.timesteps

    # --- noise and the forward process --------------------------------------------------------
    def noise(self, shape, batch: torch.Tensor, num_graphs: int, source: NoiseSource, dtype=torch.float64, device=None):
        """Isotropic standard Gaussian noise in each graph's space (zero-CoM subspace or full), ``[N, *P, D]`` (= the prior)."""
        eps = source.normal(shape, dtype=dtype, device=device)
        return self.project(eps, batch.to(eps.device), num_graphs)

    def q_sample(self, x0, t, batch, num_graphs, source: NoiseSource):
        """Draw ``x_t ~ q(x_t | x_0)``; returns ``(x_t, eps)``, both ``[N, *P, D]`` (zero-CoM with ``zero_com``).

        ``x0 [N, *P, D]`` is centred first; ``t [G]`` long levels.
        """
        check_batch(x0, batch, num_graphs)
        x0 = self.project(x0, batch, num_graphs)
        eps = self.noise(x0.shape, batch, num_graphs, source, dtype=x0.dtype, device=x0.device)
        alpha = _per_node(self.schedule.alpha(t), batch, x0)
        sigma = _per_node(self.schedule.sigma(t), batch, x0)
        return alpha * x0 + sigma * eps, eps

    def to_x0(self, pred, x_t, t, batch, num_graphs):
        """The network's prediction as ``x_0``: itself (``'x0'``) or ``(x_t - sigma_t eps) / alpha_t`` (``'eps'``); centred."""
        pred = self.project(pred, batch, num_graphs)
        if self.parameterization == "x0":
            return pred
        alpha = _per_node(self.schedule.alpha(t), batch, x_t)
        sigma = _per_node(self.schedule.sigma(t), batch, x_t)
        return (x_t - sigma * pred) / alpha

    # --- the reverse process ------------------------------------------------------------------
    def posterior(self, x_t, x0, s, t, batch, num_graphs):
        """Mean ``[N, *P, D]`` and standard deviation ``[N, 1, ..., 1]`` of ``q(x_s | x_t, x_0)`` for ``s < t`` ``[G]``.

        EDM eq. 5-6 (module docstring). Raises ``ValueError`` if some ``s >= t``.
        """
        if (s >= t).any():
            raise ValueError("the posterior q(x_s | x_t, x_0) needs s < t for every graph")
        sch = self.schedule
        ratio = sch.alpha_bar_ratio(s, t)  # alpha_{t|s}^2
        sig2_ts = 1 - ratio
        sig2_s, sig2_t = 1 - sch.alpha_bar(s), 1 - sch.alpha_bar(t)
        c_t = ratio.sqrt() * sig2_s / sig2_t
        c_0 = sch.alpha(s) * sig2_ts / sig2_t
        std = (sig2_ts * sig2_s / sig2_t).sqrt()
        x0 = self.project(x0, batch, num_graphs)
        mean = _per_node(c_t, batch, x_t) * x_t + _per_node(c_0, batch, x_t) * x0
        return mean, _per_node(std, batch, x_t)

    def step(self, x_t, x0_hat, s, t, batch, num_graphs, source: NoiseSource):
        """One ancestral step: ``x_s ~ q(x_s | x_t, x_0 = x0_hat)`` with the process's noise; ``[N, *P, D]``."""
        mean, std = self.posterior(x_t, x0_hat, s, t, batch, num_graphs)
        eps = self.noise(x_t.shape, batch, num_graphs, source, dtype=x_t.dtype, device=x_t.device)
        return self.project(mean + std * eps, batch, num_graphs)

    # --- losses -----------------------------------------------------------------------------------
    def loss(self, pred, x0, eps, batch, num_graphs, weight=None):
        """Per-graph L2 loss ``[G]``: the mean over the graph's ``n * prod(P) * D`` entries of the squared error.

        The target is ``x0`` (``'x0'``) or ``eps`` (``'eps'``), both centred; the prediction is
        centred too. EQGAT-diff's coordinate loss (``experiments/losses.py``: MSE averaged over
        coordinates and atoms of each molecule, times a per-molecule ``weight [G]``); EDM's ``l2``
        loss divides by the padded size instead. ``weight`` ``None`` = 1.
        """
        target = x0 if self.parameterization == "x0" else eps
        err = self.project(pred, batch, num_graphs) - self.project(target, batch, num_graphs)
        entries = torch.bincount(batch, minlength=num_graphs).to(err.dtype) * math.prod(err.shape[1:])
        out = _per_graph_sum(err * err, batch, num_graphs) / entries.clamp(min=1)
        return out if weight is None else out * weight.to(out.dtype)

    def vlb_term(self, x0, x0_hat, s, t, batch, num_graphs):
        """``KL(q(x_s | x_t, x_0) || q(x_s | x_t, x0_hat)) = 1/2 (SNR(s) - SNR(t)) ||x_0 - x0_hat||^2`` per graph ``[G]``.

        EDM's ``L_t`` for ``t > 0`` (there in the eps form ``1/2 (SNR(s)/SNR(t) - 1) ||eps - eps_hat||^2``,
        the same number); nats. Independent of ``x_t`` and of the subspace dimension (the squared
        norm is taken in the subspace).
        """
        diff = self.project(x0, batch, num_graphs) - self.project(x0_hat, batch, num_graphs)
        w = (self.schedule.snr(s) - self.schedule.snr(t)).to(diff.dtype)
        return 0.5 * w * _per_graph_sum(diff * diff, batch, num_graphs)

    def kl_prior(self, x0, batch, num_graphs):
        """``KL(q(x_T | x_0) || N(0, I))`` on each graph's subspace, ``[G]`` (nats; EDM's ``kl_prior`` for x).

        ``d log(1 / sigma_T) + (d sigma_T^2 + alpha_T^2 ||x_0||^2) / 2 - d / 2``, ``d = (n - 1) * 3``.
        """
        x0 = self.project(x0, batch, num_graphs)
        d = self.dims(x0, batch, num_graphs).to(x0.dtype)
        T = torch.full((num_graphs,), self.timesteps, dtype=torch.long, device=x0.device)
        a2 = self.schedule.alpha_bar(T).to(x0.dtype)
        sig2 = 1 - a2
        return -0.5 * d * torch.log(sig2) + 0.5 * (d * sig2 + a2 * _per_graph_sum(x0 * x0, batch, num_graphs)) - 0.5 * d

    def log_prior(self, x, batch, num_graphs):
        """``log N(x; 0, I)`` on each graph's subspace, ``[G]``: ``-||x||^2 / 2 - d/2 log(2 pi)`` (``x`` centred first)."""
        x = self.project(x, batch, num_graphs)
        d = self.dims(x, batch, num_graphs).to(x.dtype)
        return -0.5 * _per_graph_sum(x * x, batch, num_graphs) - 0.5 * d * math.log(2 * math.pi)
