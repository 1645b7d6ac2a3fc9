"""equivar: E(3)-equivariant deep learning in PyTorch.

Subpackages (each imports only the ones listed before it):
``o3`` (irreps, rotations, harmonics, coupling coefficients), ``tp``
(tensor products), ``nn`` (layers), ``models``, ``symmetry`` (audits, frame
averaging, regularizers), ``data``, ``train``, ``cli``.
"""
__version__ = "0.1.0"

from . import o3  # noqa: F401
