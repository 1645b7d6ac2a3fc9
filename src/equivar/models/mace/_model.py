"""MACE-style interatomic potential.

Source: Batatia, Kovács, Simm, Ortner, Csányi, "MACE: Higher Order
Equivariant Message Passing Neural Networks for Fast and Accurate Force
Fields", NeurIPS 2022. Options from "Facet" (2025): spline radial functions
(``radial='spline'``) and the spherical-grid MLP self-interaction
(``self_interaction='s2grid'``). Written from the papers; no mace-torch
code is used.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ...nn import MLP, Linear, RadialEmbedding, SplineRadial, edge_harmonics
from ...o3 import Irrep, Irreps
from .._potential import AtomicGraph, Potential
from .._registry import _is_int, register_model
from ._blocks import InteractionBlock, ProductBlock


@register_model("mace")
class MACE(Potential):
    r"""MACE potential: energies (eV), forces (eV/Å), stress (eV/Å^3) and virials (eV).

    Architecture (per layer ``t = 1..num_interactions``)::

        h^0   = Linear(one_hot(Z))                           C x 0e
        A^t   = Linear( sum_j R_t(r_ij) * (Linear h_j^{t-1} (x) Y(r_ij)) ) / avg_num_neighbors
        h^t   = Mix( SymmetricContraction_nu(A^t, Z) ) + SkipLinear_Z(h^{t-1})
        E_i   = E0[Z_i] + w_i * (scale * sum_t Readout_t(h^t) + shift)
        E     = sum_i E_i   (per graph)

    ``Y`` are the edge spherical harmonics up to ``max_ell`` (e3nn
    'component' normalisation), ``R_t`` the radial weights of the
    channelwise edge tensor product (an MLP of Bessel x polynomial-cutoff
    features, or cubic splines), the contraction builds the ``nu <=
    correlation`` body-order product basis with element-dependent weights,
    intermediate readouts are linear, the last one an MLP (16 hidden, SiLU).
    The last layer keeps only scalars (``C x 0e``). The first layer has no
    skip connection (its input is only the element embedding), so an atom
    without neighbours has features 0. ``w_i`` (the :class:`~equivar.models.Potential`
    base's isolated-atom weight) is 1 for an atom with a neighbour within ``r_max -
    isolation_width`` and 0 for one with none within ``r_max``: an isolated atom has
    energy exactly ``E0[Z]`` (``E0[Z] + shift`` with ``isolation_width=None``, as in
    mace-torch).

    Parameters
    ----------
    r_max : float
        Cutoff radius, Å (5.0).
    num_bessel : int
        Bessel radial functions (8).
    num_polynomial_cutoff : int
        Order ``p`` of the polynomial envelope (5).
    max_ell : int
        Largest degree of the edge spherical harmonics (3).
    num_channels, max_L : int
        Hidden irreps ``num_channels x (0e + 1o + ... + max_L)`` (32, 1);
        ignored when ``hidden_irreps`` is given.
    hidden_irreps : str, optional
        Explicit hidden irreps (same multiplicity for every block, parities
        ``(-1)^l``), e.g. ``"32x0e+32x1o"``.
    correlation : int
        Body order ``nu`` of the product basis (3).
    num_interactions : int
        Message-passing layers (2).
    atomic_numbers : sequence of int
        Elements the model knows, e.g. ``[1, 6, 8]``.
    atomic_energies : sequence of float or dict {Z: eV}, optional
        Reference energies E0 (eV), aligned with ``atomic_numbers`` (list)
        or keyed by Z; default 0.
    avg_num_neighbors : float
        Normaliser of the message sum (set it to the training set's mean
        neighbour count; default 1).
    scale, shift : float
        Interaction energies are ``scale * sum_t readout_t + shift`` per atom (eV), times ``w_i``.
    isolation_width : float or None
        Shell width (Å, 1.0) below ``r_max`` over which ``w_i`` goes from 1 to 0; ``None``:
        ``w_i = 1`` (mace-torch's constant shift).
    radial : {'mlp', 'spline'}
        MACE radial MLP (``radial_mlp`` hidden widths) or learned cubic
        splines on ``num_spline_knots`` intervals (Facet).
    radial_mlp : sequence of int
        Hidden widths of the radial MLP ([64, 64, 64]).
    num_spline_knots : int
        Spline grid intervals on ``[0, r_max]`` (32).
    trainable_bessel : bool
        Learn the Bessel frequencies (False).
    readout_mlp : int
        Hidden width of the last readout (16).
    tp_backend : str
        ``equivar.tp`` backend of the edge tensor products ('cg'; any
        registered backend that can express the channelwise paths).
    tp_options : dict, optional
        Backend options (e.g. a grid resolution).
    self_interaction : {'linear', 's2grid'}
        Channel mixing after the product: MACE's equivariant linear, or the
        spherical-grid MLP (equivariant up to the grid's aliasing, ~1e-6
        relative at the default ``s2grid_band_limit = 4 max_L + 10``; see
        :class:`~equivar.nn.S2GridMLP`).
    s2grid_band_limit : int, optional
        Grid resolution for ``'s2grid'``.
    residual_first : bool
        Give the first layer a skip connection too (as mace-torch does when
        its first interaction is a residual block); then isolated atoms get a
        learned per-element offset on top of E0.
    dtype : {'float32', 'float64'}
        Parameters and computation dtype; inputs are cast to it.
    seed : int
        Seeds parameter initialisation (global RNG state is left untouched).

    Attributes
    ----------
    hparams : dict
        JSON-able constructor arguments (plus ``name='mace'``);
        ``equivar.models.build_model(**model.hparams)`` rebuilds the model.

    Raises
    ------
    ValueError
        Invalid hyperparameters (unknown backend or a backend that cannot
        express the edge product, bad irreps, unknown ``radial`` /
        ``self_interaction`` / ``dtype``, E0s not matching the elements).
    """

    def __init__(
        self,
        r_max: float = 5.0,
        num_bessel: int = 8,
        num_polynomial_cutoff: int = 5,
        max_ell: int = 3,
        num_channels: int = 32,
        max_L: int = 1,
        hidden_irreps: str | None = None,
        correlation: int = 3,
        num_interactions: int = 2,
        atomic_numbers: Sequence[int] = (1, 6, 7, 8),
        atomic_energies=None,
        avg_num_neighbors: float = 1.0,
        scale: float = 1.0,
        shift: float = 0.0,
        radial: str = "mlp",
        radial_mlp: Sequence[int] = (64, 64, 64),
        num_spline_knots: int = 32,
        trainable_bessel: bool = False,
        readout_mlp: int = 16,
        tp_backend: str = "cg",
        tp_options: dict | None = None,
        self_interaction: str = "linear",
        s2grid_band_limit: int | None = None,
        residual_first: bool = False,
        dtype: str = "float32",
        seed: int = 0,
        isolation_width: float | None = 1.0,
    ):
        if radial not in ("mlp", "spline"):
            raise ValueError(f"radial must be 'mlp' or 'spline', got {radial!r}")
        if self_interaction not in ("linear", "s2grid"):
            raise ValueError(f"self_interaction must be 'linear' or 's2grid', got {self_interaction!r}")
        if num_interactions < 1:
            raise ValueError(f"num_interactions must be >= 1, got {num_interactions}")
        for key, value, low in (
            ("max_L", max_L, 0),
            ("max_ell", max_ell, 0),
            ("num_channels", num_channels, 1),
            ("correlation", correlation, 1),
            ("num_bessel", num_bessel, 1),
            ("num_polynomial_cutoff", num_polynomial_cutoff, 1),
            ("readout_mlp", readout_mlp, 1),
            ("num_spline_knots", num_spline_knots, 1),
        ):
            if not _is_int(value, low):
                raise ValueError(f"{key} must be an integer >= {low}, got {value!r}")
        if isinstance(radial_mlp, (str, bytes)) or not all(_is_int(v, 1) for v in radial_mlp):
            raise ValueError(f"radial_mlp must be a list of positive integers (hidden widths), got {radial_mlp!r}")
        if max_L + max_ell > 64:  # the edge product reaches l = max_L + max_ell; irreps stop at l = 64
            raise ValueError(
                f"max_L + max_ell must be at most 64 (the edge product reaches l = max_L + max_ell), "
                f"got max_L={max_L}, max_ell={max_ell}"
            )
        if not r_max > 0:
            raise ValueError(f"r_max must be positive, got {r_max!r}")
        if not avg_num_neighbors > 0:
            raise ValueError(f"avg_num_neighbors must be positive, got {avg_num_neighbors}")
        if hidden_irreps is None:
            hidden = Irreps([(num_channels, Irrep(l, (-1) ** l)) for l in range(max_L + 1)])
        else:
            hidden = Irreps(hidden_irreps)
        muls = {mul for mul, _ in hidden}
        if len(muls) != 1 or hidden[0].ir != Irrep("0e"):
            raise ValueError(
                f"hidden_irreps must start with 0e and have one multiplicity for every block, got {hidden}"
            )
        C = muls.pop()

        super().__init__(
            atomic_numbers, atomic_energies, scale, shift, r_max=r_max, dtype=dtype, isolation_width=isolation_width
        )
        E = self.num_elements
        self.residual_first = bool(residual_first)
        self.hidden_irreps = hidden
        self.irreps_sh = Irreps.spherical_harmonics(max_ell)
        self.irreps_A = Irreps([(C, ir) for _, ir in self.irreps_sh])

        with self.seeded(seed):
            self.embedding = Linear(Irreps([(E, Irrep("0e"))]), Irreps([(C, Irrep("0e"))]))
            self.radial_kind = radial
            if radial == "mlp":
                self.radial_embedding = RadialEmbedding(r_max, num_bessel, num_polynomial_cutoff, trainable_bessel)
            self.interactions = torch.nn.ModuleList()
            self.products = torch.nn.ModuleList()
            self.radials = torch.nn.ModuleList()
            self.readouts = torch.nn.ModuleList()
            node_irreps = Irreps([(C, Irrep("0e"))])
            for t in range(num_interactions):
                last = t == num_interactions - 1
                out_irreps = Irreps([(C, Irrep("0e"))]) if last else hidden
                skip = out_irreps if (t > 0 or residual_first) else None
                inter = InteractionBlock(
                    node_irreps,
                    self.irreps_sh,
                    self.irreps_A,
                    skip,
                    E,
                    avg_num_neighbors,
                    tp_backend=tp_backend,
                    tp_options=tp_options,
                )
                self.interactions.append(inter)
                if radial == "mlp":
                    self.radials.append(MLP([num_bessel, *radial_mlp, inter.weight_numel], act="silu"))
                else:
                    self.radials.append(
                        SplineRadial(
                            r_max, inter.weight_numel, num_spline_knots, num_polynomial_cutoff, init_basis=num_bessel
                        )
                    )
                self.products.append(
                    ProductBlock(self.irreps_A, out_irreps, correlation, E, self_interaction, s2grid_band_limit)
                )
                if last:
                    self.readouts.append(MLP([C, readout_mlp, 1], act="silu"))
                else:
                    self.readouts.append(Linear(out_irreps, "0e"))
                node_irreps = out_irreps
        self._num_scalars = C

    def _normalize_hparams(self, hp: dict) -> dict:
        hp = super()._normalize_hparams(hp)
        hp["hidden_irreps"] = None if hp["hidden_irreps"] is None else str(self.hidden_irreps)
        hp["tp_options"] = dict(hp["tp_options"]) if hp["tp_options"] else None
        hp["radial_mlp"] = [int(v) for v in hp["radial_mlp"]]
        return hp

    def node_energies(self, graph: AtomicGraph) -> torch.Tensor:
        """Sum over layers of the readouts, ``[N]`` (before E0, scale and shift; see the class docstring)."""
        node_attrs = graph.node_attrs
        sh = edge_harmonics(self.irreps_sh, graph.edge_vectors)  # o3.spherical_harmonics, normalized, 'component'
        if self.radial_kind == "mlp":
            radial_in = self.radial_embedding(graph.edge_lengths)
        else:
            radial_in = self.radials[0].blend(graph.edge_lengths)
        edge_index = graph.edge_index

        h = self.embedding(node_attrs)
        node_inter = None
        for inter, radial, prod, readout in zip(self.interactions, self.radials, self.products, self.readouts):
            w = radial(radial_in) if self.radial_kind == "mlp" else radial_in @ radial.values
            A, sc = inter(h, node_attrs, sh, w, edge_index)
            h = prod(A, node_attrs, sc)
            e = readout(h).squeeze(-1)
            node_inter = e if node_inter is None else node_inter + e
        return node_inter

    def isolated_atom_energy(self, atomic_number: int) -> float:
        """``E0[Z]`` (eV), or with ``isolation_width=None`` ``E0[Z] + shift`` plus, with ``residual_first``, the
        first layer's learned offset (evaluated)."""
        if not self.residual_first or self.isolation_width is not None:
            return super().isolated_atom_energy(atomic_number)
        pos = torch.zeros(1, 3, dtype=self.dtype, device=self.z_table.device)
        z = torch.tensor([int(atomic_number)], device=pos.device)
        edges = torch.zeros(2, 0, dtype=torch.long, device=pos.device)
        with torch.no_grad():
            out = self({"positions": pos, "atomic_numbers": z, "edge_index": edges}, compute_forces=False)
        return float(out["energy"][0])
