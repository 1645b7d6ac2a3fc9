"""Diffusion machinery shared by the generative models (GeoTDM, EQGAT-diff, an EDM baseline).

A layer between ``nn`` and ``models``: it imports ``torch`` and ``equivar.nn`` (scatter) only and
knows nothing of any network; models plug in as a *denoiser* callable
(``denoiser(DiffusionState) -> {"pos": ..., field: logits}``, ``docs/contracts.md``).

=================================  ===========================================================
``NoiseSchedule``                  ``alpha_bar_t``, ``t = 0..T``: alpha, sigma, SNR, EDM's gamma
``cosine_schedule``                EDM / EQGAT-diff discrete cosine (exponent ``nu``, step clip)
``polynomial_schedule``            EDM's ``polynomial_<p>`` with precision ``s`` (1e-5)
``linear_schedule``                DDPM's linear betas, level 0 clean (GeoTDM: ``T = 1000``)
``cosine_alpha_bar``,              the same in continuous time ``u`` in [0, 1]
``polynomial_alpha_bar``
``GaussianDiffusion``              positions in the zero-CoM subspace: forward, posterior, step,
                                   L2 loss, VLB term, KL prior, log-prior on ``(N-1)*3`` dims
``CategoricalDiffusion``           D3PM with a marginal prior: marginals, posterior, step, CE loss
``loss_weight``                    EQGAT-diff's time weightings (``snr_t``, ``snr_s_t``, ``exp_t``, ...)
``diffusion_losses``               one training evaluation of a denoiser (all parts, weighted)
``sample``                         seeded ancestral sampling with any denoiser
``NoiseSource``                    every random draw, seeded, device-independent
``remove_mean``, ``graph_mean``,   the zero-CoM projection per graph of a ragged batch
``subspace_dim``
``complete_graph_pairs``           the unordered atom pairs per graph (bond items)
=================================  ===========================================================

Sources: Hoogeboom et al., EDM, ICML 2022 (``ehoogeboom/e3_diffusion_for_molecules``); Austin et
al., D3PM, NeurIPS 2021; Le et al., EQGAT-diff, ICLR 2024 (``tuanle618/eqgat-diff``); Han et al.,
GeoTDM, NeurIPS 2024 (``hanjq17/GeoTDM``: the linear schedule, full-space diffusion around a prior).
"""

from ._categorical import CategoricalDiffusion, sample_classes
from ._com import graph_mean, remove_mean, subspace_dim
from ._gaussian import GaussianDiffusion
from ._noise import NoiseSource
from ._pairs import complete_graph_pairs
from ._sampler import SampleOutput, sample
from ._schedules import (
    NoiseSchedule,
    cosine_alpha_bar,
    cosine_schedule,
    linear_schedule,
    polynomial_alpha_bar,
    polynomial_schedule,
)
from ._state import DiffusionState
from ._training import diffusion_losses
from ._weighting import LOSS_WEIGHTINGS, loss_weight

__all__ = [
    "LOSS_WEIGHTINGS",
    "CategoricalDiffusion",
    "DiffusionState",
    "GaussianDiffusion",
    "NoiseSchedule",
    "NoiseSource",
    "SampleOutput",
    "complete_graph_pairs",
    "cosine_alpha_bar",
    "cosine_schedule",
    "diffusion_losses",
    "graph_mean",
    "linear_schedule",
    "loss_weight",
    "polynomial_alpha_bar",
    "polynomial_schedule",
    "remove_mean",
    "sample",
    "sample_classes",
    "subspace_dim",
]
