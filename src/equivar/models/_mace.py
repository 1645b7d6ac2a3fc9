"""MACE-style interatomic potential.

Source: Batatia, Kovács, Simm, Ortner, Csányi, "MACE: Higher Order
Equivariant Message Passing Neural Networks for Fast and Accurate Force
Fields", NeurIPS 2022. Options from "Facet" (2025): spline radial functions
(``radial='spline'``) and the spherical-grid MLP self-interaction
(``self_interaction='s2grid'``). Written from the papers; no mace-torch
code is used.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping, Sequence

import torch

from ..nn import MLP, AtomicEnergies, Linear, RadialEmbedding, ScaleShift, SplineRadial, scatter_sum
from ..o3 import Irrep, Irreps, spherical_harmonics
from ._blocks import InteractionBlock, ProductBlock

_DTYPES = {"float32": torch.float32, "float64": torch.float64}


def _dtype_name(dtype) -> str:
    if isinstance(dtype, torch.dtype):
        for k, v in _DTYPES.items():
            if v == dtype:
                return k
    if isinstance(dtype, str):
        d = dtype.replace("torch.", "")
        if d in _DTYPES:
            return d
        if d == "double":
            return "float64"
        if d == "float":
            return "float32"
    raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")


def _require(batch: Mapping, key: str) -> torch.Tensor:
    try:
        return batch[key]
    except KeyError:
        raise KeyError(f"batch has no {key!r} entry (keys: {sorted(batch)}); see docs/contracts.md") from None


def _is_int(value, low: int) -> bool:
    """``value`` is an integer (not a bool) >= ``low``."""
    if isinstance(value, bool):
        return False
    try:
        return operator.index(value) >= low
    except TypeError:
        return False


class MACE(torch.nn.Module):
    r"""MACE potential: energies (eV), forces (eV/Å), stress (eV/Å^3) and virials (eV).

    Architecture (per layer ``t = 1..num_interactions``)::

        h^0   = Linear(one_hot(Z))                           C x 0e
        A^t   = Linear( sum_j R_t(r_ij) * (Linear h_j^{t-1} (x) Y(r_ij)) ) / avg_num_neighbors
        h^t   = Mix( SymmetricContraction_nu(A^t, Z) ) + SkipLinear_Z(h^{t-1})
        E_i   = E0[Z_i] + scale * sum_t Readout_t(h^t) + shift
        E     = sum_i E_i   (per graph)

    ``Y`` are the edge spherical harmonics up to ``max_ell`` (e3nn
    'component' normalisation), ``R_t`` the radial weights of the
    channelwise edge tensor product (an MLP of Bessel x polynomial-cutoff
    features, or cubic splines), the contraction builds the ``nu <=
    correlation`` body-order product basis with element-dependent weights,
    intermediate readouts are linear, the last one an MLP (16 hidden, SiLU).
    The last layer keeps only scalars (``C x 0e``). The first layer has no
    skip connection (its input is only the element embedding), so an atom
    without neighbours has features 0 and energy exactly ``E0[Z] + shift``.

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
        Interaction energies are ``scale * sum_t readout_t + shift`` per atom (eV).
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
    ):
        super().__init__()
        atomic_numbers = [int(z) for z in atomic_numbers]
        if len(set(atomic_numbers)) != len(atomic_numbers) or not atomic_numbers:
            raise ValueError(f"atomic_numbers must be distinct and non-empty, got {atomic_numbers}")
        if any(z < 1 or z > 118 for z in atomic_numbers):
            raise ValueError(f"atomic numbers must be in 1..118, got {atomic_numbers}")
        E = len(atomic_numbers)
        if atomic_energies is None:
            e0 = [0.0] * E
        elif isinstance(atomic_energies, Mapping):
            try:
                table = {int(k): float(v) for k, v in atomic_energies.items()}
                e0 = [table[z] for z in atomic_numbers]
            except KeyError as e:
                raise ValueError(f"atomic_energies has no entry for Z={e.args[0]} (keys {sorted(table)})") from None
        else:
            e0 = [float(v) for v in atomic_energies]
            if len(e0) != E:
                raise ValueError(f"{len(e0)} atomic_energies for {E} atomic_numbers {atomic_numbers}")
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
        dtype_name = _dtype_name(dtype)
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

        self.hparams = dict(
            name="mace",
            r_max=float(r_max),
            num_bessel=int(num_bessel),
            num_polynomial_cutoff=int(num_polynomial_cutoff),
            max_ell=int(max_ell),
            num_channels=int(num_channels),
            max_L=int(max_L),
            hidden_irreps=None if hidden_irreps is None else str(hidden),
            correlation=int(correlation),
            num_interactions=int(num_interactions),
            atomic_numbers=atomic_numbers,
            atomic_energies=e0,
            avg_num_neighbors=float(avg_num_neighbors),
            scale=float(scale),
            shift=float(shift),
            radial=radial,
            radial_mlp=[int(v) for v in radial_mlp],
            num_spline_knots=int(num_spline_knots),
            trainable_bessel=bool(trainable_bessel),
            readout_mlp=int(readout_mlp),
            tp_backend=str(tp_backend),
            tp_options=dict(tp_options) if tp_options else None,
            self_interaction=self_interaction,
            s2grid_band_limit=None if s2grid_band_limit is None else int(s2grid_band_limit),
            residual_first=bool(residual_first),
            dtype=dtype_name,
            seed=int(seed),
        )
        self.r_max = float(r_max)
        self.atomic_numbers = atomic_numbers
        self.num_elements = E
        self.hidden_irreps = hidden
        self.irreps_sh = Irreps.spherical_harmonics(max_ell)
        self.irreps_A = Irreps([(C, ir) for _, ir in self.irreps_sh])
        z_table = torch.full((119,), -1, dtype=torch.long)
        z_table[torch.tensor(atomic_numbers)] = torch.arange(E)
        self.register_buffer("z_table", z_table, persistent=False)

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.embedding = Linear(Irreps([(E, Irrep("0e"))]), Irreps([(C, Irrep("0e"))]))
            self.atomic_energies = AtomicEnergies(e0)
            self.scale_shift = ScaleShift(scale, shift)
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
        self.to(_DTYPES[dtype_name])

    @property
    def dtype(self) -> torch.dtype:
        return self.embedding.weight.dtype

    def element_index(self, atomic_numbers: torch.Tensor) -> torch.Tensor:
        """Map atomic numbers ``[N]`` to element indices ``0..E-1``.

        Raises ``ValueError`` naming any element the model was not built for (CPU tensors). On other
        devices the check is an asynchronous device assertion (``torch._assert_async``), so the
        training step never waits for the device to answer it.
        """
        Z = atomic_numbers.long()
        bad = (Z < 0) | (Z > 118)
        idx = self.z_table[Z.clamp(0, 118)]
        bad = bad | (idx < 0)
        if Z.device.type != "cpu" and not torch.compiler.is_compiling():
            torch._assert_async(~bad.any(), f"atomic number not known to this model (trained on {self.atomic_numbers})")
        elif not torch.compiler.is_compiling() and bool(bad.any()):  # (a data-dependent branch: eager only)
            unknown = sorted({int(z) for z in Z[bad].tolist()})
            raise ValueError(f"atomic number(s) {unknown} not known to this model (trained on {self.atomic_numbers})")
        return idx

    def forward(
        self, batch: Mapping[str, torch.Tensor], compute_forces: bool = True, compute_stress: bool = False
    ) -> dict:
        """Energies and their derivatives for a batch of graphs (``docs/contracts.md``).

        Parameters
        ----------
        batch : dict
            ``positions [N,3]`` Å, ``atomic_numbers [N]``, ``edge_index [2,E]``
            (row 0 sender j, row 1 receiver i), ``shifts [E,3]`` Å (or
            ``unit_shifts [E,3]`` + ``cell [G,3,3]``), ``batch [N]``,
            ``ptr [G+1]``; ``cell`` and ``unit_shifts`` are required when
            ``compute_stress``.
        compute_forces : bool
            Return ``forces = -dE/dpositions``.
        compute_stress : bool
            Return ``virials = -dE/d(strain)`` (eV) and
            ``stress = -virials / volume`` (eV/Å^3; 0 for cells of zero volume).

        Returns
        -------
        dict with ``energy [G]``, ``node_energy [N]``, and when requested
        ``forces [N,3]``, ``stress [G,3,3]``, ``virials [G,3,3]``, in the
        model dtype. The autograd graph of the derivatives is kept
        (``create_graph``) when ``self.training``.

        Raises
        ------
        KeyError for a missing batch entry; ValueError for an unknown element.
        """
        dtype = self.dtype
        with torch.enable_grad() if (compute_forces or compute_stress) else _nullcontext():
            return self._forward(batch, compute_forces, compute_stress, dtype)

    def _forward(self, batch, compute_forces, compute_stress, dtype):
        pos_in = _require(batch, "positions").to(dtype)
        N = pos_in.shape[0]
        Z = _require(batch, "atomic_numbers")
        edge_index = _require(batch, "edge_index").long()
        nbatch = batch.get("batch")
        if nbatch is None:
            nbatch = torch.zeros(N, dtype=torch.long, device=pos_in.device)
        nbatch = nbatch.long()
        if batch.get("ptr") is not None:
            G = batch["ptr"].numel() - 1
        else:
            G = int(nbatch.max()) + 1 if N else 0
        elem = self.element_index(Z)
        node_attrs = torch.nn.functional.one_hot(elem, self.num_elements).to(dtype)

        need_grad = compute_forces or compute_stress
        pos = pos_in
        if need_grad and not pos.requires_grad:
            pos = pos.detach().clone().requires_grad_(True)
        positions_leaf = pos
        displacement = None
        sender, receiver = edge_index[0], edge_index[1]
        if compute_stress:
            cell = _require(batch, "cell").to(dtype).reshape(-1, 3, 3)
            unit_shifts = _require(batch, "unit_shifts").to(dtype)
            displacement = torch.zeros(G, 3, 3, dtype=dtype, device=pos.device, requires_grad=True)
            sym = 0.5 * (displacement + displacement.transpose(1, 2))
            pos = pos + torch.einsum("ni,nij->nj", pos, sym[nbatch])
            cell_strained = cell + torch.bmm(cell, sym)
            shifts = torch.einsum("ei,eij->ej", unit_shifts, cell_strained[nbatch[sender]])
        else:
            cell = None
            shifts = batch.get("shifts")
            shifts = shifts.to(dtype) if shifts is not None else None

        vec = pos.index_select(0, receiver) - pos.index_select(0, sender)
        if shifts is not None:
            vec = vec + shifts
        lengths = torch.sqrt((vec * vec).sum(-1))
        sh = spherical_harmonics(self.irreps_sh, vec, normalize=True, normalization="component")
        if self.radial_kind == "mlp":
            radial_in = self.radial_embedding(lengths)
        else:
            radial_in = self.radials[0].blend(lengths)

        h = self.embedding(node_attrs)
        node_inter = None
        for inter, radial, prod, readout in zip(self.interactions, self.radials, self.products, self.readouts):
            w = radial(radial_in) if self.radial_kind == "mlp" else radial_in @ radial.values
            A, sc = inter(h, node_attrs, sh, w, edge_index)
            h = prod(A, node_attrs, sc)
            e = readout(h).squeeze(-1)
            node_inter = e if node_inter is None else node_inter + e
        node_energy = self.atomic_energies(elem) + self.scale_shift(node_inter, elem)
        energy = scatter_sum(node_energy, nbatch, G)
        out = {"energy": energy, "node_energy": node_energy}

        if need_grad:
            inputs = [positions_leaf] + ([displacement] if compute_stress else [])
            if energy.requires_grad:
                grads = torch.autograd.grad(energy.sum(), inputs, create_graph=self.training, allow_unused=True)
            else:
                grads = [None] * len(inputs)
            grads = [torch.zeros_like(x) if g is None else g for g, x in zip(grads, inputs)]
            if compute_forces:
                out["forces"] = -grads[0]
            if compute_stress:
                virials = -grads[1]
                volume = torch.linalg.det(cell).abs()
                safe = torch.where(volume > 0, volume, torch.ones_like(volume))
                stress = torch.where(
                    (volume > 0)[:, None, None], -virials / safe[:, None, None], torch.zeros_like(virials)
                )
                out["virials"] = virials
                out["stress"] = stress
        return out


class _nullcontext:
    def __enter__(self):
        return None

    def __exit__(self, *a):
        return False
