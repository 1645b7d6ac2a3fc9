"""Tensor-product instructions: validation, path shapes and e3nn's normalization.

An instruction ``(i_in1, i_in2, i_out, connection_mode, has_weight[, path_weight])``
puts block ``irreps_in1[i_in1]`` x block ``irreps_in2[i_in2]`` into block
``irreps_out[i_out]`` through the Clebsch-Gordan coefficients of the three
irreps. Semantics, ``path_shape`` and normalization coefficients follow
``e3nn.o3.TensorProduct`` (e3nn 0.6) exactly, so weights are interchangeable.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

from ..o3 import Irreps

#: Connection modes: how the multiplicity indices u (in1), v (in2), w (out) are connected.
#: ``uvw`` fully connected, ``uvu`` channelwise (out channel = in1 channel),
#: ``uvv`` (out channel = in2 channel), ``uuw``, ``uuu`` elementwise, ``uvuv`` outer.
CONNECTION_MODES = ("uvw", "uvu", "uvv", "uuw", "uuu", "uvuv")

IRREP_NORMALIZATIONS = ("component", "norm", "none")
PATH_NORMALIZATIONS = ("element", "path", "none")


class Instruction(NamedTuple):
    """A normalized instruction (same fields and meaning as e3nn's).

    ``path_weight`` is the final multiplicative coefficient (normalization
    times the user's path weight, already square-rooted as in e3nn);
    ``path_shape`` the shape of this path's weights (e.g. ``(mul1, mul2)``
    for ``uvu``).
    """

    i_in1: int
    i_in2: int
    i_out: int
    connection_mode: str
    has_weight: bool
    path_weight: float
    path_shape: tuple


def describe_path(irreps_in1: Irreps, irreps_in2: Irreps, irreps_out: Irreps, ins) -> str:
    """Human-readable name of an instruction, e.g. ``'32x1o (in1[1]) x 1x1o (in2[1]) -> 32x1e (out[3]) uvu'``."""

    def blk(irreps, i, name):
        if 0 <= i < len(irreps):
            return f"{irreps[i]} ({name}[{i}])"
        return f"{name}[{i}]"

    return (
        f"{blk(irreps_in1, ins[0], 'in1')} x {blk(irreps_in2, ins[1], 'in2')} -> "
        f"{blk(irreps_out, ins[2], 'out')} '{ins[3]}'"
    )


def path_shape(mode: str, mul1: int, mul2: int, mul_out: int) -> tuple:
    """Shape of one path's weights for a connection mode (e3nn's convention)."""
    return {
        "uvw": (mul1, mul2, mul_out),
        "uvu": (mul1, mul2),
        "uvv": (mul1, mul2),
        "uuw": (mul1, mul_out),
        "uuu": (mul1,),
        "uvuv": (mul1, mul2),
    }[mode]


def _num_elements(mode: str, mul1: int, mul2: int) -> int:
    """Number of terms summed into one output component (for path normalization)."""
    return {"uvw": mul1 * mul2, "uvu": mul2, "uvv": mul1, "uuw": mul1, "uuu": 1, "uvuv": 1}[mode]


def normalize_instructions(
    irreps_in1: Irreps,
    irreps_in2: Irreps,
    irreps_out: Irreps,
    instructions: Sequence[tuple],
    irrep_normalization: str = "component",
    path_normalization: str = "element",
    in1_var: Sequence[float] | None = None,
    in2_var: Sequence[float] | None = None,
    out_var: Sequence[float] | None = None,
) -> list[Instruction]:
    r"""Validate instructions and compute ``path_shape`` and the final ``path_weight``.

    Normalization (e3nn): for a path into output block ``k``,
    ``alpha = d_out`` ('component'), ``d_in1 * d_in2`` ('norm') or 1;
    divided by the number of summed elements over all paths into ``k``
    ('element') or by this path's element count times the number of paths
    into ``k`` ('path'); times ``out_var[k]`` and the user's path weight;
    the stored ``path_weight`` is ``sqrt(alpha)``.

    Raises
    ------
    ValueError
        Unknown normalization or connection mode, an index out of range, a
        path forbidden by the selection rules (``|l1-l2| <= l3 <= l1+l2``) or
        parity (``p1 p2 = p3``), multiplicities that the connection mode
        cannot connect, a malformed tuple, or a negative path weight. The
        message names the irreps and the path.
    """
    irreps_in1, irreps_in2, irreps_out = Irreps(irreps_in1), Irreps(irreps_in2), Irreps(irreps_out)
    if irrep_normalization not in IRREP_NORMALIZATIONS:
        raise ValueError(f"irrep_normalization must be one of {IRREP_NORMALIZATIONS}, got {irrep_normalization!r}")
    if path_normalization not in PATH_NORMALIZATIONS:
        raise ValueError(f"path_normalization must be one of {PATH_NORMALIZATIONS}, got {path_normalization!r}")

    def var(v, irreps, name):
        if v is None:
            return [1.0] * len(irreps)
        v = [float(x) for x in v]
        if len(v) != len(irreps):
            raise ValueError(f"{name} has {len(v)} entries but {irreps} has {len(irreps)} blocks")
        return v

    in1_var = var(in1_var, irreps_in1, "in1_var")
    in2_var = var(in2_var, irreps_in2, "in2_var")
    out_var = var(out_var, irreps_out, "out_var")

    raw = []
    for ins in instructions:
        ins = tuple(ins)
        if len(ins) == 7 and isinstance(ins[6], tuple):  # an already-normalized Instruction
            ins = ins[:6]
        if len(ins) == 5:
            ins = ins + (1.0,)
        if len(ins) != 6:
            raise ValueError(
                f"instruction {ins!r} must be (i_in1, i_in2, i_out, connection_mode, has_weight[, path_weight]) "
                f"for irreps {irreps_in1} x {irreps_in2} -> {irreps_out}"
            )
        i1, i2, io, mode, has_weight, pw = ins
        name = describe_path(irreps_in1, irreps_in2, irreps_out, ins)
        for i, irreps, n in (
            (i1, irreps_in1, "irreps_in1"),
            (i2, irreps_in2, "irreps_in2"),
            (io, irreps_out, "irreps_out"),
        ):
            if not isinstance(i, int) or isinstance(i, bool) or not 0 <= i < len(irreps):
                raise ValueError(f"path {name}: index {i!r} out of range for {n} = {irreps} ({len(irreps)} blocks)")
        if mode not in CONNECTION_MODES:
            raise ValueError(f"path {name}: unknown connection mode {mode!r}, expected one of {CONNECTION_MODES}")
        (m1, ir1), (m2, ir2), (mo, iro) = irreps_in1[i1], irreps_in2[i2], irreps_out[io]
        if not abs(ir1.l - ir2.l) <= iro.l <= ir1.l + ir2.l:
            raise ValueError(f"path {name} violates the selection rule |l1-l2| <= l3 <= l1+l2 ({ir1} x {ir2} -> {iro})")
        if ir1.p * ir2.p != iro.p:
            raise ValueError(
                f"path {name} violates parity: {ir1} x {ir2} has parity {ir1.p * ir2.p:+d}, not {iro.p:+d} of {iro}"
            )
        need = {
            "uvu": (m1 == mo, "mul_in1 == mul_out"),
            "uvv": (m2 == mo, "mul_in2 == mul_out"),
            "uuw": (m1 == m2, "mul_in1 == mul_in2"),
            "uuu": (m1 == m2 == mo, "mul_in1 == mul_in2 == mul_out"),
            "uvuv": (m1 * m2 == mo, "mul_in1 * mul_in2 == mul_out"),
        }.get(mode, (True, ""))
        if not need[0]:
            raise ValueError(f"path {name}: connection mode '{mode}' needs {need[1]} (got {m1}, {m2}, {mo})")
        if mode == "uvw" and not has_weight:
            raise ValueError(f"path {name}: connection mode 'uvw' needs has_weight=True")
        if mode == "uuw" and not has_weight and mo != 1:
            raise ValueError(f"path {name}: unweighted 'uuw' needs mul_out == 1 (got {mo})")
        pw = float(pw)
        if not pw >= 0.0:
            raise ValueError(f"path {name}: path_weight must be >= 0 (it is square-rooted, as in e3nn), got {pw}")
        raw.append((i1, i2, io, mode, bool(has_weight), pw, path_shape(mode, m1, m2, mo)))

    out = []
    for i1, i2, io, mode, has_weight, pw, shape in raw:
        d1, d2, do = irreps_in1[i1].ir.dim, irreps_in2[i2].ir.dim, irreps_out[io].ir.dim
        alpha = {"component": do, "norm": d1 * d2, "none": 1}[irrep_normalization]
        if path_normalization == "element":
            x = sum(
                in1_var[r[0]] * in2_var[r[1]] * _num_elements(r[3], irreps_in1[r[0]].mul, irreps_in2[r[1]].mul)
                for r in raw
                if r[2] == io
            )
        elif path_normalization == "path":
            x = in1_var[i1] * in2_var[i2] * _num_elements(mode, irreps_in1[i1].mul, irreps_in2[i2].mul)
            x *= len([r for r in raw if r[2] == io])
        else:
            x = 1
        if x > 0.0:
            alpha /= x
        alpha *= out_var[io]
        alpha *= pw
        out.append(Instruction(i1, i2, io, mode, has_weight, math.sqrt(alpha), shape))
    return out


def weight_numel(instructions: Sequence[Instruction]) -> int:
    """Number of weights: sum of ``prod(path_shape)`` over weighted instructions."""
    return sum(math.prod(ins.path_shape) for ins in instructions if ins.has_weight)


def weight_offsets(instructions: Sequence[Instruction]) -> list[int | None]:
    """Offset of each instruction's weights in the flat weight vector (``None`` if unweighted)."""
    offs, o = [], 0
    for ins in instructions:
        if ins.has_weight:
            offs.append(o)
            o += math.prod(ins.path_shape)
        else:
            offs.append(None)
    return offs
