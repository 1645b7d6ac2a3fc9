"""GeoTDM: conditional diffusion of the future frames of a geometric trajectory (``'geotdm'``).

Han, Xu, Lou, Ye, Ermon, "Geometric Trajectory Diffusion Models", NeurIPS 2024 (code
``hanjq17/GeoTDM``, MIT: ``diffusion/GeoTDM.py``, ``models/EGTN.py``, ``configs/nbody_train_cond.yaml``).
Given ``T_c`` observed frames ``x_c`` of ``M`` nodes, the model generates the next ``T_f`` frames:

- prior: ``x_ref = EquivariantPrior(x_c)`` ``[M, T_f, D]`` (:mod:`._prior`), learned jointly;
- forward process on ``y = x - x_ref`` in the full space (:class:`~equivar.diffusion.GaussianDiffusion`
  with ``zero_com=False``), DDPM's linear schedule with ``T = 1000``
  (:func:`~equivar.diffusion.linear_schedule`): ``x_t = x_ref + alpha_t (x_0 - x_ref) + sigma_t eps``;
- denoiser: the :class:`EGTN` on the frames ``[x_c, x_t]`` (observed then noisy; node features the
  node attributes and the sinusoidal embedding of the level), whose output on the noisy frames minus
  ``x_t`` is the predicted noise ``eps_hat`` (translation-invariant, rotation-equivariant);
- loss: ``|eps - eps_hat|^2`` averaged over each scene's entries, then over scenes (GeoTDM's ``mse``),
  at levels ``t ~ U{1..T}`` (:func:`~equivar.diffusion.diffusion_losses`);
- sampling: ancestral steps of :func:`~equivar.diffusion.sample` from ``y_T ~ N(0, I)``; ``x = y_0 + x_ref``.

GeoTDM's N-body recipe is 6 EGTN layers of 128 features, a 2-layer prior, 32-wide time embeddings,
Adam lr 1e-4, batch 128, 4000 epochs, K = 5 samples of 1000 steps each (its p_sample uses the
``beta_t`` variance; :func:`~equivar.diffusion.sample` the posterior's, and ``sampling_steps`` < ``T``
samples on a strided subsequence of levels, DDPM's respacing).

Symmetry: rotating or reflecting the observed frames and the sampler's normal draws rotates the samples;
translating the observed frames translates them (the prior carries the translation, the predicted noise
is invariant); permuting the nodes (and the draws) permutes them. Isotropic noise makes the sampled
distribution E(D)- and permutation-equivariant.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from ...diffusion import GaussianDiffusion, NoiseSource, diffusion_losses, linear_schedule, sample
from ...nn import complete_graph_size
from .._registry import _is_int, register_model
from ._egtn import EGTN
from ._embedding import sinusoidal_embedding
from ._prior import EquivariantPrior


@register_model("geotdm")
class GeoTDM(torch.nn.Module):
    """GeoTDM's conditional trajectory diffusion on the dynamics batch (module docstring).

    Parameters
    ----------
    past, future : int
        Observed frames ``T_c`` (the batch's ``pos``) and generated frames ``T_f`` (its ``target``);
        GeoTDM N-body: 10 and 20.
    hidden_dim, num_layers : int
        Width and blocks of the denoising :class:`EGTN` (GeoTDM: 128, 6).
    prior_layers : int
        Blocks of the prior's :class:`EGTN` (GeoTDM: 2).
    time_emb_dim : int
        Width of the sinusoidal level and frame-offset embeddings (32).
    node_attr_dim, edge_attr_dim : int
        Widths of the batch's invariant ``node_attr`` and ``edge_attr`` (charged N-body: 1 and 1).
    activation : str
        ``'silu'``.
    timesteps, beta_start, beta_end : int, float, float
        The linear schedule (1000, 1e-4, 0.02).
    num_samples : int
        ``K``, samples per scene returned by ``forward`` (GeoTDM's N-body protocol: 5).
    sampling_steps : int
        Levels visited by ``forward``'s sampler (``timesteps``: every level, the paper's; fewer: strided).

    Raises
    ------
    ValueError
        An option out of range or of the wrong type (named, with the value); at call time a batch whose
        ``pos`` does not hold ``past`` frames or whose ``node_attr`` / ``edge_attr`` widths differ.

    Shapes
    ------
    ``model(batch)`` with the dynamics batch of ``docs/contracts.md`` (``pos [M, T_c, D]``,
    ``node_attr [M, A_n]``, ``edge_index [2, E]``, ``edge_attr [E, A_e]``, ``batch [M]``, ``ptr``)
    returns ``{"pos": [K, M, T_f, D]}``: ``K`` samples, drawn with a seed taken from torch's global
    generator (``torch.manual_seed`` fixes them). :meth:`loss` ``-> [G]`` and :meth:`sample`
    ``-> [K, M, T_f, D]`` take explicit noise sources.
    """

    def __init__(
        self,
        past: int = 10,
        future: int = 20,
        hidden_dim: int = 64,
        num_layers: int = 4,
        prior_layers: int = 2,
        time_emb_dim: int = 32,
        node_attr_dim: int = 1,
        edge_attr_dim: int = 1,
        activation: str = "silu",
        timesteps: int = 1000,
        beta_start: float = 1e-4,
        beta_end: float = 0.02,
        num_samples: int = 5,
        sampling_steps: int = 1000,
    ):
        super().__init__()
        for key, value, low in (
            ("past", past, 1),
            ("future", future, 1),
            ("hidden_dim", hidden_dim, 1),
            ("num_layers", num_layers, 1),
            ("prior_layers", prior_layers, 1),
            ("time_emb_dim", time_emb_dim, 2),
            ("node_attr_dim", node_attr_dim, 0),
            ("edge_attr_dim", edge_attr_dim, 0),
            ("timesteps", timesteps, 1),
            ("num_samples", num_samples, 1),
            ("sampling_steps", sampling_steps, 1),
        ):
            if not _is_int(value, low):
                raise ValueError(f"geotdm: {key} must be an integer >= {low}, got {value!r}")
        if sampling_steps > timesteps:
            raise ValueError(f"geotdm: sampling_steps={sampling_steps} exceeds timesteps={timesteps}")
        if activation not in ("silu", "relu"):
            raise ValueError(f"geotdm: activation must be 'silu' or 'relu', got {activation!r}")
        self.past, self.future = past, future
        self.time_emb_dim = time_emb_dim
        self.node_attr_dim, self.edge_attr_dim = node_attr_dim, edge_attr_dim
        self.num_samples, self.sampling_steps = num_samples, sampling_steps
        self.gaussian = GaussianDiffusion(
            linear_schedule(timesteps, beta_start, beta_end), parameterization="eps", zero_com=False
        )
        self.embed = torch.nn.Linear(node_attr_dim + time_emb_dim, hidden_dim)
        self.net = EGTN(hidden_dim, num_layers, edge_attr_dim, time_emb_dim, activation)
        self.prior = EquivariantPrior(
            future, hidden_dim, prior_layers, node_attr_dim, edge_attr_dim, time_emb_dim, activation
        )

    # ---- pieces --------------------------------------------------------------------------------
    def _inputs(self, batch: Mapping) -> dict:
        pos = batch["pos"]
        if pos.dim() != 3 or pos.shape[1] != self.past:
            raise ValueError(f"geotdm: batch pos must be [M, past={self.past}, D], got {tuple(pos.shape)}")
        m = pos.shape[0]
        node_attr = batch.get("node_attr")
        if self.node_attr_dim and (node_attr is None or node_attr.shape != (m, self.node_attr_dim)):
            got = None if node_attr is None else tuple(node_attr.shape)
            raise ValueError(f"geotdm: batch node_attr must be [{m}, {self.node_attr_dim}], got {got}")
        edge_attr = batch.get("edge_attr")
        if self.edge_attr_dim:
            if edge_attr is None or edge_attr.shape[-1] != self.edge_attr_dim:
                got = None if edge_attr is None else tuple(edge_attr.shape)
                raise ValueError(f"geotdm: batch edge_attr must have {self.edge_attr_dim} features, got {got}")
            edge_attr = edge_attr.to(pos.dtype)
        node_attr = node_attr.to(pos.dtype) if self.node_attr_dim else pos.new_zeros(m, 0)
        edge_index = batch["edge_index"]
        g = batch["ptr"].numel() - 1 if "ptr" in batch else int(batch["batch"].max()) + 1
        return {
            "x_cond": pos,
            "node_attr": node_attr,
            "edge_index": edge_index,
            "edge_attr": edge_attr,
            "batch": batch["batch"],
            "num_graphs": g,
            "size": complete_graph_size(edge_index, m, batch.get("ptr")),
        }

    def prior_mean(self, batch: Mapping) -> torch.Tensor:
        """The learned equivariant prior mean ``x_ref [M, T_f, D]`` of the future frames."""
        inp = self._inputs(batch)
        return self._prior(inp)

    def _prior(self, inp: dict) -> torch.Tensor:
        return self.prior(inp["x_cond"], inp["node_attr"], inp["edge_index"], inp["edge_attr"], inp["size"])

    def denoiser(self, inp: dict, x_ref: torch.Tensor):
        """The callable of the denoiser contract: ``state.pos = x_t - x_ref [M, T_f, D]`` -> ``{"pos": eps_hat}``."""
        x_cond = inp["x_cond"]

        def fn(state):
            x_t = state.pos.to(x_cond.dtype) + x_ref
            x = torch.cat([x_cond, x_t], dim=1)
            level = sinusoidal_embedding(state.t.to(x_cond.dtype), self.time_emb_dim)[state.batch]
            h = self.embed(torch.cat([inp["node_attr"], level], dim=-1))
            h = h.unsqueeze(1).expand(-1, x.shape[1], -1)
            out, _ = self.net(x, h, inp["edge_index"], inp["edge_attr"], inp["size"])
            return {"pos": out[:, self.past :] - x_t}

        return fn

    # ---- training and sampling ----------------------------------------------------------------
    def loss(self, batch: Mapping, source: NoiseSource, t: torch.Tensor | None = None) -> torch.Tensor:
        """Per-scene loss ``[G]``: ``mean |eps - eps_hat|^2`` over the scene's ``M_g T_f D`` entries.

        ``batch["target"] [M, T_f, D]`` are the clean future frames; levels ``t [G]`` are drawn from
        ``source`` (``U{1..T}``) unless given; then the noise.
        """
        inp = self._inputs(batch)
        target = batch["target"]
        if target.shape[:2] != (inp["x_cond"].shape[0], self.future):
            raise ValueError(f"geotdm: batch target must be [M, future={self.future}, D], got {tuple(target.shape)}")
        x_ref = self._prior(inp)
        out = diffusion_losses(
            self.denoiser(inp, x_ref),
            batch=inp["batch"],
            num_graphs=inp["num_graphs"],
            source=source,
            gaussian=self.gaussian,
            pos0=target.to(x_ref.dtype) - x_ref,
            t=t,
        )
        return out["pos"]

    def sampling_levels(self, steps: int | None = None) -> list[int]:
        """``steps + 1`` strictly decreasing levels from ``T`` to 0, evenly spaced (all levels when ``steps = T``)."""
        steps = self.sampling_steps if steps is None else steps
        T = self.gaussian.timesteps
        if not _is_int(steps, 1) or steps > T:
            raise ValueError(f"geotdm: sampling steps must be an integer in 1..{T}, got {steps!r}")
        grid = torch.linspace(T, 0, steps + 1, dtype=torch.float64).round().long().tolist()
        return sorted(set(grid), reverse=True)

    @torch.no_grad()
    def sample(
        self,
        batch: Mapping,
        *,
        num_samples: int | None = None,
        seed: int = 0,
        noise: NoiseSource | None = None,
        steps: int | None = None,
    ) -> torch.Tensor:
        """``K`` samples of the future frames, ``[K, M, T_f, D]`` (all ``K`` drawn in one batched chain).

        The draws come from ``noise`` (else ``NoiseSource(seed)``): the ``[K M, T_f, D]`` start, then one
        ``[K M, T_f, D]`` normal per step, replica-major. ``steps``: levels visited (default ``sampling_steps``).
        """
        k = self.num_samples if num_samples is None else num_samples
        if not _is_int(k, 1):
            raise ValueError(f"geotdm: num_samples must be an integer >= 1, got {k!r}")
        inp = self._inputs(batch)
        x_ref = self._prior(inp)
        rep = _repeat(inp, k)
        x_ref_k = x_ref.repeat(k, 1, 1)
        out = sample(
            self.denoiser(rep, x_ref_k),
            batch=rep["batch"],
            num_graphs=rep["num_graphs"],
            gaussian=self.gaussian,
            pos_shape=(self.future, x_ref.shape[-1]),
            seed=seed,
            noise=noise,
            levels=self.sampling_levels(steps),
            dtype=x_ref.dtype,
        )
        return (out.pos + x_ref_k).reshape(k, *x_ref.shape)

    def forward(self, batch: Mapping) -> dict:
        seed = int(torch.randint(0, 2**62, (1,)))
        return {"pos": self.sample(batch, seed=seed)}


def _repeat(inp: dict, k: int) -> dict:
    """``k`` copies of the scenes, replica-major (copy ``r`` holds nodes ``r M .. (r+1) M - 1``)."""
    if k == 1:
        return inp
    m, g = inp["x_cond"].shape[0], inp["num_graphs"]
    ei = inp["edge_index"]
    offsets = (torch.arange(k, device=ei.device) * m).repeat_interleave(ei.shape[1])
    out = dict(inp)
    out["x_cond"] = inp["x_cond"].repeat(k, 1, 1)
    out["node_attr"] = inp["node_attr"].repeat(k, 1)
    out["edge_index"] = ei.repeat(1, k) + offsets
    out["edge_attr"] = None if inp["edge_attr"] is None else inp["edge_attr"].repeat(k, 1)
    out["batch"] = torch.cat([inp["batch"] + r * g for r in range(k)])
    out["num_graphs"] = g * k
    return out
