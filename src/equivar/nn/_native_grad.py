"""Marker for the outputs of a native kernel's double backward: differentiating them again raises."""

from __future__ import annotations

import torch


class NotDifferentiable(torch.autograd.Function):
    """``NotDifferentiable.apply(what, t, *deps)``: a copy of ``t`` whose backward raises ``RuntimeError``.

    A native kernel's double backward computes second derivatives from its saved inputs (``deps``: every
    tensor the result depends on that requires grad), outside autograd; when a graph is being built (a third
    derivative could be asked), its outputs pass through this Function so that asking raises instead of
    silently missing those terms. ``what`` names the kernel in the message.
    """

    @staticmethod
    def forward(ctx, what, t, *deps):
        ctx.what = what
        return t.clone()

    @staticmethod
    def backward(ctx, *grads):
        raise RuntimeError(
            f"third derivatives of {ctx.what} are not implemented; use the PyTorch path "
            "(native=False, or equivar.tp.native_kernels(False)) for any order"
        )
