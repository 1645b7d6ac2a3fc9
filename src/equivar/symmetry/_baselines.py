"""Non-equivariant baselines with the potential interface (for audits and demos).

- :class:`FlatMLPPotential` - an MLP on the flattened Cartesian coordinates of
  structures with a fixed number of atoms: ``energy = MLP(positions.flatten())``,
  ``forces = -dE/dx``. Neither rotation, translation nor permutation
  invariant - the audit shows where it breaks.
- :class:`PositionsPotential` - adapts any ``module(positions [G, N, 3]) ->
  energy [G]`` (TorchScript, pickled) to ``model(batch, compute_forces=True)``.

Both follow docs/contracts.md: ``model(batch, compute_forces=True) ->
{'energy' [G], 'forces' [N, 3]}`` for batches whose graphs all have the
same number of atoms.
"""

from __future__ import annotations

import torch


def _graph_positions(batch: dict, n_atoms: int | None = None) -> torch.Tensor:
    ptr = batch["ptr"]
    sizes = (ptr[1:] - ptr[:-1]).tolist()
    if len(set(sizes)) != 1 or (n_atoms is not None and sizes[0] != n_atoms):
        want = f"{n_atoms}" if n_atoms is not None else "equal"
        raise ValueError(f"this model needs graphs of {want} atoms each, got sizes {sorted(set(sizes))}")
    return batch["positions"].reshape(len(sizes), sizes[0], 3)


def _energy_forces(energy_fn, batch: dict, compute_forces: bool, n_atoms: int | None, training: bool) -> dict:
    pos = batch["positions"]
    if compute_forces and not pos.requires_grad:
        pos = pos.detach().requires_grad_(True)
        batch = dict(batch, positions=pos)
    with torch.enable_grad() if compute_forces else torch.no_grad():
        e = energy_fn(_graph_positions(batch, n_atoms))
        if isinstance(e, dict):
            e = e["energy"]
        e = e.reshape(-1)
        out = {"energy": e}
        if compute_forces:
            (g,) = torch.autograd.grad(e.sum(), pos, create_graph=training)
            out["forces"] = -g
    return out


class FlatMLPPotential(torch.nn.Module):
    """MLP on flattened coordinates: ``[G, N*3] -> energy [G]`` (plus forces by autograd).

    Parameters
    ----------
    n_atoms : int
        Atoms per structure (fixed).
    hidden : int
        Width of the two hidden layers (SiLU).
    energy_shift, energy_scale : float
        ``energy = shift + scale * MLP(x)``.

    Raises ``ValueError`` on a batch whose graphs do not all have ``n_atoms`` atoms.
    """

    def __init__(
        self,
        n_atoms: int,
        hidden: int = 64,
        energy_shift: float = 0.0,
        energy_scale: float = 1.0,
        dtype: str = "float64",
    ):
        super().__init__()
        self.hparams = {
            "name": "flat_mlp",
            "n_atoms": n_atoms,
            "hidden": hidden,
            "energy_shift": energy_shift,
            "energy_scale": energy_scale,
            "dtype": dtype,
        }
        self.n_atoms = n_atoms
        self.net = torch.nn.Sequential(
            torch.nn.Linear(3 * n_atoms, hidden),
            torch.nn.SiLU(),
            torch.nn.Linear(hidden, hidden),
            torch.nn.SiLU(),
            torch.nn.Linear(hidden, 1),
        ).to(getattr(torch, dtype))
        self.register_buffer("shift", torch.tensor(float(energy_shift), dtype=getattr(torch, dtype)))
        self.register_buffer("scale", torch.tensor(float(energy_scale), dtype=getattr(torch, dtype)))

    def energy(self, positions: torch.Tensor) -> torch.Tensor:
        """``positions [G, N, 3] -> [G]``."""
        return self.shift + self.scale * self.net(positions.reshape(positions.shape[0], -1)).squeeze(-1)

    def forward(self, batch: dict, compute_forces: bool = True, compute_stress: bool = False) -> dict:
        if compute_stress:
            raise ValueError("FlatMLPPotential does not compute stress")
        return _energy_forces(self.energy, batch, compute_forces, self.n_atoms, self.training)


class PositionsPotential(torch.nn.Module):
    """Adapt ``module(positions [G, N, 3]) -> energy [G]`` (or a dict with 'energy') to the potential interface."""

    def __init__(self, module):
        super().__init__()
        self.module = module

    def forward(self, batch: dict, compute_forces: bool = True, compute_stress: bool = False) -> dict:
        if compute_stress:
            raise ValueError("PositionsPotential does not compute stress")
        return _energy_forces(self.module, batch, compute_forces, None, self.training)


def fit_flat_mlp(
    batch: dict, steps: int = 300, hidden: int = 64, seed: int = 0, forces_weight: float = 10.0, log=None
) -> FlatMLPPotential:
    """Train a :class:`FlatMLPPotential` on a batch's ``energy`` (and ``forces``) labels (Adam, full batch).

    Without labels the randomly initialised MLP is returned. Seeded.
    """
    torch.manual_seed(seed)
    pos = _graph_positions(batch)
    dtype = batch["positions"].dtype
    e = batch.get("energy")
    shift = float(e.mean()) if e is not None else 0.0
    scale = float(e.std()) if e is not None and e.numel() > 1 and float(e.std()) > 0 else 1.0
    model = FlatMLPPotential(pos.shape[1], hidden, shift, scale, dtype=str(dtype).replace("torch.", ""))
    if e is None or steps <= 0:
        return model.eval()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    f = batch.get("forces")
    model.train()
    for step in range(steps):
        out = model(batch, compute_forces=f is not None)
        loss = ((out["energy"] - e) / scale).pow(2).mean()
        if f is not None:
            loss = loss + forces_weight * ((out["forces"] - f) / scale).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if log and (step + 1) % max(steps // 4, 1) == 0:
            log(f"  mlp-demo step {step + 1}/{steps}: loss {loss.item():.3e}")
    return model.eval()
