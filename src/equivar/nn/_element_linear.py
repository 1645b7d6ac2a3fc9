"""Element-dependent equivariant linear map (MACE's skip tensor product with one-hot attributes)."""

from __future__ import annotations

import torch

from ..o3 import Irreps
from ._linear import Linear


class ElementLinear(torch.nn.Module):
    r"""``y_n = Linear_{e_n}(x_n)``: an equivariant :class:`Linear` with one weight set per element.

    Equivalent to MACE's skip connection
    ``FullyConnectedTensorProduct(x, one_hot(e) as E x 0e)``, but normalised
    by ``1/sqrt(fan_in)`` of the active element only (one-hot inputs), so
    the output variance does not shrink with the number of elements.
    Implemented as one :class:`Linear` to ``E`` copies of each output
    block (one matmul per irrep type) followed by selecting each node's
    element.

    Parameters
    ----------
    irreps_in, irreps_out : Irreps
    num_elements : int

    Forward: ``x [N, irreps_in.dim]``, ``node_attrs`` one-hot ``[N, E]`` (float)
    or ``[N]`` long indices -> ``[N, irreps_out.dim]``.
    """

    def __init__(self, irreps_in, irreps_out, num_elements: int):
        super().__init__()
        self.irreps_in = Irreps(irreps_in)
        self.irreps_out = Irreps(irreps_out)
        self.num_elements = E = int(num_elements)
        self.linear = Linear(self.irreps_in, Irreps([(E * mul, ir) for mul, ir in self.irreps_out]))

    def forward(self, x: torch.Tensor, node_attrs: torch.Tensor) -> torch.Tensor:
        N, E = x.shape[0], self.num_elements
        y = self.linear(x)
        outs, i = [], 0
        if node_attrs.dtype.is_floating_point:
            oh = node_attrs.to(y.dtype)
            for mul, ir in self.irreps_out:
                n = E * mul * ir.dim
                blk = y[:, i : i + n].reshape(N, E, mul * ir.dim)
                outs.append(torch.bmm(oh.unsqueeze(1), blk).squeeze(1))
                i += n
        else:
            idx = node_attrs.long()
            ar = torch.arange(N, device=x.device)
            for mul, ir in self.irreps_out:
                n = E * mul * ir.dim
                outs.append(y[:, i : i + n].reshape(N, E, mul * ir.dim)[ar, idx])
                i += n
        return torch.cat(outs, -1) if len(outs) > 1 else outs[0]
