"""The two ways of diffusing a molecule: EQGAT-diff's (categorical atoms, charges, bonds) and EDM's (continuous one-hot types).

- ``eqgat_diff`` (Le et al., ICLR 2024, ``tuanle618/eqgat-diff``): positions a zero-CoM Gaussian with
  the cosine schedule ``nu = 2.5``, atom types and charges D3PM towards the training marginals with
  ``nu = 1``, bonds with ``nu = 1.5`` (all ``T = 500`` steps, step clip 0.05), the network predicting
  ``x0`` of everything; loss weights ``w(t) = clamp(SNR_atoms(t), 0.05, 1.5)`` (``snr_t``) and
  ``lambda`` = 3 (positions), 0.4 (atoms), 1 (charges), 1 (bonds; the code's 2 x its halved term).
- ``edm`` (Hoogeboom et al., ICML 2022): positions and ``h = onehot(type) / 4`` diffused with one
  ``polynomial_2`` schedule (``s = 1e-5``, ``T = 1000``), the network predicting the noise of both;
  loss the mean squared noise error over the ``3 + K`` numbers of every atom (EDM's ``l2``); samples'
  types are ``argmax`` of the last ``h``; no bonds, no charges.
"""

from __future__ import annotations

import torch

from ...diffusion import (
    CategoricalDiffusion,
    GaussianDiffusion,
    NoiseSource,
    complete_graph_pairs,
    cosine_schedule,
    diffusion_losses,
    polynomial_schedule,
    remove_mean,
    sample,
)
from ._data import ATOM_Z, CHARGES
from ._metrics import GeneratedMolecule

__all__ = ["EDMMethod", "EQGATMethod", "levels", "draw_sizes"]


def levels(T: int, steps: int | None) -> list[int] | None:
    """``steps + 1`` evenly spaced levels from ``T`` to 0 (None: all ``T + 1``)."""
    if steps is None or steps >= T:
        return None
    out = sorted({int(round(v)) for v in torch.linspace(T, 0, steps + 1).tolist()}, reverse=True)
    return out


def draw_sizes(num_atoms: dict, count: int, seed: int) -> torch.Tensor:
    """``count`` molecule sizes drawn from the training histogram ``{n: count}`` (EDM's ``DistributionNodes``)."""
    ns = torch.tensor([int(k) for k in num_atoms])
    p = torch.tensor([float(v) for v in num_atoms.values()], dtype=torch.float64)
    g = torch.Generator().manual_seed(seed)
    return ns[torch.multinomial(p / p.sum(), count, replacement=True, generator=g)]


class EQGATMethod:
    """EQGAT-diff's diffusion (module docstring) with the training marginals ``priors``."""

    name = "eqgat_diff"

    def __init__(self, priors: dict, timesteps: int = 500):
        self.T = timesteps
        self.gaussian = GaussianDiffusion(cosine_schedule(timesteps, nu=2.5, clip_min=0.05))
        atom_schedule = cosine_schedule(timesteps, nu=1.0, clip_min=0.05)
        self.weight_schedule = atom_schedule
        self.categorical = {
            "atoms": CategoricalDiffusion(priors["atoms"], atom_schedule),
            "charges": CategoricalDiffusion(priors["charges"], atom_schedule),
            "bonds": CategoricalDiffusion(priors["bonds"], cosine_schedule(timesteps, nu=1.5, clip_min=0.05)),
        }
        self.lambdas = {"pos": 3.0, "atoms": 0.4, "charges": 1.0, "bonds": 1.0}

    def losses(self, model, b: dict, source: NoiseSource) -> dict:
        G = b["ptr"].numel() - 1
        return diffusion_losses(
            model.denoise,
            batch=b["batch"],
            num_graphs=G,
            source=source,
            gaussian=self.gaussian,
            pos0=b["pos"],
            categorical=self.categorical,
            classes0={"atoms": b["atoms"], "charges": b["charges"], "bonds": b["bonds"]},
            index={"atoms": b["batch"], "charges": b["batch"], "bonds": b["pair_batch"]},
            cond={"pairs": b["pairs"]},
            weighting="snr_t",
            weighting_schedule=self.weight_schedule,
            lambdas=self.lambdas,
        )

    @torch.no_grad()
    def sample(self, model, sizes: torch.Tensor, seed: int, steps: int | None = None) -> list[GeneratedMolecule]:
        p = next(model.parameters())
        G = len(sizes)
        batch = torch.repeat_interleave(torch.arange(G), sizes).to(p.device)
        pairs = complete_graph_pairs(batch, G)
        out = sample(
            model.denoise,
            batch=batch,
            num_graphs=G,
            gaussian=self.gaussian,
            categorical=self.categorical,
            index={"atoms": batch, "charges": batch, "bonds": batch[pairs[0]]},
            cond={"pairs": pairs},
            seed=seed,
            levels=levels(self.T, steps),
            dtype=p.dtype,
        )
        n = len(batch)
        dense = torch.zeros(n, n, dtype=torch.long, device=batch.device)
        dense[pairs[0], pairs[1]] = out.classes["bonds"]
        dense[pairs[1], pairs[0]] = out.classes["bonds"]
        z = torch.tensor(ATOM_Z)[out.classes["atoms"].cpu()]
        c = torch.tensor(CHARGES)[out.classes["charges"].cpu()]
        ptr = torch.cat([torch.zeros(1, dtype=torch.long), sizes.cumsum(0)]).tolist()
        pos = out.pos.detach().double().cpu()
        return [
            GeneratedMolecule(z[a:e].numpy(), pos[a:e].numpy(), c[a:e].numpy(), dense[a:e, a:e].cpu().numpy())
            for a, e in zip(ptr, ptr[1:])
        ]


class EDMMethod:
    """EDM's continuous diffusion of positions and one-hot types (module docstring)."""

    name = "edm"
    h_scale = 0.25  # EDM's norm_values[1] = 4 for the one-hot types

    def __init__(self, priors: dict | None = None, timesteps: int = 1000):
        self.T = timesteps
        self.schedule = polynomial_schedule(timesteps, 2.0, 1e-5)
        self.gaussian = GaussianDiffusion(self.schedule, parameterization="eps")

    def _edges(self, pairs):
        return torch.cat([pairs, pairs.flip(0)], 1)

    def losses(self, model, b: dict, source: NoiseSource) -> dict:
        G = b["ptr"].numel() - 1
        batch = b["batch"]
        t = source.integers(1, self.T + 1, (G,), device=batch.device)
        pos0 = remove_mean(b["pos"], batch, G)
        pos_t, eps_x = self.gaussian.q_sample(pos0, t, batch, G, source)
        h0 = torch.nn.functional.one_hot(b["atoms"], len(ATOM_Z)).to(pos0.dtype) * self.h_scale
        eps_h = source.normal(h0.shape, dtype=h0.dtype, device=h0.device)
        a = self.schedule.alpha(t).to(h0.dtype)[batch].unsqueeze(-1)
        s = self.schedule.sigma(t).to(h0.dtype)[batch].unsqueeze(-1)
        out = model(pos_t, a * h0 + s * eps_h, batch, t.to(pos0.dtype) / self.T, G, self._edges(b["pairs"]))
        err = ((remove_mean(out["pos"], batch, G) - eps_x) ** 2).sum(-1) + ((out["h"] - eps_h) ** 2).sum(-1)
        from ...nn import scatter_sum

        count = torch.bincount(batch, minlength=G).to(err.dtype) * (3 + h0.shape[1])
        total = scatter_sum(err, batch, G) / count
        return {"total": total, "pos": total, "t": t}

    @torch.no_grad()
    def sample(self, model, sizes: torch.Tensor, seed: int, steps: int | None = None) -> list[GeneratedMolecule]:
        p = next(model.parameters())
        G, dtype, dev = len(sizes), p.dtype, p.device
        batch = torch.repeat_interleave(torch.arange(G), sizes).to(dev)
        edges = self._edges(complete_graph_pairs(batch, G))
        src = NoiseSource(seed)
        n, K = len(batch), len(ATOM_Z)
        x = self.gaussian.noise((n, 3), batch, G, src, dtype=dtype, device=dev)
        h = src.normal((n, K), dtype=dtype, device=dev)
        lv = levels(self.T, steps) or list(range(self.T, -1, -1))
        sch = self.schedule
        for t_l, s_l in zip(lv[:-1], lv[1:]):
            t = torch.full((G,), t_l, dtype=torch.long, device=dev)
            s = torch.full_like(t, s_l)
            out = model(x, h, batch, t.to(dtype) / self.T, G, edges)
            x0 = self.gaussian.to_x0(out["pos"].to(dtype), x, t, batch, G)
            x = self.gaussian.step(x, x0, s, t, batch, G, src)
            at, st = sch.alpha(t).to(dtype)[batch, None], sch.sigma(t).to(dtype)[batch, None]
            h0 = (h - st * out["h"].to(dtype)) / at
            ratio = sch.alpha_bar_ratio(s, t).to(dtype)[batch, None]
            sig2_s, sig2_t = (
                (1 - sch.alpha_bar(s)).to(dtype)[batch, None],
                (1 - sch.alpha_bar(t)).to(dtype)[batch, None],
            )
            mean = ratio.sqrt() * sig2_s / sig2_t * h + sch.alpha(s).to(dtype)[batch, None] * (1 - ratio) / sig2_t * h0
            std = ((1 - ratio) * sig2_s / sig2_t).sqrt()
            h = mean + std * src.normal((n, K), dtype=dtype, device=dev)
        z = torch.tensor(ATOM_Z)[h.argmax(-1).cpu()]
        ptr = torch.cat([torch.zeros(1, dtype=torch.long), sizes.cumsum(0)]).tolist()
        pos = x.double().cpu()
        return [GeneratedMolecule(z[a:e].numpy(), pos[a:e].numpy()) for a, e in zip(ptr, ptr[1:])]
