"""``python signal_runner.py ARGS``: run ``equivar ARGS`` in this process, and send it a real signal at a chosen point.

Used by ``test_kill_resume.py`` to kill a training run at a reproducible moment. ``EQUIVAR_TEST_SIGNAL``:

- ``KILL@backward:8`` / ``INT@backward:8`` / ``TERM@backward:8``: SIGKILL / SIGINT / SIGTERM at the 8th
  ``torch.autograd.backward`` call (the 8th training step; validation and force predictions use ``torch.autograd.grad``, not ``backward``);
- ``KILL@replace:errors.csv``: SIGKILL just before a file named ``errors.csv`` is renamed into place (every
  output is written to a temporary file and ``os.replace``-d), i.e. while the final outputs are being written.

A hook that never fires lets the command finish normally: the test sees exit status 0 and fails.
"""

import os
import signal
import sys


def install(spec: str) -> None:
    sig, where = spec.split("@")
    kind, arg = where.split(":", 1)
    signum = getattr(signal, "SIG" + sig)
    if kind == "backward":
        import torch

        n, calls, orig = int(arg), [0], torch.autograd.backward

        def backward(*a, **k):
            calls[0] += 1
            if calls[0] == n:
                os.kill(os.getpid(), signum)
            return orig(*a, **k)

        torch.autograd.backward = backward
    elif kind == "replace":
        orig_replace = os.replace

        def replace(src, dst, *a, **k):
            if os.path.basename(os.fspath(dst)) == arg:
                os.kill(os.getpid(), signum)
            return orig_replace(src, dst, *a, **k)

        os.replace = replace
    else:
        raise SystemExit(f"EQUIVAR_TEST_SIGNAL: unknown hook {kind!r}")


if __name__ == "__main__":
    if os.environ.get("EQUIVAR_TEST_SIGNAL"):
        install(os.environ["EQUIVAR_TEST_SIGNAL"])
    from equivar.cli.main import main

    sys.exit(main(sys.argv[1:]))
