"""equivar: equivariant deep learning in PyTorch (E(3) first).

Layers, lowest first; each imports only itself and the layers above it in
this list (``tests/test_layering.py`` checks every import, module level and
inside functions, against this order):

- ``o3``: irreps, rotations, Wigner-D, real spherical harmonics,
  Clebsch-Gordan and Gaunt coefficients, sphere quadrature;
- ``planar``: groups acting on images and sequences (shifts, rotations,
  GL+(2) / SL(2), affine maps, flows, polyphase sampling);
- ``tp``: tensor products with interchangeable backends (cg, gaunt,
  s2grid, cp) and their expressivity;
- ``nn``: layers on irreps features (linear, gates, radial bases,
  scatter, symmetric contraction, S2-grid MLP);
- ``diffusion``: the machinery of diffusion models, free of any network
  (noise schedules, zero-CoM Gaussian and categorical diffusion, losses
  with time weighting, seeded ancestral samplers taking a denoiser);
- ``symmetry``: typed group actions, audits on orbits, frame averaging,
  soft-equivariance regularizers (model-agnostic: it imports no model, and
  sits below ``models`` so that a model can be built by frame averaging,
  as FA-GNN is; the design notes had it above);
- ``models``: a package per model family, registered by name; potentials
  share one plumbing module;
- ``data``: readers, neighbour lists, batching, E0s;
- ``tasks``: what a model is trained for (forward call, loss, metrics);
- ``train``: the trainer, configs, checkpoints;
- ``calculators``: the ASE calculator around a trained model (it loads
  checkpoints through ``train``, so it sits above it; the design notes did
  not place it);
- ``testing``: the test kit any model uses (equivariance over symmetry's
  typed actions, finite differences, batching, round trips);
- ``bench``: benchmarks against peers (no benchmark code below it);
- ``cli``: the ``equivar`` command.

Below all of them: ``_paths``, ``_device``, ``_allocator``, ``_threads``, ``_typecheck`` and
``_plotting`` (file checks and atomic writes, device names, the heap
allocator, the CPU thread policy, config value checks, matplotlib on Agg), which import nothing
from ``equivar`` but ``_paths``.
"""

import os as _os

# OpenMP threads spin-wait by default; on shared or small CPUs that makes
# small models an order of magnitude slower. Only a default: an explicit
# setting wins, and it has effect only if torch is not imported yet.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"

from . import o3  # noqa: F401
from ._allocator import tune_allocator  # noqa: E402,F401  (opt-in; the equivar command applies it)
