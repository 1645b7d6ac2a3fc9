"""The ``equivar`` command: ``equivar {train,eval,md,relax,audit,bench,demo,convert,sample} ...``.

Each subcommand lives in its own module ``equivar.cli.<name>`` exposing
``HELP`` (one line), ``add_arguments(parser)`` and ``run(args) -> int``;
modules are imported only when their subcommand runs, so ``equivar --help``
stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

SUBCOMMANDS = {
    "train": "Train a model (potential, dynamics, sequence, diffusion, ...) from a YAML config",
    "eval": "Evaluate a trained model on a dataset (error table, predictions)",
    "md": "Run molecular dynamics with a trained model (ASE)",
    "relax": "Relax a structure with a trained model (ASE)",
    "audit": "Audit a model's equivariance on group orbits (plots + JSON)",
    "bench": "Benchmarks: spherical harmonics, tensor products",
    "demo": "The main job end to end on the embedded dataset",
    "convert": "Import a model of another library (mace-torch .model) as an equivar checkpoint",
    "sample": "Sample molecules from a trained molecule-diffusion model (SDF + metrics table)",
}


def _available():
    out = {}
    for name, help_ in SUBCOMMANDS.items():
        spec = importlib.util.find_spec(f"equivar.cli.{name}")
        if spec is not None:
            out[name] = help_
    return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="equivar", description="E(3)-equivariant deep learning in PyTorch")
    from .. import __version__

    p.add_argument("--version", action="version", version=f"equivar {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for name, help_ in _available().items():
        sp = sub.add_parser(name, help=help_, description=help_)
        sp.set_defaults(_module=name)
        # arguments are registered lazily in main() for the chosen command only
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    avail = _available()
    if argv and argv[0] in avail:
        name = argv[0]
        from .._allocator import tune_allocator_from_env

        tune_allocator_from_env()  # large tensors reuse heap memory (EQUIVAR_TUNE_MALLOC=0 disables)
        mod = importlib.import_module(f"equivar.cli.{name}")
        sp = argparse.ArgumentParser(prog=f"equivar {name}", description=avail[name])
        mod.add_arguments(sp)
        args = sp.parse_args(argv[1:])
        from .._paths import forget_created_dirs, remove_created_empty_dirs

        forget_created_dirs()
        ok = False
        try:
            rc = int(mod.run(args) or 0)
            ok = rc == 0
            return rc
        except KeyboardInterrupt:
            hint = " (continue a training run with --resume)" if name == "train" else ""
            print(f"equivar {name}: interrupted{hint}", file=sys.stderr)
            return 130
        except (ValueError, FileNotFoundError, KeyError) as e:
            print(f"equivar {name}: error: {e}", file=sys.stderr)
            return 2
        except (IsADirectoryError, NotADirectoryError, PermissionError) as e:  # a directory given as a file, ...
            print(f"equivar {name}: error: {e.strerror}: {e.filename}", file=sys.stderr)
            return 2
        except Exception as e:  # noqa: BLE001 - YAML syntax errors and the like: one line, not a traceback
            if type(e).__module__.startswith("yaml"):
                print(f"equivar {name}: error: invalid YAML: {e}".replace("\n", " "), file=sys.stderr)
                return 2
            raise
        finally:  # a failed command leaves no empty output directory that it created (bad input, interrupt)
            if not ok:
                remove_created_empty_dirs()
            forget_created_dirs()
    p = build_parser()
    args = p.parse_args(argv)
    if args.command is None:
        p.print_help()
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
