"""``equivar eval`` on a dynamics checkpoint: MSE, ADE/FDE (minADE/minFDE over K hypotheses) and the predictions.

The data are the ones the checkpoint records (its ``task.data`` section:
EGNN's N-body split, an ETH-UCY scene, ...), read or simulated again (N-body
from the cache), with ``--set KEY=VALUE`` overriding keys of that section
(``--set scene=hotel``, ``--set root=/data/eth_ucy``, ``--set n_test=500``).
Metrics are the dynamics task's (:class:`equivar.tasks.dynamics.DynamicsMetrics`,
the numbers training reports): MSE of the scored agents' positions, ADE and
FDE (metres for ETH-UCY, the simulation's units for N-body); for a model that
returns ``K`` hypotheses, or ``--samples K`` forward passes of a stochastic
model, the best-of-K minADE / minFDE (each minimum taken separately, as
Social-GAN and EqMotion evaluate).

Predictions are written per split as ``<split>_predictions.npz``: ``pred``
``[N, T, D]`` or ``[K, N, T, D]`` (agents of all scenes in order), ``target``
``[N, T, D]``, ``target_mask`` ``[N]``, ``ptr`` ``[S + 1]`` (scene ``s`` holds
agents ``ptr[s]:ptr[s + 1]``).
"""

from __future__ import annotations

import io
import os

import numpy as np

SPLITS = ("train", "valid", "test")


def parse_data_overrides(items) -> dict:
    """``["KEY=VALUE", ...]`` -> ``{KEY: value}`` with values parsed as YAML; one-line errors naming ``--set``."""
    import yaml

    out = {}
    for item in items or []:
        key, sep, text = str(item).partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--set {item!r}: expected KEY=VALUE (a key of the checkpoint's task.data section)")
        key = key.strip()
        if key.startswith("task.data."):
            key = key[len("task.data.") :]
        try:
            out[key] = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise ValueError(f"--set {item!r}: the value is not valid YAML ({str(e).splitlines()[0]})") from None
    return out


def predict_dynamics(task, model, dataset, batch_size: int, device, samples: int = 1, seed: int = 0):
    """Predictions and metrics of ``model`` on ``dataset`` (eval mode, no gradients).

    A dataset with ``length_scale`` (ETH-UCY's ``test_scale``: coordinates divided by it) has its predictions
    and targets multiplied back, so metrics and arrays are in the data's units, as in training's report.

    Returns
    -------
    (dict, dict)
        Arrays ``pred`` ``[N, T, D]`` or ``[K, N, T, D]``, ``target``, ``target_mask``, ``ptr``; and the metrics of
        :class:`~equivar.tasks.dynamics.DynamicsMetrics` (``mse``, ``ade``/``fde`` or ``min_ade``/``min_fde``,
        ``loss``, ``n_structures``).
    """
    import torch

    from ..data import collate_scenes, make_loader

    p = next(model.parameters())
    model.eval()
    acc = task.metrics()
    preds, targets, masks, sizes = [], [], [], []
    scale = float(getattr(dataset, "length_scale", 1.0))  # ETH-UCY test_scale: back to the data's units (metres)
    torch.manual_seed(seed)
    with torch.no_grad():
        for batch in make_loader(dataset, batch_size, shuffle=False, collate_fn=collate_scenes):
            b = task.prepare(batch, device, p.dtype)
            outs = [task.forward(model, b, False) for _ in range(samples)]
            if samples == 1:
                pred = outs[0]
            else:  # K forward passes of a stochastic model: hypotheses stacked (or joined when each gives several)
                pos = [o["pos"] if o["pos"].dim() == 4 else o["pos"].unsqueeze(0) for o in outs]
                pred = {"pos": torch.cat(pos, dim=0)}
            if scale != 1.0:  # as DynamicsTask.evaluate: the model saw coordinates / scale
                pred = dict(pred, pos=pred["pos"] * scale)
                b = dict(b, target=b["target"] * scale)
            loss, _ = task.loss(pred, b)
            acc.update(pred, b, float(loss))
            preds.append(pred["pos"].detach().cpu())
            targets.append(b["target"].cpu())
            masks.append(b["target_mask"].cpu())
            sizes.append(b["ptr"].diff().cpu())
    node_axis = 1 if preds[0].dim() == 4 else 0
    sizes_all = torch.cat(sizes)
    ptr = torch.zeros(len(sizes_all) + 1, dtype=torch.long)
    ptr[1:] = torch.cumsum(sizes_all, 0)
    arrays = {
        "pred": torch.cat(preds, dim=node_axis).double().numpy(),
        "target": torch.cat(targets).double().numpy(),
        "target_mask": torch.cat(masks).numpy(),
        "ptr": ptr.numpy(),
    }
    return arrays, acc.compute()


def run_dynamics(args) -> int:
    """The ``equivar eval`` command for a dynamics checkpoint (see the module docstring)."""
    import torch

    from .._paths import atomic_output
    from ..tasks.dynamics import DynamicsData, DynamicsTask
    from ..train import load_model
    from ._mlip import check_output_file, prepare_output_dir, require, setup_threads

    if args.data:
        raise ValueError(
            f"--data: {args.model} is a dynamics model; equivar eval runs it on the data its checkpoint records "
            "(task.data), chosen with --split and --set KEY=VALUE (e.g. --set scene=hotel), not on --data files"
        )
    require(args.samples >= 1, "--samples", args.samples, ">= 1")
    batch_size = 500 if args.batch_size is None else args.batch_size
    require(batch_size >= 1, "--batch-size", batch_size, ">= 1")
    overrides = parse_data_overrides(args.set)
    out_dir = args.out_dir if args.out_dir is not None else (os.path.dirname(args.model) or ".")
    splits = list(SPLITS) if args.split == "all" else [args.split]
    if args.output:
        if len(splits) > 1:
            raise ValueError("--output names one predictions file but --split all evaluates three: use --out-dir")
        check_output_file(args.output, "--output")
    else:
        prepare_output_dir(out_dir, "--out-dir")
    check_output_file(args.table, "--table")
    setup_threads(args)
    model = load_model(args.model, device=args.device, dtype=getattr(torch, args.dtype) if args.dtype else None)
    meta = getattr(model, "equivar_metadata", {}) or {}
    recorded = meta.get("data")
    if not isinstance(recorded, dict):
        raise ValueError(f"{args.model}: the checkpoint records no task.data section (not written by equivar train)")
    data = DynamicsData.from_mapping({**recorded, **overrides})
    sets = data.load(log=print)
    # the training's task.loss (mse or ade), so the table's `loss` column means what it meant in training
    loss = ((meta.get("config") or {}).get("task") or {}).get("loss", "mse")
    task = DynamicsTask(data=data, loss=loss)
    rows = []
    for split in splits:
        arrays, metrics = predict_dynamics(task, model, sets[split], batch_size, args.device, args.samples, args.seed)
        pred = arrays["pred"]
        if args.samples > 1 and np.array_equal(pred[0], pred[-1]):
            print(f"note: the {args.samples} samples are identical (the model is deterministic)")
        path = args.output or os.path.join(out_dir, f"{split}_predictions.npz")
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        with atomic_output(path, "wb") as fh:
            fh.write(buf.getvalue())
        scenes = int(metrics.pop("n_structures", len(arrays["ptr"]) - 1))
        k = pred.shape[0] if pred.ndim == 4 else 1
        rows.append({"set": split, "scenes": scenes, "k": k, **metrics})
        print(f"{split}: {scenes} scenes; predictions -> {path}")
    keys = ["set", "scenes", "k"] + [key for key in rows[0] if key not in ("set", "scenes", "k")]
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    for r in rows:
        lines.append(
            "| " + " | ".join(str(r[c]) if c in ("set", "scenes", "k") else f"{r[c]:.6g}" for c in keys) + " |"
        )
    print("\n".join(lines))
    if args.table:
        import csv

        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=keys)
        w.writeheader()
        for r in rows:
            w.writerow({c: (repr(r[c]) if isinstance(r[c], float) else r[c]) for c in keys})
        with atomic_output(args.table, "w") as fh:
            fh.write(buf.getvalue())
    return 0
