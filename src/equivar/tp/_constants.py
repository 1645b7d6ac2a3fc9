"""Exact constant tensors for backends: rebuilt from a float64 master on every dtype/device move.

A plain buffer created in float32 and later converted with ``.double()``
keeps float32 rounding errors (about 1e-8 relative), which would break
agreement with e3nn at 1e-10 in float64. :class:`ConstantsModule` stores a
float64 master copy of each constant and, whenever the module is moved or
cast (``.to``, ``.double``, ``.cuda``...), re-derives the buffer from the
master, so the constants are always the correctly rounded values in the
module's current dtype.
"""

from __future__ import annotations

import numpy as np
import torch


class ConstantsModule(torch.nn.Module):
    """``torch.nn.Module`` with exact, non-persistent constant buffers."""

    def __init__(self) -> None:
        super().__init__()
        self._masters: dict[str, torch.Tensor] = {}

    def register_constant(self, name: str, value, dtype: torch.dtype | None = None) -> None:
        """Register ``value`` (array-like, float64 precision kept) as buffer ``name``.

        Floating constants get ``dtype`` (default: torch's default dtype);
        integer constants (index tensors) keep their integer type.
        """
        master = torch.as_tensor(np.asarray(value))
        if master.is_floating_point():
            master = master.to(torch.float64)
            buf = master.to(dtype or torch.get_default_dtype())
        else:
            master = master.to(torch.long)
            buf = master.clone()
        self._masters[name] = master
        self.register_buffer(name, buf, persistent=False)

    def _apply(self, fn, recurse=True):
        out = super()._apply(fn, recurse)  # moves/casts the buffers; we only read their new dtype/device
        for name, master in self._masters.items():
            cur = self._buffers[name]
            self._buffers[name] = master.to(device=cur.device, dtype=cur.dtype)
        return out
