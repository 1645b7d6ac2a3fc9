"""``equivar convert``: import a model of another library as an equivar checkpoint.

``equivar convert --from-mace MACE.model -o model.pt`` reads a mace-torch ``MACE`` /
``ScaleShiftMACE`` file (without mace-torch; see :func:`equivar.models.mace.from_mace`) and writes an
equivar checkpoint that ``equivar eval | md | relax`` and :class:`~equivar.calculators.EquivarCalculator`
load like a trained one.
"""

from __future__ import annotations

import argparse
import os

from ._mlip import check_output_file

HELP = "Import a model of another library (mace-torch .model) as an equivar checkpoint"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--from-mace",
        required=True,
        metavar="FILE",
        help="mace-torch model file (MACE / ScaleShiftMACE with RealAgnosticResidualInteractionBlock)",
    )
    p.add_argument("--output", "-o", required=True, help="equivar checkpoint to write (e.g. model.pt)")
    p.add_argument(
        "--dtype",
        choices=["float32", "float64"],
        default=None,
        help="dtype of the written model (default: the file's, float64 for mace-torch's default training)",
    )
    p.add_argument("--tp-backend", default="cg", help="equivar tensor-product backend of the edge products (cg)")


def run(args) -> int:
    from ..models.mace import from_mace
    from ..train import model_payload, save_checkpoint

    src = args.from_mace
    if os.path.isdir(src):
        raise ValueError(f"--from-mace {src}: is a directory, expected a mace-torch .model file")
    if not os.path.isfile(src):
        raise FileNotFoundError(f"--from-mace {src}: no such file")
    check_output_file(args.output, "--output", {"--from-mace": src})
    model = from_mace(src, dtype=args.dtype, tp_backend=args.tp_backend)
    hp = model.hparams
    metadata = {
        "r_max": hp["r_max"],
        "atomic_numbers": list(hp["atomic_numbers"]),
        "e0s": {int(z): float(e) for z, e in zip(hp["atomic_numbers"], hp["atomic_energies"])},
        "dtype": hp["dtype"] if args.dtype is None else args.dtype,
        "converted_from": {"library": "mace-torch", "class": model.mace_torch_class, "file": os.path.abspath(src)},
    }
    save_checkpoint(args.output, model_payload(model, metadata))
    n = sum(p.numel() for p in model.parameters())
    print(
        f"{src}: {model.mace_torch_class} ({len(hp['atomic_numbers'])} elements {hp['atomic_numbers']}, "
        f"r_max {hp['r_max']:g} Å, {hp['num_interactions']} layers, hidden {hp['hidden_irreps']}, "
        f"correlation {hp['correlation']}, {n} parameters) -> {args.output}"
    )
    return 0
