"""The world-model task's data: a partially observed MNIST world (:func:`equivar.data.mnist_world`) as typed options."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
import torch.nn.functional as F

from ... import data as D
from .._data import parse_section


class WorldSet(torch.utils.data.Dataset):
    """Windows of an MNIST world split into observed and predicted frames.

    Items: ``{"inputs": [T_in, 1, w, w], "actions": [T - 1, 2] (long), "target": [T - T_in, 1, w, w],
    "reentry": [T - T_in, 1, w, w] (bool)}``; ``world`` keeps the :class:`~equivar.data.MNISTWorld`.

    Raises
    ------
    ValueError
        ``input_frames`` outside ``[1, T - 1]``; a NaN or infinity in ``world.frames`` or ``world.actions``
        (named, with the count and the index of the first; checked once here, not per item or batch).
    """

    def __init__(self, world: D.MNISTWorld, input_frames: int):
        T = world.frames.shape[1]
        if not 1 <= int(input_frames) < T:
            raise ValueError(f"input_frames must be in [1, {T - 1}], got {input_frames}")
        for name in ("frames", "actions"):
            x = getattr(world, name)
            bad = ~torch.isfinite(x) if x.is_floating_point() else None
            if bad is not None and bool(bad.any()):
                first = tuple(int(i) for i in bad.nonzero()[0])
                raise ValueError(
                    f"world.{name} holds {int(bad.sum())} non-finite value(s) (NaN or inf) of {x.numel()}, "
                    f"the first {x[first].item()} at sequence {first[0]}, index {first}"
                )
        self.world, self.input_frames = world, int(input_frames)

    def __len__(self) -> int:
        return int(self.world.frames.shape[0])

    def __getitem__(self, i):
        f, k = self.world.frames[i], self.input_frames
        return {
            "inputs": f[:k],
            "actions": self.world.actions[i],
            "target": f[k:],
            "reentry": self.world.reentry[i, k:],
        }


def collate_worlds(items) -> dict:
    """Stack items into the batch ``{"inputs", "actions", "target", "reentry"}`` (a leading batch axis)."""
    return {k: torch.stack([it[k] for it in items]) for k in ("inputs", "actions", "target", "reentry")}


@dataclasses.dataclass
class WorldData:
    """The ``task.data`` section of a world-model config (:func:`equivar.data.mnist_world`).

    After the 2D MNIST world of Lillemark et al. 2026 ("Flow Equivariant World
    Models"), scaled for a CPU: MNIST digits average-pooled by ``downsample``
    and centre-cropped to ``crop x crop`` move on a ``canvas_size`` torus; the
    agent sees ``window_size x window_size`` and moves it by its actions.

    Attributes
    ----------
    root : str
        MNIST-layout folder; training and validation sequences draw digits from
        its ``train`` split (the last ``valid_digits`` images for validation),
        the test set from its ``test`` split.
    downsample : int
        Average-pool the 28 x 28 digits first.
    crop : int or None
        Centre crop of the pooled digits (None: keep them whole).
    canvas_size, window_size, num_digits, v_range, action_range : int
    turn_prob : float
    input_frames, pred_frames : int
        Observed frames, then frames the model imagines along the actions.
    n_train, n_valid, n_test, valid_digits, seed : int
    """

    root: str = "../shared/data/mnist"
    downsample: int = 2
    crop: int | None = 10
    canvas_size: int = 24
    window_size: int = 12
    num_digits: int = 3
    v_range: int = 1
    action_range: int = 2
    turn_prob: float = 0.25
    input_frames: int = 10
    pred_frames: int = 10
    n_train: int = 4000
    n_valid: int = 200
    n_test: int = 500
    valid_digits: int = 5000
    seed: int = 0

    @classmethod
    def from_mapping(cls, d, key: str = "task.data") -> WorldData:
        """Parse a config mapping; unknown keys, wrong types and bad values raise ``ValueError`` naming the key."""
        out = parse_section(cls, d, key)
        for name in ("downsample", "canvas_size", "window_size", "num_digits", "input_frames", "pred_frames"):
            if getattr(out, name) < 1:
                raise ValueError(f"{key}.{name} must be >= 1, got {getattr(out, name)}")
        for name in ("n_train", "n_valid", "n_test"):
            if getattr(out, name) < 1:
                raise ValueError(f"{key}.{name} must be >= 1, got {getattr(out, name)}")
        for name in ("v_range", "action_range"):
            if getattr(out, name) < 0:
                raise ValueError(f"{key}.{name} must be >= 0, got {getattr(out, name)}")
        if out.window_size > out.canvas_size:
            raise ValueError(f"{key}.window_size must be <= canvas_size ({out.canvas_size}), got {out.window_size}")
        if out.crop is not None and out.crop < 1:
            raise ValueError(f"{key}.crop must be >= 1 or null, got {out.crop}")
        if not 0.0 <= out.turn_prob <= 1.0:
            raise ValueError(f"{key}.turn_prob must be in [0, 1], got {out.turn_prob}")
        return out

    def digits(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Pooled, cropped digits ``[N, h, h]`` float32 in [0, 1] and labels of an MNIST split.

        Raises
        ------
        FileNotFoundError, ValueError
            As :func:`equivar.data.read_mnist`; a crop larger than the pooled digits.
        """
        images, labels = D.read_mnist(self.root, split)
        x = torch.from_numpy(np.ascontiguousarray(images)).to(torch.float32).div_(255.0)
        if self.downsample > 1:
            x = F.avg_pool2d(x[:, None], self.downsample)[:, 0]
        if self.crop is not None:
            h = int(x.shape[-1])
            if self.crop > h:
                raise ValueError(f"task.data.crop must be <= the pooled digit size {h}, got {self.crop}")
            a = (h - self.crop) // 2
            x = x[:, a : a + self.crop, a : a + self.crop]
        return x, torch.from_numpy(np.asarray(labels)).long()

    def load(self, log=print, only=None, keep_world: bool = False) -> dict:
        """``{'train', 'valid', 'test'}`` -> :class:`WorldSet` (``only``: just these; each set has its own seed, so a
        set is the same whichever others are generated; ``keep_world``: keep the canvases, for figures).

        Raises
        ------
        FileNotFoundError, ValueError
            As :meth:`digits`; an unknown set name in ``only``; ``valid_digits`` out of range.
        """
        known = ("train", "valid", "test")
        missing = [k for k in (only or ()) if k not in known]
        if missing:
            raise ValueError(f"no set {missing[0]!r} in this task.data (sets: {', '.join(known)})")
        want = [k for k in known if only is None or k in only]
        tr_x = tr_y = te_x = te_y = None
        if "train" in want or "valid" in want:
            tr_x, tr_y = self.digits("train")
            if not 0 < self.valid_digits < len(tr_x):
                raise ValueError(f"task.data.valid_digits must be in [1, {len(tr_x) - 1}], got {self.valid_digits}")
        if "test" in want:
            te_x, te_y = self.digits("test")
        T = self.input_frames + self.pred_frames
        opts = dict(
            seq_len=T,
            input_frames=self.input_frames,
            canvas_size=self.canvas_size,
            window_size=self.window_size,
            num_digits=self.num_digits,
            v_range=self.v_range,
            action_range=self.action_range,
            turn_prob=self.turn_prob,
            keep_world=keep_world,
        )
        sets = {}
        for k in want:
            if k == "test":
                x, y, n, seed = te_x, te_y, self.n_test, self.seed + 2
            else:
                n_fit = len(tr_x) - self.valid_digits
                sl = slice(0, n_fit) if k == "train" else slice(n_fit, None)
                x, y = tr_x[sl], tr_y[sl]
                n, seed = (self.n_train, self.seed) if k == "train" else (self.n_valid, self.seed + 1)
            sets[k] = WorldSet(D.mnist_world(x, y, n, seed=seed, **opts), self.input_frames)
        h = int((tr_x if tr_x is not None else te_x).shape[-1])
        share = {k: float(v.world.reentry.float().mean() / max(self.pred_frames / T, 1e-12)) for k, v in sets.items()}
        log(
            f"data: MNIST world, {self.num_digits} digits of {h}x{h} moving in "
            f"[-{self.v_range}, {self.v_range}]^2 on a {self.canvas_size}x{self.canvas_size} torus, a "
            f"{self.window_size}x{self.window_size} window moved by actions in [-{self.action_range}, "
            f"{self.action_range}]^2; {self.input_frames} observed + {self.pred_frames} imagined frames; "
            + ", ".join(f"{len(v)} {k} ({100 * share[k]:.1f}% re-entry pixels)" for k, v in sets.items())
        )
        return sets
