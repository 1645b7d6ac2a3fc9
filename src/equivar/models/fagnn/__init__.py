"""FA-GNN (Puny et al., ICLR 2022) for dynamics: :class:`FAGNN` (registered as ``'fagnn'``)."""

from .._registry import register_model
from ._model import FAGNN, complete_graph

register_model("fagnn", FAGNN)

__all__ = ["FAGNN", "complete_graph"]
