"""``equivar eval``: errors of a trained model on a labelled dataset, and its predictions as extxyz."""

from __future__ import annotations

import argparse
import os

from ._mlip import add_model_arguments, check_model_file, check_output_file, prepare_output_dir, require, setup_threads
from ._model_kind import checkpoint_task, require_potential

HELP = "Evaluate a trained model on a dataset (error table, predictions)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_model_arguments(p)
    p.add_argument(
        "--data",
        nargs="+",
        default=None,
        help="file(s): extxyz/ASE-readable, rMD17 .npz, or embedded:NAME (potentials; a dynamics model is "
        "evaluated on the data its checkpoint records)",
    )
    p.add_argument("--format", default=None, help="ASE format or 'rmd17' (default: guess from the file)")
    p.add_argument("--energy-key", default="energy")
    p.add_argument("--forces-key", default="forces")
    p.add_argument("--stress-key", default="stress")
    p.add_argument("--virials-key", default="virials", help="virials label (eV; errors reported per atom)")
    p.add_argument(
        "--batch-size", type=int, default=None, help="structures (scenes) per batch, >= 1 (default 10; dynamics 500)"
    )
    p.add_argument(
        "--output",
        "-o",
        default=None,
        help="predictions extxyz, with one --data file (default OUT_DIR/<data name>_predictions.xyz)",
    )
    p.add_argument(
        "--out-dir",
        default=None,
        help="directory of the default predictions files (default: the model's directory, i.e. its training run; "
        "for a sequence model its subfolder eval/, so the run's own report is kept)",
    )
    p.add_argument("--table", default=None, help="also write the error table as CSV here")
    g = p.add_argument_group(
        "dynamics and sequence models (trajectories: MSE, ADE/FDE, minADE/minFDE; frames: MSE per test set)"
    )
    g.add_argument("--split", choices=["test", "valid", "train", "all"], default="test", help="default test")
    g.add_argument(
        "--set",
        nargs="+",
        action="extend",
        default=[],
        metavar="KEY=VALUE",
        help="override keys of the checkpoint's task.data section (e.g. scene=hotel root=/data/eth_ucy n_test=500; "
        "sequence models: n_test=2000 long_pred_frames=70)",
    )
    g.add_argument(
        "--samples",
        type=int,
        default=1,
        help="forward passes per scene for a stochastic model: best-of-K minADE/minFDE over them (default 1)",
    )
    g.add_argument("--seed", type=int, default=0, help="torch seed before the forward passes (default 0)")


def run(args) -> int:
    import time

    from .. import data as D
    from ..train import error_rows, format_table, load_model, predict, resolve_path, write_predictions, write_rows_csv

    check_model_file(args.model)
    if checkpoint_task(args.model)[0] == "dynamics":
        from ._eval_dynamics import run_dynamics

        return run_dynamics(args)
    if checkpoint_task(args.model)[0] == "sequence":
        from ._eval_sequence import run_sequence

        return run_sequence(args)
    if checkpoint_task(args.model)[0] == "world_model":
        raise ValueError(
            f"{args.model}: is a world model; equivar eval takes potentials, dynamics and sequence models: its "
            "training run wrote errors.csv and rollout.png, and benchmarks/world_model_mnist.py compares two of them"
        )
    if checkpoint_task(args.model)[0] == "molecule_diffusion":
        raise ValueError(
            f"{args.model}: is a molecule-diffusion model; equivar eval takes potentials, dynamics and sequence "
            "models: draw and score molecules with `equivar sample --model ...`"
        )
    require_potential(args.model, "eval")
    if not args.data:
        if checkpoint_task(args.model)[0] is None:  # a TorchScript export, or not an equivar checkpoint at all
            raise ValueError(
                f"--data: name the structure file(s) to evaluate {args.model} on (it must be an interatomic "
                "potential: an equivar checkpoint or a TorchScript export)"
            )
        raise ValueError(f"--data: {args.model} is an interatomic potential; name the structure file(s) to evaluate")
    if args.batch_size is None:
        args.batch_size = 10
    require(args.batch_size >= 1, "--batch-size", args.batch_size, ">= 1")
    if args.output and len(args.data) > 1:
        raise ValueError(
            f"--output names one predictions file but {len(args.data)} --data files were given: "
            "use --out-dir (each file gets OUT_DIR/<data name>_predictions.xyz)"
        )
    out_dir = args.out_dir if args.out_dir is not None else (os.path.dirname(args.model) or ".")
    inputs = [("--model", args.model)] + [("--data", d) for d in args.data]
    if args.output:
        check_output_file(args.output, "--output", inputs)
    else:
        prepare_output_dir(out_dir, "--out-dir")
    check_output_file(args.table, "--table", inputs)
    setup_threads(args)
    import torch

    model = load_model(args.model, device=args.device, dtype=getattr(torch, args.dtype) if args.dtype else None)
    meta = model.equivar_metadata
    keys = D.DataKeys(energy=args.energy_key, forces=args.forces_key, stress=args.stress_key, virials=args.virials_key)
    sets = {}
    for path in args.data:
        real = resolve_path(path)
        configs = D.read_dataset(real, format=args.format, keys=keys, require_energy=False, require_forces=False)
        configs = D.split_isolated_atoms(configs)[1] or configs
        D.check_elements(configs, meta["atomic_numbers"])
        _report_missing_labels(real, configs, keys)
        name = os.path.splitext(os.path.basename(real))[0]
        t0 = time.perf_counter()
        preds = predict(model, D.AtomicGraphDataset(configs, meta["r_max"]), args.batch_size, device=args.device)
        dt = time.perf_counter() - t0
        out = args.output or os.path.join(out_dir, f"{name}_predictions.xyz")
        write_predictions(out, configs, preds)
        print(
            f"{name}: {len(configs)} structures in {dt:.1f} s ({len(configs) / dt:.1f} structures/s); predictions -> {out}"
        )
        sets[name] = (configs, preds)
    rows = error_rows(sets)
    if any(len(r) > 3 for r in rows):
        print(format_table(rows))
    else:
        print("no reference labels found: predictions only")
    if args.table:
        write_rows_csv(args.table, rows)
    return 0


def _report_missing_labels(path: str, configs, keys) -> None:
    """Say which frames lack labels: errors are then computed over the labelled ones only."""
    if all(c.energy is None and c.forces is None for c in configs):
        print(
            f"{path}: no frame has the energy key {keys.energy!r} or the forces key {keys.forces!r}: energy and "
            "force errors skipped, predictions only (--energy-key / --forces-key name other keys)"
        )
        return
    for label, key in (("energy", keys.energy), ("forces", keys.forces)):
        missing = [i for i, c in enumerate(configs) if getattr(c, label) is None]
        if not missing:
            continue
        if len(missing) == len(configs):
            print(
                f"{path}: no frame has the {label} key {key!r}: {label} errors skipped "
                f"(use --{label}-key to name another key)"
            )
        else:
            shown = ", ".join(map(str, missing[:10])) + (" ..." if len(missing) > 10 else "")
            print(
                f"{path}: warning: {len(missing)} of {len(configs)} frames lack {label} ({key!r}), "
                f"frames {shown}; {label} errors use the other {len(configs) - len(missing)}"
            )
