"""``TensorProduct``: weighted tensor products of irreps features, one interface, several backends.

Semantics, normalization and weight layout are those of
``e3nn.o3.TensorProduct`` (e3nn 0.6): for the same instructions and weights
the exact backend (``'cg'``) gives the same outputs.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Sequence

import torch

from ..o3 import Irreps, wigner_3j
from ._instructions import (
    CONNECTION_MODES,
    Instruction,
    describe_path,
    normalize_instructions,
    weight_offsets,
)
from ._instructions import (
    weight_numel as _weight_numel,
)
from ._registry import get_backend


def _all_paths(irreps_in1: Irreps, irreps_in2: Irreps, irreps_out: Irreps, mode: str) -> list[tuple]:
    """Every path allowed by selection rules, parity and the mode's multiplicity constraints."""
    out = []
    for i1, (m1, ir1) in enumerate(irreps_in1):
        for i2, (m2, ir2) in enumerate(irreps_in2):
            for io, (mo, iro) in enumerate(irreps_out):
                if iro not in list(ir1 * ir2):
                    continue
                ok = {
                    "uvw": True,
                    "uvu": m1 == mo,
                    "uvv": m2 == mo,
                    "uuw": m1 == m2,
                    "uuu": m1 == m2 == mo,
                    "uvuv": m1 * m2 == mo,
                }[mode]
                if ok:
                    out.append((i1, i2, io, mode, True))
    return out


#: e3nn's persistent Wigner-3j buffers: ``_compiled_main_left_right._w3j_1_1_2`` etc.
_E3NN_W3J = re.compile(r"^_compiled_main_(left_right|right)\._w3j_(\d+)_(\d+)_(\d+)$")


def _w3j_mismatch(value: torch.Tensor, ls: tuple[int, int, int]) -> str | None:
    """Why an e3nn ``_w3j`` buffer is not :func:`equivar.o3.wigner_3j` (``None`` if it is, to its dtype's rounding)."""
    shape = tuple(2 * l + 1 for l in ls)
    if not isinstance(value, torch.Tensor) or tuple(value.shape) != shape:
        got = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
        return f"expected a Wigner-3j tensor of shape {shape}, got {got}"
    ours = wigner_3j(*ls, dtype=torch.float64)
    tol = 1e-12 if value.dtype == torch.float64 else 1e-6
    diff = float((value.detach().to("cpu", torch.float64) - ours).abs().max()) if value.numel() else 0.0
    if diff > tol:
        return f"differs from equivar.o3.wigner_3j{ls} by {diff:.2e} (another basis convention?)"
    return None


class TensorProduct(torch.nn.Module):
    r"""Tensor product of two irreps features with weighted paths.

    ``out = sum over instructions of path_weight * w (x1 (x) x2)``: each
    instruction ``(i_in1, i_in2, i_out, connection_mode, has_weight[, path_weight])``
    couples block ``irreps_in1[i_in1]`` with block ``irreps_in2[i_in2]``
    into block ``irreps_out[i_out]`` through the Clebsch-Gordan
    coefficients of the three irreps. Same semantics, normalization and
    weight layout as ``e3nn.o3.TensorProduct`` (e3nn 0.6).

    Parameters
    ----------
    irreps_in1, irreps_in2, irreps_out : Irreps or str
        e3nn syntax and ``mul_ir`` layout, e.g. ``"32x0e+32x1o"``.
    instructions : list of tuple, optional
        ``(i_in1, i_in2, i_out, connection_mode, has_weight[, path_weight])``;
        modes ``'uvw'`` (fully connected), ``'uvu'`` (channelwise: out
        channel u = in1 channel), ``'uvv'``, ``'uuw'``, ``'uuu'``
        (elementwise), ``'uvuv'``. ``None``: every path allowed by the
        selection rules, parity and ``mode``, all weighted.
    irrep_normalization : {'component', 'norm', 'none'}, optional
        e3nn's meaning (default 'component'): unit variance per component.
    path_normalization : {'element', 'path', 'none'}, optional
        e3nn's meaning (default 'element'): each output normalized by the
        number of summed elements over all its paths.
    in1_var, in2_var, out_var : list of float, optional
        Per-block variances used by the normalization (e3nn's; default 1).
    internal_weights, shared_weights : bool, optional
        e3nn's defaults: shared unless ``shared_weights=False``; internal
        (a ``Parameter`` ``weight [weight_numel]``, standard normal init) if
        shared and there is any weighted path. Internal weights must be
        shared.
    compile_left_right, compile_right, _specialized_code, _optimize_einsums : bool, optional
        e3nn's code-generation switches, accepted so that e3nn code runs
        unchanged (positionally too: the parameters before ``mode`` are
        e3nn 0.6's, in its order). They change nothing here: outputs are
        the same whatever their values (``right`` is always available).
    normalization : str, optional
        e3nn's deprecated alias of ``irrep_normalization``.
    mode : str
        Connection mode used when ``instructions`` is ``None`` (default ``'uvw'``).
    backend : str
        ``'cg'`` (exact, default) or another registered backend
        (``equivar.tp.available_backends()``).
    **backend_options
        Passed to the backend class.

    Notes
    -----
    ``load_state_dict`` also accepts an e3nn ``TensorProduct``'s state dict
    (``strict=True`` included): its constant Wigner-3j buffers
    (``_compiled_main_left_right._w3j_l1_l2_l3``, ``_compiled_main_right...``)
    are checked against :func:`equivar.o3.wigner_3j` and dropped (a mismatch,
    i.e. another basis convention, is an error). The other direction:
    :func:`equivar.nn.e3nn_state_dict`.

    Attributes
    ----------
    instructions : list of Instruction
        Normalized: ``path_weight`` is the final coefficient, ``path_shape``
        the shape of the path's weights (as in e3nn).
    weight_numel : int
        Number of weights (the backend's own count if it defines one).
    weight : torch.nn.Parameter or empty buffer
    backend : torch.nn.Module
        The backend instance doing the computation.

    Raises
    ------
    ValueError
        A path forbidden by the selection rules or parity, indices that do
        not match the irreps, multiplicities the connection mode cannot
        connect, a path the backend cannot express, an unknown backend or
        option. The message names the irreps and the path.

    Examples
    --------
    Channelwise edge tensor product with per-edge weights (MACE, NequIP):

    >>> from equivar.tp import TensorProduct
    >>> tp = TensorProduct("8x0e+8x1o", "0e+1o", "8x0e+8x1o+8x1e",
    ...                    [(0, 0, 0, "uvu", True), (1, 1, 0, "uvu", True),
    ...                     (1, 0, 1, "uvu", True), (0, 1, 1, "uvu", True),
    ...                     (1, 1, 2, "uvu", True)], shared_weights=False)
    >>> x, y = torch.randn(5, 32), torch.randn(5, 4)
    >>> tp(x, y, torch.randn(5, tp.weight_numel)).shape
    torch.Size([5, 56])

    Source: e3nn (Geiger & Smidt, 2022), ``e3nn.o3.TensorProduct``.
    """

    def __init__(
        self,
        irreps_in1,
        irreps_in2,
        irreps_out,
        instructions: Sequence[tuple] | None = None,
        in1_var: Sequence[float] | None = None,
        in2_var: Sequence[float] | None = None,
        out_var: Sequence[float] | None = None,
        irrep_normalization: str | None = None,
        path_normalization: str | None = None,
        internal_weights: bool | None = None,
        shared_weights: bool | None = None,
        compile_left_right: bool = True,
        compile_right: bool = False,
        normalization: str | None = None,
        _specialized_code: bool | None = None,
        _optimize_einsums: bool | None = None,
        *,
        mode: str = "uvw",
        backend: str = "cg",
        **backend_options,
    ) -> None:
        super().__init__()
        # e3nn's performance-only switches: accepted, recorded, no effect on the numbers
        self._specialized_code = True if _specialized_code is None else bool(_specialized_code)
        self._optimize_einsums = True if _optimize_einsums is None else bool(_optimize_einsums)
        self.compile_left_right, self.compile_right = bool(compile_left_right), bool(compile_right)
        if normalization is not None:  # e3nn's deprecated alias of irrep_normalization
            if irrep_normalization is not None and irrep_normalization != normalization:
                raise ValueError(
                    f"normalization={normalization!r} and irrep_normalization={irrep_normalization!r} disagree"
                )
            irrep_normalization = normalization
        irrep_normalization = "component" if irrep_normalization is None else irrep_normalization
        path_normalization = "element" if path_normalization is None else path_normalization
        self.irreps_in1 = Irreps(irreps_in1)
        self.irreps_in2 = Irreps(irreps_in2)
        self.irreps_out = Irreps(irreps_out)
        if instructions is None:
            if mode not in CONNECTION_MODES:
                raise ValueError(f"unknown connection mode {mode!r}, expected one of {CONNECTION_MODES}")
            instructions = _all_paths(self.irreps_in1, self.irreps_in2, self.irreps_out, mode)
        self.instructions: list[Instruction] = normalize_instructions(
            self.irreps_in1,
            self.irreps_in2,
            self.irreps_out,
            instructions,
            irrep_normalization,
            path_normalization,
            in1_var,
            in2_var,
            out_var,
        )
        self.irrep_normalization = irrep_normalization
        self.path_normalization = path_normalization

        if shared_weights is False and internal_weights is None:
            internal_weights = False
        if shared_weights is None:
            shared_weights = True
        if internal_weights is None:
            internal_weights = shared_weights and any(i.has_weight for i in self.instructions)
        if internal_weights and not shared_weights:
            raise ValueError(
                "internal_weights=True needs shared_weights=True (internal weights are shared by all samples)"
            )
        self.internal_weights = bool(internal_weights)
        self.shared_weights = bool(shared_weights)

        cls = get_backend(backend)
        self.backend_name = backend
        try:
            self.backend = cls(
                self.irreps_in1,
                self.irreps_in2,
                self.irreps_out,
                self.instructions,
                irrep_normalization=irrep_normalization,
                path_normalization=path_normalization,
                **backend_options,
            )
        except TypeError as e:
            raise ValueError(f"backend {backend!r} rejected its options {sorted(backend_options)}: {e}") from None
        bad = [ins for ins in self.instructions if not self.backend.expressible(ins)]
        if bad:
            why = getattr(self.backend, "why_not", lambda ins: None)
            names = "; ".join(
                describe_path(self.irreps_in1, self.irreps_in2, self.irreps_out, i) + (f" ({why(i)})" if why(i) else "")
                for i in bad
            )
            raise ValueError(f"backend {backend!r} cannot express the path(s): {names}")

        numel = getattr(self.backend, "weight_numel", None)
        self.weight_numel = int(numel) if numel is not None else _weight_numel(self.instructions)
        self._weight_offsets = weight_offsets(self.instructions)
        if self.internal_weights and self.weight_numel > 0:
            self.weight = torch.nn.Parameter(torch.randn(self.weight_numel))
        else:
            self.register_buffer("weight", torch.Tensor())

        mask = []
        for i_out, (mul, ir) in enumerate(self.irreps_out):
            used = any(
                ins.i_out == i_out and ins.path_weight != 0 and 0 not in ins.path_shape for ins in self.instructions
            )
            mask.append(torch.full((mul * ir.dim,), 1.0 if used else 0.0))
        self.register_buffer("output_mask", torch.cat(mask) if mask else torch.ones(0))

    # ------------------------------------------------------------------
    def __repr__(self) -> str:
        npath = sum(math.prod(i.path_shape) for i in self.instructions)
        return (
            f"{self.__class__.__name__}({self.irreps_in1.simplify()} x {self.irreps_in2.simplify()} "
            f"-> {self.irreps_out.simplify()} | {npath} paths | {self.weight_numel} weights | backend={self.backend_name!r})"
        )

    def _plain_2d(self, x1, x2, weight) -> bool:
        """Whether the inputs are ``[Z, dim]`` float tensors with per-sample weights ``[Z, weight_numel]``,
        one dtype the backend supports, one device: then they need no checks, broadcasting or reshapes."""
        dims = self.__dict__.get("_dims")
        if dims is None:
            dims = self.__dict__["_dims"] = (
                self.irreps_in1.dim,
                self.irreps_in2.dim,
                getattr(self.backend, "supported_dtypes", None),
            )
        if self.shared_weights or not (
            isinstance(x1, torch.Tensor) and isinstance(x2, torch.Tensor) and isinstance(weight, torch.Tensor)
        ):
            return False
        s1, s2, sw = x1.shape, x2.shape, weight.shape
        dtype, supported = x1.dtype, dims[2]
        return (
            len(s1) == 2
            and len(s2) == 2
            and len(sw) == 2
            and s1[0] == s2[0] == sw[0]
            and s1[1] == dims[0]
            and s2[1] == dims[1]
            and sw[1] == self.weight_numel
            and x1.is_floating_point()
            and x2.dtype == dtype
            and weight.dtype == dtype
            and (supported is None or dtype in supported)
            and x2.device == x1.device
            and weight.device == x1.device
        )

    def _check_inputs(self, x1: torch.Tensor, x2: torch.Tensor, weight: torch.Tensor | None):
        if x1.shape[-1:] != (self.irreps_in1.dim,):
            raise ValueError(
                f"x1 has shape {tuple(x1.shape)}; its last dimension must be irreps_in1.dim = {self.irreps_in1.dim} "
                f"({self.irreps_in1})"
            )
        if x2.shape[-1:] != (self.irreps_in2.dim,):
            raise ValueError(
                f"x2 has shape {tuple(x2.shape)}; its last dimension must be irreps_in2.dim = {self.irreps_in2.dim} "
                f"({self.irreps_in2})"
            )
        for name, t in (("x1", x1), ("x2", x2)) + ((("weight", weight),) if weight is not None else ()):
            if not isinstance(t, torch.Tensor):
                raise ValueError(f"{self}: {name} must be a torch.Tensor, got {type(t).__name__}")
            if not t.is_floating_point():
                raise ValueError(f"{self}: {name} must be a floating-point tensor, got dtype {t.dtype}")
        supported = getattr(self.backend, "supported_dtypes", None)
        if supported is not None and x1.dtype not in supported:
            raise ValueError(
                f"{self}: backend {self.backend_name!r} supports dtypes "
                f"{sorted(str(d) for d in supported)}, got {x1.dtype}"
            )
        if x2.dtype != x1.dtype or (weight is not None and weight.dtype != x1.dtype):
            got = f"x1 {x1.dtype}, x2 {x2.dtype}" + ("" if weight is None else f", weight {weight.dtype}")
            raise ValueError(f"{self}: inputs must share one dtype, got {got}")
        if x2.device != x1.device or (weight is not None and weight.device != x1.device):
            got = f"x1 {x1.device}, x2 {x2.device}" + ("" if weight is None else f", weight {weight.device}")
            raise ValueError(f"{self}: inputs must be on one device, got {got}")
        if weight is None:
            if self.weight_numel > 0 and not self.internal_weights:
                raise ValueError(
                    f"{self}: weights must be given ({self.weight_numel} per sample"
                    f"{'' if not self.shared_weights else ', shared'}) since internal_weights=False"
                )
            weight = self.weight
            if weight.numel() and weight.dtype != x1.dtype:
                raise ValueError(
                    f"{self}: internal weights are {weight.dtype} but the inputs are {x1.dtype}; "
                    f"convert the module with .to({x1.dtype})"
                )
        elif self.shared_weights:
            if weight.shape != (self.weight_numel,):
                raise ValueError(
                    f"{self}: shared weight must have shape ({self.weight_numel},), got {tuple(weight.shape)}"
                )
        else:
            if weight.dim() < 2 or weight.shape[-1] != self.weight_numel:
                raise ValueError(
                    f"{self}: per-sample weight must have shape [..., {self.weight_numel}] with at least one batch "
                    f"dimension, got {tuple(weight.shape)}"
                )
        try:
            shapes = [x1.shape[:-1], x2.shape[:-1]]
            if not self.shared_weights:
                shapes.append(weight.shape[:-1])
            batch = torch.broadcast_shapes(*shapes)
        except RuntimeError:
            raise ValueError(
                f"{self}: batch shapes do not broadcast: x1 {tuple(x1.shape)}, x2 {tuple(x2.shape)}"
                + ("" if self.shared_weights else f", weight {tuple(weight.shape)}")
            ) from None
        return weight, batch

    def forward(self, x1: torch.Tensor, x2: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
        r"""Evaluate ``w x1 (x) x2``.

        Parameters
        ----------
        x1 : Tensor ``[..., irreps_in1.dim]``
        x2 : Tensor ``[..., irreps_in2.dim]``
        weight : Tensor or list of Tensor, optional
            ``[weight_numel]`` when ``shared_weights`` (default: the internal
            ``weight``), ``[..., weight_numel]`` per sample otherwise.
            Leading dimensions of x1, x2 and weight broadcast. As in e3nn, a
            list with one tensor ``[..., *path_shape]`` per weighted
            instruction (in order) is accepted too.

        Returns
        -------
        Tensor ``[..., irreps_out.dim]``, broadcast batch shape, dtype of the inputs.

        Raises
        ------
        ValueError
            Last dimensions that do not match the irreps, a wrong weight
            shape, missing weights, batch shapes that do not broadcast,
            non-float inputs, or inputs of different dtypes or devices.
        """
        if self._plain_2d(x1, x2, weight):  # the common case, checked in a few attribute reads
            return self.backend(x1, x2, weight)
        if isinstance(weight, (list, tuple)):
            weight = self._weight_from_list(weight)
        weight, batch = self._check_inputs(x1, x2, weight)
        Z = math.prod(batch)
        x1 = x1.expand(batch + (self.irreps_in1.dim,)).reshape(Z, self.irreps_in1.dim)
        x2 = x2.expand(batch + (self.irreps_in2.dim,)).reshape(Z, self.irreps_in2.dim)
        if not self.shared_weights:
            weight = weight.expand(batch + (self.weight_numel,)).reshape(Z, self.weight_numel)
        out = self.backend(x1, x2, weight)
        return out.reshape(batch + (self.irreps_out.dim,))

    def _weight_from_list(self, weights) -> torch.Tensor:
        shapes = [tuple(i.path_shape) for i in self.instructions if i.has_weight]
        bad = next((w for w in weights if not isinstance(w, torch.Tensor)), None)
        if bad is not None:
            raise ValueError(
                f"{self}: weight must be a torch.Tensor or a list of tensors (one per weighted instruction), "
                f"got {type(weights).__name__} of {type(bad).__name__}"
            )
        if len(weights) != len(shapes):
            raise ValueError(
                f"{self}: weight list has {len(weights)} tensors, expected one per weighted instruction ({len(shapes)})"
            )
        flat = []
        for n, (w, shape) in enumerate(zip(weights, shapes)):
            if tuple(w.shape[w.dim() - len(shape) :]) != shape:
                raise ValueError(
                    f"{self}: weight list entry {n} must end with path shape {shape}, got {tuple(w.shape)}"
                )
            flat.append(w.reshape(w.shape[: w.dim() - len(shape)] + (math.prod(shape),)))
        if not flat:
            return self.weight
        if not self.shared_weights:
            batch = torch.broadcast_shapes(*(f.shape[:-1] for f in flat))
            flat = [f.expand(batch + f.shape[-1:]) for f in flat]
        return torch.cat(flat, -1)

    def right(self, x2: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
        r"""The product as a matrix acting on ``x1``: ``out = einsum('...i,...ij->...j', x1, right(x2, w))``.

        Parameters
        ----------
        x2 : Tensor ``[..., irreps_in2.dim]``
        weight : Tensor or list of Tensor, optional
            As in :meth:`forward`.

        Returns
        -------
        Tensor ``[..., irreps_in1.dim, irreps_out.dim]`` (e3nn's ``TensorProduct.right``).

        Raises
        ------
        ValueError
            As :meth:`forward`.
        """
        if isinstance(weight, (list, tuple)):
            weight = self._weight_from_list(weight)
        d1 = self.irreps_in1.dim
        eye = torch.eye(d1, dtype=x2.dtype, device=x2.device)
        x2 = x2.unsqueeze(-2)  # [..., 1, d2]: one product per basis vector of in1
        if weight is not None and not self.shared_weights:
            weight = weight.unsqueeze(-2)
        return self.forward(eye, x2, weight)

    def _load_from_state_dict(
        self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
    ):
        # e3nn's generated code keeps its Wigner-3j constants as persistent buffers; they are constants
        # here (the backend's), so an e3nn state dict's copies are checked and dropped
        for key in [k for k in state_dict if k.startswith(prefix)]:
            m = _E3NN_W3J.match(key[len(prefix) :])
            if m is None:
                continue
            value = state_dict.pop(key)
            ls = tuple(int(g) for g in m.groups()[1:])
            err = _w3j_mismatch(value, ls)
            if err is not None:
                error_msgs.append(f"{key}: {err}")
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )

    # ------------------------------------------------------------------
    def weight_view_for_instruction(self, instruction: int, weight: torch.Tensor | None = None) -> torch.Tensor:
        """View ``[..., *path_shape]`` of the weights of instruction number ``instruction`` (e3nn's)."""
        ins = self.instructions[instruction]
        if not ins.has_weight:
            raise ValueError(f"instruction {instruction} has no weights")
        w = self.weight if weight is None else weight
        o = self._weight_offsets[instruction]
        return w.narrow(-1, o, math.prod(ins.path_shape)).view(w.shape[:-1] + tuple(ins.path_shape))

    def weight_views(self, weight: torch.Tensor | None = None, yield_instruction: bool = False) -> Iterator:
        """Iterate over the views of each weighted instruction's weights (e3nn's)."""
        for n, ins in enumerate(self.instructions):
            if ins.has_weight:
                v = self.weight_view_for_instruction(n, weight)
                yield (n, ins, v) if yield_instruction else v
