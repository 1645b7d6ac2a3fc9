"""Compile and cache the native CPU kernels (shared by the ``cg`` and ``s2grid`` backends).

Each kernel source is compiled once with the system C compiler (``$CC``,
default ``cc``) into ``$EQUIVAR_CACHE`` (default ``~/.cache/equivar``); the
file name carries a hash of the source, flags, compiler and CPU, so a
changed kernel or a different machine gets its own build.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import subprocess
import sys
import tempfile
import threading


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


def compile_shared_library(source: str, flags: list[str], prefix: str) -> str:
    """Path of ``<cache>/<prefix>_<hash>.so`` built from the C ``source``; compiled if absent.

    The build goes to a temporary directory and is moved into place
    atomically, so concurrent processes never load a partial file.

    Raises ``RuntimeError`` with the compiler's message if compilation fails,
    ``OSError`` / ``subprocess.SubprocessError`` if the compiler cannot run.
    """
    cc = os.environ.get("CC", "cc")
    key = hashlib.sha256((source + " ".join(flags) + cc + platform.machine() + cpu_id()).encode()).hexdigest()[:16]
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
        r = subprocess.run([cc, *flags, src, "-o", out], capture_output=True, text=True, timeout=300)
        if r.returncode != 0:
            raise RuntimeError(f"{cc} failed: {r.stderr.strip()[:2000]}")
        os.replace(out, so)
    return so


class NativeLibrary:
    """A native kernel library loaded once, on first use, thread-safely; ``None`` when unavailable.

    ``declare(lib)`` sets the ctypes signatures. The library is unavailable
    (and :attr:`error` says why) when ``EQUIVAR_NATIVE=0``, on Windows, or
    when compiling or loading fails; callers then use their PyTorch path.
    """

    def __init__(self, source: str, flags: list[str], prefix: str, declare):
        self.source, self.flags, self.prefix, self.declare = source, flags, prefix, declare
        self._lock = threading.Lock()
        self._lib = None
        self._tried = False
        self.error: str | None = None

    def get(self):
        """The loaded ``ctypes.CDLL``, or ``None`` (:attr:`error` says why)."""
        if self._tried:
            return self._lib
        with self._lock:
            if self._tried:
                return self._lib
            self._tried = True
            if os.environ.get("EQUIVAR_NATIVE", "1") == "0":
                self.error = "disabled by EQUIVAR_NATIVE=0"
            elif sys.platform == "win32":
                self.error = "native kernels are built for POSIX systems only"
            else:
                try:
                    lib = ctypes.CDLL(compile_shared_library(self.source, self.flags, self.prefix))
                    self.declare(lib)
                    self._lib = lib
                except (OSError, RuntimeError, AttributeError, subprocess.SubprocessError) as e:
                    self.error = str(e)
            return self._lib
