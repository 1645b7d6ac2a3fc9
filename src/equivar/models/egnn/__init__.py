"""EGNN (Satorras et al., ICML 2021) for dynamics: :class:`EGNN` (registered as ``'egnn'``)."""

from ._model import EGNN

__all__ = ["EGNN"]
