"""Checks every interatomic potential should pass, usable by any model in a few lines.

After NequIP's model test mixins. A *potential* here is any module with the
interface of ``docs/contracts.md``: ``model(batch, compute_forces=True,
compute_stress=False) -> {"energy" [G], "node_energy" [N], "forces" [N, 3],
"stress" [G, 3, 3], "virials" [G, 3, 3]}`` (eV, eV/Å, eV/Å^3), ``model.r_max``
(Å), ``model.atomic_numbers``, ``model.hparams`` (``build_model(**hparams)``
rebuilds it) and ``model.isolated_atom_energy(Z)`` (eV).

Each ``check_*`` function measures one property, returns the measured
relative error (a float) and raises ``AssertionError`` (with the numbers) when
it is above the tolerance. :func:`check_potential` runs them all and returns a
:class:`PotentialReport`; :class:`equivar.testing.PotentialTestKit` turns them
into pytest tests for a model factory.

Batches are built through :mod:`equivar.data` (``Configuration`` ->
``config_to_graph`` -> ``collate``), as training and the calculators do.

Tolerances are relative: ``|a - b| / max(|a|, |b|)`` over the whole tensor
(Frobenius norms), by default 1e-4 in float32 and 1e-9 in float64 (finite
differences: 1e-6, their own truncation error at the step used).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import tempfile
from collections.abc import Callable, Sequence

import numpy as np
import torch

from ..data import Configuration, batch_to, collate, config_to_graph
from ._equivariance import EquivarianceReport, Typed, default_tolerance, equivariance_error

__all__ = [
    "PotentialReport",
    "check_batch_consistency",
    "check_checkpoint_roundtrip",
    "check_cutoff_smoothness",
    "check_forces_finite_differences",
    "check_hparams_roundtrip",
    "check_isolated_atoms",
    "check_native_training_gradient",
    "check_potential",
    "check_stress_finite_strain",
    "check_symmetry",
    "isolated_atom_energy",
    "potential_batch",
    "potential_structures",
    "relative_error",
]

FD_TOLERANCE = 1e-6


# --- helpers ---------------------------------------------------------------------------------
def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    """``|a - b| / max(|a|, |b|)`` (Frobenius norms, float64); ``|a - b|`` when both are zero; inf for NaN."""
    a, b = a.detach().to(torch.float64), b.detach().to(torch.float64)
    diff = float((a - b).norm())
    scale = max(float(a.norm()), float(b.norm()))
    if diff != diff:
        return math.inf
    return diff / scale if scale > 0 else diff


def finite_difference_error(analytic: torch.Tensor, fd: torch.Tensor, energy: float, h: float) -> float:
    """Relative error of ``analytic`` against a finite-difference ``fd`` beyond the round-off floor.

    The energy differences behind ``fd`` lose ``~eps |E| / h`` to rounding (float64 ``eps``),
    which matters when the energy carries large reference energies (E0s of hundreds of eV per
    atom): the part of ``|analytic - fd|`` under ``16 eps |E| / h`` per component (a bound for
    the central differences and their Richardson combination) is not counted.
    """
    a, b = analytic.detach().to(torch.float64), fd.detach().to(torch.float64)
    floor = 16 * torch.finfo(torch.float64).eps * abs(energy) / h * math.sqrt(b.numel())
    diff = float((a - b).norm())
    if diff != diff:
        return math.inf
    excess = max(diff - floor, 0.0)
    scale = max(float(a.norm()), float(b.norm()))
    return excess / scale if scale > 0 else excess


def _dtype(model) -> torch.dtype:
    d = getattr(model, "dtype", None)
    if isinstance(d, torch.dtype):
        return d
    p = next((t for t in model.parameters() if t.is_floating_point()), None)
    return p.dtype if p is not None else torch.get_default_dtype()


def _tol(model, tolerance: float | None) -> float:
    return default_tolerance(_dtype(model)) if tolerance is None else tolerance


def _r_max(model) -> float:
    r = getattr(model, "r_max", None)
    if r is None:
        raise ValueError(f"{type(model).__name__} has no r_max: the check needs the cutoff radius (Å)")
    return float(r)


def _require(ok: bool, what: str, err: float, tol: float) -> float:
    if not ok:
        raise AssertionError(f"{what}: relative error {err:.3e} above tolerance {tol:.1e}")
    return err


def potential_batch(model, configs: Sequence[Configuration], r_max: float | None = None) -> dict:
    """The batch dict of ``configs`` (neighbour lists at ``r_max``, default ``model.r_max``) in the model's dtype."""
    r = _r_max(model) if r_max is None else r_max
    return batch_to(collate([config_to_graph(c, r) for c in configs]), dtype=_dtype(model))


def potential_structures(model, seed: int = 0) -> dict[str, Configuration]:
    """Two small test structures scaled to the model's cutoff ``r_max`` (Å) and drawn from its elements.

    ``'molecule'``: 5 atoms, pairwise distances >= 0.3 r_max, within ~r_max of
    each other (so most pairs interact, and the graph is connected);
    ``'periodic'``: 4 atoms in a skewed, fully periodic cell of side
    ~1.07 r_max (every atom sees periodic images of itself and the others).
    """
    r = _r_max(model)
    rng = np.random.default_rng(seed)
    zs = list(getattr(model, "atomic_numbers", [1]))
    pts: list = []
    while len(pts) < 5:
        p = rng.normal(size=3) * 0.4 * r
        if all(np.linalg.norm(p - q) >= 0.3 * r for q in pts):
            pts.append(p)
    mol = Configuration(np.array([zs[i % len(zs)] for i in range(5)]), np.array(pts), source="kit molecule")
    cell = np.array([[3.2, 0.1, 0.0], [0.3, 3.0, 0.2], [-0.1, 0.2, 3.4]]) * (r / 3.0)
    frac = np.array([[0.05, 0.1, 0.0], [0.5, 0.45, 0.1], [0.3, 0.8, 0.55], [0.8, 0.2, 0.7]])
    zp = np.array([zs[(i + 1) % len(zs)] for i in range(4)])
    per = Configuration(zp, frac @ cell, cell=cell, pbc=np.array([True, True, True]), source="kit periodic")
    return {"molecule": mol, "periodic": per}


def isolated_atom_energy(model, z: int) -> float:
    """The energy (eV) the model documents for an atom with no neighbour: ``model.isolated_atom_energy(z)``.

    Models without that method: ``E0[z] + shift`` read from ``model.hparams``
    (``atomic_numbers``, ``atomic_energies``, ``shift``), MACE's convention.
    """
    fn = getattr(model, "isolated_atom_energy", None)
    if fn is not None:
        return float(fn(z))
    hp = getattr(model, "hparams", {})
    zs = list(hp.get("atomic_numbers") or model.atomic_numbers)
    k = zs.index(int(z))
    e0 = hp.get("atomic_energies")
    shift = hp.get("shift", 0.0)
    e = float(e0[k]) if e0 is not None else 0.0
    return e + float(shift[k] if isinstance(shift, (list, tuple)) else shift)


def _outputs(model, configs, stress: bool = False) -> dict:
    """The model's outputs (detached) on the batch of ``configs``, forces included."""
    out = model(potential_batch(model, configs), compute_forces=True, compute_stress=stress)
    return {k: v.detach() for k, v in out.items()}


# --- the checks --------------------------------------------------------------------------------------
def check_symmetry(
    model,
    configs: dict | None = None,
    *,
    tolerance: float | None = None,
    group: str = "O3",
    n_trials: int = 2,
    seed: int = 0,
) -> EquivarianceReport:
    """O(3) (rotations and improper rotations), translation and permutation equivariance.

    Energy invariant, forces, node energies and stress equivariant (forces as
    ``1o``, stress as a rank-2 tensor ``R S R^T``), for each structure
    (default :func:`potential_structures`: a molecule and a periodic cell).
    Positions (and the cell) are transformed and the neighbour list rebuilt
    through :mod:`equivar.data`, as a user's transformed input would be.

    ``group='SO3'`` leaves out the improper rotations (a model that is not
    meant to be parity-invariant). Returns the report of the worst structure;
    raises ``AssertionError`` above ``tolerance`` (relative; default 1e-4
    float32, 1e-9 float64).
    """
    tol = _tol(model, tolerance)
    dt = _dtype(model)
    configs = potential_structures(model, seed) if configs is None else configs
    worst = None
    for name, c in configs.items():
        periodic = bool(np.any(c.pbc))

        def fn(pos, z, cell, _c=c, _periodic=periodic):
            conf = Configuration(
                z.cpu().numpy(),
                pos.detach().cpu().double().numpy(),
                cell=cell.detach().cpu().double().numpy(),
                pbc=_c.pbc,
            )
            b = potential_batch(model, [conf])
            b["positions"] = pos  # the transformed positions themselves (rounding of the test's dtype)
            b["cell"] = cell[None] if _periodic else b["cell"]
            out = model(b, compute_forces=True, compute_stress=_periodic)
            keys = ["energy", "forces", "node_energy"] + (["stress"] if _periodic else [])
            return {k: out[k].detach() for k in keys}

        args = [
            torch.tensor(c.positions, dtype=dt),
            torch.tensor(c.atomic_numbers, dtype=torch.long),
            torch.tensor(c.cell, dtype=dt),
        ]
        in_types = [Typed("positions", nodes=True), Typed(None, nodes=True), "cell"]
        out_types = {"energy": "0e", "forces": Typed("1o", nodes=True), "node_energy": Typed("0e", nodes=True)}
        if periodic:
            out_types["stress"] = "rank2"
        rep = equivariance_error(
            fn,
            args,
            in_types,
            out_types,
            group=group,
            permutations=True,
            translations=True,
            n_trials=n_trials,
            seed=seed,
        )
        if worst is None or rep.max > worst.max:
            worst = rep
        if not rep.max <= tol:
            raise AssertionError(f"{name}: not equivariant (tolerance {tol:.1e}):\n{rep}")
    return worst


def check_forces_finite_differences(
    model, config: Configuration | None = None, *, h: float = 1e-4, tolerance: float = FD_TOLERANCE
) -> float:
    """Forces equal minus the central finite differences of the energy, every coordinate (float64).

    Central differences with step ``h`` Å (error ``O(h^2)``), then Richardson
    extrapolation with step ``h/2`` (error ``O(h^4)``), so the comparison is
    limited by the model, not the step. Needs a float64 model (a float32 one
    cannot resolve the differences); raises ``ValueError`` otherwise.
    """
    if _dtype(model) != torch.float64:
        raise ValueError(f"finite differences need a float64 model, got {_dtype(model)}")
    c = potential_structures(model)["molecule"] if config is None else config
    b = potential_batch(model, [c])
    F = model(b)["forces"].detach()
    pos0 = b["positions"]

    def energy_at(p):
        bb = dict(b)
        bb["positions"] = p
        with torch.no_grad():
            return float(model(bb, compute_forces=False)["energy"].sum())

    fd = torch.zeros_like(F)
    for i in range(pos0.shape[0]):
        for a in range(3):
            d = []
            for step in (h, h / 2):
                p1, p2 = pos0.clone(), pos0.clone()
                p1[i, a] += step
                p2[i, a] -= step
                d.append(-(energy_at(p1) - energy_at(p2)) / (2 * step))
            fd[i, a] = (4 * d[1] - d[0]) / 3
    err = finite_difference_error(F, fd, energy_at(pos0), h / 2)
    return _require(err <= tolerance, "forces vs finite differences of the energy", err, tolerance)


def check_stress_finite_strain(
    model, config: Configuration | None = None, *, h: float = 1e-4, tolerance: float = FD_TOLERANCE
) -> float:
    """Stress and virials equal the finite-strain derivatives of the energy (periodic cell, float64).

    ``virials = -dE/d(eps)`` and ``stress = dE/d(eps) / V`` for a symmetric
    strain ``eps`` applied to positions and cell (``x -> x (1 + eps)``), the
    neighbour graph held fixed (periodic images move with the cell). Central
    differences with Richardson extrapolation, as the forces check.
    """
    if _dtype(model) != torch.float64:
        raise ValueError(f"finite differences need a float64 model, got {_dtype(model)}")
    c = potential_structures(model)["periodic"] if config is None else config
    b = potential_batch(model, [c])
    out = model(b, compute_stress=True)
    cell = b["cell"][0]
    V = torch.linalg.det(cell).abs()

    def energy_at(eps):
        F = torch.eye(3, dtype=torch.float64) + eps
        bb = dict(b)
        bb["positions"] = b["positions"] @ F
        bb["cell"] = (cell @ F)[None]
        bb["shifts"] = b["unit_shifts"] @ (cell @ F)
        with torch.no_grad():
            return float(model(bb, compute_forces=False)["energy"].sum())

    dE = torch.zeros(3, 3, dtype=torch.float64)
    for a in range(3):
        for c_ in range(a, 3):
            d = []
            for step in (h, h / 2):
                e = []
                for s in (1, -1):
                    eps = torch.zeros(3, 3, dtype=torch.float64)
                    eps[a, c_] += s * step / 2
                    eps[c_, a] += s * step / 2
                    e.append(energy_at(eps))
                d.append((e[0] - e[1]) / (2 * step))
            dE[a, c_] = dE[c_, a] = (4 * d[1] - d[0]) / 3
    E = float(out["energy"].detach().sum())
    err = max(
        finite_difference_error(out["stress"][0], dE / V, E / float(V), h / 2),
        finite_difference_error(out["virials"][0], -dE, E, h / 2),
    )
    return _require(err <= tolerance, "stress/virials vs finite strain", err, tolerance)


def check_batch_consistency(model, configs: dict | None = None, *, tolerance: float | None = None) -> float:
    """A batch of two graphs gives what the two give separately (energy, node energies, forces, stress)."""
    tol = _tol(model, tolerance)
    cs = list((potential_structures(model) if configs is None else configs).values())[:2]
    stress = all(bool(np.any(c.pbc)) for c in cs)  # stress only where every graph has a cell
    joint = _outputs(model, cs, stress)
    sep = [_outputs(model, [c], stress) for c in cs]
    keys = ["energy", "node_energy", "forces"] + (["stress", "virials"] if stress else [])
    err = 0.0
    for k in keys:
        err = max(err, relative_error(joint[k], torch.cat([s[k] for s in sep])))
    return _require(err <= tol, "batch of two vs each alone", err, tol)


def check_isolated_atoms(model, *, tolerance: float | None = None) -> float:
    """An atom with no neighbour within ``r_max`` gets the model's isolated-atom energy and exactly no force.

    For every element ``Z`` of the model: alone in a graph, and next to a
    small molecule farther than ``r_max`` away (so batching and the other
    atoms change nothing). The expected value is :func:`isolated_atom_energy`.
    Default relative tolerance: rounding only (1e-6 float32, 1e-12 float64),
    since nothing but ``E0 + shift`` should reach such an atom.
    """
    tol = (1e-12 if _dtype(model) == torch.float64 else 1e-6) if tolerance is None else tolerance
    r = _r_max(model)
    zs = list(model.atomic_numbers)
    mol = potential_structures(model)["molecule"]
    err = 0.0
    for z in zs:
        expected = torch.tensor([isolated_atom_energy(model, z)], dtype=torch.float64)
        alone = Configuration(np.array([z]), np.zeros((1, 3)), source=f"isolated Z={z}")
        far = mol.positions - mol.positions.mean(0) + np.array([2.5 * r + np.abs(mol.positions).max(), 0.0, 0.0])
        pair = Configuration(
            np.concatenate([[z], mol.atomic_numbers]), np.concatenate([np.zeros((1, 3)), far]), source=f"Z={z}+mol"
        )
        out_alone = _outputs(model, [alone])
        out_pair = _outputs(model, [pair])
        err = max(
            err,
            relative_error(out_alone["energy"], expected),
            relative_error(out_pair["node_energy"][:1], expected),
        )
        force = max(float(out_alone["forces"].abs().max()), float(out_pair["forces"][0].abs().max()))
        if force != 0.0:
            raise AssertionError(f"isolated atom Z={z}: force {force:.3e} eV/Å, expected exactly 0")
    return _require(err <= tol, "isolated-atom energy vs model.isolated_atom_energy(Z)", err, tol)


def check_cutoff_smoothness(model, *, delta: float = 1e-5, tolerance: float = 1e-3) -> float:
    """Energy and forces are continuous as a neighbour crosses ``r_max``.

    Atom B approaches atom A (which has a third atom C as a neighbour, so
    many-body terms see the crossing too) along a fixed direction. The jumps
    of the energy and of every force between ``r = r_max (1 - delta)`` and
    ``r_max (1 + delta)`` are compared with the interaction scale at
    ``r = 0.6 r_max`` (energy change from infinitely far, largest force): a
    hard cutoff gives a relative jump of order 1, a smooth envelope of
    order ``delta`` or less.
    """
    r = _r_max(model)
    zs = list(model.atomic_numbers)
    za, zb, zc = zs[0], zs[min(1, len(zs) - 1)], zs[-1]
    u = np.array([0.48, 0.6, 0.64])
    u = u / np.linalg.norm(u)

    def conf(rb):
        pos = np.stack([np.zeros(3), rb * u, -0.45 * r * u + np.array([0.0, 0.1 * r, 0.0])])
        return Configuration(np.array([za, zb, zc]), pos, source=f"cutoff r={rb}")

    near, inside, outside, far = (
        _outputs(model, [conf(x)]) for x in (0.6 * r, r * (1 - delta), r * (1 + delta), 3.0 * r)
    )
    e_scale = abs(float(near["energy"].sum() - far["energy"].sum()))
    f_scale = float(near["forces"].abs().max())
    if e_scale == 0.0 or f_scale == 0.0:
        raise AssertionError(f"no interaction at 0.6 r_max (energy change {e_scale}, force {f_scale}): nothing to test")
    e_jump = abs(float(inside["energy"].sum() - outside["energy"].sum())) / e_scale
    f_jump = float((inside["forces"] - outside["forces"]).abs().max()) / f_scale
    err = max(e_jump, f_jump)
    return _require(err <= tolerance, f"jump across r_max (energy {e_jump:.2e}, forces {f_jump:.2e})", err, tolerance)


def _build(hparams: dict):
    from ..models import build_model

    return build_model(**json.loads(json.dumps(hparams)))


def _same_outputs(a, b, configs) -> float:
    oa, ob = _outputs(a, configs), _outputs(b, configs)
    return max(relative_error(oa[k], ob[k]) for k in ("energy", "forces"))


def check_hparams_roundtrip(model, *, tolerance: float | None = None) -> float:
    """``build_model(**model.hparams)`` (through JSON) with the same weights gives the same outputs."""
    tol = _tol(model, tolerance)
    clone = _build(model.hparams)
    clone.load_state_dict(model.state_dict())
    if _dtype(clone) != _dtype(model):
        raise AssertionError(f"rebuilt model is {_dtype(clone)}, the original {_dtype(model)}")
    err = _same_outputs(model, clone, list(potential_structures(model).values())[:1])
    return _require(err <= tol, "build_model(**hparams) outputs", err, tol)


def check_checkpoint_roundtrip(model, *, directory: str | None = None, tolerance: float | None = None) -> float:
    """``equivar.train.save_checkpoint`` then ``load_model`` gives the same model (dtype, outputs)."""
    from ..train import load_model, model_payload, save_checkpoint

    tol = _tol(model, tolerance)
    with tempfile.TemporaryDirectory(dir=directory) as d:
        path = os.path.join(d, "model.pt")
        save_checkpoint(path, model_payload(model))
        loaded = load_model(path)
    if _dtype(loaded) != _dtype(model):
        raise AssertionError(f"loaded model is {_dtype(loaded)}, the saved one {_dtype(model)}")
    err = _same_outputs(model, loaded, list(potential_structures(model).values())[:1])
    return _require(err <= tol, "checkpoint round trip outputs", err, tol)


def _training_gradient(model, batch, targets) -> torch.Tensor:
    model.train()
    model.zero_grad(set_to_none=True)
    out = model(batch)
    loss = (out["energy"] - targets["energy"]).pow(2).mean() + 10.0 * (out["forces"] - targets["forces"]).pow(2).mean()
    loss.backward()
    grads = [
        (p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1)
        for p in model.parameters()
        if p.requires_grad
    ]
    model.eval()
    return torch.cat(grads).detach().to(torch.float64)


def check_native_training_gradient(model, *, tolerance: float | None = None) -> float:
    """Native CPU kernels and the pure-PyTorch path give the same *training* gradient.

    The gradient of a loss with energies and forces in it (forces enter the
    loss, so this is the second derivative the kernels' double backward
    computes) with respect to every parameter: the model rebuilt from its
    ``hparams`` with the kernels on, and again inside
    ``equivar.tp.native_kernels(False)``, both with the model's weights.
    Passes trivially (the same path twice) where no native kernel loads or
    the model has none; :func:`equivar.tp.native_available` says which.
    """
    from ..tp import native_kernels

    tol = _tol(model, tolerance)
    cs = list(potential_structures(model).values())
    batch = potential_batch(model, cs)
    gen = torch.Generator().manual_seed(0)
    dt = _dtype(model)
    targets = {
        "energy": torch.randn(len(cs), generator=gen, dtype=torch.float64).to(dt),
        "forces": torch.randn(batch["positions"].shape, generator=gen, dtype=torch.float64).to(dt),
    }
    native = _build(model.hparams)
    native.load_state_dict(model.state_dict())
    g_native = _training_gradient(native, batch, targets)
    with native_kernels(False):
        plain = _build(model.hparams)
        plain.load_state_dict(model.state_dict())
        g_plain = _training_gradient(plain, batch, targets)
    if float(g_plain.norm()) == 0.0:
        raise AssertionError("the training gradient is zero: nothing to compare")
    err = relative_error(g_native, g_plain)
    return _require(err <= tol, "training gradient, native kernels vs PyTorch", err, tol)


# --- all of them ---------------------------------------------------------------------------------------
@dataclasses.dataclass
class PotentialReport:
    """Results of :func:`check_potential`: ``results[(check, dtype)] = (passed, value, message)``.

    ``value`` is the measured relative error (``None`` when the check raised
    before measuring); ``message`` the failure or skip reason.
    """

    results: dict

    @property
    def ok(self) -> bool:
        return all(passed for passed, _, _ in self.results.values())

    def failures(self) -> list[str]:
        return [f"{c} [{d}]: {m}" for (c, d), (passed, _, m) in self.results.items() if not passed]

    def __str__(self) -> str:
        lines = []
        for (check, dt), (passed, value, msg) in self.results.items():
            v = "" if value is None else f"{value:.2e}"
            lines.append(f"{'ok  ' if passed else 'FAIL'} {check:<28} {dt:<8} {v:>9}  {msg}")
        return "\n".join(lines)

    def assert_ok(self) -> None:
        """``AssertionError`` listing every failed check."""
        if not self.ok:
            raise AssertionError("potential checks failed:\n" + "\n".join(self.failures()))


#: check name -> (function, dtypes it runs in)
CHECKS: dict[str, tuple[Callable, tuple]] = {
    "symmetry": (check_symmetry, ("float32", "float64")),
    "forces_finite_differences": (check_forces_finite_differences, ("float64",)),
    "stress_finite_strain": (check_stress_finite_strain, ("float64",)),
    "batch_consistency": (check_batch_consistency, ("float32", "float64")),
    "isolated_atoms": (check_isolated_atoms, ("float32", "float64")),
    "cutoff_smoothness": (check_cutoff_smoothness, ("float64",)),
    "hparams_roundtrip": (check_hparams_roundtrip, ("float32", "float64")),
    "checkpoint_roundtrip": (check_checkpoint_roundtrip, ("float32", "float64")),
    "native_training_gradient": (check_native_training_gradient, ("float32", "float64")),
}


def check_potential(
    make_model: Callable[[torch.dtype], torch.nn.Module], checks: Sequence[str] | None = None
) -> PotentialReport:
    """Run the potential checks on models from ``make_model(dtype)`` (a fresh model per check and dtype).

    Parameters
    ----------
    make_model : callable
        ``make_model(torch.float32 | torch.float64) -> model``.
    checks : sequence of str, optional
        Names from :data:`CHECKS` (default: all).

    Returns
    -------
    PotentialReport
        Never raises for a failing check (see :meth:`PotentialReport.assert_ok`);
        ``ValueError`` for an unknown check name.

    Examples
    --------
    >>> from equivar.testing import check_potential
    >>> report = check_potential(lambda dtype: my_model(dtype))  # doctest: +SKIP
    >>> report.assert_ok()                                        # doctest: +SKIP
    """
    names = list(CHECKS) if checks is None else list(checks)
    unknown = [n for n in names if n not in CHECKS]
    if unknown:
        raise ValueError(f"unknown check {unknown[0]!r}; available: {', '.join(CHECKS)}")
    results = {}
    for name in names:
        fn, dtypes = CHECKS[name]
        for dt in dtypes:
            try:
                value = fn(make_model(getattr(torch, dt)))
                value = value.max if isinstance(value, EquivarianceReport) else value
                results[(name, dt)] = (True, float(value), "")
            except AssertionError as e:
                results[(name, dt)] = (False, None, str(e).splitlines()[0])
    return PotentialReport(results)
