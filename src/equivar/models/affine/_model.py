"""An affine-equivariant CNN by Lie group decomposition (Monte-Carlo lifting and group convolutions)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ...planar import SL2, AffineGroupConv, AffineLiftingConv, GLPlus2, check_pooling, global_pool, spatial_max_pool


class AffineCNN(nn.Module):
    """Lifting + group convolutions on ``R^2 x| G`` (``G`` = SL(2) or GL+(2)), pooled over samples and space, linear head.

    Source: Mironenco & Forre, "Lie Group Decompositions for Equivariant Neural
    Networks" (ICLR 2024): group elements are sampled through the polar
    decomposition ``g = P R`` (log-normal SPD factor of scale ``sample_scale``,
    Haar rotation; :class:`~equivar.planar.GLPlus2`), kernels are MLPs on the
    kernel grid moved by each sample and on relative elements in the
    decomposition's chart. In training every forward pass draws new samples
    (``num_samples`` per layer); in evaluation the samples are fixed (drawn
    from ``seed``), so the model is deterministic. Invariance to circular
    shifts is exact (circular padding, mean pooling); invariance to ``G`` holds
    in expectation over the samples, up to the Monte-Carlo error and the pixel
    grid (measured, not claimed: ``symmetry_groups`` lists shifts only).

    Parameters
    ----------
    image_size, in_channels, num_classes : int
    group : {'SL2', 'GL+2'}
    num_samples : int
        Group samples per layer.
    sample_scale : float
        Spread of the SPD factor's log-eigenvalues.
    rotations : {'haar', 'equidistant'}
        How a sample set's rotation factors are drawn (:class:`~equivar.planar.GLPlus2`).
    channels : int
        Channels per sample of each hidden layer.
    depth : int
        Group convolutions after the lifting layer.
    kernel_size : int
        Odd; the lifting layer uses ``kernel_size + 2``.
    hidden : int
        Width of every kernel MLP (sets the parameter count with ``channels``).
    norm : {'none', 'layer', 'channel'} (``True`` / ``False``: ``'channel'`` / ``'none'``)
        A normalisation after each convolution, with a learnt scale and shift per channel. ``'layer'``:
        over all channels, samples and pixels of each image (``rgenn``'s default ``layernorm3d``); its
        statistics are invariant to permuting samples and to moving pixels, so every symmetry above is
        kept. ``'channel'``: over the channels of every (sample, pixel) (``rgenn``'s ``layernorm3dg``); it
        blows the near-constant background up to unit variance, and with 8 channels the model did not
        fit 32 digits (BENCHMARKS.md, affNIST). Without it the activations shrink about 100x
        per group convolution at initialisation (the ``1 / N`` average over input samples; BENCHMARKS.md,
        affNIST section: at 300 CPU-s neither variant has trained far).
    kernel : {'silu', 'siren'}
        The kernel MLPs (:class:`~equivar.planar.KernelMLP`): ``'siren'`` is ``rgenn``'s default (sine
        layers, ``w0 = 10``); with ``'silu'`` the kernels start smooth and the model barely trains (BENCHMARKS.md).
    w0 : float or (float, float)
        SIREN frequency of the lifting and of the group-convolution kernels (``rgenn``: 10 for both). The
        group convolutions' kernels are functions of the relative element too; with 10 there they change
        fast with the sampled elements and training was ~5x slower in steps than with 2 (BENCHMARKS.md).
    fixed_samples : bool
        Train with the evaluation samples too (``rgenn``'s ``SamplingWrapper(deterministic=True)``): one
        fixed, seeded sample set per layer, so the network is a deterministic discretisation of the group
        (equivariant to moving its samples, as above) rather than a Monte-Carlo estimate. With 8 fresh samples
        per layer and step the Monte-Carlo noise stalled training at ~30% on MNIST (BENCHMARKS.md, affNIST).
    pool : int
        Spatial max-pool factor before every group convolution (1: none; ``rgenn`` pools 2 between its
        blocks). Pointwise over samples, so the sampled-group equivariance is kept; circular shifts stay
        exact only by multiples of ``pool ** depth`` (so with ``pool > 1`` the model claims no group).
    readout : {'mean', 'max'}
        Global pooling over group samples and space (``rgenn``: max).
    seed : int
        Seeds the evaluation samples.

    Shapes
    ------
    ``forward(images [B, C, H, W]) -> logits [B, num_classes]``.

    Raises
    ------
    ValueError
        One line naming the option: an unknown ``group``, ``norm``, ``kernel``, ``rotations`` or ``readout``;
        ``num_samples``, ``channels``, ``hidden`` < 1, ``depth`` < 0; an even ``kernel_size`` or one < 3; ``pool``
        < 1; ``sample_scale`` <= 0; ``w0`` not positive. In ``forward``: ``pool`` not dividing a feature map.
    """

    def __init__(
        self,
        image_size: int = 28,
        in_channels: int = 1,
        num_classes: int = 10,
        group: str = "SL2",
        num_samples: int = 8,
        sample_scale: float = 0.2,
        rotations: str = "haar",
        channels: int = 8,
        depth: int = 1,
        kernel_size: int = 3,
        hidden: int = 32,
        norm: str | bool = "none",
        kernel: str = "silu",
        w0: float | tuple[float, float] = 10.0,
        fixed_samples: bool = False,
        pool: int = 1,
        readout: str = "mean",
        seed: int = 0,
    ):
        super().__init__()
        groups = {"SL2": SL2, "GL+2": GLPlus2}
        if group not in groups:
            raise ValueError(f"group must be 'SL2' or 'GL+2', got {group!r}")
        for name, v, low in (
            ("num_samples", num_samples, 1),
            ("channels", channels, 1),
            ("hidden", hidden, 1),
            ("depth", depth, 0),
        ):
            if int(v) != v or int(v) < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {v!r}")
        if int(kernel_size) != kernel_size or kernel_size < 3 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd and >= 3, got {kernel_size!r}")
        self.image_size, self.in_channels = int(image_size), int(in_channels)
        self.group = groups[group](sample_scale, rotations)
        self.num_samples, self.depth = int(num_samples), int(depth)
        self.fixed_samples = bool(fixed_samples)
        self.pool, self.readout = check_pooling(pool, readout)
        self.symmetry_groups = ("planar:shifts",) if self.pool == 1 else ()
        w0 = (float(w0), float(w0)) if isinstance(w0, (int, float)) else tuple(float(v) for v in w0)
        if len(w0) != 2 or not all(v > 0 for v in w0):
            raise ValueError(f"w0 must be a positive number or a pair of them, got {w0!r}")
        self.lift = AffineLiftingConv(in_channels, channels, kernel_size + 2, hidden, kernel, w0[0])
        self.convs = nn.ModuleList(
            AffineGroupConv(channels, channels, kernel_size, hidden, kernel, w0[1]) for _ in range(depth)
        )
        self.head = nn.Linear(channels, num_classes)
        norm = {True: "channel", False: "none"}.get(norm, norm) if isinstance(norm, bool) else norm
        norms = {"none": lambda c: nn.Identity(), "channel": _ChannelNorm, "layer": _LayerNorm}
        if norm not in norms:
            raise ValueError(f"norm must be 'none', 'layer' or 'channel', got {norm!r}")
        self.norm = norm
        self.norms = nn.ModuleList(norms[norm](channels) for _ in range(depth + 1))
        gen = torch.Generator().manual_seed(seed)
        self.register_buffer(
            "eval_samples", torch.stack([self.group.sample(num_samples, gen) for _ in range(depth + 1)])
        )

    def samples(self) -> torch.Tensor:
        """``[depth + 1, num_samples, 2, 2]``: fresh ones in training (unless ``fixed_samples``), else ``eval_samples``."""
        if self.training and not self.fixed_samples:
            return torch.stack([self.group.sample(self.num_samples) for _ in range(self.depth + 1)])
        return self.eval_samples

    def forward(self, images: torch.Tensor, samples: torch.Tensor | None = None) -> torch.Tensor:
        s = self.samples() if samples is None else samples
        f = F.relu(self.norms[0](self.lift(images, s[0])))
        for i, conv in enumerate(self.convs):
            f = F.relu(self.norms[i + 1](conv(spatial_max_pool(f, self.pool), s[i + 1], s[i])))
        return self.head(global_pool(f, (2, 3, 4), self.readout))


class _ChannelNorm(nn.Module):
    """Layer norm over the channels ``C`` of features ``[B, C, N, H, W]`` at every sample and pixel, learnt scale/shift."""

    def __init__(self, channels: int, eps: float = 1e-5):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels, 1, 1, 1))
        self.bias = nn.Parameter(torch.zeros(channels, 1, 1, 1))
        self.eps = eps

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        mean = f.mean(dim=1, keepdim=True)
        var = f.var(dim=1, keepdim=True, unbiased=False)
        return (f - mean) * torch.rsqrt(var + self.eps) * self.weight + self.bias


class _LayerNorm(_ChannelNorm):
    """Layer norm over channels, samples and pixels ``(C, N, H, W)`` of each image, learnt scale/shift per channel."""

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        mean = f.mean(dim=(1, 2, 3, 4), keepdim=True)
        var = f.var(dim=(1, 2, 3, 4), keepdim=True, unbiased=False)
        return (f - mean) * torch.rsqrt(var + self.eps) * self.weight + self.bias
