"""Output locations checked up front, and writes that never leave a half-written or replaced-by-accident file.

Shared by ``equivar train | eval | md | relax | sample`` (and the library functions behind them) and the scripts.

How an output path is written (:func:`atomic_output`):

- a regular file (or a new name): the contents go to a temporary file in the
  same directory, which is flushed, fsynced and renamed over the path
  (``os.replace``), so a crash leaves the old file or the new one, never half
  of one; an existing file keeps its permission bits;
- a symbolic link: it is followed (chains too) and its *target* is replaced
  as above; the link itself stays a link;
- a device node, FIFO or socket (``/dev/null``, ``/dev/stdout``, a named
  pipe): written to directly, never replaced by a regular file; a write that
  fails (``/dev/full``: no space left on device) is a one-line ``ValueError``.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import tempfile
from collections.abc import Iterator
from typing import IO


class OutputError(OSError, ValueError):
    """An output that cannot be written: an ``OSError`` (an I/O failure) and a ``ValueError`` (the CLI's one-line
    error for a bad path), as ``io.UnsupportedOperation`` is both."""


_CREATED_DIRS: list[str] = []  # directories prepare_output_dir created in this process, in creation order


def prepare_output_dir(path: str, flag: str) -> list[str]:
    """Create directory ``path`` (given by ``flag``, e.g. ``--out-dir`` or ``output_dir``) now.

    Returns the directories it created (``path`` and any missing parents, outermost first; empty when ``path``
    existed); they are also recorded so that :func:`remove_created_empty_dirs` can take them back when the command
    fails before writing anything into them.

    Raises ``ValueError`` naming the flag and path when it exists as a file,
    cannot be created, or is not writable.
    """
    if os.path.exists(path) and not os.path.isdir(path):
        raise ValueError(f"{flag} {path}: exists and is not a directory")
    missing = []
    d = os.path.abspath(path)
    while not os.path.lexists(d) and os.path.dirname(d) != d:
        missing.append(d)
        d = os.path.dirname(d)
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as e:
        raise ValueError(f"{flag} {path}: cannot create the directory ({e.strerror or e})") from None
    created = missing[::-1]
    _CREATED_DIRS.extend(created)
    if not os.access(path, os.W_OK):
        raise ValueError(f"{flag} {path}: directory is not writable")
    return created


def remove_created_empty_dirs() -> list[str]:
    """Remove the directories :func:`prepare_output_dir` created in this process that are still empty (innermost
    first, so a new ``a/b/`` goes entirely), and forget them all. A failed command calls it so that bad input
    leaves no empty output directory behind; a directory something was written into stays. Returns the removed."""
    removed = []
    for d in reversed(_CREATED_DIRS):
        try:
            os.rmdir(d)  # only succeeds on an empty directory
            removed.append(d)
        except OSError:
            pass
    _CREATED_DIRS.clear()
    return removed


def forget_created_dirs() -> None:
    """Forget the directories created so far (a command succeeded: they are its outputs)."""
    _CREATED_DIRS.clear()


def output_target(path: str) -> str:
    """The file a write to ``path`` lands in: ``path`` with every symbolic link followed (absolute)."""
    return os.path.realpath(os.fspath(path))


def is_special_file(path: str) -> bool:
    """Whether ``path`` (links followed) exists and is neither a regular file nor a directory (device, FIFO, socket)."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def check_output_file(path, flag: str, inputs=None, overwrite: bool = True) -> None:
    """Fail before any long work if ``path`` (given by ``flag``) cannot be written.

    ``None`` is accepted (no output). Symbolic links are followed: the target's
    directory must exist and be writable. A device node, FIFO or socket must be
    writable (it is written to directly, see :func:`atomic_output`).
    ``overwrite=False`` (a command without ``--overwrite``) also refuses an
    existing regular file (a link's target included): it is not replaced by
    accident; devices and FIFOs are never "existing output".

    Raises
    ------
    ValueError
        naming ``flag`` and ``path``: a directory, a missing or read-only
        directory, a device that cannot be opened for writing, the same
        file as one of ``inputs`` (``{flag: path}`` or ``(flag, path)`` pairs: what the command reads), or
        (``overwrite=False``) an existing file, with the hint ``pass --overwrite to replace it``.
    """
    if path is None:
        return
    target = output_target(path)
    shown = path if target == os.path.abspath(path) else f"{path} (-> {target})"
    for in_flag, in_path in inputs.items() if isinstance(inputs, dict) else inputs or ():
        if os.path.isfile(target) and os.path.isfile(in_path) and os.path.samefile(target, in_path):
            raise ValueError(f"{flag} {shown}: is the input {in_flag} file; it would be overwritten")
    if os.path.isdir(target):
        raise ValueError(f"{flag} {shown}: is a directory, expected a file name")
    if is_special_file(target):
        if stat.S_ISFIFO(os.stat(target).st_mode):
            # never open a FIFO to probe it: a reader already waiting would get end-of-file at the close and
            # leave, and the real write would then block for ever waiting for another
            if not os.access(target, os.W_OK):
                raise ValueError(f"{flag} {shown}: cannot write to it (permission denied)")
            return
        try:
            fd = os.open(target, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as e:
            import errno

            if e.errno != errno.ENXIO:
                raise ValueError(f"{flag} {shown}: cannot write to it ({e.strerror or e})") from None
        else:
            os.close(fd)
        return
    if not overwrite and os.path.isfile(target):
        raise ValueError(f"{flag} {shown}: already exists; pass --overwrite to replace it")
    d = os.path.dirname(target)
    if not os.path.isdir(d):
        raise ValueError(f"{flag} {shown}: directory {d} does not exist")
    if not os.access(d, os.W_OK):
        raise ValueError(f"{flag} {shown}: directory {d} is not writable")
    # os.access says yes to root even where nothing can be created (read-only mounts, /proc): try it
    probe = os.path.join(d, f".equivar-write-test.{os.getpid()}")
    try:
        with open(probe, "w"):
            pass
    except OSError as e:
        raise ValueError(f"{flag} {shown}: cannot create a file in {d} ({e.strerror or e})") from None
    finally:
        try:
            os.remove(probe)
        except OSError:
            pass


def _default_mode() -> int:
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


@contextlib.contextmanager
def atomic_output(path: str, mode: str = "w", flag: str | None = None, **open_kwargs) -> Iterator[IO]:
    """Open ``path`` for writing so that the file appears whole or not at all (see the module notes).

    >>> with atomic_output("errors.csv", newline="") as f:   # doctest: +SKIP
    ...     f.write("a,b\\n")

    Parameters
    ----------
    path : str
        Output path: a file (replaced atomically), a symbolic link (its target
        replaced atomically) or a device/FIFO (written directly).
    mode : ``"w"`` or ``"wb"``
    flag : str, optional
        The option that named ``path`` (``--output``), for error messages.
    open_kwargs : passed to ``open`` (``newline``, ``encoding``).

    Raises
    ------
    ValueError
        ``path`` is a directory.
    OutputError
        (an ``OSError`` and a ``ValueError``) one line naming the path when
        its directory is missing or a write, flush or rename fails
        (``/dev/full``, a full disk); a regular file at ``path`` is then left
        as it was.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_output: mode must be 'w' or 'wb', got {mode!r}")
    name = f"{flag} {path}" if flag else str(path)
    target = output_target(path)
    if os.path.isdir(target):
        raise ValueError(f"{name}: is a directory, expected a file name")
    if is_special_file(target):
        try:
            f = open(target, mode, **open_kwargs)
        except OSError as e:
            raise OutputError(f"{name}: cannot open for writing ({e.strerror or e})") from None
        try:
            with f:
                yield f
                f.flush()
        except OSError as e:
            raise OutputError(f"{name}: write failed ({e.strerror or e})") from None
        return
    try:
        old_mode = stat.S_IMODE(os.stat(target).st_mode)
    except OSError:
        old_mode = None
    d = os.path.dirname(target)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(target)}.", suffix=".tmp", dir=d)
    except OSError as e:
        raise OutputError(f"{name}: cannot create a file in {d} ({e.strerror or e})") from None
    try:
        with os.fdopen(fd, mode, **open_kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _default_mode() if old_mode is None else old_mode)
        os.replace(tmp, target)
    except OSError as e:
        raise OutputError(f"{name}: write failed ({e.strerror or e}); the file was not changed") from None
    finally:
        with contextlib.suppress(OSError):
            os.remove(tmp)


def write_json_atomic(path: str, obj, indent: int = 1, flag: str | None = None) -> None:
    """``json.dump(obj)`` to ``path`` through :func:`atomic_output`: no half-written file on a crash.

    Values JSON cannot encode are written as their ``str``. Raises as :func:`atomic_output`.
    """
    with atomic_output(path, flag=flag) as f:
        json.dump(obj, f, indent=indent, default=str)
