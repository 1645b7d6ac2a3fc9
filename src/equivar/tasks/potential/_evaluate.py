"""Predictions on datasets, error tables per ``config_type``, predictions as extxyz."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from ..._paths import atomic_output
from ...data import AtomicGraphDataset, Configuration, batch_to, make_loader
from ...models import model_dtype, unwrap
from ._metrics import ErrorAccumulator


def predict(
    model: torch.nn.Module,
    dataset: AtomicGraphDataset,
    batch_size: int = 10,
    device="cpu",
    compute_stress: bool | None = None,
) -> list[dict]:
    """Run ``model`` over ``dataset`` in order.

    Returns
    -------
    list of dicts, one per configuration: ``energy`` (float, eV), ``forces``
    (ndarray [N, 3], eV/Å), ``stress`` (ndarray [3, 3], eV/Å^3, or None),
    ``virials`` (ndarray [3, 3], eV, or None: ``-stress * volume``), all
    float64. Stress is computed for periodic structures when
    ``compute_stress`` is None.
    """
    m = unwrap(model)
    was_training = m.training
    m.eval()
    dtype = model_dtype(m)
    out: list[dict] = []
    try:
        for batch in make_loader(dataset, batch_size, shuffle=False):
            stress = bool(batch["pbc"].any()) if compute_stress is None else compute_stress
            b = batch_to(batch, device, dtype)
            with torch.enable_grad():
                pred = m(b, compute_forces=True, compute_stress=stress)
            e = pred["energy"].detach().double().cpu().numpy()
            f = pred["forces"].detach().double().cpu().numpy() if "forces" in pred else None
            s = pred["stress"].detach().double().cpu().numpy() if stress and "stress" in pred else None
            v = pred["virials"].detach().double().cpu().numpy() if stress and "virials" in pred else None
            ptr = batch["ptr"].tolist()
            for g in range(len(ptr) - 1):
                periodic = bool(batch["pbc"][g].any())
                out.append(
                    {
                        "energy": float(e[g]),
                        "forces": None if f is None else f[ptr[g] : ptr[g + 1]],
                        "stress": None if s is None or not periodic else s[g],
                        "virials": None if v is None or not periodic else v[g],
                    }
                )
    finally:
        m.train(was_training)
    return out


def error_rows(sets: Mapping[str, tuple[Sequence[Configuration], Sequence[Mapping]]]) -> list[dict]:
    """Error metrics per set and ``config_type`` (plus an ``all`` row per set).

    ``sets`` maps a set name (train, valid, test_x) to ``(configs, predictions)``.
    Each row: ``set``, ``config_type``, ``n`` and the metrics of
    :class:`ErrorAccumulator` (meV units).
    """
    rows = []
    for name, (configs, preds) in sets.items():
        groups: dict[str, ErrorAccumulator] = {}
        counts: dict[str, int] = {}
        total = ErrorAccumulator()
        for c, p in zip(configs, preds):
            groups.setdefault(c.config_type, ErrorAccumulator()).add_structure(c, p)
            counts[c.config_type] = counts.get(c.config_type, 0) + 1
            total.add_structure(c, p)
        keys = sorted(groups)
        for ct in keys:
            rows.append({"set": name, "config_type": ct, "n": counts[ct], **groups[ct].compute()})
        if len(keys) > 1:
            rows.append({"set": name, "config_type": "all", "n": len(configs), **total.compute()})
    return rows


_COLUMNS = [
    ("mae_e_per_atom", "E MAE meV/atom"),
    ("rmse_e_per_atom", "E RMSE meV/atom"),
    ("mae_e", "E MAE meV"),
    ("rmse_e", "E RMSE meV"),
    ("mae_f", "F MAE meV/Å"),
    ("rmse_f", "F RMSE meV/Å"),
    ("mae_s", "S MAE meV/Å³"),
    ("rmse_s", "S RMSE meV/Å³"),
    ("mae_v_per_atom", "V MAE meV/atom"),
    ("rmse_v_per_atom", "V RMSE meV/atom"),
]


def format_table(rows: Sequence[Mapping]) -> str:
    """A Markdown table of :func:`error_rows` (columns without any value are dropped)."""
    cols = [(k, h) for k, h in _COLUMNS if any(k in r for r in rows)]
    head = ["set", "config_type", "n"] + [h for _, h in cols]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        vals = [str(r["set"]), str(r["config_type"]), str(int(r["n"]))]
        vals += [f"{r[k]:.2f}" if k in r else "-" for k, _ in cols]
        lines.append("| " + " | ".join(vals) + " |")
    return "\n".join(lines)


def write_rows_csv(path: str, rows: Sequence[Mapping]) -> None:
    import csv

    keys = ["set", "config_type", "n"] + [k for k, _ in _COLUMNS if any(k in r for r in rows)]
    with atomic_output(path, "w", newline="") as f:  # atomic: a crash leaves no half-written table
        w = csv.DictWriter(f, fieldnames=keys, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow(r)


def write_predictions(path: str, configs: Sequence[Configuration], preds: Sequence[Mapping]) -> None:
    """Write structures with predicted ``energy``/``forces``/``stress``/``virials`` (and references as ``REF_*``)
    to extxyz."""
    import ase.io
    import numpy as np

    frames = []
    for c, p in zip(configs, preds):
        atoms = c.to_ase(p.get("energy"), p.get("forces"), p.get("stress"))
        if c.energy is not None:
            atoms.info["REF_energy"] = c.energy
        if c.forces is not None:
            atoms.arrays["REF_forces"] = c.forces.copy()
        if c.stress is not None:
            atoms.info["REF_stress"] = c.stress.reshape(-1).copy()
        if p.get("virials") is not None:
            atoms.info["virials"] = np.asarray(p["virials"]).reshape(-1).copy()
        if c.virials is not None:
            atoms.info["REF_virials"] = c.virials.reshape(-1).copy()
        frames.append(atoms)
    with atomic_output(path, "w") as f:  # atomic: a crash leaves no half-written file
        ase.io.write(f, frames, format="extxyz")
