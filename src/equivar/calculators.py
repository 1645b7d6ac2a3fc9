"""ASE calculator for equivar potentials.

>>> from equivar.calculators import EquivarCalculator      # doctest: +SKIP
>>> atoms.calc = EquivarCalculator("runs/demo/model.pt")   # doctest: +SKIP
>>> atoms.get_potential_energy(), atoms.get_forces()       # doctest: +SKIP
"""

from __future__ import annotations

import copy
import os

import torch
from ase.calculators.calculator import Calculator, all_changes

from .data import (
    MIN_DISTANCE,
    Configuration,
    batch_to,
    check_elements,
    check_finite,
    check_shapes,
    collate,
    config_to_graph,
)


def _lookup(model, key):
    for src in (getattr(model, "equivar_metadata", None) or {}, getattr(model, "hparams", None) or {}):
        if key in src and src[key] is not None:
            return src[key]
    return getattr(model, key, None)


def _check_overlaps(graph, source: str) -> None:
    s, r = graph["edge_index"]
    if s.numel():
        d = (graph["positions"][r] - graph["positions"][s] + graph["shifts"]).norm(dim=1)
        k = int(d.argmin())
        if float(d[k]) < MIN_DISTANCE:
            raise ValueError(
                f"{source}: overlapping atoms {int(s[k])} and {int(r[k])} "
                f"(distance {float(d[k]):.3g} Å < {MIN_DISTANCE} Å)"
            )


_DTYPES = {"float32": torch.float32, "float64": torch.float64}


def _check_dtype(dtype) -> torch.dtype | None:
    """``None``, ``torch.float32``/``float64`` or their names; a one-line ``ValueError`` for anything else."""
    if dtype is None or dtype in (torch.float32, torch.float64):
        return dtype
    if isinstance(dtype, str) and dtype in _DTYPES:
        return _DTYPES[dtype]
    raise ValueError(f"EquivarCalculator: default_dtype must be 'float32' or 'float64' (or None), got {dtype!r}")


class EquivarCalculator(Calculator):
    """Energy (eV), forces (eV/Å), stress (eV/Å^3, periodic cells) and per-atom energies of an equivar model.

    Parameters
    ----------
    model_or_checkpoint_path : torch.nn.Module or str
        A model honouring the contract of ``docs/contracts.md`` or a checkpoint
        path (``model.pt`` of a training run); checkpoints load on CPU first,
        whatever device saved them.
    device : str or torch.device
        ``cpu``, ``cuda``, ``cuda:N``; checked up front (``ValueError`` when
        it is not a device or is not available).
    default_dtype : torch.dtype or str, optional
        Dtype to run the model in (``"float64"`` for MD with tight energy
        conservation). Default: the model's own. A model object passed in is
        copied, not modified, when it must be cast or moved.

    The calculator never changes global torch state (default dtype, grad
    mode, threads). Raises ``ValueError`` for a model with NaN or infinite
    weights (naming the file and parameter), elements the model was not
    trained on, non-finite or overlapping positions.
    """

    implemented_properties = ["energy", "free_energy", "forces", "stress", "energies"]

    def __init__(
        self,
        model_or_checkpoint_path: torch.nn.Module | str,
        device: str | torch.device = "cpu",
        default_dtype: torch.dtype | str | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        from ._device import check_device

        self.device = check_device(device, "EquivarCalculator: device")
        default_dtype = _check_dtype(default_dtype)
        if isinstance(model_or_checkpoint_path, (str, os.PathLike)):
            from .train import load_model

            model = load_model(str(model_or_checkpoint_path), device=self.device, dtype=default_dtype)
        else:
            model = model_or_checkpoint_path
            from .train import check_finite_weights, model_dtype

            check_finite_weights(model.state_dict(), "EquivarCalculator: model ")

            if (default_dtype is not None and default_dtype != model_dtype(model)) or any(
                p.device != self.device for p in model.parameters()
            ):
                model = copy.deepcopy(model).to(device=self.device, dtype=default_dtype or model_dtype(model))
        self.model = model.eval()
        from .train import model_dtype

        self.dtype = model_dtype(model)
        r_max = _lookup(model, "r_max")
        if r_max is None:
            raise ValueError("cannot find the model's cutoff (r_max) in its metadata, hparams or attributes")
        self.r_max = float(r_max)
        zs = _lookup(model, "atomic_numbers")
        self.atomic_numbers = None if zs is None else [int(z) for z in zs]

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        a = self.atoms
        config = Configuration(a.numbers, a.positions, a.cell.array, a.pbc, source="ASE atoms")
        check_shapes(config)
        check_finite(config)
        if self.atomic_numbers is not None:
            check_elements([config], self.atomic_numbers)
        graph = config_to_graph(config, self.r_max)
        _check_overlaps(graph, config.source)
        batch = batch_to(collate([graph]), self.device, self.dtype)
        stress = bool(a.pbc.any()) and "stress" in properties
        with torch.enable_grad():
            out = self.model(batch, compute_forces=True, compute_stress=stress)
        e = float(out["energy"].detach().double().sum())
        self.results = {
            "energy": e,
            "free_energy": e,
            "forces": out["forces"].detach().double().cpu().numpy(),
        }
        if "node_energy" in out:
            self.results["energies"] = out["node_energy"].detach().double().cpu().numpy()
        if stress and "stress" in out:
            from ase.stress import full_3x3_to_voigt_6_stress

            self.results["stress"] = full_3x3_to_voigt_6_stress(out["stress"][0].detach().double().cpu().numpy())
