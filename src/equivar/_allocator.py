"""Keep large CPU buffers in the process heap instead of fresh pages from the kernel.

PyTorch's CPU allocator calls ``malloc``/``free`` for every tensor. glibc
serves blocks above its mmap threshold (128 KiB, rising to at most 32 MiB)
with a fresh ``mmap`` and returns them with ``munmap`` on free, so a 200 MB
tensor product output is page-faulted in, 4 KiB at a time, on every call.
On the 2-core VMs we benchmark on this costs ~1 µs per page: filling a fresh
200 MB tensor took 58 ms against 10 ms for reused memory (measured with
``torch.empty(4096, 12000).fill_(1)``, 2 threads). The usual cure is jemalloc
or tcmalloc (``LD_PRELOAD``); this module does the same with glibc's own
``mallopt`` so that it needs nothing installed.

The ``equivar`` command applies it at start-up (disable with
``EQUIVAR_TUNE_MALLOC=0``); library users call :func:`tune_allocator`
themselves. Importing ``equivar`` changes nothing.

Cost: up to ``trim_threshold`` bytes of freed memory stay mapped in the
process instead of going back to the OS.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3

_state: dict = {"applied": False}


def tune_allocator(mmap_threshold: int = 1 << 30, trim_threshold: int = 1 << 30, top_pad: int = 64 << 20) -> bool:
    """Raise glibc's mmap and trim thresholds so large tensors reuse heap memory.

    Parameters
    ----------
    mmap_threshold : int, bytes
        Blocks at least this large still get their own ``mmap`` (default 1 GiB).
    trim_threshold : int, bytes
        Free memory at the top of the heap beyond this is returned to the OS (default 1 GiB).
    top_pad : int, bytes
        Extra bytes requested from the OS each time the heap grows (default 64 MiB).

    Returns
    -------
    bool
        True if glibc accepted all three settings; False on other C libraries
        (musl, macOS, Windows), where nothing is changed.

    Process-wide and irreversible for the process's lifetime (the settings can
    only be changed again with another call). Source: ``mallopt(3)``.
    """
    values = {_M_MMAP_THRESHOLD: mmap_threshold, _M_TRIM_THRESHOLD: trim_threshold, _M_TOP_PAD: top_pad}
    for v in values.values():
        if not 0 <= int(v) < 2**31:
            raise ValueError(f"tune_allocator: thresholds must be in [0, 2**31) bytes, got {v}")
    name = ctypes.util.find_library("c")
    if os.name != "posix" or not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    ok = all(mallopt(k, int(v)) == 1 for k, v in values.items())
    if ok:
        _state.update(
            applied=True, mmap_threshold=int(mmap_threshold), trim_threshold=int(trim_threshold), top_pad=int(top_pad)
        )
    return ok


def allocator_state() -> str:
    """One line describing the allocator setting, for benchmark headers."""
    if not _state["applied"]:
        return "malloc: libc defaults"
    return (
        f"malloc: mmap/trim thresholds {_state['mmap_threshold'] >> 20}/{_state['trim_threshold'] >> 20} MiB "
        "(equivar.tune_allocator)"
    )


def tune_allocator_from_env() -> bool:
    """Apply :func:`tune_allocator` unless ``EQUIVAR_TUNE_MALLOC`` is ``0``/``false``/``no``/``off``."""
    if os.environ.get("EQUIVAR_TUNE_MALLOC", "1").strip().lower() in ("0", "false", "no", "off"):
        return False
    return tune_allocator()
