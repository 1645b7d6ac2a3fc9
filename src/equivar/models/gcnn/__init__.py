"""Group CNNs on images: the p4 CNN (quarter turns and shifts) and a plain CNN of about the same size.

- :class:`P4CNN` (``'p4cnn'``): Cohen & Welling 2016, exactly invariant to
  quarter turns and circular shifts.
- :class:`CNN` (``'cnn'``): the same layout with ordinary convolutions.

Both: ``model(images [B, C, H, W]) -> logits [B, num_classes]``.
"""

from .._registry import register_model
from ._model import CNN, P4CNN

register_model("p4cnn", P4CNN)
register_model("cnn", CNN)

__all__ = ["CNN", "P4CNN"]
