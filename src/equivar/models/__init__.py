"""Complete models built from ``equivar.nn`` and ``equivar.tp``.

Potentials follow the interface of ``docs/contracts.md``:
``model(batch, compute_forces=True, compute_stress=False) -> dict`` with
``energy [G]`` (eV), ``node_energy [N]``, ``forces [N, 3]`` (eV/Å) and, on
request, ``stress [G, 3, 3]`` (eV/Å^3) and ``virials [G, 3, 3]`` (eV);
``model.hparams`` rebuilds the model through :func:`build_model`.

Image classifiers: ``model(images [B, C, H, W]) -> logits [B, classes]``.

- :mod:`~equivar.models.vit_polyphase`: the shift-invariant polyphase ViT
  (``'vit_polyphase'``) and its unanchored twin (``'vit'``), Ding et al. 2023.
- :class:`MACE` (``'mace'``): Batatia et al., NeurIPS 2022, with the Facet
  options (spline radial functions, spherical-grid MLP self-interaction).
"""

from ._blocks import InteractionBlock, ProductBlock
from ._mace import MACE
from ._registry import available_models, build_model, model_class, register_model
from .egnn import EGNN

register_model("mace", MACE)
register_model("egnn", EGNN)

from . import vit_polyphase  # noqa: E402  (registers "vit_polyphase" and "vit")

__all__ = [
    "EGNN",
    "MACE",
    "InteractionBlock",
    "ProductBlock",
    "available_models",
    "build_model",
    "model_class",
    "register_model",
]
