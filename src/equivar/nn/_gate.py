"""Equivariant nonlinearities: gates and norm activations (e3nn semantics).

Sources: Weiler et al., "3D Steerable CNNs" (NeurIPS 2018) for gated
nonlinearities; e3nn's ``nn.Gate`` / ``nn.NormActivation`` for the exact
conventions (layout, parity rules, second-moment normalisation).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..o3 import Irrep, Irreps
from ._activation_utils import NormalizedActivation, parity_of


def _scalar_act_irreps(irreps: Irreps, acts: Sequence) -> Irreps:
    """Output irreps of a pointwise activation on scalars (e3nn's parity rules)."""
    out = []
    for (mul, ir), act in zip(irreps, acts):
        if ir.l != 0:
            raise ValueError(f"activations act on scalars only, got {mul}x{ir} in {irreps}")
        if act is None or ir.p == 1:
            out.append((mul, ir))
            continue
        par = parity_of(act)
        if par == 0:
            raise ValueError(
                f"activation {act!r} on pseudoscalars {mul}x{ir} is neither even nor odd, so the output "
                "has no definite parity; use an odd (tanh) or even (abs) function"
            )
        out.append((mul, Irrep(0, 1 if par == 1 else -1)))
    return Irreps(out)


class Activation(torch.nn.Module):
    """Pointwise activations on scalar irreps, one per block (``None`` = identity).

    On ``0o`` blocks an odd function keeps parity -1 and an even one gives
    ``0e`` (e3nn rules). Activations are normalised to unit second moment.

    Shapes: ``[..., irreps_in.dim] -> [..., irreps_out.dim]`` (same dim).
    Raises ``ValueError`` for non-scalar irreps, a length mismatch, or an
    activation of no definite parity on ``0o``.
    """

    def __init__(self, irreps_in, acts: Sequence):
        super().__init__()
        self.irreps_in = Irreps(irreps_in)
        acts = list(acts)
        if len(acts) != len(self.irreps_in):
            raise ValueError(f"{len(acts)} activations for {len(self.irreps_in)} blocks of {self.irreps_in}")
        self.irreps_out = _scalar_act_irreps(self.irreps_in, acts)
        self.acts = torch.nn.ModuleList(
            [NormalizedActivation(a) if a is not None else torch.nn.Identity() for a in acts]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if len(self.acts) == 1:
            return self.acts[0](x)
        return torch.cat([act(x[..., s]) for act, s in zip(self.acts, self.irreps_in.slices())], dim=-1)


class Gate(torch.nn.Module):
    r"""Gated nonlinearity (e3nn ``nn.Gate``).

    Input ``[scalars | gates | gated]`` concatenated in that order (e3nn
    sorts this concatenation; we do not); output ``[act(scalars) | act_g(gates_i) * gated_i]``,
    each gate scalar multiplying one whole irrep of ``irreps_gated``.

    Parameters
    ----------
    irreps_scalars : Irreps
        Scalars passed through ``act_scalars``.
    act_scalars : sequence
        One activation (name or callable) per block of ``irreps_scalars``.
    irreps_gates : Irreps
        Gate scalars; ``num_irreps`` must equal ``irreps_gated.num_irreps``.
    act_gates : sequence
        One activation per block of ``irreps_gates``.
    irreps_gated : Irreps
        Irreps multiplied by the gates.

    Shapes: ``[..., irreps_in.dim] -> [..., irreps_out.dim]`` with
    ``irreps_in = scalars + gates + gated`` and
    ``irreps_out = act(scalars) + gated`` (gated parities times the gate
    output parity).

    Raises ``ValueError`` on non-scalar scalars/gates, mismatched gate
    count, or activations without definite parity on pseudoscalars.
    """

    def __init__(self, irreps_scalars, act_scalars, irreps_gates, act_gates, irreps_gated):
        super().__init__()
        self.irreps_scalars = Irreps(irreps_scalars)
        self.irreps_gates = Irreps(irreps_gates)
        self.irreps_gated = Irreps(irreps_gated)
        if self.irreps_gates.num_irreps != self.irreps_gated.num_irreps:
            raise ValueError(
                f"{self.irreps_gates.num_irreps} gates for {self.irreps_gated.num_irreps} gated irreps "
                f"({self.irreps_gates} vs {self.irreps_gated})"
            )
        self.act_scalars = Activation(self.irreps_scalars, act_scalars)
        self.act_gates = Activation(self.irreps_gates, act_gates)
        gate_par = [ir.p for mul, ir in self.act_gates.irreps_out for _ in range(mul)]
        gated_out, k = [], 0
        for mul, ir in self.irreps_gated:
            ps = set(gate_par[k : k + mul])
            k += mul
            for p in sorted(ps):
                n = gate_par[k - mul : k].count(p)
                gated_out.append((n, Irrep(ir.l, ir.p * p)))
        self.irreps_in = self.irreps_scalars + self.irreps_gates + self.irreps_gated
        self.irreps_out = self.act_scalars.irreps_out + Irreps(gated_out)
        if any(p == -1 for p in gate_par) and any(p == 1 for p in gate_par):
            raise ValueError("mixing even and odd gate outputs is not supported; split the gates")
        self._ns, self._ng = self.irreps_scalars.dim, self.irreps_gates.dim
        self._gated = [(mul, ir.dim) for mul, ir in self.irreps_gated]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.irreps_in.dim:
            raise ValueError(f"Gate: expected last dim {self.irreps_in.dim} ({self.irreps_in}), got {tuple(x.shape)}")
        s = x[..., : self._ns]
        g = self.act_gates(x[..., self._ns : self._ns + self._ng])
        v = x[..., self._ns + self._ng :]
        outs = [self.act_scalars(s)] if self._ns else []
        i = k = 0
        batch = x.shape[:-1]
        for mul, d in self._gated:
            blk = v[..., i : i + mul * d].reshape(batch + (mul, d)) * g[..., k : k + mul, None]
            outs.append(blk.reshape(batch + (mul * d,)))
            i += mul * d
            k += mul
        return torch.cat(outs, -1) if len(outs) > 1 else outs[0]


class NormActivation(torch.nn.Module):
    r"""Norm nonlinearity (e3nn ``nn.NormActivation``): ``x_i * act(|x_i| + b_i) / |x_i|``.

    Each irrep copy ``x_i`` is rescaled by a function of its norm, which is
    invariant, so the map is equivariant for any irreps (parity kept).

    Parameters
    ----------
    irreps_in : Irreps
    act : str or callable
        Scalar function of the norm (not normalised).
    normalize : bool
        If True multiply by ``act(n)/n``; else by ``act(n)``.
    epsilon : float
        Norms below ``epsilon`` are clamped to it (avoids 0/0; gradients
        stay finite).
    bias : bool
        Learn a bias ``b_i`` per irrep copy added to the norm (init 0).

    Shapes: ``[..., irreps_in.dim] -> [..., irreps_in.dim]``.
    """

    def __init__(self, irreps_in, act="sigmoid", normalize: bool = True, epsilon: float = 1e-8, bias: bool = False):
        super().__init__()
        from ._activation_utils import get_activation

        self.irreps_in = Irreps(irreps_in)
        self.irreps_out = self.irreps_in
        self.act = get_activation(act)
        self.normalize = normalize
        self.epsilon = float(epsilon)
        n = self.irreps_in.num_irreps
        self.bias = torch.nn.Parameter(torch.zeros(n)) if bias else None
        self._blocks = [(mul, ir.dim) for mul, ir in self.irreps_in]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch = x.shape[:-1]
        outs, i, k = [], 0, 0
        for mul, d in self._blocks:
            blk = x[..., i : i + mul * d].reshape(batch + (mul, d))
            n = blk.pow(2).sum(-1).clamp(min=self.epsilon**2).sqrt()
            a = n + self.bias[k : k + mul] if self.bias is not None else n
            f = self.act(a)
            if self.normalize:
                f = f / n
            outs.append((blk * f.unsqueeze(-1)).reshape(batch + (mul * d,)))
            i += mul * d
            k += mul
        return torch.cat(outs, -1) if len(outs) > 1 else outs[0]
