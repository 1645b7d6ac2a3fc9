"""N-body simulators of the EGNN / SEGNN benchmarks, vectorised over trajectories.

Three systems, each reproducing a public generator's recipe constant for
constant and random draw for random draw (legacy ``np.random.RandomState``,
the stream ``np.random.seed`` drives, drawn in the original order):

- ``charged`` -- Satorras, Hoogeboom, Welling, "E(n) Equivariant Graph Neural
  Networks" (ICML 2021), ``n_body_system/dataset/synthetic_sim.py``
  (``ChargedParticlesSim``) of github.com/vgsatorras/egnn, itself adapted
  from Kipf et al.'s NRI: 5 particles, charges +-1 with p = 1/2 (the 0 charge
  has p = 0), positions ~ N(0, loc_std^2) with ``loc_std = (n/5)^(1/3)``,
  velocities of norm 0.5 in a uniformly random direction, Coulomb forces
  ``F_i = k sum_j q_i q_j (x_i - x_j) / r_ij^3`` with k = 1, each Cartesian
  component clipped to +-0.1/dt = +-100, symplectic Euler
  (``v += dt F(x); x += dt v``), dt = 0.001, 5000 steps; the state after
  every 100th step is saved (49 frames: steps 100, 200, ..., 4900, the
  initial state is not kept). The box (size 5) reflects the initial
  positions only, as in the original, whose in-loop wall clamp is disabled.
- ``springs`` -- the same file's ``SpringSim`` (used by EqMotion's reasoning
  task and GMN): springs of constant k = 0.1 between each pair with p = 1/2
  (symmetric), positions ~ N(0, 0.5^2), speeds 0.5, Hooke forces
  ``F_i = -k sum_j e_ij (x_i - x_j)``, the same clipping and integrator.
- ``gravity`` -- Brandstetter et al., "Geometric and Physical Quantities
  Improve E(3) Equivariant Message Passing" (SEGNN, ICLR 2022),
  ``nbody/dataset/synthetic_sim.py`` (``GravitySim``) of
  github.com/RobDHess/Steerable-E3-GNN: 100 unit masses, G = 1, Plummer
  softening 0.1 (``a_i = G sum_j m_j (x_j - x_i) / (r_ij^2 + eps^2)^1.5``),
  positions and velocities ~ N(0, 1) with the centre-of-mass velocity
  removed, kick-drift-kick leapfrog, dt = 0.001; frames at steps 0, 100,
  ..., T - 100 (50 frames for 5000 steps, the initial state included); no
  clipping.

Units are the simulators' own (dimensionless). Arrays are float64 numpy,
laid out ``[B, T, N, 3]`` (trajectory, frame, particle, Cartesian), the
transpose of the originals' ``[T, 3, N]``.
"""

from __future__ import annotations

import dataclasses

import numpy as np

SYSTEMS = ("charged", "springs", "gravity")


@dataclasses.dataclass
class Trajectories:
    """Simulated trajectories of one system (float64 numpy arrays).

    Attributes
    ----------
    positions : ndarray, shape [B, T, N, 3]
        Saved positions.
    velocities : ndarray, shape [B, T, N, 3]
        Saved velocities (for ``charged``/``springs`` the velocity that moved
        the particles onto the saved positions, as the original saves it).
    charges : ndarray, shape [B, N]
        Charges (``charged``), zeros otherwise.
    edges : ndarray, shape [B, N, N]
        Pair coefficients: ``q_i q_j`` (``charged``), spring indicator
        ``e_ij`` in {0, 1} (``springs``), ``m_i m_j`` (``gravity``).
    masses : ndarray, shape [B, N]
        Masses (ones for every system).
    steps : ndarray, shape [T]
        Integration step index of each saved frame (time = step * dt).
    """

    positions: np.ndarray
    velocities: np.ndarray
    charges: np.ndarray
    edges: np.ndarray
    masses: np.ndarray
    steps: np.ndarray

    def __len__(self) -> int:
        return self.positions.shape[0]

    def subset(self, index) -> Trajectories:
        """The trajectories ``index`` (slice or integer array) selects."""
        return Trajectories(
            self.positions[index],
            self.velocities[index],
            self.charges[index],
            self.edges[index],
            self.masses[index],
            self.steps,
        )


@dataclasses.dataclass(frozen=True)
class SimulationParams:
    """Physical and numerical constants of one system (defaults: the recipe).

    Use :meth:`recipe` for a system's published constants; the fields are
    the originals' constructor arguments.

    Attributes
    ----------
    system : str
        ``'charged'``, ``'springs'`` or ``'gravity'``.
    n_particles : int
        Particles per trajectory (5; 100 for gravity).
    steps : int
        Integration steps ``T`` (5000).
    sample_every : int
        Save every this many steps (100).
    dt : float
        Time step (0.001).
    clip_forces : bool
        Clip each force component to ``+-0.1/dt`` (charged, springs; the
        recipe clips). Must be False for gravity (its recipe does not clip).
    loc_std : float
        Standard deviation of the initial positions (charged: 1, scaled by
        ``(n/5)^(1/3)`` inside; springs 0.5; gravity 1).
    vel_norm : float
        Initial speed of every particle (charged, springs: 0.5); for gravity
        the standard deviation of each initial velocity component (1).
    interaction_strength : float
        Coulomb constant (1), spring constant (0.1) or G (1).
    box_size : float
        Half-width of the box reflecting the initial positions (5; charged
        and springs only).
    softening : float
        Plummer softening length (gravity, 0.1).
    noise_var : float
        Standard deviation of Gaussian noise added to the saved positions
        and velocities (0; the original calls it a variance but multiplies
        by it).
    """

    system: str = "charged"
    n_particles: int = 5
    steps: int = 5000
    sample_every: int = 100
    dt: float = 0.001
    clip_forces: bool = True
    loc_std: float = 1.0
    vel_norm: float = 0.5
    interaction_strength: float = 1.0
    box_size: float = 5.0
    softening: float = 0.1
    noise_var: float = 0.0

    @classmethod
    def recipe(cls, system: str, **overrides) -> SimulationParams:
        """The published constants of ``system``, with ``overrides`` applied.

        Raises
        ------
        ValueError
            Unknown system or field (the message names it).
        """
        if system == "charged":
            base = cls(system="charged")
        elif system == "springs":
            base = cls(system="springs", loc_std=0.5, interaction_strength=0.1)
        elif system == "gravity":
            base = cls(system="gravity", n_particles=100, clip_forces=False, vel_norm=1.0)
        else:
            raise ValueError(f"unknown N-body system {system!r}; choose one of {', '.join(SYSTEMS)}")
        fields = {f.name for f in dataclasses.fields(cls)}
        for key in overrides:
            if key not in fields:
                raise ValueError(f"unknown N-body simulation parameter {key!r}; known: {', '.join(sorted(fields))}")
        return dataclasses.replace(base, **overrides)

    def __post_init__(self):
        if self.system not in SYSTEMS:
            raise ValueError(f"unknown N-body system {self.system!r}; choose one of {', '.join(SYSTEMS)}")
        if int(self.n_particles) < 2:
            raise ValueError(f"n_particles={self.n_particles}: need at least 2 particles")
        if self.steps <= 0 or self.sample_every <= 0 or self.steps % self.sample_every:
            raise ValueError(
                f"steps={self.steps}, sample_every={self.sample_every}: steps must be a positive multiple of sample_every"
            )
        if self.system != "gravity" and self.steps // self.sample_every < 2:
            raise ValueError(f"steps={self.steps}: the {self.system} recipe saves steps // sample_every - 1 frames")
        if not self.dt > 0:
            raise ValueError(f"dt={self.dt}: must be positive")
        if self.system == "gravity" and self.clip_forces:
            raise ValueError("clip_forces=True: the gravity recipe does not clip forces")

    @property
    def n_frames(self) -> int:
        """Saved frames per trajectory (49 for the charged recipe, 50 for gravity)."""
        n = self.steps // self.sample_every
        return n if self.system == "gravity" else n - 1

    @property
    def max_force(self) -> float:
        """Clipping bound on each force component, ``0.1 / dt`` (the original's ``_max_F``)."""
        return 0.1 / self.dt


# --------------------------------------------------------------------------- initial conditions


@dataclasses.dataclass
class _Initial:
    pos: np.ndarray  # [B, N, 3]
    vel: np.ndarray  # [B, N, 3]
    edges: np.ndarray  # [B, N, N]
    charges: np.ndarray  # [B, N]
    noise_pos: np.ndarray | None  # [B, T, N, 3]
    noise_vel: np.ndarray | None


def _draw_one(rs: np.random.RandomState, p: SimulationParams, keep_noise: bool):
    """One trajectory's draws, in the original generator's order."""
    n = p.n_particles
    if p.system == "gravity":
        pos = rs.randn(n, 3) * p.loc_std
        vel = rs.randn(n, 3) * p.vel_norm
        vel -= vel.mean(0)  # centre-of-mass frame (unit masses)
        edges = np.ones((n, n))
        charges = np.zeros(n)
        n_noise = 3  # positions, velocities and forces in the original
        pos_t, vel_t = pos, vel
    else:
        if p.system == "charged":
            q = rs.choice(np.array([-1.0, 0.0, 1.0]), size=(n, 1), p=[0.5, 0.0, 0.5])
            edges = q @ q.T
            charges = q[:, 0]
            loc_std = p.loc_std * (n / 5.0) ** (1.0 / 3.0)
        else:
            e = rs.choice(np.array([0.0, 0.5, 1.0]), size=(n, n), p=[0.5, 0.0, 0.5])
            e = np.tril(e) + np.tril(e, -1).T
            np.fill_diagonal(e, 0.0)
            edges = e
            charges = np.zeros(n)
            loc_std = p.loc_std
        loc = rs.randn(3, n) * loc_std
        v = rs.randn(3, n)
        v = v * p.vel_norm / np.sqrt((v**2).sum(axis=0)).reshape(1, -1)
        loc, v = _reflect(loc, v, p.box_size)
        pos_t, vel_t = loc.T, v.T
        n_noise = 2
    noise = [rs.randn(p.n_frames, *((n, 3) if p.system == "gravity" else (3, n))) for _ in range(n_noise)]
    if not keep_noise:
        return pos_t, vel_t, edges, charges, None, None
    if p.system != "gravity":
        noise = [z.transpose(0, 2, 1) for z in noise]
    return pos_t, vel_t, edges, charges, noise[0] * p.noise_var, noise[1] * p.noise_var


def _reflect(loc, vel, box):
    """Elastic reflection at the walls ``+-box`` (the original's ``_clamp``)."""
    loc = loc.copy()
    vel = vel.copy()
    over = loc > box
    loc[over] = 2 * box - loc[over]
    vel[over] = -np.abs(vel[over])
    under = loc < -box
    loc[under] = -2 * box - loc[under]
    vel[under] = np.abs(vel[under])
    return loc, vel


def draw_initial_conditions(params: SimulationParams, rs: np.random.RandomState, count: int, keep: bool = True):
    """Draw ``count`` trajectories' random numbers from ``rs`` in the original order.

    Parameters
    ----------
    params : SimulationParams
    rs : numpy.random.RandomState
        Advanced by exactly what ``count`` calls of the original
        ``sample_trajectory`` draw (including its observation noise, drawn
        even when ``noise_var`` is 0).
    count : int
    keep : bool
        False: only advance the stream (trajectories that are drawn but not
        simulated, e.g. EGNN's training trajectories beyond the first 3000).

    Returns
    -------
    _Initial or None
    """
    keep_noise = keep and params.noise_var != 0
    rows = [_draw_one(rs, params, keep_noise) for _ in range(count)]
    if not keep:
        return None
    n = params.n_particles
    if count == 0:
        z = np.zeros((0, n, 3))
        return _Initial(z, z.copy(), np.zeros((0, n, n)), np.zeros((0, n)), None, None)
    pos, vel, edges, charges, npos, nvel = zip(*rows, strict=True)
    return _Initial(
        np.stack(pos),
        np.stack(vel),
        np.stack(edges),
        np.stack(charges),
        np.stack(npos) if keep_noise else None,
        np.stack(nvel) if keep_noise else None,
    )


# --------------------------------------------------------------------------- forces


def forces(params: SimulationParams, pos: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Forces (unit masses: accelerations) on every particle, unclipped.

    Parameters
    ----------
    params : SimulationParams
    pos : ndarray, shape [B, N, 3]
    edges : ndarray, shape [B, N, N]
        Pair coefficients (see :class:`Trajectories`).

    Returns
    -------
    ndarray, shape [B, N, 3]
    """
    return _forces_t(params, np.ascontiguousarray(pos.transpose(0, 2, 1)), edges).transpose(0, 2, 1)


def _forces_t(params: SimulationParams, x: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """:func:`forces` on the originals' layout ``x [B, 3, N]`` -> ``[B, 3, N]``."""
    n = x.shape[-1]
    eye = np.eye(n, dtype=bool)
    d = x[:, :, :, None] - x[:, :, None, :]  # d[b, :, i, j] = x_i - x_j
    if params.system == "springs":
        size = -params.interaction_strength * edges
    else:
        r2 = np.einsum("bdij,bdij->bij", d, d)
        if params.system == "gravity":
            r2 += params.softening**2
            size = -params.interaction_strength * edges / (r2 * np.sqrt(r2))
        else:
            r2[:, eye] = 1.0
            size = params.interaction_strength * edges / (r2 * np.sqrt(r2))
    size[:, eye] = 0.0
    return np.einsum("bij,bdij->bdi", size, d)


def energy(params: SimulationParams, pos: np.ndarray, vel: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Total energy (kinetic + potential) of each configuration.

    ``charged``: ``1/2 sum v^2 + k sum_{i<j} q_i q_j / r_ij``; ``springs``:
    ``1/2 sum v^2 + k/2 sum_{i<j} e_ij r_ij^2``; ``gravity``:
    ``1/2 sum v^2 - G sum_{i<j} m_i m_j / sqrt(r_ij^2 + eps^2)`` (the
    softened potential its integrator conserves). Unit masses.

    Parameters
    ----------
    pos, vel : ndarray, shape [..., N, 3]
    edges : ndarray, shape [..., N, N]
        Broadcastable against ``pos``'s leading axes.

    Returns
    -------
    ndarray, shape [...]
    """
    kinetic = 0.5 * (vel**2).sum(axis=(-1, -2))
    diff = pos[..., :, None, :] - pos[..., None, :, :]
    r2 = (diff**2).sum(-1)
    n = pos.shape[-2]
    upper = np.triu(np.ones((n, n), dtype=bool), 1)
    k = params.interaction_strength
    if params.system == "springs":
        pair = 0.5 * k * edges * r2
    elif params.system == "charged":
        pair = k * edges / np.sqrt(np.where(upper, r2, 1.0))
    else:
        pair = -k * edges / np.sqrt(r2 + params.softening**2)
    return kinetic + np.where(upper, pair, 0.0).sum(axis=(-1, -2))


# --------------------------------------------------------------------------- integration


def integrate(params: SimulationParams, pos0: np.ndarray, vel0: np.ndarray, edges: np.ndarray):
    """Integrate ``B`` trajectories from their initial states (vectorised).

    ``charged``/``springs``: symplectic Euler with optional per-component
    clipping, saving after steps ``sample_every * k``, k = 1 .. T/every - 1;
    ``gravity``: kick-drift-kick leapfrog saving before steps
    ``sample_every * k``, k = 0 .. T/every - 1.

    Parameters
    ----------
    params : SimulationParams
    pos0, vel0 : ndarray, shape [B, N, 3]
    edges : ndarray, shape [B, N, N]

    Returns
    -------
    positions, velocities : ndarray, shape [B, T_save, N, 3]
    steps : ndarray, shape [T_save]
    """
    b, n, _ = pos0.shape
    t_save = params.n_frames
    out_x = np.empty((b, t_save, 3, n))
    out_v = np.empty((b, t_save, 3, n))
    # the originals' [B, 3, N] layout: contiguous per-component pair matrices
    x = np.ascontiguousarray(pos0.transpose(0, 2, 1), dtype=np.float64)
    v = np.ascontiguousarray(vel0.transpose(0, 2, 1), dtype=np.float64)
    dt = params.dt
    every = params.sample_every
    if params.system == "gravity":
        acc = _forces_t(params, x, edges)
        for i in range(params.steps):
            if i % every == 0:
                out_x[:, i // every] = x
                out_v[:, i // every] = v
            v += acc * (dt / 2.0)
            x += v * dt
            acc = _forces_t(params, x, edges)
            v += acc * (dt / 2.0)
        steps = np.arange(t_save) * every
    else:
        clip = params.max_force if params.clip_forces else None

        def kick():
            f = _forces_t(params, x, edges)
            if clip is not None:
                np.clip(f, -clip, clip, out=f)
            f *= dt
            v.__iadd__(f)

        kick()
        counter = 0
        for i in range(1, params.steps):
            x += dt * v
            if i % every == 0:
                out_x[:, counter] = x
                out_v[:, counter] = v
                counter += 1
            kick()
        steps = (np.arange(t_save) + 1) * every
    return out_x.transpose(0, 1, 3, 2).copy(), out_v.transpose(0, 1, 3, 2).copy(), steps


def simulate(params: SimulationParams, count: int, seed: int | None = None, *, rs=None) -> Trajectories:
    """Simulate ``count`` trajectories of ``params.system``.

    With ``seed`` (or a ``RandomState`` ``rs`` positioned where the original
    generator's stream is), the initial conditions are those the original
    ``sample_trajectory`` draws after ``np.random.seed(seed)``.

    Parameters
    ----------
    params : SimulationParams
    count : int
    seed : int, optional
    rs : numpy.random.RandomState, optional
        Used instead of ``seed`` (advanced in place).

    Returns
    -------
    Trajectories

    Examples
    --------
    >>> p = SimulationParams.recipe("charged", steps=500)
    >>> traj = simulate(p, 2, seed=43)
    >>> traj.positions.shape
    (2, 4, 5, 3)
    """
    if rs is None:
        rs = np.random.RandomState(seed)
    return simulate_from(params, draw_initial_conditions(params, rs, count))


_CHUNK = 512  # trajectories integrated together (arrays that stay in cache)


def simulate_from(params: SimulationParams, init: _Initial) -> Trajectories:
    """Integrate drawn initial conditions (:func:`draw_initial_conditions`) in chunks."""
    b, n = init.pos.shape[0], params.n_particles
    xs, vs = [], []
    for lo in range(0, b, _CHUNK):
        sl = slice(lo, lo + _CHUNK)
        x, v, _ = integrate(params, init.pos[sl], init.vel[sl], init.edges[sl])
        xs.append(x)
        vs.append(v)
    if b == 0:
        xs = vs = [np.zeros((0, params.n_frames, n, 3))]
    x, v = np.concatenate(xs), np.concatenate(vs)
    if init.noise_pos is not None:
        x = x + init.noise_pos
        v = v + init.noise_vel
    return Trajectories(x, v, init.charges, init.edges, np.ones((b, n)), saved_steps(params))


def saved_steps(params: SimulationParams) -> np.ndarray:
    """Integration step of each saved frame: ``every*(k+1)`` (charged, springs) or ``every*k`` (gravity)."""
    k = np.arange(params.n_frames, dtype=np.int64)
    return k * params.sample_every if params.system == "gravity" else (k + 1) * params.sample_every
