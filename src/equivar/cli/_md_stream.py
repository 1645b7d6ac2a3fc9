"""Streaming MD output: trajectory frames and an energy log written as the run goes, flushed every N steps.

An interrupted or crashed run leaves every frame and log line up to the last
flush (at most ``flush_every`` steps behind); a Ctrl-C (or SIGTERM) that
:func:`graceful_stop` turns into a clean stop leaves all of them.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import threading
from collections.abc import Iterator

from .._paths import OutputError, output_target

LOG_COLUMNS = ("step", "time_ps", "epot_eV", "ekin_eV", "etot_eV", "temperature_K")


def default_log_path(trajectory: str | None) -> str | None:
    """``<trajectory without extension>_energy.csv`` next to a trajectory file; ``None`` without one or when the
    trajectory is a device (``/dev/null``) rather than a file."""
    from .._paths import is_special_file

    if trajectory is None or is_special_file(trajectory):
        return None
    return os.path.splitext(trajectory)[0] + "_energy.csv"


class MDStream:
    """Open ``trajectory`` (extxyz) and ``log`` (CSV, :data:`LOG_COLUMNS`) for streaming; either may be None.

    Files are opened (truncated) in place, symbolic links followed, devices
    written directly. :meth:`frame` and :meth:`energy` buffer a record
    (formatted in full first, so a failure never leaves half a frame);
    :meth:`step` flushes every ``flush_every`` steps; :meth:`close` flushes.

    Raises :class:`equivar._paths.OutputError` (a ``ValueError``) naming the file when it cannot be opened or
    written.
    """

    def __init__(self, trajectory: str | None, log: str | None, flush_every: int = 100):

        if flush_every < 1:
            raise ValueError(f"flush_every must be >= 1, got {flush_every}")
        self.flush_every = int(flush_every)
        self.paths = {k: p for k, p in (("trajectory", trajectory), ("log", log)) if p is not None}
        self.files: dict = {}
        self.counts = {k: 0 for k in self.paths}
        self._last_flush = 0
        try:
            for key, path in self.paths.items():
                try:
                    self.files[key] = open(output_target(path), "w", newline="" if key == "log" else None)
                except OSError as e:
                    raise OutputError(f"{path}: cannot open for writing ({e.strerror or e})") from None
            if "log" in self.files:
                self._write("log", ",".join(LOG_COLUMNS) + "\n")
            self.flush()  # the files exist (with the log's header) from the start
        except BaseException:
            self.close()
            raise

    def _write(self, key: str, text: str) -> None:
        try:
            self.files[key].write(text)
        except OSError as e:
            raise OutputError(f"{self.paths[key]}: write failed ({e.strerror or e})") from None

    def frame(self, atoms) -> None:
        """Append one extxyz frame (``atoms`` with a calculator holding energy and forces)."""
        if "trajectory" not in self.files:
            return
        import ase.io

        buf = io.StringIO()
        ase.io.write(buf, atoms, format="extxyz")
        self._write("trajectory", buf.getvalue())
        self.counts["trajectory"] += 1

    def energy(self, step: int, time_ps: float, epot: float, ekin: float, temperature: float) -> None:
        """Append one log line (eV, K)."""
        if "log" not in self.files:
            return
        self._write("log", f"{step},{time_ps:.6f},{epot:.10g},{ekin:.10g},{epot + ekin:.10g},{temperature:.6g}\n")
        self.counts["log"] += 1

    def step(self, nsteps: int) -> None:
        """Flush when ``flush_every`` steps have passed since the last flush."""
        if nsteps - self._last_flush >= self.flush_every:
            self.flush()
            self._last_flush = nsteps

    def flush(self) -> None:
        for key, f in self.files.items():
            if not f.closed:
                try:
                    f.flush()
                except OSError as e:
                    raise OutputError(f"{self.paths[key]}: write failed ({e.strerror or e})") from None

    def close(self) -> None:
        try:
            self.flush()
        finally:
            for f in self.files.values():
                with contextlib.suppress(OSError):
                    f.close()

    def describe(self) -> str:
        """``trajectory md.xyz (21 frames), energy log md_energy.csv (21 lines)`` (or ``""``)."""
        parts = []
        if "trajectory" in self.paths:
            parts.append(f"trajectory -> {self.paths['trajectory']} ({self.counts['trajectory']} frames)")
        if "log" in self.paths:
            parts.append(f"energy log -> {self.paths['log']} ({self.counts['log']} lines)")
        return ", ".join(parts)


class Stopped(Exception):
    """Raised between MD steps after SIGINT / SIGTERM; ``signum`` is the signal."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextlib.contextmanager
def graceful_stop() -> Iterator[dict]:
    """Turn the first SIGINT (Ctrl-C) or SIGTERM into a flag ``state["signal"]`` that the MD observer checks
    between steps, so the run stops after a whole step with its files closed; a second Ctrl-C interrupts at once.

    Only in the main thread (elsewhere signals cannot be handled and nothing changes); the previous handlers
    are restored on exit.
    """
    state: dict = {"signal": None}
    if threading.current_thread() is not threading.main_thread():
        yield state
        return
    old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}

    def handler(signum, frame):
        if state["signal"] is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        state["signal"] = signum

    try:
        for s in old:
            signal.signal(s, handler)
        yield state
    finally:
        for s, h in old.items():
            signal.signal(s, h)
