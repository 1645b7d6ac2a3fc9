r"""Tensor products of irreps features with interchangeable backends.

``TensorProduct(irreps_in1, irreps_in2, irreps_out, instructions, backend="cg")``
has the semantics, normalization and weight layout of
``e3nn.o3.TensorProduct`` (e3nn 0.6); ``backend`` picks how it is computed:

- ``cg``: exact Clebsch-Gordan (default);
- ``gaunt``, ``s2grid``, ``cp``: Gaunt / spherical-grid / CP-decomposed
  products (registered when their modules are present).

Helpers: :class:`FullyConnectedTensorProduct`, :func:`channelwise_tp`
(the MACE / NequIP edge product), :func:`from_e3nn`, and
:func:`expressivity` (which interactions a configured product realizes).

Backend contract
----------------
Shared by every backend; ``TensorProduct`` is the only caller.

1. Registration: ``equivar.tp.register_backend(name, cls)``. Backends
   self-register when their module is imported; ``equivar/tp/__init__.py``
   imports ``equivar.tp._gaunt``, ``equivar.tp._s2grid`` and
   ``equivar.tp._cp`` inside ``try/except ImportError``.
2. Construction: ``TensorProduct(..., backend=name, **backend_options)``
   calls ``cls(irreps_in1, irreps_in2, irreps_out, instructions,
   irrep_normalization=..., path_normalization=..., **backend_options)``
   where the irreps are :class:`~equivar.o3.Irreps` and ``instructions`` is
   the normalized list of :class:`Instruction` namedtuples (fields
   ``i_in1, i_in2, i_out, connection_mode, has_weight, path_weight,
   path_shape``; ``path_weight`` is the final coefficient, normalization
   included, defined in ``equivar/tp/_instructions.py``). Selection rules,
   parity and multiplicities are already validated. A backend must accept
   any subset of valid instructions, including the empty list, without
   raising for paths it cannot express (it may raise ``ValueError`` for
   bad options).
3. ``cls`` is a ``torch.nn.Module``; ``forward(x1, x2, weight) -> out``
   receives inputs already validated, broadcast and flattened to one batch
   dimension ``Z``: ``x1 [Z, irreps_in1.dim]``, ``x2 [Z, irreps_in2.dim]``,
   ``weight [Z, weight_numel]`` (per sample) or ``[weight_numel]`` (shared;
   ``[0]`` when there are no weights), all of one dtype and device; it
   returns ``out [Z, irreps_out.dim]`` (``Z`` may be 0). It applies each
   instruction's ``path_weight`` itself and must be differentiable twice
   (forces need gradients of gradients) and device-agnostic. Constants it
   needs should be non-persistent buffers (``equivar.tp._constants.
   ConstantsModule`` keeps float64-exact copies across ``.to()``), so the
   ``TensorProduct`` state dict has e3nn's keys (``weight``,
   ``output_mask``).
4. Attributes / methods:

   - ``exact: bool`` (class attribute): True if it reproduces the CG
     product exactly (up to floating-point rounding).
   - ``expressible(instruction) -> bool`` (instance method): whether it can
     realize that path; must answer for any valid instruction of its
     irreps, constructed or not. ``TensorProduct`` raises ``ValueError``
     naming every unexpressible path at construction;
     :func:`expressivity` uses it to report what a backend gives up.
   - ``weight_numel: int`` (optional): if the backend has its own weight
     form (e.g. Gaunt's per-degree weights), ``TensorProduct`` uses this
     number and passes weights of that size; otherwise e3nn's layout
     (flat concatenation over weighted instructions of each path's
     ``path_shape`` weights).
   - ``resolution() -> dict`` (optional): grid size / rank and the
     band-limit at which the backend is exact, for benchmarks and reports.

Sources: e3nn (Geiger & Smidt 2022) for semantics; Luo, Chen & Zhang,
ICLR 2024 (Gaunt); Xie, Daigavane, Kotak & Smidt, ICML 2025 (Price of
Freedom: spherical grid, expressivity); Tensor Decomposition Networks
(2025, CP).
"""

from ._builders import (
    FullyConnectedTensorProduct,
    channelwise_instructions,
    channelwise_tp,
    from_e3nn,
    p_config,
    s_config,
)
from ._cg import CGBackend
from ._expressivity import ExpressivityReport, Interaction, all_irreps, expressivity, expressivity_table
from ._instructions import CONNECTION_MODES, Instruction, normalize_instructions
from ._native_build import NativeKernelWarning, NativeLibrary, native_available, native_kernels
from ._native_pool_src import POOL_SOURCE as NATIVE_POOL_SOURCE
from ._registry import available_backends, get_backend, register_backend
from ._tensor_product import TensorProduct

register_backend("cg", CGBackend)

try:  # other backends self-register; their absence must not break the package
    from . import _gaunt  # noqa: F401
except ImportError:
    pass
try:
    from . import _s2grid  # noqa: F401
except ImportError:
    pass
try:
    from . import _cp  # noqa: F401
except ImportError:
    pass

__all__ = [
    "CONNECTION_MODES",
    "Instruction",
    "normalize_instructions",
    "NATIVE_POOL_SOURCE",
    "NativeKernelWarning",
    "NativeLibrary",
    "native_available",
    "native_kernels",
    "available_backends",
    "get_backend",
    "register_backend",
    "CGBackend",
    "TensorProduct",
    "FullyConnectedTensorProduct",
    "channelwise_instructions",
    "channelwise_tp",
    "from_e3nn",
    "p_config",
    "s_config",
    "ExpressivityReport",
    "Interaction",
    "all_irreps",
    "expressivity",
    "expressivity_table",
]
