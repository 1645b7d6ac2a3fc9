"""Interchange with e3nn modules: convert e3nn layers, write state dicts e3nn loads with ``strict=True``.

e3nn 0.6 keeps constants in its state dicts that are not parameters: a
``TensorProduct``'s Wigner-3j tensors (``_compiled_main_left_right._w3j_l1_l2_l3``,
one per coupling its generated code uses) and a ``Linear``'s ``output_mask``
(and an empty ``bias``). equivar's layers load such state dicts directly
(they check and drop the constants); :func:`e3nn_state_dict` adds them to an
equivar state dict so that the e3nn twin of a module or model loads it.
e3nn itself is not imported here.
"""

from __future__ import annotations

import re

import torch

from ..o3 import Irreps, wigner_3j
from ..tp import TensorProduct
from ..tp import from_e3nn as _tp_from_e3nn
from ._linear import Linear

_W3J_KEY = re.compile(r"(^|\.)_compiled_main_(left_right|right)\._w3j_(\d+)_(\d+)_(\d+)$")


def _w3j_triples(tp: TensorProduct) -> list[tuple[int, int, int]]:
    """The ``(l1, l2, l3)`` of the Wigner-3j buffers e3nn 0.6's generated forward code keeps for these instructions.

    e3nn's code generator (``_codegen.py``) specializes paths with an ``l = 0`` irrep (and ``uuu`` paths
    ``1 x 1 -> 1``: a cross product) unless ``_specialized_code=False``; unweighted ``uvu`` / ``uuw`` and
    ``uvuv`` paths always use the tensor. Paths with an empty block are skipped.
    """
    out: list[tuple[int, int, int]] = []
    spec = tp._specialized_code
    for ins in tp.instructions:
        m1, m2, mo = tp.irreps_in1[ins.i_in1], tp.irreps_in2[ins.i_in2], tp.irreps_out[ins.i_out]
        if m1.dim == 0 or m2.dim == 0 or mo.dim == 0:
            continue
        ls = (m1.ir.l, m2.ir.l, mo.ir.l)
        mode, weighted = ins.connection_mode, ins.has_weight
        special = spec and 0 in ls
        if mode == "uuu" and spec and ls == (1, 1, 1):
            special = True
        if mode == "uvuv" or (mode in ("uvu", "uuw") and not weighted):
            special = False
        if not special and ls not in out:
            out.append(ls)
    return out


def e3nn_state_dict(module: torch.nn.Module, keys=None) -> dict[str, torch.Tensor]:
    """``module.state_dict()`` plus the constant buffers e3nn's twin of ``module`` expects.

    Walks ``module`` (a layer or a whole model): every :class:`~equivar.tp.TensorProduct`
    gets e3nn's ``_compiled_main_left_right._w3j_*`` tensors (and ``_compiled_main_right``'s when it
    was built with ``compile_right=True``), every :class:`Linear` its ``output_mask`` and, without
    biases, an empty ``bias``. The values are :func:`equivar.o3.wigner_3j`'s, which equal e3nn's.

    Parameters
    ----------
    module : torch.nn.Module
    keys : iterable of str, optional
        The keys of the e3nn module's own ``state_dict()``: any Wigner-3j key listed there and not
        produced by the rule above is added too, and Wigner-3j keys not listed are left out (use it
        for e3nn modules built with non-default code-generation options).

    Returns
    -------
    dict
        Tensors on the module's device, in its dtype, for ``e3nn_module.load_state_dict(..., strict=True)``.

    Raises
    ------
    ValueError
        A requested key names a Wigner-3j tensor with impossible degrees.
    """
    sd = dict(module.state_dict())
    for name, sub in module.named_modules():
        p = f"{name}." if name else ""
        if isinstance(sub, TensorProduct):
            like = sub.output_mask
            parts = ["left_right"] + (["right"] if getattr(sub, "compile_right", False) else [])
            for ls in _w3j_triples(sub):
                for part in parts:
                    sd[f"{p}_compiled_main_{part}._w3j_{ls[0]}_{ls[1]}_{ls[2]}"] = wigner_3j(
                        *ls, dtype=torch.float64
                    ).to(like)
        elif isinstance(sub, Linear):
            like = sub.weight
            sd[f"{p}output_mask"] = sub.e3nn_output_mask().to(like)
            if sub.bias is None:
                sd[f"{p}bias"] = like.new_zeros(0)
    if keys is not None:
        keys = list(keys)
        wanted = set(keys)
        for k in [k for k in sd if _W3J_KEY.search(k) and k not in wanted]:
            del sd[k]
        for k in keys:
            m = _W3J_KEY.search(k)
            if m is not None and k not in sd:
                ls = tuple(int(g) for g in m.groups()[2:])
                if not abs(ls[0] - ls[1]) <= ls[2] <= ls[0] + ls[1]:
                    raise ValueError(f"{k}: degrees {ls} violate |l1 - l2| <= l3 <= l1 + l2")
                sd[k] = wigner_3j(*ls, dtype=torch.float64)
    return sd


def _linear_from_e3nn(module) -> Linear:
    irreps_in, irreps_out = Irreps(str(module.irreps_in)), Irreps(str(module.irreps_out))
    name = type(module).__name__
    if not (module.internal_weights and module.shared_weights):
        raise ValueError(
            f"{name}: only internal shared weights convert (got internal_weights={module.internal_weights})"
        )
    if tuple(module.weight.shape) != (module.weight_numel,):
        raise ValueError(f"{name}: weights of shape {tuple(module.weight.shape)} (f_in/f_out) do not convert")
    paths = [(i.i_in, i.i_out) for i in module.instructions if i.i_in != -1]
    bias_out = [i.i_out for i in module.instructions if i.i_in == -1]
    lin = Linear(irreps_in, irreps_out, biases=bool(bias_out))
    if paths != lin.instructions:
        raise ValueError(f"{name}: custom instructions {paths} do not convert (equivar's Linear connects every pair)")
    for ins in module.instructions:
        if ins.i_in == -1:
            continue
        fan = sum(irreps_in[i.i_in].mul for i in module.instructions if i.i_in != -1 and i.i_out == ins.i_out)
        if abs(ins.path_weight - (fan if fan else 1) ** -0.5) > 1e-12:
            raise ValueError(f"{name}: path weight {ins.path_weight} is not 'element' normalization (f_in, 'path')")
    if sorted(bias_out) != sorted(lin._bias_blocks):
        raise ValueError(f"{name}: biases on blocks {bias_out}; equivar's Linear biases every 0e block")
    with torch.no_grad():
        lin = lin.to(device=module.weight.device, dtype=module.weight.dtype)
        lin.weight.copy_(module.weight)
        if lin.bias is not None:
            lin.bias.copy_(module.bias)
    return lin


def from_e3nn(module: torch.nn.Module, **tp_options) -> torch.nn.Module:
    """The equivar layer equivalent to an e3nn layer, weights, dtype and device included.

    ``e3nn.o3.TensorProduct`` and its subclasses (``FullyConnectedTensorProduct``,
    ``ElementwiseTensorProduct``, ``FullTensorProduct``; MACE's convolution and skip products)
    go through :func:`equivar.tp.from_e3nn` (``tp_options`` are passed on); ``e3nn.o3.Linear``
    (MACE's up / down projections and readouts: internal shared weights, default instructions,
    'element' normalization, biases on 0e blocks or none) becomes :class:`Linear`.

    Raises
    ------
    ValueError
        For another module type or a configuration with no equivalent (the message names it).
    """
    if hasattr(module, "irreps_in1") and hasattr(module, "instructions"):
        return _tp_from_e3nn(module, **tp_options)
    if hasattr(module, "irreps_in") and hasattr(module, "irreps_out") and hasattr(module, "instructions"):
        return _linear_from_e3nn(module)
    raise ValueError(f"no equivar equivalent registered for {type(module).__module__}.{type(module).__name__}")
