"""``equivar eval`` on a sequence checkpoint (FERNN, G-RNN): prediction MSE per test set and per frame, a figure.

The sequences are the ones the checkpoint records (its ``task.data`` section,
:class:`~equivar.tasks.sequence.SequenceData`), generated again from the
MNIST files (seeded), with ``--set KEY=VALUE`` overriding keys of that
section (``--set n_test=2000``, ``--set long_pred_frames=70``,
``--set root=/data/mnist``). ``--split test`` (default) evaluates the test
sets (``test``, ``unseen``, ``long``), ``all`` adds ``train`` and ``valid``.
Writes ``per_frame.csv`` and ``frames.png`` to ``--out-dir`` (default the
model's directory).
"""

from __future__ import annotations

import os


def run_sequence(args) -> int:
    """The ``equivar eval`` command for a sequence checkpoint (see the module docstring)."""
    import torch

    from ..tasks.sequence import SequenceData, SequenceTask, plot_predictions, write_report
    from ..train import load_model
    from ._eval_dynamics import parse_data_overrides
    from ._mlip import check_output_file, prepare_output_dir, require, setup_threads

    if args.data:
        raise ValueError(
            f"--data: {args.model} is a sequence model; equivar eval generates the sequences its checkpoint records "
            "(task.data), changed with --set KEY=VALUE (e.g. --set n_test=2000), not --data files"
        )
    batch_size = 100 if args.batch_size is None else args.batch_size
    require(batch_size >= 1, "--batch-size", batch_size, ">= 1")
    if args.output:
        raise ValueError("--output: a sequence model's evaluation writes a table, not predictions; use --table")
    # default: a subfolder of the training run, so the run's own errors.md / per_frame.csv / frames.png stay
    out_dir = args.out_dir if args.out_dir is not None else os.path.join(os.path.dirname(args.model) or ".", "eval")
    prepare_output_dir(out_dir, "--out-dir")
    check_output_file(args.table, "--table", [("--model", args.model)])
    setup_threads(args)
    model = load_model(args.model, device=args.device, dtype=getattr(torch, args.dtype) if args.dtype else None)
    meta = getattr(model, "equivar_metadata", {}) or {}
    recorded = meta.get("data")
    if not isinstance(recorded, dict):
        raise ValueError(f"{args.model}: the checkpoint records no task.data section (not written by equivar train)")
    data = SequenceData.from_mapping({**recorded, **parse_data_overrides(args.set)})
    tests = ["test"] + (["unseen"] if data.unseen_v_range else []) + (["long"] if data.long_pred_frames else [])
    names = {"test": tests, "train": ["train"], "valid": ["valid"], "all": ["train", "valid", *tests]}[args.split]
    sets = data.load(log=print, only=names)
    task = SequenceTask(data=data)
    rows, frames = task.evaluate_sets(model, sets, batch_size)
    write_report(out_dir, rows, frames, log=print)
    tests = {k: v for k, v in sets.items() if k not in ("train", "valid")}
    plot_predictions(model, tests or sets, os.path.join(out_dir, "frames.png"), title=type(model).__name__)
    print(f"wrote {out_dir}/: errors.md, errors.csv, per_frame.csv, frames.png")
    if args.table:
        import csv
        import io

        from .._paths import atomic_output

        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=["set", "sequences", "mse"])
        w.writeheader()
        w.writerows({"set": r["set"], "sequences": r["sequences"], "mse": repr(r["mse"])} for r in rows)
        with atomic_output(args.table, "w") as fh:
            fh.write(buf.getvalue())
    return 0
