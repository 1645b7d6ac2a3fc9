"""Flow-equivariant recurrent networks for next-frame prediction (Keller 2025) and their G-RNN twin.

- :class:`FERNN` (``'fernn'``): hidden state lifted over a set of velocities,
  each channel moved by its velocity every step; equivariant to flows
  (constant-velocity motion) of the input sequence.
- :class:`GRNN` (``'grnn'``): the same network and parameters without the
  lifting; equivariant to static circular shifts only.

Both: ``model(frames [B, T_in, C, H, W], pred_len) -> [B, pred_len, C, H, W]``
(the ``sequence`` task; Translating MNIST, :func:`equivar.data.translating_mnist`).
"""

from .._registry import register_model
from ._cell import FlowCell
from ._model import FERNN, GRNN

register_model("fernn", FERNN)
register_model("grnn", GRNN)

__all__ = ["FERNN", "FlowCell", "GRNN"]
