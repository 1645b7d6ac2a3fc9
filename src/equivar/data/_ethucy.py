"""ETH-UCY pedestrian trajectories: the standard text format, leave-one-scene-out splits, 8 -> 12 scenes.

Files (Pellegrini et al. 2009: ETH, HOTEL; Lerner et al. 2007: UNIV, ZARA1,
ZARA2) in the layout Social-GAN, AgentFormer and EqMotion share: one folder
per held-out scene whose un-suffixed ``*.txt`` file(s) are the test set and
whose other scenes' ``*_train.txt`` / ``*_val.txt`` are the training and
validation sets. Rows are whitespace-separated, one per agent per frame:
frame id in column 0, agent id in column 1, a class name in column 2, x in
column 13 and y in column 15 (metres, ground plane), the rest -1. Social-GAN's
raw four-column files (frame, agent, x, y) are read as well.

Sequences follow EqMotion's ``eth_ucy/preprocessor.py`` + ``dataloader.py``
(github.com/MediaBrain-SJTU/EqMotion, from AgentFormer): for every frame ``t``
with ``past - 1`` frames before it and ``future`` after it (frame ids spaced
by the file's frame step), the agents present in frame ``t`` *and* in all
``past`` observed frames (``t`` included) and all ``future`` predicted frames
form a scene; scenes without such an agent are skipped. Its
``process_eth_data_diverse.py`` then makes one sample per agent (the *ego*):
the ego first, then its nearest neighbours at the last observed frame within
5 m, up to ``max_agents`` agents in all (eth 1, hotel 1, univ 2, zara1 3,
zara2 1); when the scene has fewer agents than ``max_agents`` every agent is
kept (ego first, then file order). Only the ego's prediction is scored.
Coordinates are not normalised (EqMotion divides them by ``traj_scale`` = 1;
its test script divides ETH's *test* coordinates by 1.6 and multiplies the
errors back by 1.6, so its reported errors stay in metres; ``scale`` divides
the coordinates, and the dynamics task's ``test_scale`` reproduces the whole
test-time rescaling).
"""

from __future__ import annotations

import dataclasses
import glob
import math
import os
from functools import reduce

import numpy as np

from ._trajectory import TrajectoryDataset

SCENES = ("eth", "hotel", "univ", "zara1", "zara2")
#: the held-out file(s) of each leave-one-scene-out split
TEST_FILES = {
    "eth": ("biwi_eth",),
    "hotel": ("biwi_hotel",),
    "univ": ("students001", "students003"),
    "zara1": ("crowds_zara01",),
    "zara2": ("crowds_zara02",),
}
#: EqMotion's ``total_num`` (agents per ego sample) per held-out scene
MAX_AGENTS = {"eth": 1, "hotel": 1, "univ": 2, "zara1": 3, "zara2": 1}


@dataclasses.dataclass
class TrackTable:
    """Rows of one trajectory file.

    Attributes
    ----------
    frame : ndarray [M] int64
    agent : ndarray [M] int64
    xy : ndarray [M, 2] float64
        Metres.
    path : str
    """

    frame: np.ndarray
    agent: np.ndarray
    xy: np.ndarray
    path: str

    @property
    def frame_step(self) -> int:
        """Greatest common divisor of the gaps between consecutive frame ids (1 if a single frame)."""
        f = np.unique(self.frame)
        if f.size < 2:
            return 1
        return int(reduce(math.gcd, np.diff(f).tolist()))


def _integral(value: str, path: str, line: int, what: str) -> int:
    try:
        v = float(value)
    except ValueError:
        raise ValueError(f"{path}:{line}: {what} {value!r} is not a number") from None
    if not math.isfinite(v) or v != int(v):
        raise ValueError(f"{path}:{line}: {what} {value!r} is not an integer")
    return int(v)


def read_trajectory_file(path: str) -> TrackTable:
    """Read a whitespace-separated ETH-UCY trajectory file.

    Rows with at least 16 columns use frame = column 0, agent = 1, x = 13,
    y = 15 (the AgentFormer/EqMotion format); rows of exactly 4 columns are
    Social-GAN's ``frame agent x y``. Blank lines are skipped.

    Parameters
    ----------
    path : str

    Returns
    -------
    TrackTable

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    ValueError
        One line naming ``path:line`` and the offending value: a row of
        another width, a non-numeric or non-finite coordinate, a non-integer
        frame or agent id, the same agent twice in a frame, or no rows.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such trajectory file")
    frames, agents, xs, ys = [], [], [], []
    seen: dict[tuple[int, int], int] = {}
    width = None
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line_no, line in enumerate(fh, start=1):
            cols = line.split()
            if not cols:
                continue
            if len(cols) >= 16:
                cx, cy = 13, 15
            elif len(cols) == 4:
                cx, cy = 2, 3
            else:
                raise ValueError(
                    f"{path}:{line_no}: {len(cols)} columns; expected 4 (frame agent x y) or at least 16 (x in 13, y in 15)"
                )
            if width is None:
                width = len(cols)
            elif (width == 4) != (len(cols) == 4):
                raise ValueError(f"{path}:{line_no}: {len(cols)} columns where earlier rows have {width}")
            f = _integral(cols[0], path, line_no, "frame id")
            a = _integral(cols[1], path, line_no, "agent id")
            try:
                x, y = float(cols[cx]), float(cols[cy])
            except ValueError:
                bad = cols[cx] if not _is_float(cols[cx]) else cols[cy]
                raise ValueError(f"{path}:{line_no}: coordinate {bad!r} is not a number") from None
            if not (math.isfinite(x) and math.isfinite(y)):
                raise ValueError(f"{path}:{line_no}: coordinate ({cols[cx]}, {cols[cy]}) is not finite")
            if (f, a) in seen:
                raise ValueError(f"{path}:{line_no}: agent {a} appears twice in frame {f} (also line {seen[(f, a)]})")
            seen[(f, a)] = line_no
            frames.append(f)
            agents.append(a)
            xs.append(x)
            ys.append(y)
    if not frames:
        raise ValueError(f"{path}: no trajectory rows")
    return TrackTable(
        np.asarray(frames, dtype=np.int64), np.asarray(agents, dtype=np.int64), np.stack([xs, ys], axis=1), path
    )


def _is_float(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def scene_sequences(
    table: TrackTable, past: int = 8, future: int = 12, frame_step: int | None = None
) -> list[tuple[int, np.ndarray, np.ndarray, np.ndarray]]:
    """All (frame, agents, observed, future) scenes of one file (EqMotion/AgentFormer protocol).

    Parameters
    ----------
    table : TrackTable
    past, future : int
        Observed frames (the current one included) and predicted frames.
    frame_step : int, optional
        Spacing of consecutive frame ids (default :attr:`TrackTable.frame_step`:
        1 in the AgentFormer files, 10 in Social-GAN's raw files).

    Returns
    -------
    list of (t, agent_ids [N], observed [N, past, 2], future [N, future, 2])
        In increasing ``t``; agents in the order of frame ``t``'s rows.
    """
    if past < 1 or future < 1:
        raise ValueError(f"past={past}, future={future}: both must be at least 1")
    step = frame_step or table.frame_step
    if step < 1:
        raise ValueError(f"frame_step={frame_step}: must be positive")
    lookup: dict[int, dict[int, int]] = {}
    for row, (f, a) in enumerate(zip(table.frame.tolist(), table.agent.tolist(), strict=True)):
        lookup.setdefault(f, {})[a] = row
    start, end = int(table.frame.min()), int(table.frame.max())
    out = []
    for t in range(start + (past - 1) * step, end - future * step + 1):
        now = lookup.get(t)
        if not now:
            continue
        window = [t + k * step for k in range(-(past - 1), future + 1)]
        rows_per_frame = [lookup.get(f, {}) for f in window]
        ids = [a for a in now if all(a in r for r in rows_per_frame)]
        if not ids:
            continue
        rows = np.array([[r[a] for r in rows_per_frame] for a in ids])  # [N, past + future]
        xy = table.xy[rows]
        out.append((t, np.asarray(ids, dtype=np.int64), xy[:, :past], xy[:, past:]))
    return out


def ego_samples(observed: np.ndarray, future: np.ndarray, max_agents: int, radius: float = 5.0):
    """EqMotion's per-agent samples of one scene: ego first, then neighbours.

    Parameters
    ----------
    observed : ndarray [N, past, 2]
    future : ndarray [N, future, 2]
    max_agents : int
        Agents per sample, ego included.
    radius : float
        Neighbours must be closer than this to the ego at the last observed
        frame (metres), unless the scene has fewer than ``max_agents`` agents.

    Returns
    -------
    list of index arrays into the scene's agents, one per ego.
    """
    n = observed.shape[0]
    if max_agents < 1:
        raise ValueError(f"max_agents={max_agents}: must be at least 1")
    if n < max_agents:
        return [np.array([i] + [j for j in range(n) if j != i]) for i in range(n)]
    last = observed[:, -1]
    d = np.linalg.norm(last[:, None] - last[None], axis=-1)
    order = np.argsort(d, axis=1, kind="stable")
    within = (d < radius).sum(axis=1)
    out = []
    for i in range(n):
        row = order[i]
        if row[0] != i:  # the ego first even on a tie at distance 0
            row = np.concatenate([[i], row[row != i]])
        out.append(row[: max(min(int(within[i]), max_agents), 1)])
    return out


def split_files(root: str, scene: str, split: str) -> list[str]:
    """Files of one leave-one-scene-out split.

    Parameters
    ----------
    root : str
        Folder holding ``eth/``, ``hotel/``, ``univ/``, ``zara1/``, ``zara2/``.
    scene : str
        Held-out scene.
    split : str
        ``'train'`` (the other scenes' ``*_train.txt``), ``'val'``
        (``*_val.txt``) or ``'test'`` (the held-out scene's file(s)).

    Raises
    ------
    ValueError
        Unknown scene or split.
    FileNotFoundError
        Missing folder or files (named).
    """
    if scene not in SCENES:
        raise ValueError(f"unknown ETH-UCY scene {scene!r}; choose one of {', '.join(SCENES)}")
    folder = os.path.join(root, scene)
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"{folder}: no such ETH-UCY scene folder")
    if split == "test":
        files = [os.path.join(folder, f"{name}.txt") for name in TEST_FILES[scene]]
        for f in files:
            if not os.path.isfile(f):
                raise FileNotFoundError(f"{f}: held-out file of scene {scene!r} not found")
        return files
    if split not in ("train", "val"):
        raise ValueError(f"unknown split {split!r}; choose train, val or test")
    files = sorted(glob.glob(os.path.join(folder, f"*_{split}.txt")))
    if not files:
        raise FileNotFoundError(f"{folder}: no *_{split}.txt files")
    return files


def ethucy_dataset(
    root: str,
    scene: str,
    split: str,
    past: int = 8,
    future: int = 12,
    max_agents: int | None = None,
    radius: float = 5.0,
    scale: float = 1.0,
) -> TrajectoryDataset:
    """One split of ETH-UCY as ego-centred scenes (EqMotion's protocol).

    Parameters
    ----------
    root : str
        Folder with the five scene folders (e.g. ``shared/data/eth_ucy``).
    scene : str
        Held-out scene: ``eth``, ``hotel``, ``univ``, ``zara1``, ``zara2``.
    split : str
        ``train``, ``val`` or ``test``.
    past, future : int
        8 observed (3.2 s at 2.5 fps) and 12 predicted frames (4.8 s).
    max_agents : int, optional
        Agents per sample (default EqMotion's per-scene value, :data:`MAX_AGENTS`).
    radius : float
        Neighbourhood radius in metres (5).
    scale : float
        Coordinates are divided by this (1; EqMotion tests ETH at 1.6).

    Returns
    -------
    TrajectoryDataset
        Per sample ``pos`` [N, past, 2], ``vel`` [N, past, 2] (finite
        differences ``x_t - x_{t-1}``, the first copied from the second, as
        EqMotion), ``target`` [N, future, 2], ``target_mask`` (the ego, agent 0).

    Raises
    ------
    ValueError, FileNotFoundError
        As :func:`split_files` and :func:`read_trajectory_file`.
    """
    if max_agents is None:
        max_agents = MAX_AGENTS.get(scene, 1)
    if not scale > 0:
        raise ValueError(f"scale={scale}: must be positive")
    pos, vel, target, mask = [], [], [], []
    for path in split_files(root, scene, split):
        table = read_trajectory_file(path)
        for _, _, obs, fut in scene_sequences(table, past, future):
            for idx in ego_samples(obs, fut, max_agents, radius):
                p = obs[idx] / scale
                v = np.zeros_like(p)
                if past > 1:
                    v[:, 1:] = p[:, 1:] - p[:, :-1]
                    v[:, 0] = v[:, 1]
                m = np.zeros(len(idx), dtype=bool)
                m[0] = True
                pos.append(p)
                vel.append(v)
                target.append(fut[idx] / scale)
                mask.append(m)
    return TrajectoryDataset(pos=pos, vel=vel, target=target, target_mask=mask)
