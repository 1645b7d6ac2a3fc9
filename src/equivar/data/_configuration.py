"""One atomic configuration with optional reference labels (numpy, float64)."""

from __future__ import annotations

import dataclasses

import numpy as np

#: ``config_type`` that marks an isolated-atom reference configuration (MACE's name).
ISOLATED_ATOM = "IsolatedAtom"


@dataclasses.dataclass
class Configuration:
    """An atomic structure and its labels, as read from a file.

    All arrays are numpy, float64 for reals and int64 for atomic numbers.
    Units: Å, eV, eV/Å, eV/Å^3 (stress), eV (virials).

    Attributes
    ----------
    atomic_numbers : ndarray [N] int64
    positions : ndarray [N, 3] float64, Å
    cell : ndarray [3, 3] float64, rows are lattice vectors (zeros when no cell)
    pbc : ndarray [3] bool
    energy : float or None, eV
    forces : ndarray [N, 3] or None, eV/Å
    stress : ndarray [3, 3] or None, eV/Å^3 (ASE sign convention)
    virials : ndarray [3, 3] or None, eV
    weight, energy_weight, forces_weight, stress_weight : float
        Per-configuration loss weights (``stress_weight`` also weights virials).
    config_type : str
        Group label used for per-type error tables (``"IsolatedAtom"`` marks E0 references).
    source : str
        ``"path, frame N"``; used in error messages.
    """

    atomic_numbers: np.ndarray
    positions: np.ndarray
    cell: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros((3, 3)))
    pbc: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(3, dtype=bool))
    energy: float | None = None
    forces: np.ndarray | None = None
    stress: np.ndarray | None = None
    virials: np.ndarray | None = None
    weight: float = 1.0
    energy_weight: float = 1.0
    forces_weight: float = 1.0
    stress_weight: float = 1.0
    config_type: str = "Default"
    source: str = "<memory>"

    def __post_init__(self):
        self.atomic_numbers = np.asarray(self.atomic_numbers, dtype=np.int64).reshape(-1)
        self.positions = np.asarray(self.positions, dtype=np.float64).reshape(-1, 3)
        self.cell = np.asarray(self.cell, dtype=np.float64).reshape(3, 3)
        self.pbc = np.broadcast_to(np.asarray(self.pbc, dtype=bool), (3,)).copy()
        if self.energy is not None:
            self.energy = float(self.energy)
        for name, shape in (("forces", (-1, 3)), ("stress", (3, 3)), ("virials", (3, 3))):
            v = getattr(self, name)
            if v is not None:
                setattr(self, name, np.asarray(v, dtype=np.float64).reshape(shape))

    @property
    def num_atoms(self) -> int:
        return int(self.atomic_numbers.shape[0])

    @property
    def is_isolated_atom(self) -> bool:
        """True for E0 references: ``config_type == "IsolatedAtom"``, or one atom without PBC."""
        return self.config_type == ISOLATED_ATOM or (self.num_atoms == 1 and not self.pbc.any())

    def to_ase(self, energy=None, forces=None, stress=None):
        """Return an ``ase.Atoms``; given predictions are attached as a SinglePointCalculator."""
        import ase
        from ase.calculators.singlepoint import SinglePointCalculator

        atoms = ase.Atoms(numbers=self.atomic_numbers, positions=self.positions, cell=self.cell, pbc=self.pbc)
        atoms.info["config_type"] = self.config_type
        results = {}
        if energy is not None:
            results["energy"] = float(energy)
        if forces is not None:
            results["forces"] = np.asarray(forces)
        if stress is not None:
            from ase.stress import full_3x3_to_voigt_6_stress

            results["stress"] = full_3x3_to_voigt_6_stress(np.asarray(stress))
        if results:
            atoms.calc = SinglePointCalculator(atoms, **results)
        return atoms
