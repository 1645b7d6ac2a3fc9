"""Non-equivariant baselines for the dynamics task: :class:`DynamicsMLP` (``'dynamics_mlp'``)."""

from ._dynamics import DynamicsMLP

__all__ = ["DynamicsMLP"]
