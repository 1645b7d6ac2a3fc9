"""Sequence-to-sequence next-frame predictors: FERNN (velocity-lifted hidden state) and its G-RNN twin."""

from __future__ import annotations

import torch
from torch import nn

from ...planar import velocity_grid
from ._cell import FlowCell


class _Seq2SeqRNN(nn.Module):
    """Encoder-decoder RNN on frames: :class:`FlowCell`, max-pool over velocities, circular CNN decoder.

    Encoding consumes the ``T_in`` observed frames. Prediction ``k`` (frame
    ``T_in + k``) decodes the velocity-pooled hidden state after moving it one
    step along its flows (``FlowCell.advance``: the state's own guess of the
    next frame), then feeds the prediction back as the next input, detached
    from the graph as in the source code (``prev.detach()``). The repository's
    decoder instead re-feeds the last observed frame at the first prediction
    step, which costs exact flow equivariance; here every frame, observed or
    predicted, is consumed once at its own time step, so the whole prediction
    is flow equivariant (see :class:`FERNN`).
    """

    def __init__(
        self,
        velocities: torch.Tensor,
        image_size: int,
        in_channels: int,
        hidden_channels: int,
        kernel_size: int,
        decoder_layers: int,
        pool: str,
        activation: str,
    ):
        super().__init__()
        if pool not in ("max", "mean"):
            raise ValueError(f"pool must be 'max' or 'mean', got {pool!r}")
        if int(decoder_layers) < 0 or int(hidden_channels) < 1:
            raise ValueError(
                f"decoder_layers must be >= 0 and hidden_channels >= 1, got {decoder_layers}, {hidden_channels}"
            )
        self.image_size, self.in_channels, self.pool = int(image_size), int(in_channels), pool
        self.cell = FlowCell(in_channels, hidden_channels, kernel_size, velocities, activation)
        pad = dict(padding=int(kernel_size) // 2, padding_mode="circular", bias=False)
        layers: list[nn.Module] = []
        for _ in range(int(decoder_layers)):
            layers += [nn.Conv2d(hidden_channels, hidden_channels, kernel_size, **pad), nn.ReLU()]
        layers.append(nn.Conv2d(hidden_channels, in_channels, kernel_size, **pad))
        self.decoder = nn.Sequential(*layers)

    @property
    def velocities(self) -> torch.Tensor:
        """The lifted velocity set ``[V, 2]`` (rows, cols) pixels per frame."""
        return self.cell.velocities

    def _readout(self, h: torch.Tensor) -> torch.Tensor:
        a = self.cell.advance(h)
        f = a.amax(dim=1) if self.pool == "max" else a.mean(dim=1)
        return self.decoder(f)

    def forward(self, frames: torch.Tensor, pred_len: int, return_hidden: bool = False):
        """Predict ``pred_len`` frames after ``frames``.

        Parameters
        ----------
        frames : Tensor ``[B, T_in, C, H, W]`` (``T_in >= 1``), the model's dtype
        pred_len : int >= 1
        return_hidden : bool
            Also return the hidden states ``[B, T_in + pred_len - 1, V, C_h, H, W]``
            after each consumed frame (observed, then predicted).

        Returns
        -------
        Tensor ``[B, pred_len, C, H, W]`` (and the hidden states).

        Raises
        ------
        ValueError
            ``frames`` not 5-D with ``in_channels`` channels, ``T_in < 1`` or ``pred_len < 1``.
        """
        if frames.dim() != 5 or frames.shape[2] != self.in_channels or frames.shape[1] < 1:
            raise ValueError(
                f"frames must be [B, T_in >= 1, {self.in_channels}, H, W], got shape {tuple(frames.shape)}"
            )
        if isinstance(pred_len, bool) or int(pred_len) != pred_len or int(pred_len) < 1:
            raise ValueError(f"pred_len must be an integer >= 1, got {pred_len!r}")
        B, T, _, H, W = frames.shape
        h = frames.new_zeros(B, self.cell.num_velocities, self.cell.hidden_channels, H, W)
        hidden = []
        for t in range(T):
            h = self.cell(frames[:, t], h)
            hidden.append(h)
        outs = [self._readout(h)]
        for _ in range(int(pred_len) - 1):
            h = self.cell(outs[-1].detach(), h)
            hidden.append(h)
            outs.append(self._readout(h))
        pred = torch.stack(outs, dim=1)
        return (pred, torch.stack(hidden, dim=1)) if return_hidden else pred


class FERNN(_Seq2SeqRNN):
    """Flow Equivariant RNN for next-frame prediction (Keller 2025; code ``akandykeller/FERNN``).

    The hidden state is lifted over the velocities ``V = {-v_range..v_range}^2``
    (pixels per frame); channel ``v`` is moved by ``v`` every step
    (:class:`FlowCell`), pooled over ``V`` (max) before a circular CNN decoder.
    The parameters do not depend on ``V``: FERNN and :class:`GRNN` with the
    same ``hidden_channels``, ``kernel_size`` and ``decoder_layers`` have the
    same parameters.

    Symmetry. Circular shifts: exactly equivariant. Flows (an input whose
    frame ``t`` is moved by ``t u`` more, ``u`` in ``V``): the lifted hidden
    state is exactly equivariant, ``h'_t(v) = roll(h_t(v - u), t u)`` for
    every ``v`` with ``v - u`` in ``V``. The predictions (pooled over all of
    ``V``) are exactly equivariant when ``V`` is closed under adding ``u``
    modulo the image size - e.g. a ``(2 r + 1) x (2 r + 1)`` image with
    ``v_range = r``, where ``V`` is all of ``Z_H x Z_W`` (measured: 0.0
    relative error) - and not exactly otherwise: the channels at the edge of
    ``V`` have no partner (the paper's "boundary truncation"); with random
    weights on 12 x 12 frames and ``v_range = 1`` a flow by ``u`` in ``V``
    changes the pooled predictions by 0.75-0.92 relative, as much as it
    changes the G-RNN's.

    Parameters
    ----------
    image_size, in_channels : int
        Recorded for the data contract (any ``H x W`` works).
    hidden_channels : int
        Channels per velocity (the paper: 128).
    kernel_size : int
        Odd (the paper: 3).
    v_range : int
        ``V = {-v_range..v_range}^2`` (the paper's ``V_1^T``: 1, ``V_2^T``: 2).
    decoder_layers : int
        Hidden ``conv + ReLU`` layers of the decoder before its output conv (the paper: 4).
    pool : ``'max'`` (the paper) or ``'mean'``
        Pooling over velocities.
    activation : ``'relu'`` (the source's MNIST models) or ``'tanh'`` (its KTH model)
        The recurrence's nonlinearity (:class:`FlowCell`). ``'tanh'`` bounds
        the hidden state, which keeps rollouts longer than the training
        sequences in the range the decoder was trained on.

    Shapes
    ------
    ``forward(frames [B, T_in, C, H, W], pred_len) -> [B, pred_len, C, H, W]``.

    Examples
    --------
    >>> import torch
    >>> m = FERNN(image_size=5, hidden_channels=4, v_range=2).double()
    >>> x = torch.rand(1, 3, 1, 5, 5, dtype=torch.float64)
    >>> u = (1, -2)  # one more pixel down, two left, per frame
    >>> moved = torch.stack([torch.roll(x[:, t], (t * u[0], t * u[1]), (-2, -1)) for t in range(3)], 1)
    >>> y, y_moved = m(x, 2), m(moved, 2)
    >>> expect = torch.stack([torch.roll(y[:, k], ((3 + k) * u[0], (3 + k) * u[1]), (-2, -1)) for k in range(2)], 1)
    >>> torch.allclose(y_moved, expect, rtol=1e-10, atol=1e-12)
    True
    """

    def __init__(
        self,
        image_size: int = 28,
        in_channels: int = 1,
        hidden_channels: int = 16,
        kernel_size: int = 3,
        v_range: int = 1,
        decoder_layers: int = 1,
        pool: str = "max",
        activation: str = "relu",
    ):
        super().__init__(
            velocity_grid(v_range),
            image_size,
            in_channels,
            hidden_channels,
            kernel_size,
            decoder_layers,
            pool,
            activation,
        )
        self.v_range = int(v_range)
        self.symmetry_groups = ("planar:shifts", "planar:flows")


class GRNN(_Seq2SeqRNN):
    """The G-RNN twin of :class:`FERNN` (Keller 2025's baseline: ``--model grnn --v_range 0``).

    The same cell, decoder and parameters with the single velocity ``(0, 0)``:
    a convolutional RNN, exactly equivariant to circular shifts of all frames
    (static translations) but not to flows - a digit moving faster than in
    training is not tracked by its hidden state. Parameters and shapes as
    :class:`FERNN` without ``v_range``.
    """

    def __init__(
        self,
        image_size: int = 28,
        in_channels: int = 1,
        hidden_channels: int = 16,
        kernel_size: int = 3,
        decoder_layers: int = 1,
        pool: str = "max",
        activation: str = "relu",
    ):
        super().__init__(
            velocity_grid(0), image_size, in_channels, hidden_channels, kernel_size, decoder_layers, pool, activation
        )
        self.symmetry_groups = ("planar:shifts",)
