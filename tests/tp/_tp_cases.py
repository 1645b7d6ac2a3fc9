"""Shared small configurations for the tensor-product tests."""

from equivar.o3 import Irreps

MODES = ["uvw", "uvu", "uvv", "uuw", "uuu", "uvuv"]


def mode_case(mode: str, mul: int = 2):
    """(irreps_in1, irreps_in2, irreps_out, instructions) covering every allowed path for ``mode``.

    Includes both parities, l up to 2, odd-parity (cross-product-like)
    paths, non-unit path weights, and two paths into the same output block.
    """
    i1, i2 = Irreps(f"{mul}x0e+{mul}x1o+{mul}x2e"), Irreps(f"{mul}x0e+{mul}x1o+{mul}x1e")
    mo = {"uvuv": mul * mul, "uuw": mul + 1}.get(mode, mul)
    io = Irreps(f"{mo}x0e+{mo}x1o+{mo}x1e+{mo}x2e+{mo}x2o+{mo}x0o")
    ins = []
    for a, (_, r1) in enumerate(i1):
        for b, (_, r2) in enumerate(i2):
            for c, (_, ro) in enumerate(io):
                if ro in list(r1 * r2):
                    ins.append((a, b, c, mode, True, 0.5 + a + 0.25 * b))
    return i1, i2, io, ins
