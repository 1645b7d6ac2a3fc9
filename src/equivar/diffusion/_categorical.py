"""Categorical (discrete) diffusion towards a marginal prior (D3PM; EQGAT-diff for atoms, charges and bonds).

Austin et al., "Structured Denoising Diffusion Models in Discrete State-Spaces" (D3PM), NeurIPS
2021; Vignac et al. (DiGress) 2023 for the marginal prior; Le et al., EQGAT-diff, ICLR 2024 (code
``tuanle618/eqgat-diff``, ``experiments/diffusion/categorical.py``). With the prior ``m`` (the
class frequencies of the training set) and a schedule ``alpha_bar_t``, one step is the row-stochastic

    Q_t = a_t I + (1 - a_t) 1 m^T,   a_t = alpha_bar_t / alpha_bar_{t-1},

and products of such matrices stay in the family (``m^T 1 = 1``), so for levels ``s <= t``

    Q_{t|s} = (alpha_bar_t / alpha_bar_s) I + (1 - alpha_bar_t / alpha_bar_s) 1 m^T,
    q(x_t | x_0) = alpha_bar_t onehot(x_0) + (1 - alpha_bar_t) m.

The posterior (D3PM eq. 3) is ``q(x_s | x_t, x_0) = Q_{t|s}[:, x_t] * Qbar_s[x_0, :] / Qbar_t[x_0, x_t]``
and the reverse step of a network predicting ``p(x_0 | x_t)`` is the mixture
``p(x_s | x_t) = sum_k p(x_0 = k | x_t) q(x_s | x_t, x_0 = k)`` (D3PM eq. 4; EQGAT-diff's
``sample_reverse_categorical``), computed here in ``O(K)`` per item from the closed forms.

Items are anything with a class: atoms (types, charges) or atom pairs (bonds: diffuse each
unordered pair once, e.g. ``i < j`` from :func:`complete_graph_pairs`, and mirror). Classes are
long tensors ``[M]``; probabilities ``[M, K]``; levels per item ``[M]`` long (the graph's level,
``t[index]``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..nn import scatter_sum
from ._noise import NoiseSource
from ._schedules import NoiseSchedule

__all__ = ["CategoricalDiffusion", "sample_classes"]


def sample_classes(probs: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Inverse-CDF draw of one class per row: ``probs [M, K]`` (rows need not be normalised), ``u [M]`` in [0, 1) -> long ``[M]``."""
    cdf = probs.cumsum(-1)
    k = (cdf < (u.to(cdf.dtype) * cdf[:, -1]).unsqueeze(-1)).sum(-1)
    return k.clamp(max=probs.shape[-1] - 1)


class CategoricalDiffusion:
    """Discrete diffusion of classes towards the prior ``m`` with ``Q_t = a_t I + (1 - a_t) 1 m^T``.

    Parameters
    ----------
    prior : Tensor or sequence of float
        ``m [K]``, ``K >= 2``, non-negative, summing to 1 (within 1e-6; renormalised in float64):
        the training-set marginals (EQGAT-diff's ``atom_types``, ``charges_marginals``,
        ``edge_types``), or uniform.
    schedule : NoiseSchedule
        ``alpha_bar_t``, ``t = 0..T`` (EQGAT-diff: ``cosine_schedule(500, nu=1, clip_min=0.05)`` for
        atoms and charges, ``nu=1.5`` for bonds).

    Raises
    ------
    ValueError
        a prior that is not 1-D with >= 2 classes, has a negative or non-finite entry, or does not sum to 1.
    """

    def __init__(self, prior, schedule: NoiseSchedule):
        m = torch.as_tensor(prior, dtype=torch.float64).detach().cpu()
        if m.dim() != 1 or m.numel() < 2:
            raise ValueError(f"prior must be 1-D with at least 2 classes, got shape {tuple(m.shape)}")
        bad = torch.nonzero(~torch.isfinite(m) | (m < 0)).flatten()
        if bad.numel():
            raise ValueError(f"prior[{int(bad[0])}] = {float(m[int(bad[0])])!r} is not a probability")
        if abs(float(m.sum()) - 1) > 1e-6:
            raise ValueError(f"prior must sum to 1, got {float(m.sum())!r}")
        if not isinstance(schedule, NoiseSchedule):
            raise TypeError(f"schedule must be a NoiseSchedule, got {type(schedule).__name__}")
        self.prior = m / m.sum()
        self.schedule = schedule

    @property
    def num_classes(self) -> int:
        return self.prior.numel()

    @property
    def timesteps(self) -> int:
        return self.schedule.timesteps

    def _m(self, like: torch.Tensor) -> torch.Tensor:
        return self.prior.to(device=like.device)

    def _probs(self, x0: torch.Tensor) -> torch.Tensor:
        if x0.dtype == torch.long:
            if x0.numel() and (int(x0.min()) < 0 or int(x0.max()) >= self.num_classes):
                raise ValueError(f"classes must be in 0..{self.num_classes - 1}, got {int(x0.min())}..{int(x0.max())}")
            return F.one_hot(x0, self.num_classes).to(torch.float64)
        if x0.dim() != 2 or x0.shape[-1] != self.num_classes:
            raise ValueError(f"class probabilities must be [M, {self.num_classes}], got shape {tuple(x0.shape)}")
        return x0.to(torch.float64)

    # --- forward ------------------------------------------------------------------------------------
    def marginal(self, x0: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """``q(x_t | x_0) = alpha_bar_t x_0 + (1 - alpha_bar_t) m``: ``x0`` long ``[M]`` or probabilities ``[M, K]``, ``t [M]`` -> ``[M, K]`` float64."""
        p0 = self._probs(x0)
        ab = self.schedule.alpha_bar(t).unsqueeze(-1)
        return ab * p0 + (1 - ab) * self._m(p0)

    def transition(self, x_s: torch.Tensor, s: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """``q(x_t | x_s)``, the row ``x_s`` of ``Q_{t|s}``, for ``s <= t`` ``[M]`` -> ``[M, K]`` float64."""
        ps = self._probs(x_s)
        a = self.schedule.alpha_bar_ratio(s, t).unsqueeze(-1)
        return a * ps + (1 - a) * self._m(ps)

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, source: NoiseSource) -> torch.Tensor:
        """Draw ``x_t ~ q(x_t | x_0)``: long ``[M]``."""
        return sample_classes(self.marginal(x0, t), source.uniform((x0.shape[0],), device=x0.device))

    def prior_sample(self, num: int, source: NoiseSource, device=None) -> torch.Tensor:
        """``num`` draws from the prior ``m`` (the start of sampling): long ``[num]``."""
        m = self.prior.to(device=device).expand(num, -1)
        return sample_classes(m, source.uniform((num,), device=device))

    # --- reverse ------------------------------------------------------------------------------------
    def posterior(self, x_t: torch.Tensor, x0: torch.Tensor, s: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """``q(x_s | x_t, x_0)`` for ``s < t``; with probabilities ``p [M, K]`` for ``x_0``, the mixture ``sum_k p_k q(x_s | x_t, k)``.

        Parameters
        ----------
        x_t : Tensor
            Long ``[M]``.
        x0 : Tensor
            Long ``[M]`` (a known ``x_0``) or probabilities ``[M, K]`` (a network's ``p(x_0 | x_t)``).
        s, t : Tensor
            Long ``[M]``, ``s < t``.

        Returns
        -------
        Tensor
            ``[M, K]`` float64, rows summing to 1. A row whose ``x_0`` probabilities all sit on
            classes that cannot reach ``x_t`` (possible only with zeros in ``m``) falls back to
            ``Q_{t|s}[:, x_t]`` normalised.

        Raises
        ------
        ValueError
            some ``s >= t``.
        """
        if (s >= t).any():
            raise ValueError("the posterior q(x_s | x_t, x_0) needs s < t for every item")
        p0 = self._probs(x0)
        m = self._m(p0)
        k = self.num_classes
        at = F.one_hot(x_t, k).to(torch.float64)
        ab_s = self.schedule.alpha_bar(s).unsqueeze(-1)
        ab_t = self.schedule.alpha_bar(t).unsqueeze(-1)
        a = ab_t / ab_s
        m_xt = m[x_t].unsqueeze(-1)
        left = a * at + (1 - a) * m_xt  # Q_{t|s}[i, x_t] over x_s = i
        denom = ab_t * at + (1 - ab_t) * m_xt  # Qbar_t[k, x_t] over x_0 = k
        w = torch.where(denom > 0, p0 / denom.clamp(min=torch.finfo(torch.float64).tiny), torch.zeros_like(p0))
        mix = ab_s * w + (1 - ab_s) * m * w.sum(-1, keepdim=True)  # sum_k w_k Qbar_s[k, i]
        probs = left * mix
        z = probs.sum(-1, keepdim=True)
        fallback = left / left.sum(-1, keepdim=True)
        return torch.where(z > 0, probs / z.clamp(min=torch.finfo(torch.float64).tiny), fallback)

    def step(self, x_t, x0_probs, s, t, source: NoiseSource) -> torch.Tensor:
        """One ancestral step: ``x_s ~ sum_k p(x_0 = k) q(x_s | x_t, k)``; long ``[M]``."""
        return sample_classes(self.posterior(x_t, x0_probs, s, t), source.uniform((x_t.shape[0],), device=x_t.device))

    # --- loss ---------------------------------------------------------------------------------------
    def loss(self, logits, x0, index, num_graphs, weight=None):
        """Per-graph mean cross-entropy of the predicted ``x_0`` ``[G]`` (EQGAT-diff's categorical loss).

        ``logits [M, K]`` (any float dtype), ``x0`` long ``[M]``, ``index [M]`` the graph of each item
        (a graph with no items gets 0), ``weight [G]`` the time weighting (``None`` = 1). Bonds:
        EQGAT-diff's term is 1/2 the mean over directed edges, i.e. 1/2 the mean over pairs that
        this gives for pairs diffused once, so its ``lc_bonds = 2`` is a weight of 1 on this loss.
        """
        if logits.dim() != 2 or logits.shape[-1] != self.num_classes:
            raise ValueError(f"logits must be [M, {self.num_classes}], got shape {tuple(logits.shape)}")
        ce = F.cross_entropy(logits, x0, reduction="none")
        count = torch.bincount(index, minlength=num_graphs).to(ce.dtype)
        out = scatter_sum(ce, index, num_graphs) / count.clamp(min=1)
        return out if weight is None else out * weight.to(out.dtype)
