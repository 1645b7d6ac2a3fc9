"""``equivar sample``: draw molecules from a trained molecule-diffusion model, write them as SDF and print the metrics.

    equivar sample --model runs/qm9_eqgat_diff/model.pt -n 1000 -o mols.sdf [--steps 100] [--seed 0] [--overwrite]

An existing ``-o`` or ``--table`` file is refused before sampling (one line naming the flag and the path)
unless ``--overwrite`` is given; the files are written atomically (:func:`equivar._paths.atomic_output`).
``-o`` / ``--table`` naming the ``--model`` checkpoint (by any path: symbolic and hard links are followed) or
one file for both is refused, ``--overwrite`` or not.

The model's checkpoint metadata (task ``molecule_diffusion``: method, ``T``, the training priors and
size histogram, the data section) rebuild the diffusion; novelty is measured against the training
SMILES of the same data (read again, bonds from the cache), and bond lengths / angles against its first
2000 training molecules, unless ``--no-novelty``. The data section's ``root`` and ``cache_dir`` are where
``equivar train`` read them (config paths are relative to the directory train ran in; new checkpoints record
them absolute); a relative one in an older checkpoint is resolved against that directory - the checkpoint's
folder less the run's relative ``output_dir`` - not against the directory ``equivar sample`` runs in.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import time

HELP = "Sample molecules from a trained molecule-diffusion model (SDF + metrics table)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", "-m", required=True, help="checkpoint (model.pt) of a molecule_diffusion run")
    p.add_argument("-n", "--num", type=int, default=1000, help="molecules to sample (default 1000)")
    p.add_argument("-o", "--output", required=True, help="SDF file to write")
    p.add_argument("--steps", type=int, default=None, help="denoising steps (default: all T)")
    p.add_argument("--seed", type=int, default=0, help="seed of the sizes and the sampler")
    p.add_argument("--batch-size", type=int, default=100, help="molecules per sampling batch")
    p.add_argument("--table", default=None, help="also write the metrics as CSV here")
    p.add_argument("--overwrite", action="store_true", help="replace an existing -o / --table file")
    p.add_argument(
        "--no-novelty",
        action="store_true",
        help="skip novelty and the bond length / angle distances (no need to read the training data)",
    )
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")


def run(args) -> int:
    import torch

    from ..tasks import build_task
    from ..tasks.molecules import METRIC_KEYS, encode_graphs, score, write_sdf
    from ..train import load_model

    if args.num < 1:
        raise ValueError(f"-n must be >= 1, got {args.num}")
    if args.steps is not None and args.steps < 1:
        raise ValueError(f"--steps must be >= 1, got {args.steps}")
    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, got {args.batch_size}")
    _check_outputs(args)  # -o / --table never the --model checkpoint (links and hard links too), nor each other
    if args.threads is not None and args.threads < 1:
        raise ValueError(f"--threads must be >= 1, got {args.threads}")
    for flag, path in (("-o", args.output), ("--table", args.table)):  # before hours of sampling, not after
        if path and os.path.isdir(path):
            raise ValueError(f"{flag} {path!r} is a directory; give a file name")
        if path and not os.path.isdir(os.path.dirname(os.path.abspath(path))):
            raise ValueError(f"{flag} {path!r}: directory {os.path.dirname(os.path.abspath(path))!r} does not exist")
    _check_outputs(args)
    if args.threads:
        torch.set_num_threads(int(args.threads))
    model = load_model(args.model)
    meta = getattr(model, "equivar_metadata", {}) or {}
    if meta.get("task") != "molecule_diffusion":
        raise ValueError(
            f"{args.model}: not a molecule_diffusion model (its task is {meta.get('task')!r}); "
            "equivar sample draws molecules only"
        )
    data = training_data_paths(meta["data"], meta, args.model)
    task = build_task(
        {"name": "molecule_diffusion", "method": meta["method"], "timesteps": meta["timesteps"], "data": data}
    )
    task._build(meta["priors"])
    train = None
    if not args.no_novelty:  # the training molecules first: a missing data folder fails before sampling
        try:
            train = encode_graphs(task.data.load(log=lambda s: None)["train"])
        except FileNotFoundError as e:
            raise ValueError(f"novelty needs the model's training molecules: {e}; or pass --no-novelty") from None
    t0 = time.process_time()
    mols = task.sample_molecules(model, args.num, args.seed, args.steps, args.batch_size)
    cpu = time.process_time() - t0
    m = score(mols, train)
    _check_outputs(args)  # again: a file that appeared while sampling is not replaced either
    write_sdf(args.output, mols)
    row = {"molecules": m["molecules"], **{k: m[k] for k in METRIC_KEYS}, "sample_cpu_s": cpu}
    lines = ["| " + " | ".join(row) + " |", "|" + "---|" * len(row)]
    lines.append("| " + " | ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in row.values()) + " |")
    print("\n".join(lines))
    if args.table:
        from .._paths import atomic_output

        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=list(row))
        w.writeheader()
        w.writerow(row)
        with atomic_output(args.table, "w") as f:
            f.write(buf.getvalue())
    steps = min(args.steps or task.method.T, task.method.T)  # the sampler caps --steps at the model's T
    print(f"wrote {args.output}: {len(mols)} molecules ({steps} steps, {cpu:.1f} CPU-s)")
    return 0


def _check_outputs(args) -> None:
    """``-o`` and ``--table`` writable, not the ``--model`` checkpoint (symbolic and hard links followed), not the
    same file as each other, and (without ``--overwrite``) not existing files (one-line ``ValueError``)."""
    from .._paths import check_output_file, output_target

    if args.table and (
        output_target(args.output) == output_target(args.table)
        or (os.path.isfile(args.output) and os.path.isfile(args.table) and os.path.samefile(args.output, args.table))
    ):
        raise ValueError(f"-o {args.output} and --table {args.table}: the same file; the table would replace the SDF")
    for flag, path in (("-o", args.output), ("--table", args.table)):
        check_output_file(path, flag, [("--model", args.model)], overwrite=args.overwrite)


def training_data_paths(data: dict, meta: dict, model_path: str) -> dict:
    """``data`` (a checkpoint's ``task.data`` section) with a relative ``root`` / ``cache_dir`` made absolute the
    way ``equivar train`` read them: relative to the directory it ran in, found as the checkpoint's folder less
    the run's relative ``output_dir`` (``meta["config"]``; ``runs/qm9/model.pt`` with ``output_dir: runs/qm9``
    ran in the folder holding ``runs/``). Absolute paths, and relative ones whose training directory cannot be
    told (an absolute or ``..`` output directory, a checkpoint moved out of its run folder), are kept as given."""
    rel = [k for k in ("root", "cache_dir") if isinstance(data.get(k), str) and not os.path.isabs(data[k])]
    out_dir = (meta.get("config") or {}).get("output_dir")
    if not rel or not isinstance(out_dir, str) or not out_dir or os.path.isabs(out_dir):
        return data
    out_dir = os.path.normpath(out_dir)
    run_dir = os.path.dirname(os.path.abspath(model_path))
    if out_dir == os.curdir:
        base = run_dir
    elif out_dir.split(os.sep)[0] != os.pardir and run_dir.endswith(os.sep + out_dir):
        base = run_dir[: -len(out_dir)]
    else:
        return data
    return {**data, **{k: os.path.normpath(os.path.join(base, data[k])) for k in rel}}
