"""Convenience constructors: fully connected TP, the channelwise edge TP of MACE/NequIP, import from e3nn."""

from __future__ import annotations

import torch

from ..o3 import Irreps
from ._tensor_product import TensorProduct


class FullyConnectedTensorProduct(TensorProduct):
    r"""Every allowed path ``in1[i] x in2[j] -> out[k]``, fully connected (``'uvw'``), weighted.

    Same paths, order and normalization as ``e3nn.o3.FullyConnectedTensorProduct``:
    ``out_w = sum_{u,v} w_{uvw} (x1_u (x) x2_v)`` summed over paths.
    Keyword arguments as :class:`TensorProduct`.

    Raises ``ValueError`` as :class:`TensorProduct`.
    """

    def __init__(self, irreps_in1, irreps_in2, irreps_out, **kwargs) -> None:
        irreps_in1, irreps_in2, irreps_out = Irreps(irreps_in1), Irreps(irreps_in2), Irreps(irreps_out)
        instructions = [
            (i1, i2, io, "uvw", True, 1.0)
            for i1, (_, ir1) in enumerate(irreps_in1)
            for i2, (_, ir2) in enumerate(irreps_in2)
            for io, (_, iro) in enumerate(irreps_out)
            if iro in list(ir1 * ir2)
        ]
        super().__init__(irreps_in1, irreps_in2, irreps_out, instructions, **kwargs)


def channelwise_instructions(irreps_node, irreps_edge, irreps_target=None) -> tuple[Irreps, list[tuple]]:
    """Irreps and instructions of the channelwise (``'uvu'``) edge tensor product.

    Every allowed path ``node[i] x edge[j] -> ir_out`` with ``ir_out`` in
    ``irreps_target`` (all outputs if ``None``) gets its own output block
    ``mul_i x ir_out``; the output irreps are then sorted and the
    instructions renumbered and ordered by output block, exactly as MACE's
    ``tp_out_irreps_with_instructions`` (so weights are interchangeable with
    MACE and NequIP).

    Returns ``(irreps_mid, instructions)``; ``irreps_mid`` is not simplified.
    """
    irreps_node, irreps_edge = Irreps(irreps_node), Irreps(irreps_edge)
    target = None if irreps_target is None else Irreps(irreps_target)
    out_list, instructions = [], []
    for i, (mul, ir_in) in enumerate(irreps_node):
        for j, (_, ir_edge) in enumerate(irreps_edge):
            for ir_out in ir_in * ir_edge:
                if target is None or ir_out in target:
                    k = len(out_list)
                    out_list.append((mul, ir_out))
                    instructions.append((i, j, k, "uvu", True))
    irreps_mid, perm, _ = Irreps(out_list).sort()
    instructions = [(i1, i2, perm[io], mode, train) for i1, i2, io, mode, train in instructions]
    instructions = sorted(instructions, key=lambda x: x[2])
    return irreps_mid, instructions


def channelwise_tp(
    irreps_node,
    irreps_edge_sh,
    irreps_target_out=None,
    *,
    shared_weights: bool = False,
    internal_weights: bool = False,
    backend: str = "cg",
    **kwargs,
) -> tuple[TensorProduct, Irreps]:
    r"""The channelwise edge tensor product of MACE / NequIP.

    ``out[e, u, path] = w[e, u, path] * (h[e, u] (x) Y[e])_path`` for node
    features ``h`` (``irreps_node``) and edge spherical harmonics ``Y``
    (``irreps_edge_sh``); by default with external per-edge weights (from a
    radial network: ``weight [E, tp.weight_numel]``).

    Parameters
    ----------
    irreps_node, irreps_edge_sh : Irreps or str
    irreps_target_out : Irreps or str, optional
        Keep only output irreps present here (MACE's ``target_irreps``);
        ``None`` keeps every allowed path.
    shared_weights, internal_weights, backend, **kwargs
        As :class:`TensorProduct`.

    Returns
    -------
    (TensorProduct, Irreps)
        The module and its (sorted, not simplified) output irreps ``irreps_mid``.

    Source: MACE ``tp_out_irreps_with_instructions`` (Batatia et al., 2022).
    """
    irreps_mid, instructions = channelwise_instructions(irreps_node, irreps_edge_sh, irreps_target_out)
    tp = TensorProduct(
        irreps_node,
        irreps_edge_sh,
        irreps_mid,
        instructions,
        shared_weights=shared_weights,
        internal_weights=internal_weights,
        backend=backend,
        **kwargs,
    )
    return tp, irreps_mid


def from_e3nn(module, *, backend: str = "cg", **backend_options) -> TensorProduct:
    """An equivalent :class:`TensorProduct` from an ``e3nn.o3.TensorProduct`` (or subclass).

    Copies irreps, instructions, final path weights (e3nn stores the
    normalized coefficient, so the new module uses
    ``irrep_normalization='none', path_normalization='none'`` and the
    squared coefficient as path weight, which reproduces it), shared /
    internal weight flags and the internal weights (same dtype and device).
    e3nn is only needed to build ``module``, not here.

    Raises ``ValueError`` if ``module`` does not look like an e3nn tensor product.
    """
    try:
        irreps = [Irreps(str(module.irreps_in1)), Irreps(str(module.irreps_in2)), Irreps(str(module.irreps_out))]
        ins = [
            (i.i_in1, i.i_in2, i.i_out, i.connection_mode, bool(i.has_weight), float(i.path_weight) ** 2)
            for i in module.instructions
        ]
        shared, internal = bool(module.shared_weights), bool(module.internal_weights)
    except AttributeError as e:
        raise ValueError(f"{type(module).__name__} is not an e3nn TensorProduct: {e}") from None
    tp = TensorProduct(
        *irreps,
        ins,
        irrep_normalization="none",
        path_normalization="none",
        shared_weights=shared,
        internal_weights=internal,
        backend=backend,
        **backend_options,
    )
    w = getattr(module, "weight", None)
    if isinstance(w, torch.Tensor) and w.numel() > 0 and tp.internal_weights:
        if tp.weight.shape != w.shape:
            raise ValueError(f"weight shapes differ: e3nn {tuple(w.shape)} vs {tuple(tp.weight.shape)}")
        tp.weight = torch.nn.Parameter(w.detach().clone())
    ref = next((t for t in list(module.parameters()) + list(module.buffers()) if t.is_floating_point()), None)
    if ref is not None:
        tp = tp.to(device=ref.device, dtype=ref.dtype)
    return tp


def s_config(L: int, channels: int = 32):
    """Irreps and instructions of the "S" configuration (function product), as benchmarked and tested.

    ``channels x (l = 0..L, parity (-1)^l)`` times the spherical harmonics
    ``0..L`` of the edge, channelwise (``'uvu'``), every path with even
    ``l1 + l2 + l3`` summed into one output block ``channels x (l3, (-1)^l3)``
    per ``l3 <= L``.

    Returns ``(irreps_in1, irreps_in2, irreps_out, instructions)`` for
    :class:`~equivar.tp.TensorProduct`.
    """
    i1 = Irreps([(channels, (l, (-1) ** l)) for l in range(L + 1)])
    i2 = Irreps([(1, (l, (-1) ** l)) for l in range(L + 1)])
    io = Irreps([(channels, (l, (-1) ** l)) for l in range(L + 1)])
    ins = [
        (a, b, c, "uvu", True)
        for a in range(L + 1)
        for b in range(L + 1)
        for c in range(L + 1)
        if abs(a - b) <= c <= a + b and (a + b + c) % 2 == 0
    ]
    return i1, i2, io, ins


def p_config(L: int, channels: int = 32):
    """Irreps and instructions of the "P" configuration (MACE/NequIP edge tensor product).

    ``channels x (l = 0..L, parity (-1)^l)`` times the spherical harmonics
    ``0..L``, channelwise (``'uvu'``), every allowed path into its own output
    block with ``l3 <= L`` (sorted as MACE does). Returns
    ``(irreps_in1, irreps_in2, irreps_out, instructions)``.
    """
    i1 = Irreps([(channels, (l, (-1) ** l)) for l in range(L + 1)])
    i2 = Irreps([(1, (l, (-1) ** l)) for l in range(L + 1)])
    target = Irreps([(1, (l, p)) for l in range(L + 1) for p in (1, -1)])
    io, ins = channelwise_instructions(i1, i2, target)
    return i1, i2, io, ins
