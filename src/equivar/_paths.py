"""Output locations checked up front, so a bad path fails before any long work (shared by train and the CLI)."""

from __future__ import annotations

import os


def prepare_output_dir(path: str, flag: str) -> None:
    """Create directory ``path`` (given by ``flag``, e.g. ``--out-dir`` or ``output_dir``) now.

    Raises ``ValueError`` naming the flag and path when it exists as a file,
    cannot be created, or is not writable.
    """
    if os.path.exists(path) and not os.path.isdir(path):
        raise ValueError(f"{flag} {path}: exists and is not a directory")
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as e:
        raise ValueError(f"{flag} {path}: cannot create the directory ({e.strerror or e})") from None
    if not os.access(path, os.W_OK):
        raise ValueError(f"{flag} {path}: directory is not writable")
