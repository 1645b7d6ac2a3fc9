"""Constant buffers that stay correctly rounded across dtype changes.

A buffer created in float32 and later cast with ``.double()`` keeps its
float32 rounding (~1e-7 relative): enough to break float64 equivariance
and finite-difference tests, and E0s of ~1e3 eV would lose 1e-4 eV. Modules
deriving from :class:`ExactConstants` keep a float64 master copy of each
constant and re-derive the buffer from it on every ``.to()`` / ``.double()``
/ ``.float()``.
"""

from __future__ import annotations

import numpy as np
import torch


class ExactConstants(torch.nn.Module):
    """``torch.nn.Module`` whose registered constants are exact in any float dtype."""

    def __init__(self) -> None:
        super().__init__()
        self._masters: dict[str, torch.Tensor] = {}

    def register_constant(self, name: str, value, persistent: bool = False) -> None:
        """Register ``value`` (array-like; float64 precision kept) as buffer ``name``.

        Floating values get torch's default dtype (until the module is cast);
        integer values stay ``long``. ``persistent=True`` puts the buffer in
        the state dict (the master copy is refreshed when a state dict is loaded).
        """
        if isinstance(value, torch.Tensor):
            master = value.detach().clone()
        else:
            master = torch.as_tensor(np.asarray(value))
        if master.is_floating_point():
            master = master.to(torch.float64)
            buf = master.to(torch.get_default_dtype())
        else:
            master = master.to(torch.long)
            buf = master.clone()
        self._masters[name] = master
        self.register_buffer(name, buf, persistent=persistent)

    def _apply(self, fn, recurse=True):
        out = super()._apply(fn, recurse)
        for name, master in self._masters.items():
            cur = self._buffers[name]
            if cur is not None:
                self._buffers[name] = master.to(device=cur.device, dtype=cur.dtype)
        return out

    def _load_from_state_dict(
        self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
    ):
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )
        for name in self._masters:
            key = prefix + name
            if key in state_dict:
                v = state_dict[key].detach()
                self._masters[name] = v.to(torch.float64) if v.is_floating_point() else v.to(torch.long)
