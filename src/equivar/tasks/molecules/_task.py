"""The ``molecule_diffusion`` task: train a molecule denoiser on QM9, then sample molecules and score them."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Mapping

import numpy as np

from ..._paths import atomic_output
from ...diffusion import NoiseSource
from .._data import TaskData
from .._registry import register_task
from .._task import Task
from ._data import ATOM_Z, CHARGES, MoleculeData, collate_molecules, encode_graphs, marginals
from ._geometry import geometry_distances
from ._methods import EDMMethod, EQGATMethod, draw_sizes
from ._metrics import GeneratedMolecule, molecule_metrics, rdkit_molecule

__all__ = ["MoleculeDiffusionTask", "reference_molecules", "score", "write_sdf"]

_METHODS = {"eqgat_diff": EQGATMethod, "edm": EDMMethod}
METRIC_KEYS = (
    "atom_stability",
    "mol_stability",
    "validity",
    "validity_connected",
    "connected",
    "uniqueness",
    "novelty",
    "bond_length_w1",
    "bond_angle_w1",
)
#: training molecules the bond-length / angle distributions are compared with (CPU)
GEOMETRY_REFERENCE = 2000


def reference_molecules(dataset, limit: int = GEOMETRY_REFERENCE) -> list:
    """The first ``limit`` molecules of an encoded set as :class:`GeneratedMolecule` with their true bonds and charges."""
    z, c = np.array(ATOM_Z), np.array(CHARGES)
    return [
        GeneratedMolecule(z[it["atoms"].numpy()], it["pos"].numpy(), c[it["charges"].numpy()], it["bonds"].numpy())
        for it in dataset.items[:limit]
    ]


def score(molecules, train) -> dict:
    """:func:`molecule_metrics` (novelty against ``train.smiles``) plus :func:`geometry_distances` against the
    first :data:`GEOMETRY_REFERENCE` molecules of ``train`` (an encoded set; ``None``: neither)."""
    m = molecule_metrics(molecules, train_smiles=None if train is None else train.smiles)
    if train is not None:
        g = geometry_distances(molecules, reference_molecules(train))
        m.update(bond_length_w1=g["bond_length_w1"], bond_angle_w1=g["bond_angle_w1"])
    else:
        m.update(bond_length_w1=float("nan"), bond_angle_w1=float("nan"))
    return m


def write_sdf(path: str, molecules) -> int:
    """Write molecules (:class:`GeneratedMolecule`) with their 3D coordinates to an SDF file (atomically).

    Bonds are the molecule's own (EQGAT-diff) or EDM's from distances; a molecule RDKit cannot write
    whole is written without sanitization. Returns the number written.
    """
    from ...data import rdkit_chem

    Chem = rdkit_chem()
    buf = io.StringIO()
    w = Chem.SDWriter(buf)
    w.SetKekulize(False)
    for k, m in enumerate(molecules):
        mol = rdkit_molecule(m)
        conf = Chem.Conformer(len(m.atomic_numbers))
        for i, (x, y, z) in enumerate(np.asarray(m.positions, dtype=np.float64)):
            conf.SetAtomPosition(i, (float(x), float(y), float(z)))
        mol.AddConformer(conf, assignId=True)
        mol.SetProp("_Name", f"sample {k}")
        mol.UpdatePropertyCache(strict=False)
        w.write(mol)
    w.close()
    with atomic_output(path, "w") as f:
        f.write(buf.getvalue())
    return len(molecules)


@register_task("molecule_diffusion")
class MoleculeDiffusionTask(Task):
    """Train a molecule denoiser (``eqgat_diff`` or ``edm`` method, :mod:`._methods`) on QM9.

    Batch: the molecule batch (``docs/contracts.md``; :func:`collate_molecules`). Each step noises every
    molecule at a random level (seeded by the run's seed) and the loss is the batch mean of the
    weighted per-molecule losses. Validation uses noise seeded by the molecules' indices, so the
    same molecules get the same levels at every evaluation. The report samples ``sample_count``
    molecules with the selected model, writes ``samples.sdf`` and ``samples.md`` / ``samples.csv``
    (atom and molecule stability, validity, connectivity, uniqueness, novelty against the training
    SMILES), W1 distances of bond lengths and angles to 2000 training molecules), and returns them as rows.

    Parameters
    ----------
    training : TrainingConfig or None
    data : mapping
        :class:`MoleculeData` (``root``, ``split``, ``limit``, ``max_train``, ``max_valid``, ``max_test``).
    method : str
        ``'eqgat_diff'`` (model ``eqgat_diff``) or ``'edm'`` (model ``edm_egnn``).
    timesteps : int or None
        ``T`` (None: the method's, 500 / 1000).
    sample_count : int
        Molecules sampled in the report (0: none).
    sample_steps : int or None
        Denoising steps when sampling (None: all ``T``; fewer: evenly spaced levels).
    sample_seed : int
        Seed of the sizes and of the sampler.
    """

    data_section = False

    def __init__(
        self,
        training=None,
        *,
        data: Mapping | None = None,
        method: str = "eqgat_diff",
        timesteps: int | None = None,
        sample_count: int = 100,
        sample_steps: int | None = None,
        sample_seed: int = 0,
    ):
        super().__init__(training)
        if method not in _METHODS:
            raise ValueError(f"task.method must be one of {', '.join(_METHODS)}, got {method!r}")
        if timesteps is not None and (isinstance(timesteps, bool) or not isinstance(timesteps, int) or timesteps < 2):
            raise ValueError(f"task.timesteps must be an integer >= 2 or null, got {timesteps!r}")
        if sample_count < 0:
            raise ValueError(f"task.sample_count must be >= 0, got {sample_count}")
        if sample_steps is not None and sample_steps < 1:
            raise ValueError(f"task.sample_steps must be >= 1 or null, got {sample_steps}")
        self.data = MoleculeData.from_mapping(data)
        self.method_name = method
        self.timesteps = timesteps
        self.sample_count, self.sample_steps, self.sample_seed = sample_count, sample_steps, sample_seed
        self.method = None
        self.priors = None
        self.source = NoiseSource(0)

    def _build(self, priors: dict) -> None:
        self.priors = priors
        kw = {} if self.timesteps is None else {"timesteps": self.timesteps}
        self.method = _METHODS[self.method_name](priors, **kw)

    # ---- data ------------------------------------------------------------------------------------
    def load_data(self, cfg, log=print) -> TaskData:
        """QM9 graphs of ``task.data``, encoded; the priors and the size histogram from the training part."""
        parts = self.data.load(log)
        sets = {k: encode_graphs(v) for k, v in parts.items()}
        if not len(sets["train"]):
            raise ValueError("task.data selects no training molecule (limit / max_train too small)")
        priors = marginals(sets["train"])
        self._build(priors)
        self.source = NoiseSource(int(cfg.seed))
        meta = {
            "task": "molecule_diffusion",
            "method": self.method_name,
            "timesteps": self.method.T,
            "priors": priors,
            # where the data were read: paths resolved as read here (relative to the working directory, as every
            # config path), so that `equivar sample` run from elsewhere finds the same molecules
            "data": {
                **vars(self.data),
                **{k: os.path.abspath(v) for k in ("root", "cache_dir") if (v := getattr(self.data, k)) is not None},
            },
            "dtype": cfg.dtype,
            "config": cfg.to_dict(),
        }
        note = ", ".join(f"{len(v)} {k}" for k, v in sets.items()) + " molecules"
        log(
            f"data: {note}; atom classes H C N O F {np.round(priors['atoms'], 4).tolist()}, "
            f"bond classes none/1/2/3 {np.round(priors['bonds'], 4).tolist()}"
        )
        info = {"dtype": cfg.dtype, "seed": cfg.seed}
        tests = {"test": sets["test"]} if len(sets["test"]) else {}
        return TaskData(sets["train"], sets["valid"], tests, collate_molecules, info, meta, note=note, extra=sets)

    # ---- per batch -------------------------------------------------------------------------------
    def forward(self, model, batch: Mapping, training: bool) -> dict:
        if self.method is None:
            raise RuntimeError("molecule_diffusion: load_data must run before forward (the priors come from the data)")
        want = "EQGATDiff" if self.method_name == "eqgat_diff" else "EDMDenoiser"
        inner = getattr(model, "module", model)
        if type(inner).__name__ != want:
            raise ValueError(f"task.method {self.method_name!r} needs a {want} model, got {type(inner).__name__}")
        if training:
            source = self.source
        else:  # the same levels and noise for the same molecules at every evaluation
            source = NoiseSource(int(batch["mol_index"].sum()) % (2**31))
        return self.method.losses(model, batch, source)

    def loss(self, pred: Mapping, batch: Mapping):
        loss = pred["total"].mean()
        parts = {k: float(v.detach().mean()) for k, v in pred.items() if k not in ("t", "weight")}
        return loss, parts

    # ---- after training ----------------------------------------------------------------------------
    def sample_molecules(self, model, count: int, seed: int, steps: int | None = None, batch_size: int = 100):
        """``count`` molecules from ``model`` (sizes from the training histogram), in batches of ``batch_size``."""
        sizes = draw_sizes(self.priors["num_atoms"], count, seed)
        model.eval()
        out = []
        for k in range(0, count, batch_size):
            out += self.method.sample(model, sizes[k : k + batch_size], seed + k, steps)
        return out

    def report(self, model, data: TaskData, cfg, history, log=print) -> list[dict]:
        """Sample ``sample_count`` molecules, score them (:func:`molecule_metrics`), write ``samples.*``."""
        if not self.sample_count:
            return []
        import time

        t0 = time.process_time()
        mols = self.sample_molecules(model, self.sample_count, self.sample_seed, self.sample_steps)
        cpu = time.process_time() - t0
        m = score(mols, data.extra["train"])
        row = {"set": "samples", "molecules": m["molecules"], **{k: m[k] for k in METRIC_KEYS}, "sample_cpu_s": cpu}
        out = cfg.output_dir
        write_sdf(os.path.join(out, "samples.sdf"), mols)
        lines = ["| " + " | ".join(row) + " |", "|" + "---|" * len(row)]
        lines.append("| " + " | ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in row.values()) + " |")
        table = "\n".join(lines)
        with atomic_output(os.path.join(out, "samples.md"), "w") as f:
            f.write(table + "\n")
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=list(row))
        w.writeheader()
        w.writerow(row)
        with atomic_output(os.path.join(out, "samples.csv"), "w") as f:
            f.write(buf.getvalue())
        steps = self.sample_steps or self.method.T
        log(f"{len(mols)} molecules sampled ({steps} steps, {cpu:.1f} CPU-s), metrics:\n{table}")
        log(f"wrote {out}/: samples.sdf, samples.md, samples.csv")
        return [row]
