"""``equivar audit``: how equivariant is a model, and where on the orbit does it break?

Writes PNG plots (per-group bars, NERO polar sweeps, SO(3) discs) and
``audit.json`` for a potential (energy + forces) on structures from any
ASE-readable file. ``--model`` is an equivar checkpoint, a pickled or
TorchScript ``nn.Module`` (potential interface, or ``positions [G, N, 3] ->
energy [G]``), or ``mlp-demo``: an MLP on flattened coordinates trained on
the data in a few seconds, to show where a non-equivariant network breaks.

Dynamics models (``task: dynamics`` checkpoints): ``--data train|valid|test``
picks a split of the checkpoint's own trajectory data; positions and
velocities in, predicted positions out (:mod:`equivar.cli._audit_dynamics`).

Image classifiers: ``--data`` an MNIST-layout folder (IDX files) and
``--model`` image checkpoints or registered names, comma-separated
(``vit_polyphase,vit``); groups default to planar ones (shifts, C4, SO2,
SL2, affine), with every circular shift and rotation / scale / shear sweeps
(:mod:`equivar.cli._audit_images`).
"""

from __future__ import annotations

import argparse
import collections
import os

HELP = "Audit a model's equivariance on group orbits (plots + JSON)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..symmetry.audit import DEFAULT_GROUPS

    p.add_argument(
        "--model",
        required=True,
        help="equivar checkpoint, pickled/TorchScript nn.Module, or 'mlp-demo' (MLP on flattened coordinates)",
    )
    p.add_argument(
        "--data",
        required=True,
        help="ASE-readable file (extxyz, ...), rMD17 .npz, embedded:NAME, an MNIST-layout folder (image models), "
        "or for a dynamics checkpoint the split of its own trajectory data: train, valid or test",
    )
    p.add_argument("--out", default="audit", help="output directory (default ./audit)")
    p.add_argument(
        "--group",
        nargs="+",
        default=list(DEFAULT_GROUPS),
        help="groups: SO3 O3 translations permutations SO2:z C4:z D4:z T Td O Oh I Ih Ci "
        f"(default: {' '.join(DEFAULT_GROUPS)})",
    )
    p.add_argument(
        "--max-structures", type=int, default=8, help="structures (or test images) audited (first N of the file, >= 1)"
    )
    p.add_argument("--n-elements", type=int, default=8, help="sampled elements per continuous group (>= 1)")
    p.add_argument(
        "--n-angles",
        type=int,
        default=72,
        help="angles per sweep axis (default 72, 5 degree steps; a multiple of 4 puts 90 degrees on the "
        "grid; 0 skips the sweeps)",
    )
    p.add_argument("--disc-angles", default="45,90,135,180", help="rotation angles (deg) of the SO(3) discs; '' skips")
    p.add_argument("--disc-resolution", type=int, default=15, help="disc grid size (>= 1)")
    p.add_argument(
        "--r-max", type=float, default=None, help="cutoff (A) when the model does not record one (default 5)"
    )
    p.add_argument(
        "--dtype", choices=["float32", "float64"], default=None, help="run the model in this dtype (default: its own)"
    )
    p.add_argument("--mlp-steps", type=int, default=300, help="training steps of the mlp-demo model")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")


def _load_model(path: str, dtype):
    """(model, r_max or None, description). Raises FileNotFoundError / ValueError."""
    import torch

    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such model file")
    if _is_torchscript(path):
        m = torch.jit.load(path, map_location="cpu")
        m = m.to(dtype) if dtype is not None else m
        return m.eval(), None, f"TorchScript module from {path}"
    try:
        from ..train import load_model

        m = load_model(path, dtype=dtype)
        return m, m.equivar_metadata.get("r_max"), f"equivar checkpoint {path}"
    except ValueError as e:
        if "cannot rebuild the model" in str(e) or "non-finite" in str(e):
            raise  # an equivar checkpoint whose model cannot be built: its own message says why

    try:
        obj = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:
        raise ValueError(f"{path}: neither a checkpoint, a pickled module nor TorchScript ({e})") from None
    if isinstance(obj, dict) and "hparams" in obj:
        from ..models import build_model

        sd = obj.get("state_dict", obj.get("model_state"))
        if sd is None:
            raise ValueError(f"{path}: checkpoint has 'hparams' but no 'state_dict' / 'model_state'")
        m = build_model(**obj["hparams"])
        fdt = next((v.dtype for v in sd.values() if v.is_floating_point()), None)
        if fdt is not None:
            m = m.to(fdt)
        m.load_state_dict(sd)
        r_max = obj["hparams"].get("r_max", (obj.get("metadata") or {}).get("r_max"))
        m = m.to(dtype) if dtype is not None else m
        return m.eval(), r_max, f"checkpoint {path} ({obj['hparams'].get('name', '?')})"
    if isinstance(obj, torch.nn.Module) or hasattr(obj, "forward"):
        m = obj.to(dtype) if dtype is not None else obj
        return m.eval(), getattr(m, "r_max", None), f"module {type(obj).__name__} from {path}"
    raise ValueError(f"{path}: unsupported content {type(obj).__name__} (want a checkpoint dict or an nn.Module)")


def _is_torchscript(path: str) -> bool:
    import zipfile

    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as z:
        return any(n.split("/", 1)[-1].startswith("code/") for n in z.namelist())


def _read_batch(path: str, r_max: float, n: int, dtype, same_size: bool, elements=None):
    from .. import data as D
    from ..train import resolve_path

    real = resolve_path(path)
    configs = D.read_dataset(real, require_energy=False, require_forces=False)
    configs = D.split_isolated_atoms(configs)[1] or configs
    if same_size:  # the flat MLP needs one atom count: keep the most common
        counts = collections.Counter(len(c.atomic_numbers) for c in configs)
        n_atoms = counts.most_common(1)[0][0]
        configs = [c for c in configs if len(c.atomic_numbers) == n_atoms]
    configs = configs[:n]
    if elements is not None:  # names the file and frame; the model itself would only say "not known"
        D.check_elements(configs, elements)
    graphs = [D.config_to_graph(c, r_max) for c in configs]
    return D.batch_to(D.collate(graphs), dtype=dtype), real


def _as_potential(model, batch):
    """Use ``model(batch, compute_forces=True)`` if it works, else the positions interface."""
    from ..symmetry.audit import PositionsPotential

    try:
        out = model(dict(batch), compute_forces=True)
        if isinstance(out, dict) and "energy" in out and "forces" in out:
            return model, "potential"
    except (TypeError, KeyError, AttributeError, RuntimeError, IndexError):
        pass
    return PositionsPotential(model), "positions"


def _check_arguments(args):
    """Check the numeric flags and the output directory before any model is loaded; return the disc angles."""
    from ._mlip import require

    require(args.max_structures >= 1, "--max-structures", args.max_structures, ">= 1")
    require(args.n_elements >= 1, "--n-elements", args.n_elements, ">= 1")
    require(args.n_angles >= 0, "--n-angles", args.n_angles, ">= 0 (0 skips the sweeps)")
    require(args.disc_resolution >= 1, "--disc-resolution", args.disc_resolution, ">= 1")
    require(args.mlp_steps >= 1, "--mlp-steps", args.mlp_steps, ">= 1")
    require(args.r_max is None or args.r_max > 0, "--r-max", args.r_max, "a positive cutoff in Å")
    try:
        angles = [float(a) for a in args.disc_angles.split(",") if a.strip()] or None
    except ValueError:
        raise ValueError(
            f"--disc-angles must be comma-separated degrees such as 45,90,135,180 (or ''), got {args.disc_angles!r}"
        ) from None
    if args.model != "mlp-demo" and not os.path.isfile(args.model):
        raise FileNotFoundError(f"{args.model}: no such model file")
    from ._audit_dynamics import is_dynamics_checkpoint

    if args.model != "mlp-demo" and not is_dynamics_checkpoint(args.model):  # dynamics: --data names a split
        from ._audit_images import check_model_matches_data

        check_model_matches_data(args.model, args.data)
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise ValueError(f"--out {args.out}: exists and is not a directory")
    return angles


def run(args) -> int:
    import torch

    from ..symmetry import get_group
    from ..symmetry.audit import fit_flat_mlp, potential_subject, run_audit
    from ._audit_dynamics import is_dynamics_checkpoint, run_dynamics
    from ._audit_images import is_image_folder, run_images

    if is_image_folder(args.data):
        return run_images(args)
    groups = [get_group(g) for g in args.group]  # fail fast on a bad name
    angles = _check_arguments(args)
    if is_dynamics_checkpoint(args.model):
        return run_dynamics(args, angles)
    if args.threads:
        torch.set_num_threads(args.threads)
    dtype = getattr(torch, args.dtype) if args.dtype else None
    if args.model == "mlp-demo":
        r_max = args.r_max or 5.0
        batch, real = _read_batch(args.data, r_max, args.max_structures, dtype or torch.float64, same_size=True)
        print(f"mlp-demo: training an MLP on flattened coordinates ({args.mlp_steps} steps) ...")
        model = fit_flat_mlp(batch, steps=args.mlp_steps, seed=args.seed, log=print)
        desc, interface = "mlp-demo (MLP on flattened coordinates)", "potential"
    else:
        model, r_max, desc = _load_model(args.model, dtype)
        r_max = r_max or args.r_max or 5.0
        mdt = dtype or next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.float64)
        meta_ = getattr(model, "equivar_metadata", None) or {}
        elements = meta_.get("atomic_numbers") or (getattr(model, "hparams", None) or {}).get("atomic_numbers")
        batch, real = _read_batch(args.data, r_max, args.max_structures, mdt, same_size=False, elements=elements)
        model, interface = _as_potential(model, batch)
    subject = potential_subject(model, batch)
    from ._mlip import prepare_output_dir

    prepare_output_dir(args.out, "--out")  # only now: a model or data error leaves no empty directory
    meta = {
        "model": desc,
        "interface": interface,
        "data": real,
        "r_max": r_max,
        "structures": subject.num_samples,
        "atoms": int(batch["positions"].shape[0]),
    }
    print(f"auditing {desc} on {subject.num_samples} structures of {real} ...")
    report = run_audit(
        subject,
        args.out,
        groups=groups,
        n_elements=args.n_elements,
        n_angles=args.n_angles,
        disc_angles=angles,
        disc_resolution=args.disc_resolution,
        seed=args.seed,
        meta=meta,
    )
    print(report.summary())
    if report.meta["skipped_groups"]:
        print(f"skipped (not applicable): {', '.join(report.meta['skipped_groups'])}")
    print(f"wrote {len(report.files)} files to {args.out}/ ({report.meta['seconds']:.1f} s)")
    return 0
