"""World models with a canvas-sized memory: flow equivariant (velocity-lifted, self-motion as a flow) and its twin."""

from __future__ import annotations

import torch
from torch import nn

from ...planar import velocity_grid
from ..fernn import FlowCell


def _check_finite(x: torch.Tensor, name: str) -> None:
    """One-line ``ValueError`` naming ``name`` when the floating tensor ``x`` holds a NaN or an infinity (the count and
    the index of the first); integer tensors pass."""
    if x.is_floating_point() or x.is_complex():
        bad = ~torch.isfinite(x)
        if bool(bad.any()):
            first = tuple(int(i) for i in bad.nonzero()[0])
            raise ValueError(
                f"{name} holds {int(bad.sum())} non-finite value(s) (NaN or inf) of {x.numel()}, "
                f"the first {x[first].item()} at index {first}"
            )


def shift_each(x: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
    """Circularly shift sample ``b`` of ``x [B, ..., H, W]`` by ``shifts[b] = (rows, cols)`` pixels (exact, one gather
    per axis; ``torch.roll`` with a different shift per sample).

    Raises
    ------
    ValueError
        ``shifts`` not ``[B, 2]``.
    """
    B, H, W = x.shape[0], x.shape[-2], x.shape[-1]
    if shifts.shape != (B, 2):
        raise ValueError(f"shifts must be [B, 2] = [{B}, 2], got {tuple(shifts.shape)}")
    s = shifts.to(device=x.device, dtype=torch.long)
    rows = torch.remainder(torch.arange(H, device=x.device)[None] - s[:, :1], H)  # [B, H]: source row
    cols = torch.remainder(torch.arange(W, device=x.device)[None] - s[:, 1:], W)
    mid = (1,) * (x.dim() - 3)
    x = torch.gather(x, -2, rows.view(B, *mid, H, 1).expand(x.shape))
    return torch.gather(x, -1, cols.view(B, *mid, 1, W).expand(x.shape))


class _WindowWorldModel(nn.Module):
    """A recurrent memory of ``memory_size x memory_size`` pixels in the agent's frame; the window is its top-left
    ``w x w`` corner. Subclasses say how the memory follows self-motion (:meth:`_step`)."""

    def __init__(
        self,
        velocities: torch.Tensor,
        in_channels: int,
        image_size: int,
        memory_size: int,
        hidden_channels: int,
        kernel_size: int,
        decoder_layers: int,
        extra_inputs: int,
    ):
        super().__init__()
        if not 1 <= int(image_size) <= int(memory_size):
            raise ValueError(f"image_size (the window) must be in [1, memory_size={memory_size}], got {image_size}")
        if int(decoder_layers) < 0 or int(hidden_channels) < 1:
            raise ValueError(
                f"decoder_layers must be >= 0 and hidden_channels >= 1, got {decoder_layers}, {hidden_channels}"
            )
        self.in_channels, self.image_size, self.memory_size = int(in_channels), int(image_size), int(memory_size)
        # inputs: the window written into the memory frame, a mask (1 on the window when observed), extra channels
        self.cell = FlowCell(self.in_channels + 1 + int(extra_inputs), hidden_channels, kernel_size, velocities)
        with torch.no_grad():  # a memory that persists from the start: W = identity (centre tap) + 0.1 x default
            k = int(kernel_size) // 2
            self.cell.conv_h.weight.mul_(0.1)
            self.cell.conv_h.weight[:, :, k, k] += torch.eye(int(hidden_channels))
        pad = dict(padding=int(kernel_size) // 2, padding_mode="circular", bias=False)
        layers: list[nn.Module] = []
        for _ in range(int(decoder_layers)):
            layers += [nn.Conv2d(hidden_channels, hidden_channels, kernel_size, **pad), nn.ReLU()]
        layers.append(nn.Conv2d(hidden_channels, self.in_channels, kernel_size, **pad))
        self.decoder = nn.Sequential(*layers)

    @property
    def velocities(self) -> torch.Tensor:
        """The lifted velocity set ``[V, 2]`` (rows, cols) pixels per frame."""
        return self.cell.velocities

    def _place(self, frame: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor:
        """``[B, C + 1, M, M]``: the window (zeros when ``frame`` is None) and its mask, in the memory frame."""
        B, M, w = like.shape[0], self.memory_size, self.image_size
        out = like.new_zeros(B, self.in_channels + 1, M, M)
        if frame is not None:
            out[:, : self.in_channels, :w, :w] = frame
            out[:, self.in_channels, :w, :w] = 1.0
        return out

    def _step(self, h: torch.Tensor, frame: torch.Tensor | None, action: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _decode(self, h: torch.Tensor) -> torch.Tensor:
        w = self.image_size
        return self.decoder(h.amax(dim=1))[..., :w, :w]

    def forward(self, frames: torch.Tensor, actions: torch.Tensor, pred_len: int, return_hidden: bool = False):
        """Observe ``frames``, then imagine ``pred_len`` more frames along the given actions.

        Parameters
        ----------
        frames : Tensor ``[B, T_in, C, w, w]`` (``T_in >= 1``; ``w = image_size``), the model's dtype
            What the agent saw at frames ``0 .. T_in - 1``.
        actions : integer-valued Tensor ``[B, T_in + pred_len - 1, 2]``
            ``actions[:, k]`` moves the window from frame ``k`` to ``k + 1`` (rows, cols pixels; any dtype, rounded).
        pred_len : int >= 1
        return_hidden : bool
            Also return the memory ``[B, T_in + pred_len, V, C_h, M, M]`` after every frame.

        Returns
        -------
        Tensor ``[B, pred_len, C, w, w]``: frames ``T_in .. T_in + pred_len - 1`` (and the memory).

        Raises
        ------
        ValueError
            ``frames`` not ``[B, T_in >= 1, C, w, w]``, ``actions`` not ``[B, T_in + pred_len - 1, 2]``,
            ``pred_len < 1``; a NaN or infinity in ``frames`` or ``actions`` (named, with the index of the first;
            checked once per call, before the recurrence).
        """
        C, w = self.in_channels, self.image_size
        if frames.dim() != 5 or frames.shape[1] < 1 or tuple(frames.shape[2:]) != (C, w, w):
            raise ValueError(f"frames must be [B, T_in >= 1, {C}, {w}, {w}], got shape {tuple(frames.shape)}")
        if isinstance(pred_len, bool) or int(pred_len) != pred_len or int(pred_len) < 1:
            raise ValueError(f"pred_len must be an integer >= 1, got {pred_len!r}")
        B, T = frames.shape[:2]
        want = (B, T + int(pred_len) - 1, 2)
        if tuple(actions.shape) != want:
            raise ValueError(f"actions must be [B, T_in + pred_len - 1, 2] = {list(want)}, got {list(actions.shape)}")
        _check_finite(frames, "frames")
        _check_finite(actions, "actions")
        acts = torch.cat([actions.new_zeros(B, 1, 2), actions], 1).round().long()  # acts[:, t]: into frame t
        M = self.memory_size
        h = frames.new_zeros(B, self.cell.num_velocities, self.cell.hidden_channels, M, M)
        hidden, outs = [], []
        for t in range(T + int(pred_len) - 1 + 1):
            observed = t < T
            h = self._step(h, frames[:, t] if observed else None, acts[:, t])
            hidden.append(h)
            if not observed:
                outs.append(self._decode(h))
        pred = torch.stack(outs, dim=1)
        return (pred, torch.stack(hidden, dim=1)) if return_hidden else pred


class FlowWorldModel(_WindowWorldModel):
    """A flow-equivariant world model with memory (after Lillemark et al. 2026, "Flow Equivariant World Models:
    Memory for Partially Observed Dynamic Environments"; the recurrence of Keller 2025's FERNN).

    The memory is a ``memory_size x memory_size`` map in the agent's frame
    (the canvas of the world, wrap-around), lifted over the object velocities
    ``V = {-v_range..v_range}^2``: ``h [B, V, C_h, M, M]``. Each frame ``t``,
    every velocity channel ``v`` is moved by ``v`` (object motion) and every
    channel by ``-a_t`` (self-motion: the known action, applied as a flow to
    the memory), then ``h_t(v) = relu(W * moved(v) + U * [x_t, m_t])`` with
    circular ``k x k`` convolutions shared over ``v`` (:class:`~equivar.models.fernn.FlowCell`);
    ``x_t`` is the observed window written into the memory's top-left
    ``w x w`` corner and ``m_t`` its mask (both zero while imagining, after
    the observed frames). A predicted frame is the window corner of the
    circular CNN decoder applied to the memory max-pooled over ``V``. ``W``
    starts at the identity (its centre tap) plus 0.1 times PyTorch's default
    initialization, so that the memory persists from the first step (both
    twins).

    Symmetry (``symmetry_groups = ("planar:flows",)``). A flow ``u`` of the
    whole scene - every digit ``u`` faster and every action ``u`` larger -
    leaves the observations unchanged; the model's memory then permutes its
    velocity channels, ``h'_t(v) = h_t(v - u)``, exactly for every ``v`` with
    ``v - u`` in ``V`` (any grid), and its predictions are unchanged exactly
    when ``V`` is closed under ``-u`` modulo ``memory_size`` (e.g. ``v_range =
    2`` on a 5 x 5 memory, where ``V`` is all of ``Z_5^2``); otherwise the
    channels at the edge of ``V`` have no partner (Keller's boundary
    truncation) and the invariance is approximate. ``equivar.testing.check_world_model``
    checks it (``actions + u`` against ``actions``).

    Parameters
    ----------
    image_size : int
        The window ``w`` (pixels).
    memory_size : int
        ``M >= w`` (the world's canvas for exact wrap-around).
    in_channels : int
    hidden_channels : int
        Channels per velocity.
    kernel_size : int
        Odd.
    v_range : int
        Object velocities lifted over (``V_r``, ``(2 r + 1)^2`` channels).
    decoder_layers : int
        Hidden ``conv + ReLU`` layers of the decoder.

    Shapes
    ------
    ``forward(frames [B, T_in, C, w, w], actions [B, T_in + P - 1, 2], P) -> [B, P, C, w, w]``.

    Raises
    ------
    ValueError
        ``image_size`` outside ``[1, memory_size]``, even ``kernel_size``, negative sizes (named).

    Examples
    --------
    >>> import torch
    >>> m = FlowWorldModel(image_size=3, memory_size=5, hidden_channels=2, v_range=2).double()
    >>> x = torch.rand(1, 4, 1, 3, 3, dtype=torch.float64)
    >>> a = torch.randint(-1, 2, (1, 6, 2))
    >>> torch.allclose(m(x, a + torch.tensor([1, -2]), 3), m(x, a, 3), rtol=1e-10, atol=1e-12)
    True
    """

    def __init__(
        self,
        image_size: int = 12,
        memory_size: int = 24,
        in_channels: int = 1,
        hidden_channels: int = 8,
        kernel_size: int = 3,
        v_range: int = 1,
        decoder_layers: int = 1,
    ):
        super().__init__(
            velocity_grid(v_range),
            in_channels,
            image_size,
            memory_size,
            hidden_channels,
            kernel_size,
            decoder_layers,
            0,
        )
        self.v_range = int(v_range)
        self.symmetry_groups = ("planar:flows",)

    def _step(self, h, frame, action):
        return self.cell(self._place(frame, h), shift_each(h, -action))


class RNNWorldModel(_WindowWorldModel):
    """The non-flow-equivariant twin of :class:`FlowWorldModel`: the same memory map, cell, decoder and parameters
    (plus the action weights, ``2 C_h k^2``), without the velocity lifting and without moving the memory by the
    self-motion.

    A convolutional RNN on the ``memory_size x memory_size`` map with the single
    velocity ``(0, 0)``; it receives each action ``a_t`` as two constant
    input channels (rows, cols pixels) next to the window and its mask, and
    must learn to move its memory with the agent and its digits by itself.
    It claims no symmetry (``symmetry_groups = ()``): a flow of the scene
    changes its predictions. Parameters and shapes as :class:`FlowWorldModel`
    without ``v_range``.
    """

    def __init__(
        self,
        image_size: int = 12,
        memory_size: int = 24,
        in_channels: int = 1,
        hidden_channels: int = 8,
        kernel_size: int = 3,
        decoder_layers: int = 1,
    ):
        super().__init__(
            velocity_grid(0), in_channels, image_size, memory_size, hidden_channels, kernel_size, decoder_layers, 2
        )
        self.symmetry_groups = ()

    def _step(self, h, frame, action):
        x = self._place(frame, h)
        a = action.to(x.dtype)[:, :, None, None].expand(-1, -1, *x.shape[-2:])
        return self.cell(torch.cat([x, a], 1), h)
