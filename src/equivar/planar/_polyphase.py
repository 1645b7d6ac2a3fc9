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

Exactness and ties: each component's values are sorted (per channel,
float64) before their squares are summed, so a norm is a function of the
component's multiset of values alone, and a shifted input (whose components
are circular shifts of the original ones) gets bit-identical norms. Exact
ties of the largest norm happen on real data (19 of MNIST's 60,000 training and 1 of its 10,000 test
images at stride 2, e.g. ``train[1711]``, whose two tied components even hold
the same multiset of values, so l1/l4/max criteria cannot separate them).
They are broken by a complete invariant: for each tied offset ``o`` the
anchored image ``roll(x, -o)`` is reduced to its canonical form modulo shifts
by multiples of ``s`` (the lexicographically largest float64 flattening over
those shifts), and the offset with the largest form wins, compared exactly.
A shift of ``x`` by ``u`` maps the tied offsets to ``o + u (mod s)`` with the
same forms, so the choice is shift-equivariant. Offsets whose forms are equal
(counted as ``"equivalent"`` by :func:`polyphase_tie_counts`) give anchored
images that agree up to a shift by a multiple of ``s``, i.e. ``x`` equals
``roll(x, d)`` for some ``d = o2 - o1 (mod s)`` (e.g. a constant image, or
one whose columns are all equal): the first is taken
and a network equivariant to stride-``s`` shifts (the patch embedding and the
pooled ViT) gives the same output for either. No tie is left that can break
invariance (NaN inputs excepted). Offsets chosen without a tie are those of
plain ``argmax`` except where two norms differed only by float64 summation
rounding (where ``argmax`` was shift-dependent before). Ties cost a Python
loop over the tied samples (on the CPU).
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
    """Squared l2 norm of each polyphase component, ``[B, s*s]`` (float64, summed in sorted order, no gradient)."""
    s = _check(x, stride)
    return _sorted_components(x, s).square().sum(dim=-1).sum(dim=-1)


_TIE_COUNTS = {"broken": 0, "equivalent": 0}


def polyphase_tie_counts(reset: bool = False) -> dict[str, int]:
    """Counts of tied largest polyphase norms seen by :func:`polyphase_anchor` in this process.

    Returns
    -------
    dict
        ``"broken"``: samples whose tie the canonical-form comparison resolved;
        ``"equivalent"``: samples whose best tied offsets give anchored images
        equal up to a shift by a multiple of the stride (the first is taken;
        the choice cannot change a stride-equivariant network's output). See the
        module docstring. ``reset=True`` zeroes the counts after reading.
    """
    out = dict(_TIE_COUNTS)
    if reset:
        _TIE_COUNTS.update(broken=0, equivalent=0)
    return out


def _sorted_components(x: torch.Tensor, s: int) -> torch.Tensor:
    """Values of each component sorted descending per channel, float64 ``[B, s*s, C, H*W/s^2]`` (no gradient)."""
    comps = polyphase_components(x.detach().to(torch.float64), s)
    return comps.flatten(3).sort(dim=-1, descending=True).values


def _canonical_key(img: torch.Tensor, off: tuple[int, int], s: int) -> tuple[float, ...]:
    """Lexicographically largest flattening of ``img [C, H, W]`` shifted by ``-off`` and every multiple of ``s``.

    A complete invariant of ``roll(img, -off)`` modulo shifts by multiples of
    ``s``: two offsets get equal keys iff their anchored images agree up to such
    a shift.
    """
    C, H, W = img.shape
    rows = torch.remainder(torch.arange(0, H, s)[:, None] + off[0] + torch.arange(H)[None, :], H)  # [H/s, H]
    cols = torch.remainder(torch.arange(0, W, s)[:, None] + off[1] + torch.arange(W)[None, :], W)  # [W/s, W]
    rolled = img[:, rows[:, None, :, None], cols[None, :, None, :]]  # [C, H/s, W/s, H, W]
    return max(map(tuple, rolled.permute(1, 2, 0, 3, 4).reshape(-1, C * H * W).tolist()))


def polyphase_anchor(x: torch.Tensor, stride: int) -> torch.Tensor:
    """Offset ``(di, dj)`` of the component of largest norm, per sample: long ``[B, 2]``.

    The squared l2 norms are summed over sorted values (bit-identical for any
    circular shift of ``x``); exact ties are broken by the canonical form of the
    anchored image modulo shifts by multiples of ``s`` (see the module
    docstring; counted by :func:`polyphase_tie_counts`).
    """
    s = _check(x, stride)
    norms = polyphase_norms(x, s)
    k = torch.argmax(norms, dim=1)
    tied = (norms == norms.gather(1, k[:, None])).sum(dim=1) > 1
    if bool(tied.any()):
        k = k.clone()
        xd = x.detach().to(device="cpu", dtype=torch.float64)
        for b in tied.nonzero()[:, 0].tolist():
            cand = (norms[b] == norms[b, k[b]]).nonzero()[:, 0].tolist()
            keys = [_canonical_key(xd[b], (c // s, c % s), s) for c in cand]
            best = max(keys)
            k[b] = cand[keys.index(best)]
            _TIE_COUNTS["equivalent" if keys.count(best) > 1 else "broken"] += 1
    return torch.stack([k // s, k % s], dim=-1).to(x.device)


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
    of ``x`` (exactly, barring residual ties; see the module docstring).
    """
    s = _check(x, stride)
    comps = polyphase_components(x, s)
    off = polyphase_anchor(x, s)
    k = off[:, 0] * s + off[:, 1]
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
