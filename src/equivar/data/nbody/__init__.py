"""Simulated N-body systems (EGNN's charged particles, springs, SEGNN's gravity).

:func:`simulate` integrates trajectories vectorised over trajectories in
NumPy, reproducing the original generators draw for draw
(:class:`SimulationParams` documents each recipe and its source);
:func:`load_nbody` builds train/valid/test splits (EGNN's ``nbody_small``
by default) once and caches them on disk; :func:`frame_pairs` and
:func:`windows` turn trajectories into prediction problems.

Example
-------
>>> from equivar.data import nbody
>>> p = nbody.SimulationParams.recipe("charged", steps=1000)
>>> traj = nbody.simulate(p, 4, seed=43)
>>> traj.positions.shape, sorted(set(traj.charges.ravel().tolist()))
((4, 9, 5, 3), [-1.0, 1.0])
>>> ds = nbody.frame_pairs(traj, input_frame=2, target_frame=8)
>>> ds[0]["pos"].shape, ds[0]["target"].shape
(torch.Size([5, 1, 3]), torch.Size([5, 1, 3]))
"""

from ._dataset import GENERATOR_VERSION, NBodyDatasetConfig, NBodySplits, default_cache_dir, generate_nbody, load_nbody
from ._samples import frame_pairs, windows
from ._simulate import (
    SYSTEMS,
    SimulationParams,
    Trajectories,
    draw_initial_conditions,
    energy,
    forces,
    integrate,
    saved_steps,
    simulate,
    simulate_from,
)

__all__ = [
    "GENERATOR_VERSION",
    "NBodyDatasetConfig",
    "NBodySplits",
    "SYSTEMS",
    "SimulationParams",
    "Trajectories",
    "default_cache_dir",
    "draw_initial_conditions",
    "energy",
    "forces",
    "frame_pairs",
    "generate_nbody",
    "integrate",
    "load_nbody",
    "saved_steps",
    "simulate",
    "simulate_from",
    "windows",
]
