"""``SphericalHarmonics``: the spherical harmonics as a module with declared input and output irreps."""

from __future__ import annotations

import torch

from ._irreps import Irrep, Irreps
from ._spherical_harmonics import spherical_harmonics


class SphericalHarmonics(torch.nn.Module):
    r"""Real spherical harmonics of vectors, as a module (e3nn's ``o3.SphericalHarmonics``).

    Parameters
    ----------
    irreps_out : int, list of int, str or Irreps
        Degrees (ints take the parity the input implies, ``p_in^l``) or irreps; multiplicities repeat a
        degree.
    normalize : bool
        Scale the vectors to unit length first (see :func:`spherical_harmonics`).
    normalization : {'component', 'norm', 'integral'}
        As :func:`spherical_harmonics` (default 'component'; e3nn's default is 'integral').
    irreps_in : str or Irreps, optional
        ``"1o"`` (vectors, default) or ``"1e"`` (pseudovectors: every output is then even).

    Shapes
    ------
    ``x [..., 3] -> [..., irreps_out.dim]``, dtype of ``x``.

    Raises
    ------
    ValueError
        ``irreps_in`` other than one ``1o`` or ``1e``, or an output irrep whose parity is not ``p_in^l``.
    """

    def __init__(self, irreps_out, normalize: bool, normalization: str = "component", irreps_in=None) -> None:
        super().__init__()
        irreps_in = Irreps("1o" if irreps_in is None else irreps_in)
        if irreps_in not in (Irreps("1o"), Irreps("1e")):
            raise ValueError(f"irreps_in must be 1o or 1e (one vector or pseudovector), got {irreps_in}")
        p_in = irreps_in[0].ir.p
        if isinstance(irreps_out, int):
            irreps_out = [irreps_out]
        if isinstance(irreps_out, list) and all(isinstance(x, int) for x in irreps_out):
            irreps_out = Irreps([(1, Irrep(l, p_in**l)) for l in irreps_out])
        irreps_out = Irreps(irreps_out)
        for _, ir in irreps_out:
            if ir.p != p_in**ir.l:
                raise ValueError(f"spherical harmonics of {irreps_in} have parity {p_in**ir.l} at l={ir.l}, not {ir}")
        self.irreps_in, self.irreps_out = irreps_in, irreps_out
        self.normalize, self.normalization = bool(normalize), normalization
        self._ls = [ir.l for mul, ir in irreps_out for _ in range(mul)]
        spherical_harmonics(self._ls[:1] or [0], torch.zeros(1, 3), normalize, normalization)  # validate early

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self._ls:
            return x.new_zeros(x.shape[:-1] + (0,))
        return spherical_harmonics(self._ls, x, self.normalize, self.normalization)

    def extra_repr(self) -> str:
        return (
            f"{self.irreps_in} -> {self.irreps_out}, normalize={self.normalize}, normalization={self.normalization!r}"
        )
