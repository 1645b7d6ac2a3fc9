"""Atomic reference energies (E0s) and energy scale/shift."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ._constants import ExactConstants


def _element_index(node_attrs: torch.Tensor, num_elements: int) -> torch.Tensor:
    if node_attrs.dtype.is_floating_point:
        if node_attrs.dim() != 2 or node_attrs.shape[1] != num_elements:
            raise ValueError(
                f"node_attrs must be one-hot [N, {num_elements}] or [N] indices, got {tuple(node_attrs.shape)}"
            )
        return node_attrs.argmax(-1)
    return node_attrs.long()


class AtomicEnergies(ExactConstants):
    r"""Per-element reference energies ``E0[z]`` (eV), a fixed buffer.

    Parameters
    ----------
    atomic_energies : sequence of float
        One value per element index (the model's ``atomic_numbers`` order), eV.

    Forward: ``node_attrs`` one-hot ``[N, E]`` (float) or indices ``[N]``
    (long) -> ``[N]`` energies in the module dtype. Invariant.
    """

    def __init__(self, atomic_energies: Sequence[float]):
        super().__init__()
        self.register_constant(
            "atomic_energies", torch.as_tensor(list(atomic_energies), dtype=torch.float64), persistent=True
        )

    def forward(self, node_attrs: torch.Tensor) -> torch.Tensor:
        if node_attrs.dtype.is_floating_point:
            return node_attrs.to(self.atomic_energies.dtype) @ self.atomic_energies
        return self.atomic_energies[node_attrs.long()]

    def extra_repr(self) -> str:
        return f"E0s={[round(float(v), 6) for v in self.atomic_energies]}"


class ScaleShift(ExactConstants):
    r"""``y * scale + shift``, scalars or one value per element (fixed buffers).

    MACE's ``ScaleShiftBlock``: ``scale`` is typically the RMS of the
    training forces (eV) and ``shift`` the mean per-atom
    interaction energy (eV). Note a nonzero ``shift`` is added to every
    atom, isolated ones included; fold it into the E0s to keep an isolated
    atom's energy equal to its E0.

    Parameters
    ----------
    scale, shift : float or sequence of float (one per element)

    Forward: ``y [N]``, ``node_attrs`` (one-hot ``[N, E]`` or indices
    ``[N]``; needed only for per-element values) -> ``[N]``.
    """

    def __init__(self, scale=1.0, shift=0.0):
        super().__init__()
        self.register_constant("scale", torch.as_tensor(scale, dtype=torch.float64), persistent=True)
        self.register_constant("shift", torch.as_tensor(shift, dtype=torch.float64), persistent=True)

    def forward(self, y: torch.Tensor, node_attrs: torch.Tensor | None = None) -> torch.Tensor:
        scale, shift = self.scale, self.shift
        if scale.dim() > 0 or shift.dim() > 0:
            if node_attrs is None:
                raise ValueError("per-element scale/shift needs node_attrs")
            n = max(scale.numel(), shift.numel())
            idx = _element_index(node_attrs, n)
            scale = scale[idx] if scale.dim() > 0 else scale
            shift = shift[idx] if shift.dim() > 0 else shift
        return y * scale + shift

    def extra_repr(self) -> str:
        return f"scale={self.scale.tolist()}, shift={self.shift.tolist()}"
