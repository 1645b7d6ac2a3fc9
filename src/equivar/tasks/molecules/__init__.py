"""Molecule generation: EDM's stability from distances and RDKit validity / uniqueness / novelty (:func:`molecule_metrics`)."""

from ._bonds import EDM_ALLOWED_BONDS, EDM_BOND_LENGTHS, EDM_MARGINS, edm_bond_orders, edm_stability
from ._metrics import GeneratedMolecule, molecule_metrics, rdkit_molecule

__all__ = [
    "EDM_ALLOWED_BONDS",
    "EDM_BOND_LENGTHS",
    "EDM_MARGINS",
    "GeneratedMolecule",
    "edm_bond_orders",
    "edm_stability",
    "molecule_metrics",
    "rdkit_molecule",
]
