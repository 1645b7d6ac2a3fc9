"""Interatomic-potential plumbing shared by every potential: a subclass writes only its node energies.

After MACE's ``get_outputs`` and NequIP's ``ForceStressOutput``: the
derivatives (forces, stress, virials), the batch parsing, the element
mapping, the dtype and the per-element reference energies / scale / shift
live here, once, so that an architecture is only a function of the graph.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import torch

from .._threads import thread_policy
from ..nn import ISOLATION_WIDTH, AtomicEnergies, ScaleShift, neighbour_weight, scatter_sum
from ._registry import record_hparams

_DTYPES = {"float32": torch.float32, "float64": torch.float64}


def dtype_name(dtype) -> str:
    """``'float32'`` or ``'float64'`` from a ``torch.dtype`` or a name (``'torch.float64'``, ``'double'``, ...).

    Raises
    ------
    ValueError
        any other dtype; the message names it.
    """
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


class AtomicGraph(NamedTuple):
    """What a potential's :meth:`Potential.node_energies` sees: one batch of graphs, in the model dtype.

    ``N`` atoms, ``E`` edges, ``G`` graphs, ``K`` elements of the model. Positions and edge
    vectors are functions of the autograd leaves the derivatives are taken with respect to
    (positions and, for stress, the strain), so an architecture must compute everything from
    them (never from ``data['positions']``).

    Attributes
    ----------
    positions : Tensor [N, 3]
        Cartesian positions, Å (strained when stress is computed).
    edge_index : LongTensor [2, E]
        Row 0 sender ``j``, row 1 receiver ``i`` (MACE convention).
    edge_vectors : Tensor [E, 3]
        ``positions[i] - positions[j] + shift``, Å (periodic images included).
    edge_lengths : Tensor [E]
        ``|edge_vectors|``, Å.
    element : LongTensor [N]
        Element index ``0..K-1`` (the order of the model's ``atomic_numbers``).
    node_attrs : Tensor [N, K]
        One-hot of ``element``, model dtype.
    batch : LongTensor [N]
        Graph of each atom, ``0..G-1``.
    num_graphs : int
        ``G``.
    data : Mapping[str, Tensor]
        The batch dict as given (``docs/contracts.md``), for extra per-atom inputs.
    """

    positions: torch.Tensor
    edge_index: torch.Tensor
    edge_vectors: torch.Tensor
    edge_lengths: torch.Tensor
    element: torch.Tensor
    node_attrs: torch.Tensor
    batch: torch.Tensor
    num_graphs: int
    data: Mapping


class Potential(torch.nn.Module):
    r"""Base class of interatomic potentials: energies (eV), forces (eV/Å), stress (eV/Å^3), virials (eV).

    A subclass builds its layers in ``__init__`` (after ``super().__init__(...)``) and
    implements :meth:`node_energies`; this class does the rest (``docs/contracts.md``):

    .. code-block:: text

        e_i = node_energies(graph)                    interaction energy of atom i (architecture)
        w_i = neighbour_weight(r_ij < r_max)          1 with a neighbour within r_max - width, 0 isolated
        E_i = E0[Z_i] + w_i * (scale * e_i + shift)   per-element scale / shift allowed (MACE's ScaleShiftBlock)
        E   = sum_i E_i                               per graph
        F   = -dE/dpositions
        W   = -dE/d(strain)  (virials, eV),  stress = -W / volume   (strain trick, periodic cells)

    The isolated-atom limit: ``w_i`` (:func:`equivar.nn.neighbour_weight`) is a C2 function of
    the distances, exactly 1 for an atom with a neighbour closer than ``r_max - isolation_width``
    (every atom of the molecules and solids potentials are trained on, so there it changes
    nothing: ``E_i = E0 + scale * e_i + shift``, MACE's convention) and exactly 0 for an atom
    with no neighbour within ``r_max``, which therefore has energy ``E0[Z]``, the isolated-atom
    energy the user gave. A molecule pulled apart tends smoothly (energy and forces continuous)
    to the sum of its atoms' E0s. ``isolation_width=None`` (or no ``r_max``) gives MACE's
    constant shift, where an isolated atom has ``E0 + shift``.

    The strain trick (as MACE's ``get_outputs`` and NequIP's ``ForceStressOutput``): positions
    and cell are multiplied by ``1 + sym(strain)`` at ``strain = 0``, so ``dE/d(strain)`` is the
    virial through every periodic image (Knuth et al., Comput. Phys. Commun. 190, 33 (2015)).

    Subclasses also get ``model.hparams`` recorded from their constructor call (registered or not;
    see :func:`~equivar.models.register_model`), the cast to ``dtype`` once their ``__init__``
    returns, and the element check (an unknown atomic number is a one-line ``ValueError``).

    Parameters
    ----------
    atomic_numbers : sequence of int
        Elements the model knows (distinct, 1..118); their order defines the element index.
    atomic_energies : sequence of float or dict {Z: eV}, optional
        Reference energies E0 (eV) aligned with ``atomic_numbers`` or keyed by Z; default 0.
    scale, shift : float or sequence of float (one per element)
        ``E_i = E0 + w_i * (scale * e_i + shift)`` (eV; MACE's ``ScaleShiftBlock``).
    r_max : float, optional
        Cutoff radius (Å) the model was built for (neighbour lists, calculators); ``None`` if none.
    isolation_width : float or None
        Width (Å, default 1) of the shell below ``r_max`` over which ``w_i`` goes from 1 to 0
        as an atom's last neighbour leaves; ``None``: ``w_i = 1`` (MACE's convention).
    dtype : {'float32', 'float64'}
        Parameters and computation; inputs are cast to it.

    Raises
    ------
    ValueError
        atomic numbers not distinct or outside 1..118, E0s not matching the elements, a
        non-positive ``r_max``, an unknown ``dtype``; the message names the value.
    """

    def __init__(
        self,
        atomic_numbers: Sequence[int],
        atomic_energies=None,
        scale=1.0,
        shift=0.0,
        r_max: float | None = None,
        dtype: str = "float32",
        isolation_width: float | None = ISOLATION_WIDTH,
    ):
        super().__init__()
        atomic_numbers = [int(z) for z in atomic_numbers]
        if len(set(atomic_numbers)) != len(atomic_numbers) or not atomic_numbers:
            raise ValueError(f"atomic_numbers must be distinct and non-empty, got {atomic_numbers}")
        if any(z < 1 or z > 118 for z in atomic_numbers):
            raise ValueError(f"atomic numbers must be in 1..118, got {atomic_numbers}")
        K = len(atomic_numbers)
        if atomic_energies is None:
            e0 = [0.0] * K
        elif isinstance(atomic_energies, Mapping):
            table = {int(k): float(v) for k, v in atomic_energies.items()}
            missing = [z for z in atomic_numbers if z not in table]
            if missing:
                raise ValueError(f"atomic_energies has no entry for Z={missing[0]} (keys {sorted(table)})")
            e0 = [table[z] for z in atomic_numbers]
        else:
            e0 = [float(v) for v in atomic_energies]
            if len(e0) != K:
                raise ValueError(f"{len(e0)} atomic_energies for {K} atomic_numbers {atomic_numbers}")
        for key, value in (("scale", scale), ("shift", shift)):
            if isinstance(value, (list, tuple)) and len(value) != K:
                raise ValueError(f"{key} has {len(value)} values for {K} atomic_numbers {atomic_numbers}")
        if r_max is not None and not r_max > 0:
            raise ValueError(f"r_max must be positive, got {r_max!r}")
        if isolation_width is not None and not (isinstance(isolation_width, (int, float)) and isolation_width > 0):
            raise ValueError(f"isolation_width must be a positive width in Å (or None), got {isolation_width!r}")
        self.isolation_width = None if isolation_width is None or r_max is None else float(isolation_width)
        self._dtype_name = dtype_name(dtype)
        self.atomic_numbers = atomic_numbers
        self.num_elements = K
        self.r_max = None if r_max is None else float(r_max)
        self._e0 = e0
        z_table = torch.full((119,), -1, dtype=torch.long)
        z_table[torch.tensor(atomic_numbers)] = torch.arange(K)
        self.register_buffer("z_table", z_table, persistent=False)
        self.atomic_energies = AtomicEnergies(e0)
        self.scale_shift = ScaleShift(scale, shift)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        record_hparams(cls)

    def _normalize_hparams(self, hp: dict) -> dict:
        """Canonical forms of the base's arguments in ``hparams`` (E0s as a list aligned with the elements)."""
        for key, value in (
            ("atomic_numbers", list(self.atomic_numbers)),
            ("atomic_energies", list(self._e0)),
            ("dtype", self._dtype_name),
        ):
            if key in hp:
                hp[key] = value
        if hp.get("r_max") is not None:
            hp["r_max"] = float(hp["r_max"])
        return hp

    def _post_init(self) -> None:
        self.to(_DTYPES[self._dtype_name])

    @staticmethod
    @contextlib.contextmanager
    def seeded(seed: int):
        """Context manager: parameters created inside are initialised from ``seed``; the global RNG is left as it was."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            yield

    # ---- what a subclass writes ------------------------------------------------------------
    def node_energies(self, graph: AtomicGraph) -> torch.Tensor:
        """Interaction energy ``e_i`` of each atom, ``[N]`` in the model dtype (before scale/shift and E0).

        Must be invariant under rotations, reflections and translations of the positions and
        equivariant under permutations of the atoms, a smooth function of ``graph.edge_vectors``
        (and ``graph.positions``). With ``isolation_width`` set (the default) an atom without
        neighbours gets exactly ``E0`` whatever this returns for it; with ``None`` it should go to 0
        for such an atom (else override :meth:`isolated_atom_energy`).
        """
        raise NotImplementedError(f"{type(self).__name__} must implement node_energies(graph) -> [N]")

    # ---- what the base provides ------------------------------------------------------------
    @property
    def dtype(self) -> torch.dtype:
        """Parameters' and outputs' dtype (follows ``.to()`` / ``.double()``)."""
        return self.atomic_energies.atomic_energies.dtype

    def element_index(self, atomic_numbers: torch.Tensor) -> torch.Tensor:
        """Map atomic numbers ``[N]`` to element indices ``0..K-1``.

        Raises ``ValueError`` naming any element the model was not built for (CPU tensors, eager
        mode: the check is a data-dependent branch that ``torch.compile`` skips). On other devices
        the check is an asynchronous device assertion (``torch._assert_async``), so the training
        step never waits for the device to answer it.
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

    def isolated_atom_energy(self, atomic_number: int) -> float:
        """Energy (eV) the model gives an atom with no neighbour within ``r_max``: ``E0[Z]``, the
        reference energy it was given (``E0[Z] + shift[Z]`` with ``isolation_width=None``, MACE's
        convention; ``node_energies`` of an atom without neighbours is 0 by contract, and a model
        for which it is not overrides this).

        Raises
        ------
        ValueError
            ``atomic_number`` is not one of the model's elements.
        """
        z = int(atomic_number)
        if z not in self.atomic_numbers:
            raise ValueError(f"atomic number(s) [{z}] not known to this model (trained on {self.atomic_numbers})")
        k = self.atomic_numbers.index(z)
        if self.isolation_width is not None:
            return float(self._e0[k])
        shift = self.scale_shift.shift
        s = shift[k] if shift.dim() > 0 else shift
        return float(self._e0[k]) + float(s)

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

        Notes
        -----
        On the CPU with more than one torch thread, graphs of fewer than
        ``equivar._threads.SMALL_WORK`` edges run PyTorch's operations on
        one thread and the native tensor-product kernels on all of them
        (:func:`equivar._threads.thread_policy`); the values are those of a
        one-thread call.
        """
        dtype = self.dtype
        with contextlib.ExitStack() as stack:
            edges = batch.get("edge_index")
            n_edges = None if edges is None or torch.compiler.is_compiling() else edges.shape[-1]
            if isinstance(n_edges, int) and edges.device.type == "cpu":  # not a symbolic size (export)
                stack.enter_context(thread_policy(n_edges))  # small graphs: torch ops on one thread
            if compute_forces or compute_stress:
                stack.enter_context(torch.enable_grad())
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
        graph = AtomicGraph(pos, edge_index, vec, lengths, elem, node_attrs, nbatch, G, batch)
        node_inter = self.node_energies(graph)
        interaction = self.scale_shift(node_inter, elem)
        if self.isolation_width is not None:  # -> 0 as the last neighbour leaves r_max: an isolated atom has E0
            interaction = interaction * neighbour_weight(lengths, receiver, N, self.r_max, self.isolation_width)
        node_energy = self.atomic_energies(elem) + interaction
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
