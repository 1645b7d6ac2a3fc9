"""equivar: E(3)-equivariant deep learning in PyTorch.

Subpackages (each imports only the ones listed before it):
``o3`` (irreps, rotations, harmonics, coupling coefficients), ``planar``
(groups acting on images and sequences: shifts, rotations, GL+(2) / SL(2),
affine maps, flows, polyphase sampling), ``tp``
(tensor products), ``nn`` (layers), ``models``, ``symmetry`` (audits, frame
averaging, regularizers), ``data``, ``train``, ``cli``.
"""

import os as _os

# OpenMP threads spin-wait by default; on shared or small CPUs that makes
# small models an order of magnitude slower. Only a default: an explicit
# setting wins, and it has effect only if torch is not imported yet.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"

from . import o3  # noqa: F401
from ._allocator import tune_allocator  # noqa: E402,F401  (opt-in; the equivar command applies it)
