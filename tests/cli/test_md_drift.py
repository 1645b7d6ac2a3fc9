"""The NVE energy drift that `equivar md` reports, against systems whose drift is known.

- Constant forces with a potential energy reported as zero: Velocity Verlet integrates a constant force
  exactly, so the "total energy" is the kinetic energy sum_i |F_i|^2 t^2 / (2 m_i), a parabola whose
  least-squares slope over t = 0, dt, ..., T is exactly (its value at T) / T * T = a T. Drift and largest
  deviation then have closed forms in meV/atom/ps and meV/atom (this catches any time or energy unit slip).
- The same forces with the consistent energy -sum_i F_i . x_i: exactly conserved, no drift.
- ASE's EMT copper at 300 K: Velocity Verlet's energy error is O(dt^2), so halving the time step divides the
  largest deviation by about 4, and a too-large step drifts by orders of magnitude more than a tiny one.
"""

import re

import numpy as np
import pytest
from ase import Atoms, units
from ase.build import bulk
from ase.calculators.calculator import Calculator, all_changes
from ase.calculators.emt import EMT

from equivar.cli.md import format_md, run_md


class ConstantForce(Calculator):
    """Forces ``F`` everywhere; energy 0 (inconsistent: the total energy grows) or ``-sum F.x`` (consistent)."""

    implemented_properties = ["energy", "forces"]

    def __init__(self, forces, consistent=False):
        super().__init__()
        self.f = np.asarray(forces, dtype=float)
        self.consistent = consistent

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        e = -float((self.f * self.atoms.positions).sum()) if self.consistent else 0.0
        self.results = {"energy": e, "free_energy": e, "forces": self.f.copy()}


def _molecule():
    rng = np.random.default_rng(0)
    atoms = Atoms("CuAuH", positions=[[0, 0, 0], [2.5, 0, 0], [0, 2.0, 0]])
    forces = rng.normal(scale=0.5, size=(3, 3))  # eV/Å
    return atoms, forces


@pytest.mark.filterwarnings("ignore:energy is not conserved:RuntimeWarning")  # by construction (tested below)
@pytest.mark.parametrize("dt", [0.25, 2.0])
def test_drift_of_an_unbalanced_constant_force_has_its_closed_form(dt):
    atoms, forces = _molecule()
    steps = 40
    stats = run_md(atoms, ConstantForce(forces), steps=steps, dt=dt, temperature=0.0)
    n = len(atoms)
    m = atoms.get_masses()  # amu
    a = (np.sum(forces**2, axis=1) / (2 * m)).sum()  # KE = a t^2, eV / (ASE time unit)^2
    T_fs = steps * dt
    ke_end = a * (T_fs * units.fs) ** 2  # eV
    # KE / N in meV = c t^2 with t in ps: c = 1e3 a (1e3 fs)^2 / N; slope of the fit over 0..T is c T
    c = 1e3 * a * (1e3 * units.fs) ** 2 / n
    assert stats["time_ps"] == pytest.approx(T_fs * 1e-3)
    assert stats["energy_start"] == pytest.approx(0.0, abs=1e-12)
    assert stats["energy_end"] == pytest.approx(ke_end, rel=1e-9)
    assert stats["max_deviation"] == pytest.approx(1e3 * ke_end / n, rel=1e-9)
    assert stats["drift_rate"] == pytest.approx(c * T_fs * 1e-3, rel=1e-9)
    # and the line `equivar md` prints carries the same numbers in the units it names
    text = format_md(stats, "verlet", n)
    drift = float(re.search(r"NVE energy drift: ([-+0-9.e]+) meV/atom/ps", text).group(1))
    dev = float(re.search(r"max \|E\(t\) - E\(0\)\| ([-+0-9.e]+) meV/atom", text).group(1))
    assert drift == pytest.approx(stats["drift_rate"], abs=1e-3)
    assert dev == pytest.approx(stats["max_deviation"], abs=1e-3)


def test_consistent_constant_force_conserves_energy():
    atoms, forces = _molecule()
    stats = run_md(atoms, ConstantForce(forces, consistent=True), steps=40, dt=2.0, temperature=0.0)
    assert stats["energy_end"] != 0.0  # it moved
    assert abs(stats["drift_rate"]) < 1e-6 and stats["max_deviation"] < 1e-6


def _emt_copper(dt, time_fs):
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat((2, 2, 2))
    return run_md(atoms, EMT(), steps=int(round(time_fs / dt)), dt=dt, temperature=300.0, seed=1)


def test_emt_energy_error_scales_with_the_time_step_squared():
    """Measured (50 fs, 32 atoms, 300 K): max deviation 5.8e-4, 9.3e-3, 3.7e-2, 0.59 meV/atom at 0.25, 1, 2, 8 fs
    (ratios 16, 4, 16 = dt^2), drift 0.013 -> 12.5 meV/atom/ps."""
    tiny, half, full, huge = (_emt_copper(dt, 50.0) for dt in (0.25, 1.0, 2.0, 8.0))
    ratio = full["max_deviation"] / half["max_deviation"]
    assert 3.0 < ratio < 5.0, ratio  # O(dt^2): 4
    assert 10 < half["max_deviation"] / tiny["max_deviation"] < 22  # 16
    assert abs(huge["drift_rate"]) > 300 * abs(tiny["drift_rate"])
    assert huge["max_deviation"] > 300 * tiny["max_deviation"]
    assert tiny["max_deviation"] < 2e-3  # meV/atom: EMT at 0.25 fs conserves energy


def test_blowup_warning_names_the_step_where_the_drift_passes_the_threshold():
    """The unbalanced constant force's 'total energy' is a t^2 (closed form above): the warning comes at the first
    step whose deviation exceeds DRIFT_WARN_MEV_PER_ATOM, once, naming that step, the drift and the time step."""
    from equivar.cli.md import DRIFT_WARN_MEV_PER_ATOM

    atoms, forces = _molecule()
    n, m, dt = len(atoms), atoms.get_masses(), 0.5
    a = (np.sum(forces**2, axis=1) / (2 * m)).sum()
    dev = [1e3 * a * (k * dt * units.fs) ** 2 / n for k in range(200)]  # meV/atom at step k
    k_expected = next(k for k, d in enumerate(dev) if d > DRIFT_WARN_MEV_PER_ATOM)
    assert 5 < k_expected < 150  # the threshold is crossed inside the run
    seen = []
    stats = run_md(atoms, ConstantForce(forces), steps=150, dt=dt, temperature=0.0, warn=seen.append)
    assert len(seen) == 1 and stats["warning"] == seen[0]
    m_ = re.match(
        r"energy is not conserved: at step (\d+) \(.* ps\) the total energy has drifted \+([0-9.e+]+) meV/atom", seen[0]
    )
    assert m_ is not None, seen[0]
    assert int(m_.group(1)) == k_expected
    assert float(m_.group(2)) == pytest.approx(dev[k_expected], rel=1e-3)
    assert "the time step (dt = 0.5 fs) is likely too large" in seen[0]


def test_no_blowup_warning_when_energy_is_conserved():
    atoms, forces = _molecule()
    seen = []
    stats = run_md(atoms, ConstantForce(forces, consistent=True), steps=150, dt=2.0, temperature=0.0, warn=seen.append)
    assert seen == [] and stats["warning"] is None
    assert _emt_copper(1.0, 50.0)["warning"] is None


def test_langevin_blowup_is_a_temperature_warning():
    atoms, forces = _molecule()
    seen = []
    run_md(
        atoms, ConstantForce(forces * 20), steps=150, dt=2.0, temperature=300.0, integrator="langevin", warn=seen.append
    )
    assert len(seen) == 1 and "the dynamics are unstable: at step" in seen[0] and "(target 300 K)" in seen[0]
    k = int(re.search(r"at step (\d+)", seen[0]).group(1))
    t = float(re.search(r"the temperature is ([0-9.e+]+) K", seen[0]).group(1))
    assert t > 3000.0 and k >= 1
    # and by default it is a RuntimeWarning (library use)
    atoms, forces = _molecule()
    with pytest.warns(RuntimeWarning, match="the dynamics are unstable"):
        run_md(atoms, ConstantForce(forces * 20), steps=150, dt=2.0, temperature=300.0, integrator="langevin")
