"""Compile and cache the native CPU kernels (shared by the ``cg`` and ``s2grid`` backends).

Each kernel source is compiled once with the system C compiler (``$CC``,
default ``cc``) into ``$EQUIVAR_CACHE`` (default ``~/.cache/equivar``); the
file name carries a hash of the source, flags, compiler command, the
compiler's ``--version`` output and the CPU, so a changed kernel, an upgraded
compiler or a different machine gets its own build.

The kernels never vanish silently:

- no C compiler on the ``PATH`` (or Windows): the PyTorch kernels are used
  and :attr:`NativeLibrary.error` says why (this is an expected set-up);
- a compiler is present but the build or the load fails: one
  :class:`NativeKernelWarning` per kernel library, with the compiler's
  message, then the PyTorch kernels;
- ``EQUIVAR_REQUIRE_NATIVE=1``: any failure to build or load (including a
  missing compiler) raises ``RuntimeError`` instead, on every use (CI sets
  it). An explicit ``EQUIVAR_NATIVE=0`` still disables the kernels.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import hashlib
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import warnings


class NativeKernelWarning(RuntimeWarning):
    """A C compiler is present but a native kernel failed to build or load (the PyTorch path is used)."""


def cache_dir() -> str:
    return os.environ.get("EQUIVAR_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "equivar")


def cpu_id() -> str:
    """The CPU's model and feature flags (``-march=native`` builds are CPU-specific)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(("model name", "flags")):
                    return line
    except OSError:
        pass
    return platform.processor()


def compiler() -> list[str]:
    """The C compiler command: ``$CC`` split as a shell would (default ``cc``)."""
    return shlex.split(os.environ.get("CC") or "cc") or ["cc"]


def compiler_present(cc: list[str] | None = None) -> bool:
    """Whether the compiler's executable is found (an absolute path or on the ``PATH``)."""
    return shutil.which((cc or compiler())[0]) is not None


@functools.cache
def compiler_version(cc: tuple[str, ...]) -> str:
    """The compiler's ``--version`` output (with its exit status), part of the cache key."""
    try:
        r = subprocess.run([*cc, "--version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as e:
        return f"unavailable: {e}"
    return f"rc={r.returncode}\n{r.stdout}{r.stderr}"


def compile_shared_library(source: str, flags: list[str], prefix: str) -> str:
    """Path of ``<cache>/<prefix>_<hash>.so`` built from the C ``source``; compiled if absent.

    The build goes to a temporary directory and is moved into place
    atomically, so concurrent processes never load a partial file.

    Raises ``RuntimeError`` with the compiler's message if compilation fails,
    ``OSError`` / ``subprocess.SubprocessError`` if the compiler cannot run.
    """
    cc = compiler()
    ident = "\0".join(
        [source, " ".join(flags), " ".join(cc), compiler_version(tuple(cc)), platform.machine(), cpu_id()]
    )
    key = hashlib.sha256(ident.encode()).hexdigest()[:16]
    d = cache_dir()
    os.makedirs(d, exist_ok=True)
    so = os.path.join(d, f"{prefix}_{key}.so")
    if os.path.exists(so):
        return so
    with tempfile.TemporaryDirectory(dir=d) as tmp:
        src = os.path.join(tmp, "k.c")
        with open(src, "w") as f:
            f.write(source)
        out = os.path.join(tmp, "k.so")
        r = subprocess.run([*cc, *flags, src, "-o", out], capture_output=True, text=True, timeout=300)
        if r.returncode != 0:
            msg = (r.stderr.strip() or r.stdout.strip() or "(no output)")[:2000]
            raise RuntimeError(f"{' '.join(cc)} failed (exit {r.returncode}): {msg}")
        os.replace(out, so)
    return so


_SCOPED_OFF = 0  # depth of active `native_kernels(False)` blocks (process-wide)
_LIBRARIES: list = []  # every NativeLibrary created (cg, s2grid)


def native_available() -> dict:
    """``{library prefix: None if it loads, else why not}`` for every native kernel library (loads them)."""
    out = {}
    for lib in _LIBRARIES:
        out[lib.prefix] = None if lib.get() is not None else (lib.error or "switched off by native_kernels(False)")
    return out


@contextlib.contextmanager
def native_kernels(enabled: bool = True):
    """Switch the native CPU kernels off (``enabled=False``) inside a ``with`` block: ``EQUIVAR_NATIVE=0``, scoped.

    Inside the block every native kernel library reports itself unavailable,
    so tensor products *built and run* inside use their pure-PyTorch paths
    (the ``cg`` backend decides when it is built, ``s2grid`` when it runs).
    Used to check that both paths agree (``equivar.testing``). Process-wide,
    not thread-local; nests. ``enabled=True`` changes nothing (it cannot
    force kernels that ``EQUIVAR_NATIVE=0`` or a missing compiler turned off).

    >>> from equivar.tp import native_kernels
    >>> with native_kernels(False):
    ...     pass
    """
    global _SCOPED_OFF
    if enabled:
        yield
        return
    _SCOPED_OFF += 1
    try:
        yield
    finally:
        _SCOPED_OFF -= 1


def _required() -> bool:
    return os.environ.get("EQUIVAR_REQUIRE_NATIVE", "0") not in ("", "0")


class NativeLibrary:
    """A native kernel library loaded once, on first use, thread-safely; ``None`` when unavailable.

    ``declare(lib)`` sets the ctypes signatures. The library is unavailable
    (and :attr:`error` says why) when ``EQUIVAR_NATIVE=0``, on Windows, when
    no C compiler is found, or when compiling or loading fails; callers then
    use their PyTorch path. A failure with a compiler present emits one
    :class:`NativeKernelWarning` carrying the compiler's message.

    Raises
    ------
    RuntimeError
        From :meth:`get`, on every call, when ``EQUIVAR_REQUIRE_NATIVE=1``
        and the library could not be built or loaded.
    """

    def __init__(self, source: str, flags: list[str], prefix: str, declare):
        self.source, self.flags, self.prefix, self.declare = source, flags, prefix, declare
        self._lock = threading.Lock()
        self._lib = None
        self._tried = False
        self._disabled = False
        self.error: str | None = None
        _LIBRARIES.append(self)

    def _fail_if_required(self):
        if self._lib is None and self.error is not None and self._disabled is False and _required():
            raise RuntimeError(f"native kernel {self.prefix!r} unavailable and EQUIVAR_REQUIRE_NATIVE=1: {self.error}")
        return self._lib

    def get(self):
        """The loaded ``ctypes.CDLL``, or ``None`` (:attr:`error` says why; also inside ``native_kernels(False)``)."""
        if _SCOPED_OFF:
            return None
        if self._tried:
            return self._fail_if_required()
        with self._lock:
            if self._tried:
                return self._fail_if_required()
            if os.environ.get("EQUIVAR_NATIVE", "1") == "0":
                self.error, self._disabled = "disabled by EQUIVAR_NATIVE=0", True
            elif sys.platform == "win32":
                self.error = "native kernels are built for POSIX systems only"
            elif not compiler_present():
                self.error = f"no C compiler found (CC={' '.join(compiler())!r}); set $CC to enable the native kernels"
            else:
                try:
                    lib = ctypes.CDLL(compile_shared_library(self.source, self.flags, self.prefix))
                    self.declare(lib)
                    self._lib = lib
                except (OSError, RuntimeError, AttributeError, subprocess.SubprocessError) as e:
                    self.error = f"{type(e).__name__}: {e}"
                    if not _required():
                        warnings.warn(
                            f"equivar: native kernel {self.prefix!r} failed to build or load, using the slower "
                            f"PyTorch path ({self.error}); set EQUIVAR_NATIVE=0 to silence, "
                            "EQUIVAR_REQUIRE_NATIVE=1 to make this an error",
                            NativeKernelWarning,
                            stacklevel=3,
                        )
            self._tried = True
            return self._fail_if_required()
