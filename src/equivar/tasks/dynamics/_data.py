"""Where the dynamics task's scenes come from: simulated N-body systems or ETH-UCY files (typed options)."""

from __future__ import annotations

import dataclasses

from ... import data as D
from ...data import nbody
from .._data import parse_section


@dataclasses.dataclass
class DynamicsData:
    """The ``task.data`` section of a dynamics config.

    Attributes
    ----------
    source : str
        ``'nbody'`` (simulated, :mod:`equivar.data.nbody`) or ``'ethucy'`` (files).
    system : str
        N-body system: ``charged`` | ``springs`` | ``gravity``.
    n_train, n_valid, n_test, n_train_drawn, data_seed : int
        N-body splits (EGNN's ``nbody_small``: 3000 / 2000 / 2000 of a 10000-trajectory
        training stream, seed 43).
    steps, sample_every : int or None
        Override the system's recipe (None: 5000 steps, every 100).
    input_frame, target_frame : int
        Frame-pair task (EGNN: 30 -> 40); used when ``past`` is None.
    past, future, start : int
        Windows of ``past`` observed and ``future`` predicted frames from ``start``
        (N-body: set ``past`` to use windows; ETH-UCY: 8 and 12).
    finite_difference_velocities : bool
        N-body windows: velocities as ``x_t - x_{t-1}`` (EqMotion).
    cache_dir : str or None
        N-body cache (default ``~/.cache/equivar/nbody``).
    root, scene : str
        ETH-UCY folder with the five scene folders, and the held-out scene.
    max_agents : int or None
        ETH-UCY agents per ego sample (None: EqMotion's per-scene value).
    radius, scale : float
        ETH-UCY neighbourhood radius (m) and coordinate divisor.
    test_scale : float
        ETH-UCY test-time rescaling: the test set's coordinates are divided by it before the model
        sees them and the errors multiplied back, so test metrics stay in metres (EqMotion's
        ``main_eth_diverse.py`` uses 1.6 for the ``eth`` scene, 1 elsewhere).
    """

    source: str = "nbody"
    system: str = "charged"
    n_train: int = 3000
    n_valid: int = 2000
    n_test: int = 2000
    n_train_drawn: int = 10000
    data_seed: int = 43
    steps: int | None = None
    sample_every: int | None = None
    input_frame: int = 30
    target_frame: int = 40
    past: int | None = None
    future: int = 10
    start: int = 0
    finite_difference_velocities: bool = False
    cache_dir: str | None = None
    root: str = "../shared/data/eth_ucy"
    scene: str = "eth"
    max_agents: int | None = None
    radius: float = 5.0
    scale: float = 1.0
    test_scale: float = 1.0

    @classmethod
    def from_mapping(cls, d, key: str = "task.data") -> DynamicsData:
        """Parse a config mapping; unknown keys and wrong types raise ``ValueError`` naming ``task.data.KEY``."""
        out = parse_section(cls, d, key)
        if out.source not in ("nbody", "ethucy"):
            raise ValueError(f"{key}.source must be 'nbody' or 'ethucy', got {out.source!r}")
        if not out.test_scale > 0:
            raise ValueError(f"{key}.test_scale must be positive, got {out.test_scale!r}")
        if out.test_scale != 1.0 and out.source != "ethucy":
            raise ValueError(f"{key}.test_scale applies to source 'ethucy' only, got {out.test_scale!r}")
        return out

    def load(self, log=print) -> dict:
        """``{'train': TrajectoryDataset, 'valid': ..., 'test': ...}``.

        Raises
        ------
        ValueError, FileNotFoundError
            Bad options, missing files (named).
        """
        if self.source == "ethucy":
            sets = {s: D.ethucy_dataset(self.root, self.scene, s, **self._eth_kw()) for s in ("train", "val")}
            kw = dict(self._eth_kw(), scale=self.scale * self.test_scale)
            sets["test"] = D.ethucy_dataset(self.root, self.scene, "test", **kw)
            sets["test"].length_scale = self.test_scale  # the task multiplies its errors back
            sets["valid"] = sets.pop("val")
            log(f"data: ETH-UCY, held-out scene {self.scene}: " + ", ".join(f"{len(v)} {k}" for k, v in sets.items()))
            return sets
        overrides = {k: getattr(self, k) for k in ("steps", "sample_every") if getattr(self, k) is not None}
        params = nbody.SimulationParams.recipe(self.system, **overrides)
        cfg = nbody.NBodyDatasetConfig(
            simulation=params,
            n_train=self.n_train,
            n_valid=self.n_valid,
            n_test=self.n_test,
            n_train_drawn=max(self.n_train_drawn, self.n_train),
            seed=self.data_seed,
        )
        splits = nbody.load_nbody(cfg, self.cache_dir)
        how = f"read from {splits.path}" if splits.from_cache else "simulated"
        log(
            f"data: {self.system} N-body, {self.n_train} train, {self.n_valid} valid, {self.n_test} test trajectories "
            f"({how}; generation took {splits.generation_seconds:.1f} s"
            + (f", {splits.generation_cpu_seconds:.1f} CPU-s)" if splits.generation_cpu_seconds is not None else ")")
        )
        out = {}
        for name in ("train", "valid", "test"):
            traj = splits.split(name)
            if self.past is None:
                out[name] = nbody.frame_pairs(traj, self.input_frame, self.target_frame)
            else:
                out[name] = nbody.windows(traj, self.past, self.future, self.start, self.finite_difference_velocities)
        return out

    def _eth_kw(self) -> dict:
        return {
            "past": self.past or 8,
            "future": self.future if self.past else 12,
            "max_agents": self.max_agents,
            "radius": self.radius,
            "scale": self.scale,
        }
