"""World models with memory on a partially observed world (a window over a larger canvas of moving digits).

- :class:`FlowWorldModel` (``'flow_world_model'``): a canvas-sized memory lifted
  over object velocities, moved by each velocity and by the agent's known
  self-motion every frame (Lillemark et al. 2026, "Flow Equivariant World
  Models"; the FERNN recurrence of Keller 2025); flow equivariant.
- :class:`RNNWorldModel` (``'rnn_world_model'``): its twin, the same memory map
  and parameters without the lifting and the self-motion flow (the action is
  an input); no symmetry.

Both: ``model(frames [B, T_in, C, w, w], actions [B, T_in + P - 1, 2], P) -> [B, P, C, w, w]``
(the ``world_model`` task; :func:`equivar.data.mnist_world`).
"""

from .._registry import register_model
from ._model import FlowWorldModel, RNNWorldModel, shift_each

register_model("flow_world_model", FlowWorldModel)
register_model("rnn_world_model", RNNWorldModel)

__all__ = ["FlowWorldModel", "RNNWorldModel", "shift_each"]
