"""Export a potential to a file that runs without equivar: ``torch.export`` with dynamic atom and edge counts.

The file (``.pt2``) holds an ATen graph of the energy and the weights; loading it needs only PyTorch
(``torch.export.load``), not this package, and forces follow by autograd on the loaded graph::

    import json, torch
    extra = {"equivar.json": ""}
    f = torch.export.load("model.pt2", extra_files=extra).module()
    meta = json.loads(extra["equivar.json"])            # r_max, elements, dtype, input convention
    pos = positions.clone().requires_grad_(True)          # [N, 3], Å, meta["dtype"]
    E = f(pos, atomic_numbers, edge_index, shifts)        # [1], eV
    F = -torch.autograd.grad(E.sum(), pos)[0]             # [N, 3], eV/Å

``edge_index [2, E]`` (long) lists (sender j, receiver i) pairs closer than ``r_max`` in both directions,
``shifts [E, 3]`` their periodic-image offsets in Å (``r_ij = pos[i] - pos[j] + shift``, zeros for a
molecule): any neighbour list with that convention (vesin, ASE, matscipy) feeds it.
"""

from __future__ import annotations

import json
import os
import tempfile

import torch

_INPUTS = ("positions", "atomic_numbers", "edge_index", "shifts")


class _EnergyOfOneStructure(torch.nn.Module):
    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, positions, atomic_numbers, edge_index, shifts):
        n = positions.shape[0]
        batch = dict(
            positions=positions,
            atomic_numbers=atomic_numbers,
            edge_index=edge_index,
            shifts=shifts,
            batch=torch.zeros(n, dtype=torch.long, device=positions.device),
            ptr=torch.tensor([0, n], device=positions.device),
        )
        return self.model(batch, compute_forces=False)["energy"]


def export_potential(model: torch.nn.Module, path: str, example: dict) -> torch.export.ExportedProgram:
    """Write ``model``'s energy of one structure to ``path`` (a ``torch.export`` ``.pt2`` file).

    Parameters
    ----------
    model : torch.nn.Module
        A potential of :mod:`equivar.models` (``model(batch, compute_forces=False)["energy"]``), in the
        dtype the file should run in (float64 for 1e-10 agreement). Put in eval mode.
    path : str
        Output file, written atomically.
    example : dict
        One structure's ``positions [N, 3]``, ``atomic_numbers [N]``, ``edge_index [2, E]``,
        ``shifts [E, 3]`` to trace with; the file accepts any ``N >= 2`` and ``E >= 2``.

    Returns
    -------
    torch.export.ExportedProgram

    Raises
    ------
    ValueError
        ``example`` lacks one of the four keys or has fewer than 2 atoms or edges.
    """
    missing = [k for k in _INPUTS if k not in example]
    if missing:
        raise ValueError(f"example structure lacks {missing}; needs {list(_INPUTS)}")
    dtype = next(p.dtype for p in model.parameters() if p.is_floating_point())
    args = tuple(example[k].to(dtype) if example[k].is_floating_point() else example[k].long() for k in _INPUTS)
    if args[0].shape[0] < 2 or args[2].shape[1] < 2:
        raise ValueError(f"example needs >= 2 atoms and >= 2 edges, got {args[0].shape[0]} and {args[2].shape[1]}")
    model.eval()
    N, E = torch.export.Dim("atoms", min=2), torch.export.Dim("edges", min=2)
    ep = torch.export.export(
        _EnergyOfOneStructure(model), args, dynamic_shapes=({0: N}, {0: N}, {1: E}, {0: E}), strict=False
    )
    for table in (ep.constants, ep.state_dict):  # own storage per tensor (views of one storage do not save)
        for k, v in list(table.items()):
            if isinstance(v, torch.nn.Parameter):
                table[k] = torch.nn.Parameter(v.detach().clone(), requires_grad=v.requires_grad)
            elif isinstance(v, torch.Tensor):
                table[k] = v.detach().clone()
    meta = dict(
        inputs=list(_INPUTS),
        output="energy [1] (eV); forces = -d energy / d positions",
        dtype=str(dtype).replace("torch.", ""),
        r_max=float(getattr(model, "r_max", float("nan"))),
        hparams=getattr(model, "hparams", None),
        edge_convention="edge_index[0] = sender j, edge_index[1] = receiver i, r_ij = pos[i] - pos[j] + shift",
    )
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=d, suffix=".pt2.tmp")
    os.close(fd)
    try:
        torch.export.save(ep, tmp, extra_files={"equivar.json": json.dumps(meta, default=str)})
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return ep
