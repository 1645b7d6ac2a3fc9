"""``equivar md``: molecular dynamics with a trained model through ASE (Velocity Verlet or Langevin).

Reports steps per second and, for Velocity Verlet (NVE), the total-energy
drift: the slope of a linear fit of E_total / N over time (meV/atom/ps) and
the largest excursion from the initial value (meV/atom).

The trajectory (extxyz) and the energy log (CSV) are streamed: a frame and a
log line every ``--interval`` steps and at the last step, flushed to disk every ``--flush-every``
steps, so a crash loses at most that many steps; Ctrl-C (or SIGTERM) stops
after the current step with both files complete (exit code 130, or 143).
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings

import numpy as np

from ._md_stream import default_log_path
from ._mlip import (
    add_model_arguments,
    check_model_elements,
    check_model_file,
    check_output_file,
    parse_index,
    parse_repeat,
    read_structure,
    require,
    setup_threads,
)
from ._model_kind import require_potential

HELP = "Run molecular dynamics with a trained model (ASE)"

#: NVE: a total energy this far (meV/atom) from its initial value is not conservation (a healthy run at a suitable
#: time step stays within a few meV/atom; 3/2 kT per atom at 300 K is 39 meV)
DRIFT_WARN_MEV_PER_ATOM = 50.0
#: Langevin: a temperature above this many times the target (and above TEMPERATURE_WARN_FLOOR_K) is a blow-up
TEMPERATURE_WARN_FACTOR = 5.0
TEMPERATURE_WARN_FLOOR_K = 3000.0


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_model_arguments(p)
    p.add_argument(
        "--structure",
        required=True,
        help="initial structure: extxyz/ASE-readable, rMD17 .npz or embedded:NAME (as eval's --data)",
    )
    p.add_argument("--format", default=None, help="ASE format or 'rmd17' (default: guess from the file)")
    p.add_argument("--index", default="0", help="frame of --structure (default 0; -1 the last)")
    p.add_argument("--repeat", default=None, help="supercell, e.g. 2,2,2")
    p.add_argument("--integrator", choices=["verlet", "langevin"], default="verlet")
    p.add_argument("--steps", type=int, default=200, help="MD steps (>= 1, default 200)")
    p.add_argument("--dt", type=float, default=0.5, help="time step, fs (> 0, default 0.5)")
    p.add_argument("--temperature", type=float, default=300.0, help="initial (and Langevin) temperature, K (>= 0)")
    p.add_argument("--friction", type=float, default=0.01, help="Langevin friction, 1/fs (>= 0)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--trajectory", default=None, help="stream frames to this extxyz file (written as the run goes)")
    p.add_argument(
        "--log",
        default=None,
        help="stream the energies (CSV: step, time_ps, epot_eV, ekin_eV, etot_eV, temperature_K) here "
        "(default with --trajectory: <trajectory>_energy.csv next to it)",
    )
    p.add_argument("--interval", type=int, default=10, help="steps between trajectory frames and log lines (>= 1)")
    p.add_argument(
        "--flush-every",
        type=int,
        default=100,
        help="steps between flushes of the trajectory and log to disk (>= 1, default 100): a crash loses at most "
        "this many steps",
    )


def check_md_settings(
    steps: int,
    dt: float,
    temperature: float,
    friction: float = 0.0,
    interval: int = 1,
    flags: bool = True,
    flush_every: int = 1,
) -> None:
    """Raise ``ValueError`` naming the setting (the command-line flag when ``flags``) that is out of range."""
    name = (lambda f, a: f) if flags else (lambda f, a: a)  # noqa: E731
    require(steps >= 1, name("--steps", "steps"), steps, ">= 1")
    require(dt > 0 and np.isfinite(dt), name("--dt", "dt"), dt, "a positive time step in fs")
    require(temperature >= 0 and np.isfinite(temperature), name("--temperature", "temperature"), temperature, ">= 0 K")
    require(friction >= 0 and np.isfinite(friction), name("--friction", "friction"), friction, ">= 0 (1/fs)")
    require(interval >= 1, name("--interval", "interval"), interval, ">= 1")
    require(flush_every >= 1, name("--flush-every", "flush_every"), flush_every, ">= 1")


def run_md(
    atoms,
    calc,
    steps: int = 200,
    dt: float = 0.5,
    temperature: float = 300.0,
    integrator: str = "verlet",
    friction: float = 0.01,
    seed: int = 0,
    trajectory=None,
    interval: int = 10,
    keep_frames: bool = False,
    log=None,
    flush_every: int = 100,
    announce=None,
    warn=None,
) -> dict:
    """Run MD on ``atoms`` with ``calc``; return statistics.

    ``dt`` in fs, ``temperature`` in K (initial Maxwell-Boltzmann velocities,
    and the Langevin bath), ``friction`` in 1/fs. Every ``interval`` steps,
    and at the last step done (``steps``, or where a signal stopped the run),
    a frame is streamed to ``trajectory`` (extxyz path), a line to ``log``
    (CSV of energies, :data:`equivar.cli._md_stream.LOG_COLUMNS`) and, with
    ``keep_frames``, the frame is kept for the result. Both files are flushed
    every ``flush_every`` steps and when the run ends, however it ends.
    ``announce(text)`` is called once the files are open, naming them.

    Blow-up check, once per run: with Velocity Verlet, when the total energy
    is more than :data:`DRIFT_WARN_MEV_PER_ATOM` from its initial value;
    with Langevin, when the temperature passes :data:`TEMPERATURE_WARN_FACTOR`
    x ``temperature`` (at least :data:`TEMPERATURE_WARN_FLOOR_K`); either
    when an energy is not finite. ``warn(text)`` (default
    ``warnings.warn(text, RuntimeWarning)``) then gets one line naming the
    step, the drift or temperature and the likely cause (the time step), and
    the run goes on.

    In the main thread, the first Ctrl-C (SIGINT) or SIGTERM stops the run
    after the current step: the statistics cover the steps done and
    ``interrupted`` holds the signal number (else ``None``).

    Returns
    -------
    dict: ``steps`` (done), ``steps_per_s``, ``temperature_mean`` (K),
    ``energy_start`` / ``energy_end`` (total, eV), ``drift_rate``
    (meV/atom/ps, linear fit), ``max_deviation`` (meV/atom), ``time_ps``,
    ``interrupted``, ``written`` (where the frames and log went, or ``""``),
    ``warning`` (the blow-up line, or ``None``), and ``frames`` (list of ``ase.Atoms`` with the model's energy and forces)
    when ``keep_frames``.

    Raises
    ------
    ValueError
        settings out of range; an output file that cannot be written.
    """
    from ase import units
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary, ZeroRotation
    from ase.md.verlet import VelocityVerlet

    from ._md_stream import MDStream, Stopped, graceful_stop

    check_md_settings(steps, dt, temperature, friction, interval, flags=False, flush_every=flush_every)
    rng = np.random.default_rng(seed)
    atoms.calc = calc
    with warnings.catch_warnings():  # ASE >= 3.28 prefers thermalize_momenta (absent from older ASE)
        warnings.simplefilter("ignore", DeprecationWarning)
        MaxwellBoltzmannDistribution(atoms, temperature_K=temperature, rng=rng)
    # removing the centre-of-mass motion (and rotation) leaves no kinetic energy to rescale for 1 (or 2) atoms:
    # keep what is left instead of dividing by zero
    Stationary(atoms, preserve_temperature=len(atoms) > 1)
    if not atoms.pbc.any():
        ZeroRotation(atoms, preserve_temperature=len(atoms) > 2)
    if integrator == "verlet":
        dyn = VelocityVerlet(atoms, dt * units.fs)
    elif integrator == "langevin":
        dyn = Langevin(
            atoms, dt * units.fs, temperature_K=temperature, friction=friction / units.fs, rng=rng, fixcm=False
        )
    else:
        raise ValueError(f"unknown integrator {integrator!r}: use verlet or langevin")
    n = len(atoms)
    energies, temps = [], []
    frames = []
    warned: list[str] = []
    if warn is None:

        def warn(text):
            warnings.warn(text, RuntimeWarning, stacklevel=3)

    def check_blowup(k: int) -> None:
        """Warn once when the run has clearly stopped conserving energy (NVE) or heated up (Langevin)."""
        drift = (energies[-1] - energies[0]) / n * 1e3  # meV/atom
        t_limit = max(TEMPERATURE_WARN_FACTOR * temperature, TEMPERATURE_WARN_FLOOR_K)
        cause = f"the time step (dt = {dt:g} fs) is likely too large for this system; try 0.5 fs or less"
        if np.isfinite(energies[0]) and not np.isfinite(energies[-1]):
            text = f"step {k}: the total energy is {energies[-1]} (it was finite at step 0): {cause}"
        elif integrator == "verlet" and abs(drift) > DRIFT_WARN_MEV_PER_ATOM:
            text = (
                f"energy is not conserved: at step {k} ({k * dt * 1e-3:.4g} ps) the total energy has drifted "
                f"{drift:+.4g} meV/atom from step 0 (temperature {temps[-1]:.4g} K): {cause}"
            )
        elif integrator == "langevin" and temps[-1] > t_limit:
            text = (
                f"the dynamics are unstable: at step {k} ({k * dt * 1e-3:.4g} ps) the temperature is "
                f"{temps[-1]:.4g} K (target {temperature:g} K): {cause}"
            )
        else:
            return
        warned.append(text)
        warn(text)

    stream = MDStream(trajectory, log, flush_every)
    try:
        if announce is not None and stream.paths:
            announce(
                f"streaming {' and '.join(f'{k} -> {p}' for k, p in stream.paths.items())} "
                f"(every {interval} steps, flushed every {flush_every} steps)"
            )
        with graceful_stop() as stop:

            def observe():
                epot = atoms.get_potential_energy()
                ekin = atoms.get_kinetic_energy()
                energies.append(epot + ekin)
                temps.append(atoms.get_temperature())
                k = dyn.nsteps
                if not warned:
                    check_blowup(k)
                stopping = stop["signal"] is not None and k < steps
                # every interval-th step, and the last step done (the end, or a stop) even off the interval:
                # the trajectory and the log always hold the same steps, the final state included
                record = k % interval == 0 or k == steps or stopping
                if record:
                    stream.energy(k, k * dt * 1e-3, epot, ekin, temps[-1])
                if record and (stream.paths.get("trajectory") or keep_frames):
                    from ase.calculators.singlepoint import SinglePointCalculator

                    frame = atoms.copy()
                    frame.calc = SinglePointCalculator(frame, energy=epot, forces=atoms.get_forces())
                    stream.frame(frame)
                    if keep_frames:
                        frames.append(frame)
                stream.step(k)
                if stopping:
                    raise Stopped(stop["signal"])

            dyn.attach(observe, interval=1)
            atoms.get_forces()  # warm-up outside the timing
            t0 = time.perf_counter()
            interrupted = None
            try:
                dyn.run(steps)
            except Stopped as e:
                interrupted = e.signum
            wall = time.perf_counter() - t0
    finally:
        stream.close()
    done = len(energies) - 1  # observe() also ran at step 0
    e = np.array(energies) / n * 1e3  # meV/atom
    t_ps = np.arange(len(e)) * dt * 1e-3
    slope = float(np.polyfit(t_ps, e, 1)[0]) if len(e) > 2 else float("nan")
    return {
        **({"frames": frames} if keep_frames else {}),
        "steps": done,
        "steps_per_s": done / wall if wall > 0 else float("nan"),
        "temperature_mean": float(np.mean(temps)),
        "energy_start": float(energies[0]),
        "energy_end": float(energies[-1]),
        "drift_rate": slope,
        "max_deviation": float(np.abs(e - e[0]).max()),
        "time_ps": done * dt * 1e-3,
        "interrupted": interrupted,
        "written": stream.describe(),
        "warning": warned[0] if warned else None,
    }


def format_md(stats: dict, integrator: str, n_atoms: int) -> str:
    s = (
        f"MD ({integrator}, {n_atoms} atoms): {stats['steps']} steps, {stats['time_ps']:.3f} ps, "
        f"{stats['steps_per_s']:.1f} steps/s, mean T {stats['temperature_mean']:.0f} K"
    )
    if integrator == "verlet":
        drift = stats["drift_rate"]
        drift = (
            f"{drift:+.3f} meV/atom/ps (linear fit)"
            if np.isfinite(drift)
            else "n/a (a linear fit needs at least 3 energies: more --steps)"
        )
        s += f"\nNVE energy drift: {drift}, max |E(t) - E(0)| {stats['max_deviation']:.3f} meV/atom"
    return s


def run(args) -> int:
    import torch

    from ..calculators import EquivarCalculator

    check_model_file(args.model)
    require_potential(args.model, "md")
    check_md_settings(args.steps, args.dt, args.temperature, args.friction, args.interval, flush_every=args.flush_every)
    parse_index(args.index)
    rep = parse_repeat(args.repeat)
    inputs = {"--model": args.model, "--structure": args.structure}
    check_output_file(args.trajectory, "--trajectory", inputs)
    log = args.log if args.log is not None else default_log_path(args.trajectory)
    check_output_file(log, "--log", inputs)
    setup_threads(args)
    atoms = read_structure(args.structure, args.index, args.format)
    if rep:
        undefined = [i for i, r in enumerate(rep) if r > 1 and not atoms.cell[i].any()]
        if undefined:
            raise ValueError(
                f"--repeat {args.repeat}: {args.structure} (frame {args.index}) has no cell vector "
                f"along axis {undefined[0]} to repeat"
            )
        atoms = atoms.repeat(rep)
    calc = EquivarCalculator(
        args.model, device=args.device, default_dtype=getattr(torch, args.dtype) if args.dtype else None
    )
    check_model_elements(atoms, calc)
    stats = run_md(
        atoms,
        calc,
        args.steps,
        args.dt,
        args.temperature,
        args.integrator,
        args.friction,
        args.seed,
        args.trajectory,
        args.interval,
        log=log,
        flush_every=args.flush_every,
        announce=lambda text: print(text, flush=True),
        warn=lambda text: print(f"equivar md: warning: {text}", file=sys.stderr, flush=True),
    )
    import signal

    if stats["interrupted"] is not None:
        name = "Ctrl-C" if stats["interrupted"] == signal.SIGINT else signal.Signals(stats["interrupted"]).name
        print(f"interrupted ({name}) after {stats['steps']} of {args.steps} steps", flush=True)
    if stats["steps"] >= 1:
        print(format_md(stats, args.integrator, len(atoms)))
    if stats["written"]:
        print(stats["written"])
    return 0 if stats["interrupted"] is None else 128 + int(stats["interrupted"])
