"""How equivar spends the CPU threads it is given (``torch.set_num_threads`` / ``num_threads``).

A potential's training step or MD step on a small system (a molecule, a
batch of a few hundred edges) is a few thousand small PyTorch operations
and a handful of large native kernels (the edge tensor product and its
derivatives). With ``n > 1`` intra-op threads every small operation wakes
the other threads, which costs more than it saves (the second thread made
a 45-atom training step 1.5-3x slower in wall time on a 2-core machine,
``BENCHMARKS.md``). :func:`thread_policy` therefore runs PyTorch's own
operations on one thread while equivar's native kernels
(:mod:`equivar.tp._cg_native`, :mod:`equivar.tp._s2grid_native`) keep all
``n``, for work below :data:`SMALL_WORK` edges; above it (large periodic
cells) PyTorch's operations are large enough to use the threads themselves
and nothing changes. The thread count the user set is never exceeded, and
it is restored on exit.

Imports nothing from ``equivar``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import torch

#: edges (rows of the per-edge tensors) below which PyTorch's operations run on one thread
#: inside :func:`thread_policy`; ``EQUIVAR_SMALL_WORK`` overrides it (0: never). Measured on a shared
#: 2-core machine with the demo architecture (16 channels) on Cu/Au cells: at 18k edges (1,008 atoms)
#: one torch thread was 2x faster than two, at 86k edges (4,840 atoms) 1.4x faster in float32 and 5%
#: slower in float64; larger graphs give PyTorch's operations all the threads.
SMALL_WORK = 100_000

_kernel_threads: int | None = None  # set inside thread_policy: the threads the native kernels use


def kernel_threads() -> int:
    """Threads for equivar's native CPU kernels: the count :func:`thread_policy` kept, else ``torch.get_num_threads()``."""
    n = _kernel_threads
    return n if n is not None else max(1, torch.get_num_threads())


def small_work_threshold() -> int:
    """:data:`SMALL_WORK`, or the integer in ``EQUIVAR_SMALL_WORK`` (``ValueError`` naming it if malformed)."""
    raw = os.environ.get("EQUIVAR_SMALL_WORK")
    if raw is None or raw == "":
        return SMALL_WORK
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"EQUIVAR_SMALL_WORK must be an integer (edges), got {raw!r}") from None
    if value < 0:
        raise ValueError(f"EQUIVAR_SMALL_WORK must be >= 0, got {value}")
    return value


@contextlib.contextmanager
def thread_policy(work: int | None) -> Iterator[None]:
    """Inside the block, PyTorch operations use one thread and native kernels all of them, when ``work`` is small.

    Parameters
    ----------
    work : int or None
        Size of the computation in edges (``edge_index.shape[1]`` of the batch). ``None``, a work of at
        least :func:`small_work_threshold`, one thread, or a policy already active (nesting) leave the
        threads as they are.

    Notes
    -----
    With ``n = torch.get_num_threads() > 1`` on entry and small ``work``: ``torch.set_num_threads(1)``
    and :func:`kernel_threads` returns ``n`` until exit, when ``torch.set_num_threads(n)`` restores
    the user's setting (also on an exception). The native kernels compute each output row
    (edge, node) on one thread, so their per-row results do not depend on the count, and PyTorch's
    operations here run as they do with one thread: a step inside the policy gives the values of a
    one-thread step (bit for bit where the kernels' outputs are per row; gradients of weights
    shared by all rows are summed from per-thread partials, equal to rounding). Process-wide like
    ``torch.set_num_threads`` itself: meant for the thread that runs the model (the trainer's
    loop, a calculator).
    """
    global _kernel_threads
    n = torch.get_num_threads()
    if work is None or n <= 1 or _kernel_threads is not None or work >= small_work_threshold():
        yield
        return
    _kernel_threads = n
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)
        _kernel_threads = None
