"""Monte-Carlo lifting convolution from images to functions on ``R^2 x| G`` (``G`` a matrix group).

Source: Mironenco & Forre, "Lie Group Decompositions for Equivariant Neural
Networks" (ICLR 2024; ``rgenn/layers.py``, ``LiftGConv2d``): a continuous
kernel ``k`` (a small MLP on kernel coordinates; the paper uses a SIREN) is
evaluated on the kernel grid transformed by each sampled group element,

    (L x)(t, A_i) = sum_q x(q) k(A_i^-1 (q - t)) |det A_i|^-1,

so the layer maps ``[B, C_in, H, W]`` to ``[B, C_out, N, H, W]`` for ``N``
sampled elements ``A_i`` (e.g. :meth:`GLPlus2.sample`). For a fixed sample
set it is equivariant in the sense ``L[h . x](samples) = h . L[x](h^-1
samples)``; for a quarter turn ``h`` this holds exactly on the pixel grid (the
kernel grid maps onto itself), for other ``h`` up to discretization. Kernel
coordinates are pixels divided by ``kernel_size // 2`` (the grid spans
``[-1, 1]^2``); points mapped outside the unit disc are masked (as the paper's
``circular_mask``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ._linear import GLPlus2
from ._resample import pixel_coordinates


class AffineLiftingConv(nn.Module):
    """Lift images to ``R^2 x| G`` with a kernel MLP evaluated on transformed grids (see the module docstring).

    Parameters
    ----------
    in_channels, out_channels : int
    kernel_size : int
        Odd.
    hidden : int
        Width of the kernel MLP (``2 -> hidden -> hidden -> out * in``).
    kernel : {'silu', 'siren'}
        The kernel MLP's activation and initialisation (:class:`KernelMLP`).
    w0 : float
        SIREN's frequency (``kernel='siren'`` only).

    Shapes
    ------
    ``forward(x [B, C_in, H, W], samples [N, 2, 2]) -> [B, C_out, N, H, W]`` (circular padding).

    Raises
    ------
    ValueError
        Even ``kernel_size``; samples not ``[N, 2, 2]``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 5,
        hidden: int = 32,
        kernel: str = "silu",
        w0: float = 10.0,
    ):
        super().__init__()
        if int(kernel_size) % 2 == 0 or kernel_size < 3:
            raise ValueError(f"kernel_size must be odd and >= 3, got {kernel_size}")
        self.in_channels, self.out_channels, self.kernel_size = int(in_channels), int(out_channels), int(kernel_size)
        self.mlp = KernelMLP(2, hidden, out_channels * in_channels, kernel, w0, in_channels * kernel_size**2)
        self.bias = nn.Parameter(torch.zeros(out_channels))

    def kernels(self, samples: torch.Tensor) -> torch.Tensor:
        """``[N, C_out, C_in, k, k]``: ``k(A_i^-1 p) / |det A_i|`` on the grid, zero outside the unit disc."""
        if samples.dim() != 3 or samples.shape[-2:] != (2, 2):
            raise ValueError(f"samples must be [N, 2, 2] matrices, got shape {tuple(samples.shape)}")
        k = self.kernel_size
        p = self.mlp[0].weight
        grid = pixel_coordinates(k, k, dtype=p.dtype, device=p.device) / (k // 2)  # [k, k, 2] in [-1, 1]
        A = samples.to(dtype=p.dtype, device=p.device)
        q = torch.einsum("nij,hwj->nhwi", torch.linalg.inv(A), grid)  # A^-1 p
        w = self.mlp(q).reshape(A.shape[0], k, k, self.out_channels, self.in_channels)
        w = w * (q.norm(dim=-1) <= 1.0)[..., None, None].to(w.dtype)
        w = w / torch.linalg.det(A).abs()[:, None, None, None, None]
        return w.permute(0, 3, 4, 1, 2)

    def forward(self, x: torch.Tensor, samples: torch.Tensor) -> torch.Tensor:
        w = self.kernels(samples)  # [N, O, C, k, k]
        N, O, C, k, _ = w.shape
        y = F.conv2d(F.pad(x, (k // 2,) * 4, mode="circular"), w.transpose(0, 1).reshape(O * N, C, k, k))
        return y.reshape(x.shape[0], O, N, *y.shape[-2:]) + self.bias[:, None, None, None]


class KernelMLP(nn.Module):
    """The continuous kernel of the Monte-Carlo convolutions: coordinates ``[..., d] -> [..., out]``.

    ``kind='siren'`` (Sitzmann et al. 2020, as ``rgenn``'s default): two sine layers ``sin(w0 (W x + b))``
    with SIREN's initialisation (first layer uniform in ``+-1/d``, second ``+-sqrt(6 / hidden) / w0``) and a
    linear output initialised uniform in ``+-sqrt(6 / hidden) / sqrt(fan_in)`` (``rgenn``'s ``INR``, gain 6),
    zero bias; high-frequency kernels from the start. ``kind='silu'``: ``Linear-SiLU-Linear-SiLU-Linear`` with
    PyTorch's default initialisation (smooth, nearly linear kernels over ``[-1, 1]^2`` at initialisation: the
    affine CNN did not leave chance level in 500 steps with it; BENCHMARKS.md, affNIST). Same parameters.

    Parameters
    ----------
    in_features, hidden, out_features : int
        ``>= 1``: coordinates in, width of the two hidden layers, kernel entries out.
    kind : {'siren', 'silu'}
    w0 : float
        SIREN's frequency (``> 0``; unused for ``'silu'``).
    fan_in : int
        Input channels times kernel taps of the convolution the kernel serves (scales the output layer).

    Shapes
    ------
    ``forward(x [..., in_features]) -> [..., out_features]``; ``mlp[i]`` for ``i`` in (0, 2, 4) is the
    ``i``-th layer of the former ``Sequential`` (the three linear maps).

    Raises
    ------
    ValueError
        Another ``kind``; a size < 1; ``w0`` not a finite positive number.
    """

    def __init__(
        self, in_features: int, hidden: int, out_features: int, kind: str = "siren", w0: float = 10.0, fan_in: int = 1
    ):
        super().__init__()
        if kind not in ("siren", "silu"):
            raise ValueError(f"kernel must be 'siren' or 'silu', got {kind!r}")
        for name, v in (
            ("in_features", in_features),
            ("hidden", hidden),
            ("out_features", out_features),
            ("fan_in", fan_in),
        ):
            if int(v) != v or int(v) < 1:
                raise ValueError(f"kernel MLP {name} must be an integer >= 1, got {v!r}")
        if not (math.isfinite(float(w0)) and float(w0) > 0):
            raise ValueError(f"kernel MLP w0 must be a finite number > 0, got {w0!r}")
        self.kind, self.w0 = kind, float(w0)
        self.layers = nn.ModuleList(
            [nn.Linear(in_features, hidden), nn.Linear(hidden, hidden), nn.Linear(hidden, out_features)]
        )
        if kind == "siren":
            with torch.no_grad():
                self.layers[0].weight.uniform_(-1 / in_features, 1 / in_features)
                bound = math.sqrt(6 / hidden) / self.w0
                self.layers[1].weight.uniform_(-bound, bound)
                self.layers[1].bias.zero_()
                bound = math.sqrt(6 / hidden) / math.sqrt(fan_in)
                self.layers[2].weight.uniform_(-bound, bound)
                self.layers[2].bias.zero_()

    def __getitem__(self, i: int) -> nn.Linear:
        """The ``i``-th linear layer at the index it had in the ``Sequential`` (0, 2, 4)."""
        if i not in (0, 2, 4):
            raise IndexError(f"KernelMLP holds its linear layers at 0, 2 and 4 (as the Sequential did), got {i!r}")
        return self.layers[i // 2]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b, out = self.layers
        if self.kind == "siren":
            return out(torch.sin(self.w0 * b(torch.sin(self.w0 * a(x)))))
        return out(F.silu(b(F.silu(a(x)))))


def _group_features(rel: torch.Tensor) -> torch.Tensor:
    """``[..., 5]`` kernel inputs of relative elements ``B^-1 A`` ``[..., 2, 2]`` (``det > 0``): the global chart
    ``g = exp(S(a, b1, b2)) R(angle)`` of :class:`~equivar.planar.GLPlus2` as ``(a, b1, b2, cos, sin)``."""
    c = GLPlus2().log_coordinates(rel)
    return torch.cat([c[..., :3], torch.cos(c[..., 3:]), torch.sin(c[..., 3:])], dim=-1)


class AffineGroupConv(nn.Module):
    """Monte-Carlo group convolution on ``R^2 x| G`` between sampled elements.

    ``(G f)(t, B_i) = (1/N_in) sum_j sum_q f(q, A_j) k(B_i^-1 (q - t), B_i^-1 A_j) / |det B_i|``
    with a kernel MLP taking the grid point moved by ``B_i^-1`` and the
    relative element ``B_i^-1 A_j`` in the Lie group decomposition's chart
    (Mironenco & Forre 2024, ``GConv2d``). For fixed sample sets,
    ``G[h . f](S_out, S_in) = h . G[f](h^-1 S_out, h^-1 S_in)`` (exact for
    quarter turns on the pixel grid and for circular shifts).

    Shapes
    ------
    ``forward(f [B, C_in, N_in, H, W], out_samples [N_out, 2, 2], in_samples [N_in, 2, 2])
    -> [B, C_out, N_out, H, W]``. ``hidden``, ``kernel`` and ``w0`` as :class:`AffineLiftingConv` (input ``7``:
    the moved grid point and the relative element's 5 chart features).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        hidden: int = 32,
        kernel: str = "silu",
        w0: float = 10.0,
    ):
        super().__init__()
        if int(kernel_size) % 2 == 0 or kernel_size < 3:
            raise ValueError(f"kernel_size must be odd and >= 3, got {kernel_size}")
        self.in_channels, self.out_channels, self.kernel_size = int(in_channels), int(out_channels), int(kernel_size)
        self.mlp = KernelMLP(7, hidden, out_channels * in_channels, kernel, w0, in_channels * kernel_size**2)
        self.bias = nn.Parameter(torch.zeros(out_channels))

    def kernels(self, out_samples: torch.Tensor, in_samples: torch.Tensor) -> torch.Tensor:
        """``[N_out, C_out, C_in, N_in, k, k]``."""
        for name, s in (("out_samples", out_samples), ("in_samples", in_samples)):
            if s.dim() != 3 or s.shape[-2:] != (2, 2):
                raise ValueError(f"{name} must be [N, 2, 2] matrices, got shape {tuple(s.shape)}")
        k = self.kernel_size
        p = self.mlp[0].weight
        grid = pixel_coordinates(k, k, dtype=p.dtype, device=p.device) / (k // 2)
        Bo = out_samples.to(dtype=p.dtype, device=p.device)
        Ai = in_samples.to(dtype=p.dtype, device=p.device)
        Binv = torch.linalg.inv(Bo)
        q = torch.einsum("nij,hwj->nhwi", Binv, grid)  # [No, k, k, 2]
        rel = _group_features(Binv[:, None] @ Ai[None])  # [No, Ni, 5]
        No, Ni = Bo.shape[0], Ai.shape[0]
        inp = torch.cat([q[:, None].expand(No, Ni, k, k, 2), rel[:, :, None, None].expand(No, Ni, k, k, 5)], dim=-1)
        w = self.mlp(inp).reshape(No, Ni, k, k, self.out_channels, self.in_channels)
        w = w * (q.norm(dim=-1) <= 1.0)[:, None, :, :, None, None].to(w.dtype)
        w = w / (torch.linalg.det(Bo).abs()[:, None, None, None, None, None] * Ni)
        return w.permute(0, 4, 5, 1, 2, 3)

    def forward(self, f: torch.Tensor, out_samples: torch.Tensor, in_samples: torch.Tensor) -> torch.Tensor:
        if f.dim() != 5 or f.shape[2] != in_samples.shape[0]:
            raise ValueError(
                f"features must be [B, C, N_in, H, W] with N_in = {in_samples.shape[0]} samples, got {tuple(f.shape)}"
            )
        w = self.kernels(out_samples, in_samples)  # [No, O, C, Ni, k, k]
        No, O, C, Ni, k, _ = w.shape
        x = F.pad(f.reshape(f.shape[0], C * Ni, *f.shape[-2:]), (k // 2,) * 4, mode="circular")
        y = F.conv2d(x, w.transpose(0, 1).reshape(O * No, C * Ni, k, k))
        return y.reshape(f.shape[0], O, No, *y.shape[-2:]) + self.bias[:, None, None, None]
