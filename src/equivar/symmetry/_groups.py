"""Symmetry groups for audits, frame averaging and regularizers.

Each group generates its own elements (:class:`GroupElement`):
``sample(n, generator)`` draws ``n`` (Haar-uniform for compact groups,
uniform over the elements of a finite group), ``elements()`` lists a finite
group, and rotation groups have ``quadrature(degree)``: elements and weights
whose weighted average of ``rho_out(g) W rho_in(g)^-1`` equals the Haar
average exactly when ``rho_in, rho_out`` contain degrees ``l_in + l_out <=
degree`` (used to project linear maps onto the equivariant subspace).

Names accepted by :func:`get_group` (case-insensitive, spaces ignored):

==========================  ==============================================
``SO3``, ``SO(3)``          proper rotations (Haar)
``O3``, ``O(3)``            rotations and improper rotations
``SO2``, ``SO2(z)``,        rotations about an axis (``x``, ``y``, ``z``
``SO2(1,1,0)``              or a vector; default ``z``)
``C4``, ``C4(x)``           cyclic group of order n about an axis
``D6``, ``D6(z)``           dihedral group of order 2n
``T``, ``Td``, ``O``,       tetrahedral (12 / 24), octahedral (24 / 48),
``Oh``, ``I``, ``Ih``       icosahedral (60 / 120)
``Ci``, ``inversion``       {identity, inversion}
``translations``, ``T3``    translations (normal, std ``scale`` A)
``permutations``, ``SN``    node permutations (within each sample)
``planar:...``              groups acting on images (shifts, C4, SO2,
                            scalings, GL+2, SL2, affine; see ``_planar``)
==========================  ==============================================
"""

from __future__ import annotations

import math
import re

import numpy as np
import torch

from ..o3 import angles_to_matrix, axis_angle_to_matrix, matrix_to_axis_angle, rand_matrix
from . import _finite
from ._types import GroupElement


def rotation_labels(R: torch.Tensor) -> list[str]:
    """Readable names of proper or improper rotations ``R [K, 3, 3]``, e.g. ``'90 deg about (0,0,1)'``."""
    R = R.to(torch.float64).reshape(-1, 3, 3)
    sign = torch.sign(torch.linalg.det(R))
    axis, angle = matrix_to_axis_angle(R * sign[:, None, None])
    out = []
    for a, ang, sg in zip((axis + 0.0).tolist(), angle.tolist(), sign.tolist()):
        deg = math.degrees(ang)
        ax = ",".join(f"{v:.3g}" for v in a)
        name = "identity" if deg < 1e-6 else f"{deg:.4g} deg about ({ax})"
        if sg < 0:
            name = "inversion" if deg < 1e-6 else f"inversion * {name}"
        out.append(name)
    return out


def rotation_label(R: torch.Tensor) -> str:
    """Readable name of one proper or improper rotation ``R [3, 3]``."""
    return rotation_labels(R)[0]


class Group:
    """Base class. ``name`` is the canonical spec string; ``finite`` says whether ``elements()`` lists the group."""

    name = "group"
    finite = False
    acts_on = "rotation"  # 'rotation' | 'translation' | 'permutation'

    def sample(self, n: int, generator: torch.Generator | None = None, **context) -> list[GroupElement]:
        raise NotImplementedError

    def elements(self, **context) -> list[GroupElement] | None:
        return None

    def __repr__(self) -> str:
        return self.name


class RotationGroup(Group):
    """A closed subgroup of O(3) acting by matrices ``R`` (``x -> R x``)."""

    improper = False

    def matrices(self, n: int, generator=None) -> torch.Tensor:
        """``n`` sampled matrices ``[n, 3, 3]`` (float64)."""
        raise NotImplementedError

    def sample(self, n, generator=None, labels: bool = True, **context):
        """``n`` elements; ``labels=False`` skips the readable names (faster, for training loops)."""
        M = self.matrices(n, generator)
        names = rotation_labels(M) if labels else [""] * n
        return [GroupElement(R=R, label=lbl) for R, lbl in zip(M, names)]

    def quadrature(self, degree: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(R [K, 3, 3], w [K])`` float64, exact Haar average for degree ``<= degree``."""
        raise NotImplementedError


class FiniteGroup(RotationGroup):
    """A finite subgroup of O(3) given by its matrices ``[K, 3, 3]``."""

    finite = True

    def __init__(self, name: str, mats: torch.Tensor):
        self.name = name
        self.mats = mats.to(torch.float64)
        self.improper = bool((torch.linalg.det(self.mats) < 0).any())

    @property
    def order(self) -> int:
        return self.mats.shape[0]

    def matrices(self, n, generator=None):
        idx = torch.randint(self.order, (n,), generator=generator)
        return self.mats[idx]

    def elements(self, **context):
        if not hasattr(self, "_labels"):
            self._labels = rotation_labels(self.mats)
        return [GroupElement(R=R, label=lbl) for R, lbl in zip(self.mats, self._labels)]

    def quadrature(self, degree):
        return self.mats, torch.full((self.order,), 1.0 / self.order, dtype=torch.float64)


class SO3(RotationGroup):
    """Proper rotations; Haar samples from uniform unit quaternions."""

    name = "SO3"

    def matrices(self, n, generator=None):
        return rand_matrix(n, generator=generator, dtype=torch.float64)

    def quadrature(self, degree):
        # e3nn Euler angles R = Y(a) X(b) Y(c); Haar measure sin(b) da db dc.
        L = max(int(degree), 0)
        n = L + 1
        a = torch.arange(n, dtype=torch.float64) * (2 * math.pi / n)
        x, wb = np.polynomial.legendre.leggauss(L + 1)
        b = torch.tensor(np.arccos(x), dtype=torch.float64)
        wb = torch.tensor(wb / 2.0, dtype=torch.float64)
        A, B, C = torch.meshgrid(a, b, a, indexing="ij")
        W = (torch.ones(n)[:, None, None] * wb[None, :, None] * torch.ones(n)[None, None, :]).to(torch.float64) / (
            n * n
        )
        R = angles_to_matrix(A.flatten(), B.flatten(), C.flatten())
        return R, W.flatten()


class O3(SO3):
    """Rotations and improper rotations (a random sign times a Haar rotation)."""

    name = "O3"
    improper = True

    def matrices(self, n, generator=None):
        R = super().matrices(n, generator)
        s = torch.where(torch.rand(n, generator=generator, dtype=torch.float64) < 0.5, -1.0, 1.0)
        return R * s[:, None, None].to(R.dtype)

    def quadrature(self, degree):
        R, w = super().quadrature(degree)
        return torch.cat([R, -R]), torch.cat([w, w]) / 2


class SO2(RotationGroup):
    """Rotations about one axis (default z); uniform angles."""

    def __init__(self, axis="z"):
        self.axis = _finite.axis_vector(axis)
        self.name = f"SO2({_axis_name(self.axis)})"

    def matrices(self, n, generator=None):
        ang = torch.rand(n, generator=generator, dtype=torch.float64) * (2 * math.pi)
        ax = torch.tensor(self.axis, dtype=torch.float64).expand(n, 3)
        return axis_angle_to_matrix(ax, ang)

    def quadrature(self, degree):
        n = max(int(degree), 0) + 1
        return _finite.cyclic(n, self.axis), torch.full((n,), 1.0 / n, dtype=torch.float64)


class Translations(Group):
    """Translations ``x -> x + t``, ``t ~ N(0, scale^2 I)`` (Angstrom)."""

    name = "translations"
    acts_on = "translation"

    def __init__(self, scale: float = 3.0):
        self.scale = float(scale)

    def sample(self, n, generator=None, **context):
        t = torch.randn(n, 3, generator=generator, dtype=torch.float64) * self.scale
        return [GroupElement(t=ti, label=f"translation ({', '.join(f'{v:.3g}' for v in ti.tolist())})") for ti in t]


class Permutations(Group):
    """Node permutations; with ``segments`` (sample id per node) only within each sample."""

    name = "permutations"
    acts_on = "permutation"

    def sample(self, n, generator=None, num_nodes: int | None = None, segments: torch.Tensor | None = None, **context):
        if num_nodes is None:
            raise ValueError("permutations need inputs declared Typed(..., nodes=True) (number of nodes unknown)")
        out = []
        for i in range(n):
            if segments is None:
                perm = torch.randperm(num_nodes, generator=generator)
            else:
                perm = torch.arange(num_nodes)
                for s in torch.unique(segments):
                    idx = (segments == s).nonzero().flatten()
                    perm[idx] = idx[torch.randperm(len(idx), generator=generator)]
            out.append(GroupElement(perm=perm, label=f"permutation {i}"))
        return out


def _axis_name(axis: tuple) -> str:
    for k, v in _finite._AXES.items():
        if np.allclose(axis, v):
            return k
    return ",".join(f"{a:.4g}" for a in axis)


#: ``{prefix: factory(spec) -> Group}`` for group families defined in other modules (``"planar:"``)
PREFIXES: dict = {}

_CANON = [(r"SO\(3\)", "SO3"), (r"SO\(2\)", "SO2"), (r"^O\(3\)", "O3"), (r"^T\(3\)", "T3")]


def get_group(spec) -> Group:
    """A :class:`Group` from a name (see the module docstring) or a Group (returned as is).

    Raises
    ------
    ValueError
        Unknown name (the message lists the accepted ones) or a bad axis / order.
    """
    if isinstance(spec, Group):
        return spec
    if not isinstance(spec, str):
        raise ValueError(f"group must be a name or a Group, got {type(spec).__name__}")
    for prefix, make in PREFIXES.items():  # families registered by other modules (``planar:`` by ._planar)
        if spec.strip().lower().startswith(prefix):
            return make(spec)
    s = spec.replace(" ", "")
    for pat, rep in _CANON:
        s = re.sub(pat, rep, s, flags=re.IGNORECASE)
    arg = None
    m = re.fullmatch(r"([A-Za-z_]+\d*)(?:[(:\[](.*?)[)\]]?)?", s)
    if m is None:
        raise ValueError(_unknown(spec))
    base, arg = m.group(1), m.group(2)
    low = base.lower()
    axis = arg if arg else "z"
    if low == "so3":
        return SO3()
    if low == "o3":
        return O3()
    if low == "so2":
        return SO2(axis)
    if low in ("translations", "translation", "t3"):
        return Translations(float(arg) if arg else 3.0)
    if low in ("permutations", "permutation", "perm", "sn", "s_n"):
        return Permutations()
    mc = re.fullmatch(r"([cd])(\d+)", low)
    if mc:
        n = int(mc.group(2))
        ax = _finite.axis_vector(axis)
        mats = _finite.cyclic(n, ax) if mc.group(1) == "c" else _finite.dihedral(n, ax)
        return FiniteGroup(f"{mc.group(1).upper()}{n}({_axis_name(ax)})", mats)
    table = {
        "t": ("T", _finite.tetrahedral),
        "td": ("Td", _finite.tetrahedral_full),
        "o": ("O", _finite.octahedral),
        "oh": ("Oh", lambda: _finite.with_inversion(_finite.octahedral())),
        "i": ("I", _finite.icosahedral),
        "ih": ("Ih", lambda: _finite.with_inversion(_finite.icosahedral())),
        "ci": ("Ci", lambda: _finite.with_inversion(torch.eye(3, dtype=torch.float64)[None])),
        "inversion": ("Ci", lambda: _finite.with_inversion(torch.eye(3, dtype=torch.float64)[None])),
    }
    if low in table:
        name, make = table[low]
        return FiniteGroup(name, make())
    raise ValueError(_unknown(spec))


def _unknown(spec) -> str:
    return (
        f"unknown group {spec!r}: use SO3, O3, SO2(axis), Cn(axis), Dn(axis), T, Td, O, Oh, I, Ih, Ci, "
        "translations, permutations or planar:... (image groups)"
    )
