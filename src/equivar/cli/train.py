"""``equivar train``: train any task's model (potential, dynamics, ...) from a YAML config (see ``configs/``).

equivar train --config configs/rmd17_ethanol.yaml --set training.epochs=50
equivar train --config configs/rmd17_ethanol.yaml --resume
torchrun --nproc_per_node 2 -m equivar train --config ...
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import threading
from collections.abc import Iterator

HELP = "Train a model (potential, dynamics, ...) from a YAML config"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", "-c", help="YAML config (keys: seed, dtype, device, output_dir, data, model, training)")
    p.add_argument(
        "--set",
        "-s",
        dest="overrides",
        action="extend",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="override config keys, e.g. --set training.lr=0.005 num_threads=1 (several per flag, and the flag repeatable; values parsed as YAML)",
    )
    p.add_argument("--output-dir", "-o", help="shortcut for --set output_dir=...")
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        metavar="N",
        help="torch CPU threads, a shortcut for --set num_threads=N (as md, relax and eval take it)",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue from output_dir/checkpoint.pt (the config defaults to output_dir/config.yaml)",
    )
    p.add_argument("--print-config", action="store_true", help="print the resolved config and exit")


def run(args) -> int:
    import yaml

    from ..train import load_config, run_training

    overrides = list(args.overrides)
    if args.output_dir:
        overrides.append(f"output_dir={args.output_dir}")
    if args.threads is not None:
        if args.threads < 1:
            raise ValueError(f"--threads must be >= 1, got {args.threads}")
        overrides.append(f"num_threads={args.threads}")
    path = args.config
    if path is None:
        if args.resume and args.output_dir:
            path = os.path.join(args.output_dir, "config.yaml")
            if not os.path.isfile(path):
                raise ValueError(
                    f"--resume -o {args.output_dir}: no earlier run there ({path} does not exist); "
                    "pass --config for a new run"
                )
        else:
            raise ValueError("--config is required (or --resume with --output-dir of an earlier run)")
    if os.path.isdir(path):
        raise ValueError(f"--config {path}: is a directory, expected a YAML file")
    if not os.path.exists(path):
        raise ValueError(f"--config {path}: no such file")
    cfg = load_config(path, overrides)
    if args.print_config:
        _check_model_builds(
            cfg
        )  # value ranges are the builder's: a bad model.max_L fails here, not after training starts
        print(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
        return 0
    with sigterm_as_interrupt() as got:
        try:
            run_training(cfg, resume=args.resume)
        except KeyboardInterrupt:  # Ctrl-C / SIGTERM: the last epoch's checkpoint (written atomically) is intact
            import sys

            print(interrupted_message(cfg.output_dir, got["signal"]), file=sys.stderr)
            return 128 + got["signal"]
    return 0


class _Terminated(KeyboardInterrupt):
    """SIGTERM turned into the same unwinding as Ctrl-C (``KeyboardInterrupt``)."""


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[dict]:
    """While training, SIGTERM (``kill``, SLURM preemption / time limit, torchrun) unwinds like Ctrl-C.

    Yields ``{"signal": int}``: ``signal.SIGINT`` unless a SIGTERM arrived, then ``signal.SIGTERM``; the exit
    status is ``128 + signal`` (130 / 143, the shell convention). Only in the main thread (elsewhere signals
    cannot be handled and nothing changes); the previous SIGTERM handler is restored on exit.
    """
    state = {"signal": int(signal.SIGINT)}
    if threading.current_thread() is not threading.main_thread():
        yield state
        return

    def handler(signum, frame):
        if state["signal"] == signal.SIGTERM:
            return  # already unwinding: a repeated SIGTERM must not interrupt the cleanup
        state["signal"] = int(signum)
        raise _Terminated

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield state
    finally:
        signal.signal(signal.SIGTERM, old)


def interrupted_message(output_dir: str, signum: int = signal.SIGINT) -> str:
    """One line after Ctrl-C (or SIGTERM): what ``output_dir/checkpoint.pt`` holds and how to continue (or that
    nothing can). ``signum`` names the signal in the line when it is not SIGINT."""
    from ..train import CHECKPOINT, load_checkpoint

    how = "interrupted" if signum == signal.SIGINT else f"interrupted by {signal.Signals(signum).name}"
    ckpt = os.path.join(output_dir, CHECKPOINT)
    try:
        state = load_checkpoint(ckpt)["train_state"]
        held = f"{ckpt} holds epoch {state['epoch']} (step {state['step']})"
    except Exception:  # noqa: BLE001 - no checkpoint yet (or not a training one): nothing to resume
        return f"equivar train: {how} before the first epoch ended: nothing to resume in {output_dir}"
    return f"equivar train: {how}; {held}: continue with `equivar train --resume -o {output_dir}`"


def _check_model_builds(cfg) -> None:
    """Build the configured model once with placeholder data-derived values (one element, unit statistics).

    Raises the builder's ``ValueError`` (``model.max_L must be ...``) for a bad model section.
    """
    from ..train import build_model, complete_hparams

    placeholders = {
        "atomic_numbers": [1],
        "atomic_energies": [0.0],
        "r_max": cfg.data.r_max,
        "avg_num_neighbors": 1.0,
        "scale": 1.0,
        "shift": 0.0,
        "dtype": cfg.dtype,
        "seed": cfg.seed,
    }
    build_model(complete_hparams(cfg.model, placeholders))
