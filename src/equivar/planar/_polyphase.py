"""Adaptive polyphase sampling: shift-equivariant down-sampling by a stride ``s``.

Sources: Chaman & Dokmanic, "Truly shift-invariant convolutional neural
networks" (CVPR 2021; adaptive polyphase sampling, APS) and Ding et al.,
"Reviving Shift Equivariance in Vision Transformers" (2023; adaptive
polyphase *anchoring*, code ``willding123/Shift-Equivariant-Vision-Transformers``,
``PolyOrder``): among the ``s^2`` polyphase components ``x[..., di::s, dj::s]``
pick the one of largest l2 norm and circularly shift the image so that it
sits at offset ``(0, 0)``. A circular shift of the input by ``(u, v)``
moves the chosen offset to ``(di + u, dj + v) mod s``, so the anchored image
is the anchored original shifted by a multiple of ``s`` and the strided
sampling that follows commutes with every circular shift.

Exactness: the norms are sums of squares accumulated in float64; a shifted
input sums the same squares in another order, so its norms agree to float64
rounding and the choice is the same unless two components' norms are equal
to ~1e-16 relative. Exact ties (constant images, symmetric patterns) make
``argmax`` take the first, which can differ after a shift.
"""

from __future__ import annotations

import torch


def _check(x: torch.Tensor, stride: int) -> int:
    s = int(stride)
    if s < 1:
        raise ValueError(f"polyphase stride must be >= 1, got {stride}")
    if x.dim() != 4:
        raise ValueError(f"polyphase sampling needs x [B, C, H, W], got shape {tuple(x.shape)}")
    H, W = x.shape[-2:]
    if H % s or W % s:
        raise ValueError(f"polyphase stride {s} does not divide the image size {H}x{W}")
    return s


def polyphase_components(x: torch.Tensor, stride: int) -> torch.Tensor:
    """``x [B, C, H, W]`` -> ``[B, s*s, C, H/s, W/s]``; component ``k = di * s + dj`` is ``x[..., di::s, dj::s]``."""
    s = _check(x, stride)
    B, C, H, W = x.shape
    y = x.reshape(B, C, H // s, s, W // s, s).permute(0, 3, 5, 1, 2, 4)
    return y.reshape(B, s * s, C, H // s, W // s)


def polyphase_norms(x: torch.Tensor, stride: int) -> torch.Tensor:
    """Squared l2 norm of each polyphase component, ``[B, s*s]`` (float64 accumulation, no gradient)."""
    s = _check(x, stride)
    B, C, H, W = x.shape
    sq = x.detach().to(torch.float64).square().reshape(B, C, H // s, s, W // s, s)
    return sq.sum(dim=(1, 2, 4)).reshape(B, s * s)


def polyphase_anchor(x: torch.Tensor, stride: int) -> torch.Tensor:
    """Offset ``(di, dj)`` of the component of largest norm, per sample: long ``[B, 2]``."""
    s = _check(x, stride)
    k = torch.argmax(polyphase_norms(x, s), dim=1)
    return torch.stack([k // s, k % s], dim=-1)


def roll_per_sample(x: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
    """Circularly shift sample ``b`` of ``x [B, C, H, W]`` by ``shifts[b] = (rows, cols)`` (differentiable)."""
    B, C, H, W = x.shape
    shifts = shifts.to(x.device)
    ii = torch.remainder(torch.arange(H, device=x.device)[None, :] - shifts[:, :1], H)  # [B, H]
    jj = torch.remainder(torch.arange(W, device=x.device)[None, :] - shifts[:, 1:], W)  # [B, W]
    x = torch.gather(x, 2, ii[:, None, :, None].expand(B, C, H, W))
    return torch.gather(x, 3, jj[:, None, None, :].expand(B, C, H, W))


def anchor(x: torch.Tensor, stride: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Adaptive polyphase anchoring: ``(x shifted so its max-norm component is at (0, 0), offsets [B, 2])``.

    Parameters
    ----------
    x : Tensor ``[B, C, H, W]``
    stride : int
        Must divide ``H`` and ``W``.

    Returns
    -------
    (Tensor ``[B, C, H, W]``, long Tensor ``[B, 2]``)

    Raises
    ------
    ValueError
        Bad shape or a stride that does not divide the image size.
    """
    off = polyphase_anchor(x, stride)
    return roll_per_sample(x, -off), off


def aps_downsample(x: torch.Tensor, stride: int) -> torch.Tensor:
    """Adaptive polyphase down-sampling ``[B, C, H, W] -> [B, C, H/s, W/s]`` (Chaman & Dokmanic 2021).

    Equivariant to circular shifts: shifting ``x`` by ``(u, v)`` shifts the
    output by ``((u + di) // s, (v + dj) // s)`` for the anchor ``(di, dj)``
    of ``x`` (exactly, barring ties; see the module docstring).
    """
    s = _check(x, stride)
    comps = polyphase_components(x, s)
    k = torch.argmax(polyphase_norms(x, s), dim=1)
    return comps[torch.arange(x.shape[0], device=x.device), k.to(x.device)]


class PolyphaseDownsample(torch.nn.Module):
    """:func:`aps_downsample` as a module (no parameters)."""

    def __init__(self, stride: int):
        super().__init__()
        self.stride = int(stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return aps_downsample(x, self.stride)

    def extra_repr(self) -> str:
        return f"stride={self.stride}"
