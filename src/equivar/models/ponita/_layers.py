"""PONITA's layers on the position-orientation fibre bundle R^3 x S^2 (Bekkers et al., ICLR 2024).

Every node carries a signal on a shared grid of ``O`` orientations ``o`` on the sphere,
features ``[N, O, C]`` (the fibre is a dense axis). Between a receiving point
``(x_i, o)`` and a sending point ``(x_j, o')`` the paper's invariants are

.. code-block:: text

    a_1 = o . (x_j - x_i)                          displacement along o
    a_2 = | (x_j - x_i) - a_1 o |                  displacement orthogonal to o
    a_3 = o . o'                                   relative orientation

and a separable group convolution is a spatial convolution over neighbours at fixed
orientation (kernel of ``(a_1, a_2)``) followed by a convolution over the fibre (kernel of
``a_3``), both depthwise, with kernels that are linear maps of a shared basis
``MLP(poly(a))`` (polynomial embedding of degree ``degree``, two GELU layers). Each conv sits in a
ConvNeXt block (LayerNorm, MLP widened ``widening_factor`` times, layer scale, residual).
Scalars are lifted to the fibre by copying, vectors ``v`` by ``v . o``; scalars are read back
by the mean over the fibre and vectors by ``sum_o f(o) o / O``.

Equivariance: every quantity depends on the positions only through the invariants of the
positions *and the grid*, so ``f(g x; g G) = g f(x; G)`` exactly for every rotation or
reflection ``g`` (grid vectors transform as polar vectors) and for translations and
permutations. With the grid held fixed the model is SO(3)-equivariant only up to the
discretisation of the sphere (the paper's statement: exact in the limit of a dense grid, and in
expectation over random grid rotations, which is how it is trained).

Source: github.com/ebekkers/ponita (``ponita/models/ponita.py`` ``PonitaFiberBundle``,
``ponita/nn/conv.py`` ``FiberBundleConv``, ``ponita/nn/convnext.py``,
``ponita/geometry/invariants.py``); the same maths written here as dense tensor algebra.
"""

from __future__ import annotations

import math

import torch

from ...nn import scatter_sum


def polynomial_features(x: torch.Tensor, degree: int) -> torch.Tensor:
    """All monomials of ``x [..., d]`` of orders ``1..degree`` (with repeats), ``[..., d + d^2 + ... + d^degree]``.

    PONITA's ``PolynomialFeatures``: order ``k`` is the flattened outer product of order ``k-1`` with ``x``.
    """
    terms = [x]
    for _ in range(1, degree):
        terms.append((terms[-1][..., :, None] * x[..., None, :]).flatten(-2))
    return torch.cat(terms, dim=-1)


def polynomial_dim(d: int, degree: int) -> int:
    """Width of :func:`polynomial_features` for ``d`` inputs."""
    return sum(d**k for k in range(1, degree + 1))


class KernelBasis(torch.nn.Module):
    """``GELU(Linear(GELU(Linear(poly(a)))))``: the basis shared by all layers' kernels.

    Shapes: ``a [..., in_dim]`` -> ``[..., basis_dim]``.
    """

    def __init__(self, in_dim: int, degree: int, hidden_dim: int, basis_dim: int):
        super().__init__()
        self.degree = degree
        self.linear_1 = torch.nn.Linear(polynomial_dim(in_dim, degree), hidden_dim)
        self.linear_2 = torch.nn.Linear(hidden_dim, basis_dim)

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        h = torch.nn.functional.gelu(self.linear_1(polynomial_features(a, self.degree)))
        return torch.nn.functional.gelu(self.linear_2(h))


def spatial_invariants(rel: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """``(o . r, |r - (o . r) o|)`` for every edge and orientation, ``[E, O, 2]``.

    ``rel [E, 3]``: ``x_j - x_i`` (sender minus receiver); ``grid [O, 3]`` or ``[E, O, 3]``
    (each edge's orientations, unit vectors).
    """
    r = rel[:, None, :]
    along = (r * grid).sum(-1, keepdim=True)  # [E, O, 1]
    ortho = torch.linalg.vector_norm(r - along * grid, dim=-1, keepdim=True)
    return torch.cat([along, ortho], dim=-1)


class SeparableFiberBundleConv(torch.nn.Module):
    """Depthwise spatial convolution at fixed orientation, then depthwise convolution over the fibre.

    ``x1[i, o, c] = k_self[c] x[i, o, c] + sum_{j -> i} w_ij k[ij, o, c] x[j, o, c]`` with
    ``k = basis(a_1, a_2) W_s`` (``k_self``: the basis at ``a = 0``, PONITA's self-loop), then
    ``x2[i, p, c] = 1/O sum_o x1[i, o, c] f[o, p, c] + b[c]`` with ``f = basis(o . o') W_f``.

    Shapes: ``x [N, O, C]``, ``basis [E, O, B]``, ``self_basis [B]``, ``fiber_basis [O, O, B]``,
    ``send``/``recv [E]`` -> ``[N, O, C]``.
    """

    def __init__(self, channels: int, basis_dim: int):
        super().__init__()
        self.kernel = torch.nn.Linear(basis_dim, channels, bias=False)
        self.fiber_kernel = torch.nn.Linear(basis_dim, channels, bias=False)
        self.bias = torch.nn.Parameter(torch.zeros(channels))

    def spatial(self, x, basis, self_basis, send, recv):
        messages = self.kernel(basis) * x[send]  # [E, O, C]
        return scatter_sum(messages, recv, x.shape[0]) + self.kernel(self_basis) * x

    def fiber(self, x1, fiber_basis):
        f = self.fiber_kernel(fiber_basis)  # [O, O, C]
        # x2[n, p, c] = sum_o x1[n, o, c] f[o, p, c]: one batched matmul over channels
        x2 = torch.bmm(x1.permute(2, 0, 1).contiguous(), f.permute(2, 0, 1).contiguous()).permute(1, 2, 0)
        return x2 / f.shape[0]

    def forward(self, x, basis, self_basis, fiber_basis, send, recv):
        return self.fiber(self.spatial(x, basis, self_basis, send, recv), fiber_basis) + self.bias

    @torch.no_grad()
    def calibrate(self, x, basis, self_basis, fiber_basis, send, recv) -> torch.Tensor:
        """PONITA's data-dependent initialisation: rescale both kernels so each step keeps the input's std."""
        x1 = self.spatial(x, basis, self_basis, send, recv)
        self.kernel.weight.mul_(x.std() / x1.std())
        x1 = self.spatial(x, basis, self_basis, send, recv)
        x2 = self.fiber(x1, fiber_basis)
        self.fiber_kernel.weight.mul_(x1.std() / x2.std())
        return self.forward(x, basis, self_basis, fiber_basis, send, recv)


class ConvNextBlock(torch.nn.Module):
    """``x + gamma * Linear(GELU(Linear(LayerNorm(conv(x)))))`` (PONITA's ``ConvNext``; ``gamma``: layer scale).

    ``layer_scale=None`` drops ``gamma``. Shapes as :class:`SeparableFiberBundleConv`.
    """

    def __init__(self, channels: int, basis_dim: int, widening_factor: int, layer_scale: float | None):
        super().__init__()
        self.conv = SeparableFiberBundleConv(channels, basis_dim)
        self.norm = torch.nn.LayerNorm(channels)
        self.linear_1 = torch.nn.Linear(channels, widening_factor * channels)
        self.linear_2 = torch.nn.Linear(widening_factor * channels, channels)
        if layer_scale is None:
            self.layer_scale = None
        else:
            self.layer_scale = torch.nn.Parameter(torch.full((channels,), float(layer_scale)))

    def mlp(self, h):
        h = self.linear_2(torch.nn.functional.gelu(self.linear_1(self.norm(h))))
        return h if self.layer_scale is None else self.layer_scale * h

    def forward(self, x, basis, self_basis, fiber_basis, send, recv):
        return x + self.mlp(self.conv(x, basis, self_basis, fiber_basis, send, recv))


class PonitaNet(torch.nn.Module):
    """The PONITA network on a fibre bundle: lift, ``num_layers`` ConvNeXt blocks, read out.

    Parameters
    ----------
    scalar_in, vector_in : int
        Invariant and vector input channels per node.
    scalar_out, vector_out : int
        Invariant and vector output channels per node.
    hidden_dim, num_layers, num_ori, basis_dim, degree, widening_factor, layer_scale, multiple_readouts
        As :class:`equivar.models.ponita.Ponita`.

    Shapes
    ------
    ``net(rel, send, recv, scalars, vectors, grid, edge_weight=None, node_grid=None)``:
    ``rel [E, 3]`` (``x_j - x_i``), ``send``/``recv [E]``, ``scalars [N, scalar_in]``,
    ``vectors [N, vector_in, 3]``, ``grid`` ``[O, 3]`` (shared) or ``[E, O, 3]`` (per edge, with
    ``node_grid [N, O, 3]`` per node), ``edge_weight [E]`` (a smooth cutoff window, or None) ->
    ``(scalars [N, scalar_out], vectors [N, vector_out, 3])``. The fibre Gram matrix ``o . o'``
    is taken from ``gram [O, O]`` (every scene's grid must be a rotation of one grid).
    """

    def __init__(
        self,
        scalar_in: int,
        vector_in: int,
        scalar_out: int,
        vector_out: int,
        hidden_dim: int,
        num_layers: int,
        basis_dim: int,
        degree: int,
        widening_factor: int,
        layer_scale: float | None,
        multiple_readouts: bool,
    ):
        super().__init__()
        self.scalar_in, self.vector_in = scalar_in, vector_in
        self.scalar_out, self.vector_out = scalar_out, vector_out
        self.basis = KernelBasis(2, degree, hidden_dim, basis_dim)
        self.fiber_basis = KernelBasis(1, degree, hidden_dim, basis_dim)
        self.embedding = torch.nn.Linear(scalar_in + vector_in, hidden_dim, bias=False)
        self.blocks = torch.nn.ModuleList(
            ConvNextBlock(hidden_dim, basis_dim, widening_factor, layer_scale) for _ in range(num_layers)
        )
        n_read = num_layers if multiple_readouts else 1
        self.readouts = torch.nn.ModuleList(torch.nn.Linear(hidden_dim, scalar_out + vector_out) for _ in range(n_read))
        self.register_buffer("calibrated", torch.tensor(False))

    def lift(self, scalars, vectors, node_grid):
        """Inputs on the fibre ``[N, O, scalar_in + vector_in]``: scalars copied, vectors as ``v . o``."""
        n, o = scalars.shape[0], node_grid.shape[-2]
        parts = [scalars[:, None, :].expand(n, o, scalars.shape[-1])]
        if self.vector_in:
            if node_grid.dim() == 2:
                parts.append(torch.einsum("nvd,od->nov", vectors, node_grid))
            else:
                parts.append(torch.einsum("nvd,nod->nov", vectors, node_grid))
        return torch.cat(parts, dim=-1)

    def forward(self, rel, send, recv, scalars, vectors, grid, gram, edge_weight=None, node_grid=None):
        node_grid = grid if node_grid is None else node_grid
        a = spatial_invariants(rel, grid)  # [E, O, 2]
        basis = self.basis(a)  # [E, O, B]
        if edge_weight is not None:
            basis = basis * edge_weight[:, None, None]
        self_basis = self.basis(a.new_zeros(2))  # [B]: PONITA's self-loop (x_j = x_i)
        fiber_basis = self.fiber_basis(gram[..., None])  # [O, O, B]
        x = self.embedding(self.lift(scalars, vectors, node_grid))  # [N, O, C]
        args = (basis, self_basis, fiber_basis, send, recv)
        if self.training and not bool(self.calibrated):
            self._calibrate(x.detach(), [t.detach() for t in args[:3]] + [send, recv])
        readout = 0.0
        first = len(self.blocks) - len(self.readouts)
        for k, block in enumerate(self.blocks):
            x = block(x, *args)
            if k >= first:
                readout = readout + self.readouts[k - first](x)
        readout = readout / len(self.readouts)  # [N, O, scalar_out + vector_out]
        s, v = readout.split([self.scalar_out, self.vector_out], dim=-1)
        scalars_out = s.mean(dim=1)
        o = readout.shape[1]
        if node_grid.dim() == 2:
            vectors_out = torch.einsum("nov,od->nvd", v, node_grid) / o
        else:
            vectors_out = torch.einsum("nov,nod->nvd", v, node_grid) / o
        return scalars_out, vectors_out

    @torch.no_grad()
    def _calibrate(self, x, args):
        for block in self.blocks:
            h = block.conv.calibrate(x, *args)
            x = x + block.mlp(h)
        self.calibrated.fill_(True)


def check_options(**opts) -> None:
    """One-line ``ValueError`` naming the first option out of range (shared by the PONITA models)."""
    from .._registry import _is_int

    for key in ("hidden_dim", "num_layers", "num_ori", "basis_dim", "degree", "widening_factor"):
        if key in opts and not _is_int(opts[key], 1):
            raise ValueError(f"{key} must be an integer >= 1, got {opts[key]!r}")
    ls = opts.get("layer_scale")
    if ls is not None and (isinstance(ls, bool) or not isinstance(ls, (int, float)) or not math.isfinite(ls)):
        raise ValueError(f"layer_scale must be a finite number or null, got {ls!r}")
    for key in ("multiple_readouts", "augment"):
        if key in opts and not isinstance(opts[key], bool):
            raise ValueError(f"{key} must be true or false, got {opts[key]!r}")
