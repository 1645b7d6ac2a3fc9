"""Time-dependent loss weights ``w(t)`` (the weightings EQGAT-diff compares, Le et al. ICLR 2024, section 3).

From ``tuanle618/eqgat-diff`` (``experiments/diffusion/continuous.py``; ``--loss-weighting``,
default ``snr_t`` with ``--snr-clamp-min 0.05 --snr-clamp-max 1.5``), with ``SNR(t) = alpha_bar_t / (1 - alpha_bar_t)``:

- ``uniform``: 1 (EDM's ``l2`` training loss, Ho et al.'s simple loss);
- ``snr_t``: ``clamp(SNR(t), 0.05, 1.5)``: the paper's choice, which down-weights the noisy levels;
- ``snr_s_t``: ``clamp(SNR(t - 1) - SNR(t), 0.05, 1.5)``: the VLB weight of an x0 prediction, clamped;
- ``exp_t``: ``max(exp(-t / 200), 0.1)``; ``exp_t_half``: ``max(exp(-t / 100 + 1/2), 0.1)`` (``t`` in steps).

EQGAT-diff evaluates the SNR on the atom/charge schedule (``nu = 1``) for every modality.
"""

from __future__ import annotations

import torch

from ._schedules import NoiseSchedule

__all__ = ["LOSS_WEIGHTINGS", "loss_weight"]

LOSS_WEIGHTINGS = ("uniform", "snr_t", "snr_s_t", "exp_t", "exp_t_half")


def loss_weight(
    kind: str, schedule: NoiseSchedule, t: torch.Tensor, clamp_min: float = 0.05, clamp_max: float = 1.5
) -> torch.Tensor:
    """The weight ``w(t)`` of each graph's loss: ``t [G]`` long levels -> ``[G]`` float64.

    Parameters
    ----------
    kind : str
        One of :data:`LOSS_WEIGHTINGS` (module docstring).
    schedule : NoiseSchedule
        The schedule whose SNR is used.
    t : Tensor
        Long levels; ``snr_s_t`` needs ``t >= 1``.
    clamp_min, clamp_max : float
        The SNR clamp of ``snr_t`` and ``snr_s_t`` (EQGAT-diff: 0.05, 1.5).

    Raises
    ------
    ValueError
        an unknown ``kind``, ``clamp_min > clamp_max``, or ``t = 0`` with ``snr_s_t``.
    """
    if kind not in LOSS_WEIGHTINGS:
        raise ValueError(f"loss weighting must be one of {', '.join(LOSS_WEIGHTINGS)}, got {kind!r}")
    if clamp_min > clamp_max:
        raise ValueError(f"clamp_min {clamp_min!r} > clamp_max {clamp_max!r}")
    tf = t.to(torch.float64)
    if kind == "uniform":
        return torch.ones_like(tf)
    if kind == "snr_t":
        return schedule.snr(t).clamp(min=clamp_min, max=clamp_max)
    if kind == "snr_s_t":
        if (t < 1).any():
            raise ValueError("loss weighting 'snr_s_t' needs levels t >= 1")
        return (schedule.snr(t - 1) - schedule.snr(t)).clamp(min=clamp_min, max=clamp_max)
    if kind == "exp_t":
        return torch.exp(-tf / 200).clamp(min=0.1)
    return torch.exp(-tf / 100 + 0.5).clamp(min=0.1)
