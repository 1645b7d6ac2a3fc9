"""The ``classification`` task: images -> class logits, cross-entropy, accuracy and shift consistency."""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Mapping

import torch
import torch.nn.functional as F

from ... import data as D
from ..._paths import atomic_output
from .._data import TaskData
from .._registry import register_task
from .._task import Task
from ._metrics import AccuracyAccumulator


@register_task("classification")
class ClassificationTask(Task):
    """Train an image classifier ``logits = model(images)`` with cross-entropy.

    Batch: ``{"images": [B, C, H, W], "labels": [B]}`` (``docs/contracts.md``,
    image classification). Metrics: mean loss and accuracy. The task reads its
    own data (:meth:`load_data`): ``data.train_file`` is an MNIST-layout
    folder (IDX files: MNIST, Fashion-MNIST), whose ``train`` split is split
    into training and validation images (``valid_fraction``, ``split_seed``;
    with ``max_train`` only the first ``max_train / (1 - valid_fraction)``
    images are used), and each ``data.test_files`` entry is a folder whose
    ``test`` split is evaluated. The final report (:meth:`report`) gives
    accuracy and shift consistency - the fraction of images whose predicted
    class survives a circular shift drawn uniformly from all ``H x W`` shifts
    (Ding et al. 2023's consistency, seeded) - in ``errors.md`` / ``errors.csv``.

    Parameters
    ----------
    training : TrainingConfig or None
    label_smoothing : float
        Of the cross-entropy (0 = none).
    eval_limit : int or None
        Evaluate at most this many images per set in the final report (CPU budget; None = all).
    affnist : bool
        Centre every image in a 40 x 40 canvas (affNIST's "just centered" digits) and add, for each
        test set ``NAME``, an affNIST-style twin ``NAME_affnist``: the same images under one random
        affine map each in affNIST's ranges (:func:`equivar.data.affnist_like`, seeded by ``seed``).
    """

    def __init__(
        self,
        training=None,
        *,
        label_smoothing: float = 0.0,
        eval_limit: int | None = None,
        affnist: bool = False,
    ):
        super().__init__(training)
        if not 0.0 <= float(label_smoothing) < 1.0:
            raise ValueError(f"task.label_smoothing must be in [0, 1), got {label_smoothing}")
        if eval_limit is not None and int(eval_limit) < 1:
            raise ValueError(f"task.eval_limit must be >= 1 or null, got {eval_limit}")
        self.label_smoothing = float(label_smoothing)
        self.eval_limit = None if eval_limit is None else int(eval_limit)
        self.affnist = bool(affnist)

    # ---- per batch ------------------------------------------------------------------------
    def forward(self, model: torch.nn.Module, batch: Mapping, training: bool) -> dict:
        return {"logits": model(batch["images"])}

    def loss(self, pred: Mapping, batch: Mapping) -> tuple[torch.Tensor, dict[str, float]]:
        loss = F.cross_entropy(pred["logits"], batch["labels"], label_smoothing=self.label_smoothing)
        return loss, {"cross_entropy": float(loss.detach())}

    def metrics(self) -> AccuracyAccumulator:
        return AccuracyAccumulator()

    def summary(self, row: Mapping[str, float]) -> str:
        acc = row.get("valid_accuracy")
        return (
            "" if acc is None or (isinstance(acc, float) and math.isnan(acc)) else f"  valid accuracy {100 * acc:.2f}%"
        )

    # ---- data and report ------------------------------------------------------------------
    def load_data(self, cfg, log=print) -> TaskData:
        """Images of ``cfg.data`` (see the class docstring).

        Raises
        ------
        ValueError, FileNotFoundError
            ``data.train_file`` unset or not an MNIST-layout folder (the IDX reader's messages name the file).
        """
        d = cfg.data
        if not d.train_file:
            raise ValueError("data.train_file must name an MNIST-layout folder (IDX files) for task 'classification'")
        if not os.path.isdir(d.train_file):
            raise ValueError(f"data.train_file {d.train_file!r}: task 'classification' needs an MNIST-layout folder")
        limit = None
        if d.max_train:
            limit = math.ceil(d.max_train / (1.0 - d.valid_fraction))
        full = D.load_image_set(d.train_file, "train", limit)
        if self.affnist:
            full = D.ImageSet(D.pad_images(full.images), full.labels, full.source + ", centred in 40x40")
        seed = cfg.seed if d.split_seed is None else d.split_seed
        tr, va = D.random_split(list(range(len(full))), d.valid_fraction, seed, d.max_train)
        train, valid = full.subset(torch.tensor(tr)), full.subset(torch.tensor(va))
        tests = {str(k): D.load_image_set(v, "test", self.eval_limit) for k, v in (d.test_files or {}).items()}
        if self.affnist:
            for k, v in list(tests.items()):
                moved = D.affnist_like(v.images, seed=cfg.seed)[0]
                tests[k] = D.ImageSet(D.pad_images(v.images), v.labels, v.source)
                tests[f"{k}_affnist"] = D.ImageSet(moved, v.labels, f"{v.source}, affNIST-style (seed {cfg.seed})")
        C, H, W = full.images.shape[1:]
        n_cls = int(full.labels.max()) + 1
        info = {"image_size": int(H), "in_channels": int(C), "num_classes": n_cls, "dtype": cfg.dtype, "seed": cfg.seed}
        log(
            f"data: {len(train)} train, {len(valid)} valid"
            + "".join(f", {len(v)} {k}" for k, v in tests.items())
            + f" images of {C}x{H}x{W}, {n_cls} classes ({full.source})"
        )
        meta = {"task": "classification", "image_shape": [int(C), int(H), int(W)], "num_classes": n_cls}
        meta.update(dtype=cfg.dtype, config=cfg.to_dict())
        return TaskData(train, valid, tests, D.collate_images, info, meta)

    @torch.no_grad()
    def evaluate(self, model, images: D.ImageSet, seed: int = 0, batch_size: int = 500) -> dict:
        """``{"images", "accuracy", "shift_consistency"}`` of ``model`` on ``images`` (one random circular shift each)."""
        p = next(model.parameters())
        x = images.images if self.eval_limit is None else images.images[: self.eval_limit]
        y = images.labels[: len(x)]
        gen = torch.Generator().manual_seed(seed)
        H, W = x.shape[-2:]
        sh = torch.stack([torch.randint(H, (len(x),), generator=gen), torch.randint(W, (len(x),), generator=gen)], -1)
        model.eval()
        pred, pred_s = [], []
        for i in range(0, len(x), batch_size):
            xb = x[i : i + batch_size].to(p.device, p.dtype)
            pred.append(model(xb).argmax(-1).cpu())
            xs = torch.stack(
                [torch.roll(im, tuple(s.tolist()), dims=(-2, -1)) for im, s in zip(xb, sh[i : i + batch_size])]
            )
            pred_s.append(model(xs).argmax(-1).cpu())
        pred, pred_s = torch.cat(pred), torch.cat(pred_s)
        return {
            "images": len(x),
            "accuracy": float((pred == y).double().mean()),
            "shift_consistency": float((pred == pred_s).double().mean()),
        }

    def report(self, model, data: TaskData, cfg, history, log=print) -> list[dict]:
        """Accuracy and shift consistency of the selected model per set; writes ``errors.md`` / ``errors.csv``."""
        sets = {"train": data.train, "valid": data.valid, **data.tests}
        rows = []
        for name, s in sets.items():
            if s is not None and len(s):
                r = self.evaluate(model, s, seed=cfg.seed)
                rows.append({"set": name, **r})
        lines = ["| set | images | accuracy (%) | shift consistency (%) |", "|---|---|---|---|"]
        lines += [
            f"| {r['set']} | {r['images']} | {100 * r['accuracy']:.2f} | {100 * r['shift_consistency']:.2f} |"
            for r in rows
        ]
        table = "\n".join(lines)
        out = cfg.output_dir
        with atomic_output(os.path.join(out, "errors.md"), "w") as f:
            f.write(table + "\n")
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=["set", "images", "accuracy", "shift_consistency"])
        w.writeheader()
        w.writerows(rows)
        with atomic_output(os.path.join(out, "errors.csv"), "w") as f:
            f.write(buf.getvalue())
        log(f"evaluation of the selected model (shift consistency: one random circular shift per image):\n{table}")
        log(f"wrote {out}/: model.pt, metrics.csv, errors.md")
        return rows
