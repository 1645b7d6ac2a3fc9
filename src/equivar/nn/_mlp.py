"""Fully connected networks on invariant (scalar) features."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from ._activation_utils import NormalizedActivation


class MLP(torch.nn.Module):
    r"""A fully connected network with e3nn's ``FullyConnectedNet`` normalisation.

    Layer ``k`` computes ``h_{k+1} = act(h_k @ W_k / sqrt(fan_in_k))`` with
    ``W_k ~ N(0, 1)`` and the activation normalised to unit second moment,
    so unit-variance inputs give unit-variance activations at
    initialisation. No activation after the last layer. No biases (so
    ``MLP(0) = 0``, which keeps radial weights vanishing where the cutoff
    makes the radial basis vanish, and readouts of zero features zero).

    Parameters
    ----------
    sizes : sequence of int
        ``[in, hidden..., out]`` (at least two entries).
    act : str or callable
        Hidden activation (default ``'silu'``).
    bias : bool
        Add biases (initialised 0) to each layer.

    Shapes: ``x [..., sizes[0]] -> [..., sizes[-1]]``. Invariant inputs give
    invariant outputs (it acts on scalars only).

    Raises ``ValueError`` if fewer than two sizes are given.
    """

    def __init__(self, sizes: Sequence[int], act="silu", bias: bool = False):
        super().__init__()
        sizes = [int(s) for s in sizes]
        if len(sizes) < 2:
            raise ValueError(f"MLP needs at least [in, out] sizes, got {sizes}")
        self.sizes = sizes
        self.weights = torch.nn.ParameterList(
            [torch.nn.Parameter(torch.randn(a, b)) for a, b in zip(sizes[:-1], sizes[1:])]
        )
        self.biases = torch.nn.ParameterList([torch.nn.Parameter(torch.zeros(b)) for b in sizes[1:]]) if bias else None
        self.act = NormalizedActivation(act)
        # the activation's normalisation constant is folded into the next layer's scale
        self._alphas = [1.0 / math.sqrt(a) * (self.act.c if k > 0 else 1.0) for k, a in enumerate(sizes[:-1])]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = len(self.weights)
        f = self.act.f
        for k, W in enumerate(self.weights):
            x = x @ (W * self._alphas[k])
            if self.biases is not None:
                x = x + self.biases[k]
            if k < n - 1:
                x = f(x)
        return x

    def extra_repr(self) -> str:
        return f"sizes={self.sizes}"
