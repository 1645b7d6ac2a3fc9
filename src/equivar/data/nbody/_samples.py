"""Prediction problems on simulated trajectories (EGNN's frame 30 -> 40, past/future windows)."""

from __future__ import annotations

import numpy as np

from .._trajectory import TrajectoryDataset
from ._simulate import Trajectories


def _attrs(traj: Trajectories):
    node_attr = traj.charges[:, :, None]  # [S, N, 1]
    pair_attr = traj.edges[:, :, :, None]  # [S, N, N, 1]
    return node_attr, pair_attr


def _check_frame(name: str, frame: int, n_frames: int) -> None:
    if not 0 <= frame < n_frames:
        raise ValueError(f"{name}={frame}: the trajectories have frames 0..{n_frames - 1}")


def frame_pairs(traj: Trajectories, input_frame: int = 30, target_frame: int = 40) -> TrajectoryDataset:
    """EGNN's task: positions and velocities at ``input_frame`` in, positions at ``target_frame`` out.

    Frames index the saved states (EGNN's ``nbody_small``: 30 and 40, i.e.
    steps 3100 and 4100, 1000 steps of dt = 0.001 apart). Node attributes are
    the charges ``[N, 1]``; pair attributes ``q_i q_j`` (the original's
    ``edge_attr``) for charged systems, the spring indicator for springs.

    Returns
    -------
    TrajectoryDataset
        ``pos``, ``vel`` [N, 1, 3], ``target`` [N, 1, 3] per scene.

    Raises
    ------
    ValueError
        A frame outside the trajectories (named).
    """
    t = traj.positions.shape[1]
    _check_frame("input_frame", input_frame, t)
    _check_frame("target_frame", target_frame, t)
    node_attr, pair_attr = _attrs(traj)
    sl_in = slice(input_frame, input_frame + 1)
    return TrajectoryDataset(
        pos=traj.positions[:, sl_in].transpose(0, 2, 1, 3),
        vel=traj.velocities[:, sl_in].transpose(0, 2, 1, 3),
        target=traj.positions[:, target_frame : target_frame + 1].transpose(0, 2, 1, 3),
        node_attr=node_attr,
        pair_attr=pair_attr,
    )


def windows(
    traj: Trajectories, past: int = 10, future: int = 10, start: int = 0, finite_difference_velocities: bool = False
) -> TrajectoryDataset:
    """Past/future windows: frames ``start .. start+past-1`` in, the next ``future`` frames out.

    Parameters
    ----------
    past, future : int
        Observed and predicted frames (10 and 10).
    start : int
        First observed frame.
    finite_difference_velocities : bool
        Replace the simulator's velocities by ``x_t - x_{t-1}`` (the first
        frame copies the second), as EqMotion's N-body loader does.

    Raises
    ------
    ValueError
        Window outside the trajectories (the message names the frames).
    """
    t = traj.positions.shape[1]
    if past < 1 or future < 1 or start < 0 or start + past + future > t:
        raise ValueError(
            f"past={past}, future={future}, start={start}: needs frames up to {start + past + future - 1}, have 0..{t - 1}"
        )
    x = traj.positions.transpose(0, 2, 1, 3)  # [S, N, T, 3]
    pos = x[:, :, start : start + past]
    if finite_difference_velocities:
        vel = np.zeros_like(pos)
        vel[:, :, 1:] = pos[:, :, 1:] - pos[:, :, :-1]
        vel[:, :, 0] = vel[:, :, 1] if past > 1 else 0.0
    else:
        vel = traj.velocities.transpose(0, 2, 1, 3)[:, :, start : start + past]
    node_attr, pair_attr = _attrs(traj)
    return TrajectoryDataset(
        pos=pos, vel=vel, target=x[:, :, start + past : start + past + future], node_attr=node_attr, pair_attr=pair_attr
    )
