"""The recurrent cell of FERNN and of its G-RNN twin: circular convolutions on a velocity-lifted hidden state."""

from __future__ import annotations

import torch
from torch import nn

from ...planar import flow_roll

ACTIVATIONS = {"relu": torch.relu, "tanh": torch.tanh}


class FlowCell(nn.Module):
    """``h_t(v) = act(W * flow_v(h_{t-1}(v)) + U * x_t)`` for every velocity ``v`` of the lifted set.

    Keller, "Flow Equivariant Recurrent Neural Networks" (2025), eq. of the
    FERNN recurrence with a trivial input lift (code ``akandykeller/FERNN``,
    ``FERNN_Cell``): the input convolution ``U`` is shared by all velocity
    channels, the previous hidden state of channel ``v`` is first moved one
    step along its own flow (circular shift by ``v``, :func:`~equivar.planar.flow_roll`)
    and then convolved with ``W`` (shared over ``v``). Both convolutions are
    circular ``k x k`` without bias, as in the source. With the single
    velocity ``(0, 0)`` this is the G-RNN cell (a convolutional RNN,
    equivariant to static shifts only).

    The activation is pointwise, so it commutes with every shift and flow:
    ``'relu'`` (the source's Translating and Rotating MNIST cells) or
    ``'tanh'`` (the source's KTH cell). A ReLU state is unbounded: with the
    memory ``W`` near the identity and an input added every step it grows
    linearly with the sequence length (measured: max ``|h|`` 1.0 -> 5.6 over
    40 frames after 250 training steps), so a decoder trained on 20 frames
    reads states it never saw on 40; ``tanh`` keeps ``|h| < 1`` at every step.

    Parameters
    ----------
    in_channels, hidden_channels, kernel_size : int
        ``kernel_size`` odd.
    velocities : long Tensor ``[V, 2]``
        (rows, cols) pixels per step (a buffer, saved with the model).
    activation : ``'relu'`` or ``'tanh'``

    Shapes
    ------
    ``advance(h [B, V, C_h, H, W]) -> [B, V, C_h, H, W]`` (the flow step);
    ``forward(x [B, C_in, H, W], h [B, V, C_h, H, W]) -> h_next [B, V, C_h, H, W]``.

    Raises
    ------
    ValueError
        Even ``kernel_size``; ``velocities`` not ``[V, 2]``; an unknown ``activation``.
    """

    def __init__(
        self,
        in_channels: int,
        hidden_channels: int,
        kernel_size: int,
        velocities: torch.Tensor,
        activation: str = "relu",
    ):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be 'relu' or 'tanh', got {activation!r}")
        self.activation = activation
        self._act = ACTIVATIONS[activation]
        if int(kernel_size) % 2 == 0:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}")
        velocities = torch.as_tensor(velocities, dtype=torch.long)
        if velocities.dim() != 2 or velocities.shape[-1] != 2 or len(velocities) == 0:
            raise ValueError(f"velocities must be [V, 2] integers, got shape {tuple(velocities.shape)}")
        self.register_buffer("velocities", velocities.clone(), persistent=True)
        self.hidden_channels = int(hidden_channels)
        pad = dict(padding=int(kernel_size) // 2, padding_mode="circular", bias=False)
        self.conv_u = nn.Conv2d(int(in_channels), self.hidden_channels, int(kernel_size), **pad)
        self.conv_h = nn.Conv2d(self.hidden_channels, self.hidden_channels, int(kernel_size), **pad)

    @property
    def num_velocities(self) -> int:
        return int(self.velocities.shape[0])

    def advance(self, h: torch.Tensor) -> torch.Tensor:
        """Move every velocity channel one step along its flow (the identity for the G-RNN's ``(0, 0)``)."""
        if self.num_velocities == 1 and not bool(self.velocities.any()):
            return h
        return flow_roll(h, self.velocities, 1)

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        B, V, C, H, W = h.shape
        rec = self.conv_h(self.advance(h).reshape(B * V, C, H, W)).view(B, V, C, H, W)
        return self._act(rec + self.conv_u(x).unsqueeze(1))
