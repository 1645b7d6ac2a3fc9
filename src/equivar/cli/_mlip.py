"""Helpers shared by ``equivar eval | md | relax``: model and structure loading."""
from __future__ import annotations

import argparse


def add_model_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="checkpoint of a trained model (e.g. runs/x/model.pt)")
    p.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N (default cpu)")
    p.add_argument("--dtype", choices=["float32", "float64"], default=None,
                   help="run the model in this dtype (default: the dtype it was trained in)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")


def setup_threads(args) -> None:
    import torch

    if getattr(args, "threads", None):
        torch.set_num_threads(args.threads)


def read_structure(path: str, index: str = "0"):
    """One ``ase.Atoms`` from ``path`` (``embedded:NAME`` allowed), checked for finite, non-overlapping positions.

    Raises FileNotFoundError / ValueError naming the file and frame.
    """
    import ase.io

    from ..data import Configuration, validate
    from ..train import resolve_path

    path = resolve_path(path)
    try:
        atoms = ase.io.read(path, index=index)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such file") from None
    except Exception as e:
        raise ValueError(f"{path}: could not read frame {index} ({type(e).__name__}: {e})") from e
    validate(Configuration(atoms.numbers, atoms.positions, atoms.cell.array, atoms.pbc, source=f"{path}:{index}"))
    atoms.calc = None
    return atoms


def parse_repeat(text: str | None):
    if not text:
        return None
    try:
        rep = tuple(int(x) for x in text.split(","))
    except ValueError:
        raise ValueError(f"--repeat must look like 2,2,2, got {text!r}") from None
    if len(rep) != 3 or min(rep) < 1:
        raise ValueError(f"--repeat must be three positive integers, got {text!r}")
    return rep
