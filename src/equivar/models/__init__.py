"""Complete models built from ``equivar.nn`` and ``equivar.tp``: a package per model family.

Potentials derive from :class:`Potential`, which owns everything that is not
architecture (batch parsing, element mapping, dtype, E0s, scale/shift,
forces and stress/virials through the strain trick; ``docs/contracts.md``):
``model(batch, compute_forces=True, compute_stress=False) -> dict`` with
``energy [G]`` (eV), ``node_energy [N]``, ``forces [N, 3]`` (eV/Å) and, on
request, ``stress [G, 3, 3]`` (eV/Å^3) and ``virials [G, 3, 3]`` (eV). A new
potential implements only ``node_energies(graph) -> [N]``.

Models are registered by decorator (``@register_model("mace")``) and record
``model.hparams`` from their constructor call, so that
``build_model(**model.hparams)`` rebuilds them.

Families:

- :mod:`equivar.models.mace`: :class:`MACE` (``'mace'``), Batatia et al.,
  NeurIPS 2022, with the Facet options (spline radial functions,
  spherical-grid MLP self-interaction).
- :mod:`equivar.models.egnn`: :class:`EGNN` (``'egnn'``), Satorras et al.,
  ICML 2021, for dynamics.
- :mod:`equivar.models.fagnn`: :class:`FAGNN` (``'fagnn'``), frame averaging
  of a plain GNN, Puny et al., ICLR 2022, for dynamics.
- :mod:`equivar.models.ponita`: PONITA (Bekkers et al., ICLR 2024) on R^3 x S^2,
  for dynamics (``'ponita'``) and as a potential (``'ponita_potential'``).
- :mod:`equivar.models.eqmotion`: :class:`EqMotion` (``'eqmotion'``), Xu et al.,
  CVPR 2023, for dynamics (K-hypothesis pedestrian trajectories, N-body).
- :mod:`equivar.models.geotdm`: :class:`~equivar.models.geotdm.GeoTDM` (``'geotdm'``), Han et al.,
  NeurIPS 2024: equivariant diffusion of future frames (K samples) on the dynamics batch.
- :mod:`~equivar.models.vit_polyphase`: the shift-invariant polyphase ViT
  (``'vit_polyphase'``) and its unanchored twin (``'vit'``), Ding et al. 2023;
- :mod:`~equivar.models.affine`: an affine-equivariant CNN by Lie group
  decomposition (``'affine_cnn'``, Mironenco & Forre 2024; Monte-Carlo);
- :mod:`~equivar.models.gcnn`: the p4 group CNN (``'p4cnn'``, Cohen & Welling
  2016; quarter turns and shifts) and a plain CNN of the same size (``'cnn'``);
  image classifiers: ``model(images [B, C, H, W]) -> logits [B, classes]``.
- :mod:`~equivar.models.fernn`: the flow-equivariant RNN (``'fernn'``, Keller
  2025) and its G-RNN twin (``'grnn'``): next-frame prediction,
  ``model(frames [B, T_in, C, H, W], pred_len) -> [B, pred_len, C, H, W]``.
- :mod:`~equivar.models.world_model`: a flow-equivariant world model with memory
  (``'flow_world_model'``, after Lillemark et al. 2026) and its twin
  (``'rnn_world_model'``) on a partially observed world,
  ``model(frames [B, T_in, C, w, w], actions [B, T_in + P - 1, 2], P) -> [B, P, C, w, w]``.
- :mod:`~equivar.models.mlp`: :class:`~equivar.models.mlp.DynamicsMLP` (``'dynamics_mlp'``), the
  non-equivariant dynamics baseline (an MLP on a scene's flattened coordinates).
- :mod:`~equivar.models.eqgat_diff`: :class:`~equivar.models.eqgat_diff.EQGATDiff` (``'eqgat_diff'``),
  the molecule denoiser of EQGAT-diff (positions, atom types, charges, bonds); :mod:`~equivar.models.edm`:
  :class:`~equivar.models.edm.EDMDenoiser` (``'edm_egnn'``), the EDM-style continuous baseline.
"""

from ._potential import AtomicGraph, Potential
from ._registry import available_models, build_model, model_class, model_name, register_model, resolve_model
from ._utils import model_dtype, unwrap
from .egnn import EGNN
from .eqmotion import EqMotion
from .mace import MACE

register_model("egnn", EGNN)

from .edm import EDMDenoiser  # noqa: E402
from .eqgat_diff import EQGATDiff  # noqa: E402

register_model("eqgat_diff", EQGATDiff)
register_model("edm_egnn", EDMDenoiser)

from . import affine, fagnn, fernn, gcnn, geotdm, mlp, ponita, vit_polyphase, world_model  # noqa: E402, I001  (register "affine_cnn", "fagnn", "fernn", "p4cnn", "cnn", "geotdm", "ponita", "dynamics_mlp", "flow_world_model", ...)

__all__ = [
    "EGNN",
    "EqMotion",
    "MACE",
    "AtomicGraph",
    "Potential",
    "available_models",
    "build_model",
    "model_class",
    "model_dtype",
    "unwrap",
    "model_name",
    "register_model",
    "resolve_model",
]
