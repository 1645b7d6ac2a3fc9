"""Molecule generation (task ``molecule_diffusion``): QM9 batches, EQGAT-diff's and EDM's diffusions, sampling, and
the metrics: EDM's stability from distances, RDKit validity / connectivity / uniqueness / novelty (:func:`molecule_metrics`)."""

from ._bonds import EDM_ALLOWED_BONDS, EDM_BOND_LENGTHS, EDM_MARGINS, edm_bond_orders, edm_stability
from ._data import ATOM_Z, CHARGES, MoleculeData, MoleculeSet, collate_molecules, encode_graphs, marginals
from ._geometry import bond_angles, bond_lengths, geometry_distances
from ._methods import EDMMethod, EQGATMethod, draw_sizes
from ._metrics import GeneratedMolecule, molecule_metrics, rdkit_molecule
from ._task import METRIC_KEYS, MoleculeDiffusionTask, reference_molecules, score, write_sdf

__all__ = [
    "ATOM_Z",
    "METRIC_KEYS",
    "reference_molecules",
    "score",
    "bond_angles",
    "bond_lengths",
    "geometry_distances",
    "CHARGES",
    "EDMMethod",
    "EQGATMethod",
    "MoleculeData",
    "MoleculeDiffusionTask",
    "MoleculeSet",
    "collate_molecules",
    "draw_sizes",
    "encode_graphs",
    "marginals",
    "write_sdf",
    "EDM_ALLOWED_BONDS",
    "EDM_BOND_LENGTHS",
    "EDM_MARGINS",
    "GeneratedMolecule",
    "edm_bond_orders",
    "edm_stability",
    "molecule_metrics",
    "rdkit_molecule",
]
