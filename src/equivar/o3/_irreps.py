"""Irreducible representations of O(3) and their direct sums.

The string syntax, ordering and feature layout follow e3nn exactly
(``"16x0e+8x1o+4x2e"``; a feature vector is the concatenation of
``mul`` copies of each irrep, ``mul_ir`` layout), so tensors and weights are
interchangeable with e3nn, MACE and NequIP.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import NamedTuple

import torch

from ._limits import MAX_L
from ._rotation import angles_to_matrix, check_rotation
from ._wigner import wigner_D

_IRREP_RE = re.compile(r"^\s*(\d+)\s*([eoy])\s*$")
_MUL_IR_RE = re.compile(r"^\s*(?:(\d+)\s*x\s*)?(\d+\s*[eoy])\s*$")


class Irrep(tuple):
    r"""An irreducible representation of O(3): degree ``l`` and parity ``p``.

    Parameters
    ----------
    l : int or str or Irrep
        Degree (``0 <= l <= MAX_L``), or a string such as ``"1o"``; ``"e"``
        means parity +1, ``"o"`` parity -1 and ``"y"`` the parity of the
        spherical harmonics, ``(-1)**l``.
    p : int, optional
        Parity, +1 or -1; required when ``l`` is an int.

    Raises
    ------
    ValueError
        If the string is malformed, ``l`` is negative or above ``MAX_L``, or
        ``p`` is not +1/-1 (the message names the offending value).

    Examples
    --------
    >>> Irrep("1o").dim
    3
    >>> Irrep(2, 1)
    2e
    """

    def __new__(cls, l, p=None):
        if isinstance(l, Irrep):
            return l
        if isinstance(l, str):
            m = _IRREP_RE.match(l)
            if m is None:
                raise ValueError(f"invalid irrep string {l!r}: expected e.g. '0e', '1o', '2y'")
            lv = int(m.group(1))
            ps = m.group(2)
            p = {"e": 1, "o": -1, "y": (-1) ** lv}[ps]
            l = lv
        elif isinstance(l, tuple) and p is None:
            l, p = l
        if not isinstance(l, int) or isinstance(l, bool):
            raise ValueError(f"irrep degree l must be an int, got {l!r}")
        if l < 0 or l > MAX_L:
            raise ValueError(f"irrep degree l={l} outside the supported range 0..{MAX_L}")
        if p not in (1, -1):
            raise ValueError(f"irrep parity must be +1 or -1, got {p!r} (for l={l})")
        return super().__new__(cls, (l, p))

    @property
    def l(self) -> int:  # noqa: E743
        return self[0]

    @property
    def p(self) -> int:
        return self[1]

    @property
    def dim(self) -> int:
        return 2 * self.l + 1

    def is_scalar(self) -> bool:
        return self.l == 0 and self.p == 1

    def __repr__(self) -> str:
        return f"{self.l}{'e' if self.p == 1 else 'o'}"

    def __mul__(self, other: Irrep) -> Iterator[Irrep]:
        """Irreps in the tensor product ``self x other`` (|l1-l2| .. l1+l2)."""
        other = Irrep(other)
        p = self.p * other.p
        for l in range(abs(self.l - other.l), self.l + other.l + 1):
            yield Irrep(l, p)

    def __rmul__(self, mul: int) -> Irreps:
        return Irreps([(mul, self)])

    def __add__(self, other) -> Irreps:
        return Irreps(self) + Irreps(other)

    def __contains__(self, _):  # pragma: no cover - tuples otherwise allow "in"
        raise TypeError("use Irreps for containment")

    @classmethod
    def iterator(cls, lmax: int | None = None) -> Iterator[Irrep]:
        """All irreps ordered 0e, 0o, 1o, 1e, 2e, 2o, ... up to ``lmax``."""
        l = 0
        while lmax is None or l <= lmax:
            yield Irrep(l, (-1) ** l)
            yield Irrep(l, -((-1) ** l))
            l += 1

    def D_from_matrix(self, R: torch.Tensor) -> torch.Tensor:
        """Representation matrix of ``R`` (proper or improper rotation).

        ``R``: ``[..., 3, 3]``; returns ``[..., 2l+1, 2l+1]``. For an improper
        ``R`` (det -1) the result is ``p * D_l(-R)``, as in e3nn.
        """
        det = torch.linalg.det(R)
        sign = torch.sign(det)
        D = wigner_D(self.l, R * sign[..., None, None])
        if self.p == -1:
            D = D * sign[..., None, None]
        return D

    def D_from_angles(self, alpha, beta, gamma, k=None) -> torch.Tensor:
        """Representation ``[..., 2l+1, 2l+1]`` of the rotation with e3nn Euler angles ``(alpha, beta, gamma)``
        composed with ``k`` inversions (``p^k`` factor), as e3nn's ``Irrep.D_from_angles``."""
        return self.D_from_matrix(_angles_matrix(alpha, beta, gamma, k))


def _angles_matrix(alpha, beta, gamma, k=None) -> torch.Tensor:
    """``angles_to_matrix(alpha, beta, gamma)``, times ``(-1)^k`` (``k`` inversions) when ``k`` is given."""
    R = angles_to_matrix(*(torch.as_tensor(t, dtype=torch.get_default_dtype()) for t in (alpha, beta, gamma)))
    if k is not None:
        k = torch.as_tensor(k, device=R.device)
        R = R * torch.where(k % 2 == 1, -1.0, 1.0).to(R.dtype)[..., None, None]
    return R


class _MulIr(NamedTuple):
    mul: int
    ir: Irrep

    @property
    def dim(self) -> int:
        return self.mul * self.ir.dim

    def __repr__(self) -> str:
        return f"{self.mul}x{self.ir}"


class Irreps(tuple):
    r"""A direct sum of irreps with multiplicities, e3nn syntax and layout.

    Parameters
    ----------
    irreps : str, Irrep, Irreps or sequence of (mul, ir)
        ``"16x0e+8x1o"``, ``"0e + 1o"``, ``[(16, (0, 1)), (8, "1o")]``.
        ``""`` and ``None`` give the empty sum.

    Raises
    ------
    ValueError
        Malformed string (the message quotes it and the bad term), negative
        multiplicity, or an invalid irrep.

    Examples
    --------
    >>> Irreps("16x0e+8x1o").dim
    40
    >>> Irreps("1o+0e+1o").simplify()
    1x1o+1x0e+1x1o
    >>> Irreps("1o+0e+1o").sort().irreps.simplify()
    1x0e+2x1o
    """

    def __new__(cls, irreps=None):
        if isinstance(irreps, Irreps):
            return super().__new__(cls, irreps)
        out = []
        if irreps is None:
            pass
        elif isinstance(irreps, Irrep):
            out.append(_MulIr(1, irreps))
        elif isinstance(irreps, str):
            s = irreps.strip()
            if s:
                for term in s.split("+"):
                    m = _MUL_IR_RE.match(term)
                    if m is None:
                        raise ValueError(
                            f"invalid irreps string {irreps!r}: cannot parse term {term.strip()!r} "
                            "(expected e.g. '16x0e+8x1o')"
                        )
                    mul = int(m.group(1)) if m.group(1) is not None else 1
                    try:
                        ir = Irrep(m.group(2).replace(" ", ""))
                    except ValueError as e:
                        raise ValueError(f"invalid irreps string {irreps!r}: {e}") from None
                    out.append(_MulIr(mul, ir))
        else:
            if not hasattr(irreps, "__iter__"):
                raise ValueError(
                    f"cannot interpret {irreps!r} as irreps: expected a string such as '16x0e+8x1o', an Irrep or (mul, irrep) pairs"
                )
            for item in irreps:
                if isinstance(item, str) or isinstance(item, Irrep):
                    out.append(_MulIr(1, Irrep(item)))
                elif isinstance(item, _MulIr):
                    out.append(item)
                else:
                    try:
                        mul, ir = item
                    except (TypeError, ValueError):
                        raise ValueError(f"cannot interpret {item!r} as (mul, irrep) in {irreps!r}") from None
                    if not isinstance(mul, int) or mul < 0:
                        raise ValueError(f"multiplicity must be a non-negative int, got {mul!r} in {irreps!r}")
                    out.append(_MulIr(mul, Irrep(ir)))
        return super().__new__(cls, out)

    # --- sizes -------------------------------------------------------------
    @property
    def dim(self) -> int:
        return sum(mi.dim for mi in self)

    @property
    def num_irreps(self) -> int:
        return sum(mi.mul for mi in self)

    @property
    def ls(self) -> list[int]:
        return [mi.ir.l for mi in self for _ in range(mi.mul)]

    @property
    def lmax(self) -> int:
        if len(self) == 0:
            raise ValueError("lmax of empty Irreps")
        return max(mi.ir.l for mi in self)

    def slices(self) -> list[slice]:
        """Slice of each ``mul x ir`` block in the flat feature dimension."""
        out, i = [], 0
        for mi in self:
            out.append(slice(i, i + mi.dim))
            i += mi.dim
        return out

    def count(self, ir) -> int:
        ir = Irrep(ir)
        return sum(mi.mul for mi in self if mi.ir == ir)

    def __contains__(self, ir) -> bool:
        ir = Irrep(ir)
        return any(mi.ir == ir for mi in self)

    # --- algebra -----------------------------------------------------------
    def __add__(self, other) -> Irreps:
        return Irreps(tuple(self) + tuple(Irreps(other)))

    def __radd__(self, other) -> Irreps:
        return Irreps(other) + self

    def __mul__(self, n: int) -> Irreps:
        if isinstance(n, Irreps):
            raise NotImplementedError("use equivar.tp for tensor products of Irreps")
        return Irreps(tuple(self) * n)

    __rmul__ = __mul__

    def __getitem__(self, i):
        x = super().__getitem__(i)
        if isinstance(i, slice):
            return Irreps(x)
        return x

    def simplify(self) -> Irreps:
        """Merge consecutive equal irreps and drop zero multiplicities."""
        out: list[tuple[int, Irrep]] = []
        for mul, ir in self:
            if mul == 0:
                continue
            if out and out[-1][1] == ir:
                out[-1] = (out[-1][0] + mul, ir)
            else:
                out.append((mul, ir))
        return Irreps(out)

    def remove_zero_multiplicities(self) -> Irreps:
        return Irreps([(mul, ir) for mul, ir in self if mul > 0])

    def sort(self) -> _SortResult:
        """Stable sort of the blocks by irrep, as e3nn: returns ``(irreps, p, inv)``.

        Irreps order as the tuples ``(l, p)`` (and as :class:`Irrep` objects
        compare): by ``l``, then odd (``p=-1``) before even, for every ``l``;
        equal irreps keep their order. ``p[i]`` is the new position of block
        ``i``; ``inv[j]`` the old position of new block ``j`` (e3nn 0.6's
        ``Irreps.sort``, tested against it).

        Examples
        --------
        >>> Irreps("0e+0o+2e+2o").sort().p
        (1, 0, 3, 2)
        """
        key = [(mi.ir.l, mi.ir.p, i) for i, mi in enumerate(self)]
        inv = tuple(k[2] for k in sorted(key))
        p = [0] * len(inv)
        for new, old in enumerate(inv):
            p[old] = new
        return _SortResult(Irreps([self[i] for i in inv]), tuple(p), inv)

    def filter(self, keep=None, drop=None) -> Irreps:
        """Keep only the blocks whose irrep is in ``keep`` / not in ``drop``."""

        def as_set(x):
            if isinstance(x, (str, Irreps)):
                return {mi.ir for mi in Irreps(x)}
            return {Irrep(i) for i in x}

        keep_s = None if keep is None else as_set(keep)
        drop_s = set() if drop is None else as_set(drop)
        return Irreps([(mul, ir) for mul, ir in self if (keep_s is None or ir in keep_s) and ir not in drop_s])

    @staticmethod
    def spherical_harmonics(lmax: int, p: int = -1) -> Irreps:
        """``0e + 1o + 2e + ...`` up to ``lmax`` (``p=-1``: parity ``(-1)**l``)."""
        return Irreps([(1, Irrep(l, p**l)) for l in range(lmax + 1)])

    # --- tensors ------------------------------------------------------------
    def randn(
        self, *size: int, normalization: str = "component", generator=None, dtype=None, device=None
    ) -> torch.Tensor:
        """Random features ``[*size, dim]``; ``-1`` in ``size`` marks the feature axis.

        ``normalization='component'``: unit variance per component;
        ``'norm'``: each irrep has unit norm on average.
        """
        size = list(size)
        if -1 in size:
            di = size.index(-1)
        else:
            di = len(size)
            size = size + [-1]
        lsize, rsize = size[:di], size[di + 1 :]
        if normalization == "component":
            return torch.randn(*lsize, self.dim, *rsize, generator=generator, dtype=dtype, device=device)
        if normalization == "norm":
            x = torch.empty(*lsize, self.dim, *rsize, dtype=dtype, device=device)
            for s, (mul, ir) in zip(self.slices(), self):
                r = torch.randn(*lsize, mul, ir.dim, *rsize, generator=generator, dtype=dtype, device=device)
                r = torch.nn.functional.normalize(r, dim=di + 1)
                x.narrow(di, s.start, s.stop - s.start).copy_(r.reshape(*lsize, -1, *rsize))
            return x
        raise ValueError(f"normalization must be 'component' or 'norm', got {normalization!r}")

    def D_from_matrix(self, R: torch.Tensor) -> torch.Tensor:
        """Block-diagonal representation ``[..., dim, dim]`` of rotations ``R [..., 3, 3]``.

        Satisfies ``D(R1 @ R2) = D(R1) @ D(R2)``; improper rotations act with
        each irrep's parity.
        """
        check_rotation(R)
        blocks = []
        cache: dict = {}
        for mul, ir in self:
            if ir not in cache:
                cache[ir] = ir.D_from_matrix(R)
            blocks.extend([cache[ir]] * mul)
        if not blocks:
            return R.new_zeros(R.shape[:-2] + (0, 0))
        return _block_diag(blocks)

    def D_from_angles(self, alpha, beta, gamma, k=None) -> torch.Tensor:
        """Block-diagonal representation ``[..., dim, dim]`` from e3nn Euler angles and ``k`` inversions."""
        return self.D_from_matrix(_angles_matrix(alpha, beta, gamma, k))

    @property
    def slice_by_mul(self) -> _SliceByMul:
        """Slice over copies of irreps: ``Irreps("10x0e+2e+10x1e").slice_by_mul[5:15]`` is ``5x0e+1x2e+4x1e``."""
        return _SliceByMul(self)

    def __repr__(self) -> str:
        return "+".join(repr(mi) for mi in self)

    def __eq__(self, other) -> bool:
        try:
            other = Irreps(other)
        except (ValueError, TypeError):
            return False
        return tuple(self) == tuple(other)

    def __ne__(self, other) -> bool:
        return not self == other

    def __hash__(self) -> int:
        return super().__hash__()


class _SliceByMul:
    def __init__(self, irreps: Irreps) -> None:
        self.irreps = irreps

    def __getitem__(self, index: slice) -> Irreps:
        if not isinstance(index, slice):
            raise ValueError(f"slice_by_mul takes a slice, got {index!r}")
        start, stop, step = index.indices(self.irreps.num_irreps)
        if step != 1:
            raise ValueError(f"slice_by_mul needs step 1, got {index.step!r}")
        out, first = [], 0
        for mul, ir in self.irreps:
            end = first + mul
            if start <= first and end <= stop:  # the whole block (empty blocks inside the range too, as e3nn)
                out.append((mul, ir))
            elif start < end and first < stop:
                out.append((min(stop, end) - max(start, first), ir))
            first = end
        return Irreps(out)


class _SortResult(NamedTuple):
    irreps: Irreps
    p: tuple
    inv: tuple


def _block_diag(blocks: Sequence[torch.Tensor]) -> torch.Tensor:
    batch = blocks[0].shape[:-2]
    n = sum(b.shape[-1] for b in blocks)
    out = blocks[0].new_zeros(batch + (n, n))
    i = 0
    for b in blocks:
        d = b.shape[-1]
        out[..., i : i + d, i : i + d] = b
        i += d
    return out
