"""Device names checked up front: one-line ``ValueError`` naming the offending value, never torch's assertion."""

from __future__ import annotations

import torch


def check_device(device, label: str = "device:") -> torch.device:
    """``torch.device(device)`` after checking it names a device this torch build and machine can use.

    ``label`` starts the error message (the config key or command-line flag,
    e.g. ``"device:"`` or ``"--device"``).
    """
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"{label} {device!r} is not a torch device (e.g. 'cpu', 'cuda', 'cuda:1')") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"{label} {device!r} requested but CUDA is not available in this torch build/machine")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"{label} {device!r} but only {torch.cuda.device_count()} CUDA device(s) are visible")
    elif dev.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ValueError(f"{label} {device!r} requested but MPS is not available in this torch build/machine")
    return dev
