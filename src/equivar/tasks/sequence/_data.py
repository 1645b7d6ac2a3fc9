"""The sequence task's data: Translating MNIST sequences (FERNN's protocol, scaled) as typed options and datasets."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
import torch.nn.functional as F

from ... import data as D
from ...planar import velocity_grid
from .._data import parse_section


class SequenceSet(torch.utils.data.Dataset):
    """Frame sequences ``[S, T, C, H, W]`` (float32 in [0, 1]) split into ``input_frames`` observed and the rest.

    Items are ``{"inputs": [T_in, C, H, W], "target": [T - T_in, C, H, W]}``; ``velocities`` ``[S, D, 2]``
    records each digit's velocity (pixels per frame, rows and cols).
    """

    def __init__(self, frames: torch.Tensor, input_frames: int, velocities: torch.Tensor | None = None):
        if frames.dim() != 5 or not 1 <= int(input_frames) < frames.shape[1]:
            raise ValueError(
                f"frames [S, T, C, H, W] with 1 <= input_frames < T, got {tuple(frames.shape)}, {input_frames}"
            )
        self.frames, self.input_frames, self.velocities = frames, int(input_frames), velocities

    def __len__(self) -> int:
        return int(self.frames.shape[0])

    def __getitem__(self, i):
        f = self.frames[i]
        return {"inputs": f[: self.input_frames], "target": f[self.input_frames :]}


def collate_sequences(items) -> dict:
    """Stack items into the batch ``{"inputs": [B, T_in, C, H, W], "target": [B, T_out, C, H, W]}``."""
    return {k: torch.stack([it[k] for it in items]) for k in ("inputs", "target")}


@dataclasses.dataclass
class SequenceData:
    """The ``task.data`` section of a sequence config: Translating MNIST as in FERNN, scaled for a CPU.

    Keller 2025 (``akandykeller/FERNN``, ``moving_mnist_fp``): two MNIST digits
    on a canvas of the digits' size, each at a uniform integer offset moving
    with an integer velocity, wrap-around, 20 frames (10 observed, 10
    predicted), 40 for length generalization; velocity generalization
    (Figure 4) trains on ``V_1`` data and tests on others.

    Attributes
    ----------
    root : str
        MNIST-layout folder (IDX files); digits of its ``train`` split make the
        training (images ``[0, N - valid_digits)``) and validation sequences
        (the last ``valid_digits`` images), its ``test`` split the test sets.
    downsample : int
        Average-pool the 28 x 28 digits by this factor first (1: FERNN's 28 x 28).
    image_size : int
        Canvas (default: the pooled digit size).
    num_digits : int
    input_frames, pred_frames : int
        Observed and predicted frames (FERNN: 10 and 10).
    long_pred_frames : int
        Predicted frames of the ``long`` test set (FERNN's 40-frame sequences: 30).
    train_v_range : int
        Training (``valid``, ``test``, ``long``) velocities uniform in ``[-r, r]^2``.
    unseen_v_range : int
        The ``unseen`` test set: every digit's velocity uniform over
        ``[-R, R]^2`` minus ``[-r, r]^2`` (never seen in training); 0 disables it.
    n_train, n_valid, n_test : int
        Sequences per set (each test set has ``n_test``).
    valid_digits : int
    seed : int
    """

    root: str = "../shared/data/mnist"
    downsample: int = 1
    image_size: int | None = None
    num_digits: int = 2
    input_frames: int = 10
    pred_frames: int = 10
    long_pred_frames: int = 30
    train_v_range: int = 2
    unseen_v_range: int = 0
    n_train: int = 10000
    n_valid: int = 500
    n_test: int = 1000
    valid_digits: int = 5000
    seed: int = 0

    @classmethod
    def from_mapping(cls, d, key: str = "task.data") -> SequenceData:
        """Parse a config mapping; unknown keys, wrong types and bad values raise ``ValueError`` naming the key."""
        out = parse_section(cls, d, key)
        for name in ("downsample", "num_digits", "input_frames", "pred_frames", "n_train", "n_valid", "n_test"):
            if getattr(out, name) < 1:
                raise ValueError(f"{key}.{name} must be >= 1, got {getattr(out, name)}")
        for name in ("long_pred_frames", "train_v_range", "unseen_v_range"):
            if getattr(out, name) < 0:
                raise ValueError(f"{key}.{name} must be >= 0, got {getattr(out, name)}")
        if out.unseen_v_range and out.unseen_v_range <= out.train_v_range:
            raise ValueError(
                f"{key}.unseen_v_range must exceed train_v_range ({out.train_v_range}) or be 0, got {out.unseen_v_range}"
            )
        return out

    def _digits(self, split: str):
        images, labels = D.read_mnist(self.root, split)
        x = torch.from_numpy(np.ascontiguousarray(images)).to(torch.float32).div_(255.0)
        if self.downsample > 1:
            x = F.avg_pool2d(x[:, None], self.downsample)[:, 0]
        return x, torch.from_numpy(np.asarray(labels)).long()

    def load(self, log=print, only=None) -> dict:
        """``{'train', 'valid', 'test', 'unseen', 'long'}`` -> :class:`SequenceSet` (``unseen`` only when enabled,
        ``long`` when ``long_pred_frames > 0``); ``only``: generate just these sets (each set's seed is its own, so
        a set is the same whichever others are generated).

        Raises
        ------
        FileNotFoundError, ValueError
            As :func:`equivar.data.read_mnist` (the file is named); a canvas smaller than the digits.
        """
        tr_x, tr_y = self._digits("train")
        te_x, te_y = self._digits("test")
        if not 0 < self.valid_digits < len(tr_x):
            raise ValueError(f"task.data.valid_digits must be in [1, {len(tr_x) - 1}], got {self.valid_digits}")
        size = self.image_size or int(tr_x.shape[-1])
        T, T_in, r = self.input_frames + self.pred_frames, self.input_frames, self.train_v_range
        common = dict(image_size=size, num_digits=self.num_digits)
        n_fit = len(tr_x) - self.valid_digits

        def make(x, y, n, seq_len, seed, velocities=None):
            s = D.translating_mnist(x, y, n, seq_len=seq_len, v_range=r, seed=seed, velocities=velocities, **common)
            return SequenceSet(s.frames, T_in, s.velocities)

        def unseen():
            grid = velocity_grid(self.unseen_v_range)
            pool = grid[grid.abs().amax(-1) > r]
            gen = torch.Generator().manual_seed(self.seed + 3)
            vel = pool[torch.randint(len(pool), (self.n_test, self.num_digits), generator=gen)]
            return make(te_x, te_y, self.n_test, T, self.seed + 3, velocities=vel)

        makers = {
            "train": lambda: make(tr_x[:n_fit], tr_y[:n_fit], self.n_train, T, self.seed),
            "valid": lambda: make(tr_x[n_fit:], tr_y[n_fit:], self.n_valid, T, self.seed + 1),
            "test": lambda: make(te_x, te_y, self.n_test, T, self.seed + 2),
        }
        if self.unseen_v_range:
            makers["unseen"] = unseen
        if self.long_pred_frames:
            makers["long"] = lambda: make(te_x, te_y, self.n_test, T_in + self.long_pred_frames, self.seed + 4)
        if only is not None:
            missing = [k for k in only if k not in makers]
            if missing:
                raise ValueError(f"no set {missing[0]!r} in this task.data (sets: {', '.join(makers)})")
        sets = {k: f() for k, f in makers.items() if only is None or k in only}
        log(
            f"data: Translating MNIST, {self.num_digits} digits on {size}x{size} (digits pooled {self.downsample}x), "
            f"{T_in} observed + {self.pred_frames} predicted frames, training velocities in [-{r}, {r}]^2"
            + (f", unseen in [-{self.unseen_v_range}, {self.unseen_v_range}]^2 beyond" if self.unseen_v_range else "")
            + "; "
            + ", ".join(f"{len(v)} {k}" for k, v in sets.items())
            + " sequences"
        )
        return sets
