"""Helpers shared by ``equivar eval | md | relax``: model and structure loading."""

from __future__ import annotations

import argparse

from .._paths import atomic_output, check_output_file, prepare_output_dir  # noqa: F401  (re-exported for the subcommands)


def add_model_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="checkpoint of a trained model (e.g. runs/x/model.pt)")
    p.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N (default cpu)")
    p.add_argument(
        "--dtype",
        choices=["float32", "float64"],
        default=None,
        help="run the model in this dtype (default: the dtype it was trained in)",
    )
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")


def check_model_file(path: str) -> None:
    """``FileNotFoundError`` naming ``--model`` when it is not a file (checked before anything is written)."""
    import os

    if os.path.isdir(path):
        raise ValueError(f"{path}: is a directory; --model takes a model file (e.g. runs/x/model.pt)")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such checkpoint")


def setup_threads(args) -> None:
    """Check ``--device`` and ``--threads`` (one-line errors naming the flag), then set the thread count."""
    import torch

    from .._device import check_device

    if getattr(args, "device", None) is not None:
        check_device(args.device, "--device")
    threads = getattr(args, "threads", None)
    if threads is not None and threads < 1:
        raise ValueError(f"--threads must be >= 1, got {threads}")
    if threads:
        torch.set_num_threads(threads)


def parse_index(text) -> int:
    """``--index`` as an integer frame number (negative counts from the end)."""
    try:
        return int(str(text).strip())
    except ValueError:
        raise ValueError(f"--index must be one frame number (0 is the first, -1 the last), got {text!r}") from None


def count_frames(path: str, format: str | None = None) -> int:
    """Number of frames ASE reads from ``path``."""
    import ase.io

    return sum(1 for _ in ase.io.iread(path, index=":", format=format))


def is_rmd17(path: str, format: str | None = None) -> bool:
    """Whether ``path`` is read as rMD17 (``format="rmd17"``, or a ``.npz`` file with no format given), as
    :func:`equivar.data.read_dataset` decides."""
    return format == "rmd17" or (format is None and str(path).endswith(".npz"))


def read_structure(path: str, index="0", format: str | None = None):
    """One ``ase.Atoms`` from ``path`` (``embedded:NAME`` allowed), checked for finite, non-overlapping positions.

    Reads what ``equivar eval`` reads: any ASE-readable file (``format``: an
    ASE format name, default guessed) and rMD17 ``.npz`` (``format="rmd17"``
    or the extension), frame ``index`` (negative counts from the end).
    ``atoms.info["equivar_source"]`` names it in messages (``"file.xyz, frame 3"``).

    Raises FileNotFoundError / ValueError naming the file and frame (an
    ``--index`` out of range says how many frames the file has).
    """
    import os

    import ase.io

    from ..data import Configuration, frame_source, validate
    from ..train import resolve_path

    i = parse_index(index)
    path = resolve_path(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such file")
    if os.path.isdir(path):
        raise ValueError(f"{path}: is a directory, expected a file")

    def out_of_range(n):
        have = "" if n is None else f": the file has {n} frame{'s' if n != 1 else ''}"
        have += f" (--index 0..{n - 1}, or -1 for the last)" if n else ""
        return ValueError(f"{path}: --index {i} is out of range{have}")

    if is_rmd17(path, format):
        atoms = _read_rmd17_frame(path, i, out_of_range)
        atoms.info["equivar_source"] = frame_source(path, i)
        return atoms
    if i < 0:  # ASE does not always reject a negative index past the start: count
        try:
            n = count_frames(path, format)
        except Exception as e:
            raise ValueError(f"{path}: could not read ({type(e).__name__}: {e})") from e
        if -i > n:
            raise out_of_range(n)
    try:
        atoms = ase.io.read(path, index=i, format=format)
    except (IndexError, StopIteration):
        atoms = None
    except Exception as e:
        raise ValueError(f"{path}: could not read frame {i} ({type(e).__name__}: {e})") from e
    if atoms is None:
        try:
            n = count_frames(path, format)
        except Exception:  # noqa: BLE001 - the count is only for the message
            n = None
        raise out_of_range(n)
    source = frame_source(path, i)
    validate(Configuration(atoms.numbers, atoms.positions, atoms.cell.array, atoms.pbc, source=source))
    atoms.calc = None
    atoms.info["equivar_source"] = source
    return atoms


def _read_rmd17_frame(path: str, i: int, out_of_range):
    """Frame ``i`` of an rMD17 ``.npz`` as ``ase.Atoms`` (positions and elements only), validated."""
    import numpy as np

    from ..data import read_rmd17

    try:
        with np.load(path) as npz:
            n = int(npz["coords"].shape[0]) if "coords" in npz.files else None
    except Exception as e:
        raise ValueError(f"{path}: not a readable .npz file ({type(e).__name__}: {e})") from None
    if n is not None and not -n <= i < n:
        raise out_of_range(n)
    config = read_rmd17(path, indices=[i % n if n else i])[0]  # names the file for a missing key
    atoms = config.to_ase()
    atoms.info.pop("config_type", None)
    return atoms


def check_model_elements(atoms, calc) -> None:
    """Raise ``ValueError`` naming the structure's file and frame if it holds elements the model was not trained on."""
    from ..data import Configuration, check_elements

    if getattr(calc, "atomic_numbers", None) is None:
        return
    source = atoms.info.get("equivar_source", "structure")
    check_elements([Configuration(atoms.numbers, atoms.positions, source=source)], calc.atomic_numbers)


def write_atoms_atomic(path: str, images, flag: str | None = None) -> None:
    """Write ``images`` as extxyz to ``path`` through :func:`equivar._paths.atomic_output` (atomic for files,
    symbolic links followed, devices written directly)."""
    import ase.io

    with atomic_output(path, "w", flag=flag) as f:
        ase.io.write(f, images, format="extxyz")


def require(condition: bool, flag: str, value, need: str) -> None:
    """Early check of a command-line value: ``--fmax must be positive, got -1``."""
    if not condition:
        raise ValueError(f"{flag} must be {need}, got {value}")


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
