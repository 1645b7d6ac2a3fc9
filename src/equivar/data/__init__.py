"""Atomic structures for training and inference.

Flow: file -> :func:`read_dataset` (``list[Configuration]``, float64, eV/Å,
validated) -> :func:`config_to_graph` (neighbour lists through vesin, PBC) ->
:func:`collate` (the batch dict of ``docs/contracts.md``).

Images: :func:`read_idx` / :func:`read_mnist` read the IDX files of MNIST
and Fashion-MNIST (gzipped or not); :func:`load_image_set` gives float
tensors and batches ``{"images", "labels"}``; :func:`translating_mnist` /
:func:`rotating_mnist` generate FERNN's moving-digit sequences;
:func:`affnist_like` an affNIST-style test set (40 x 40, random affine maps in
affNIST's ranges) from MNIST digits; :func:`mnist_world` a partially observed
MNIST world (a window the agent moves over a canvas of moving digits).

Also: isolated-atom reference energies (:func:`resolve_e0s`), seeded
train/validation splits (:func:`random_split`), a dataset/loader pair with
distributed sharding, and the datasets shipped with the package
(:func:`embedded_path`).

Molecules: :func:`read_qm9` reads QM9 from the CSV files of ``qm9pack``
(:func:`qm9_files` finds them), :func:`qm9_split` gives EDM's or EQGAT-diff's
split, :func:`molecule_graph` / :func:`qm9_graphs` the bonds and formal
charges from SMILES + geometry with RDKit.

Trajectories: :mod:`equivar.data.nbody` (simulated N-body systems) and the
ETH-UCY reader (:func:`read_trajectory_file`, :func:`ethucy_dataset`) give
scenes of agents (:class:`TrajectoryDataset`) batched by
:func:`collate_scenes` (the dynamics batch of ``docs/contracts.md``).

Example
-------
>>> from equivar import data
>>> configs = data.read_dataset(data.embedded_path("cuau_emt"))   # doctest: +SKIP
>>> ds = data.AtomicGraphDataset(configs, r_max=4.5)             # doctest: +SKIP
>>> batch = data.collate([ds[0], ds[1]])                          # doctest: +SKIP
"""

from ._affnist import AffnistRanges, affnist_like, affnist_matrices, pad_images
from ._configuration import ISOLATED_ATOM, Configuration
from ._e0s import check_e0s_spec, e0s_from_isolated_atoms, fit_e0s_least_squares, resolve_e0s, split_isolated_atoms
from ._embedded import embedded_datasets, embedded_path
from ._ethucy import TrackTable, ego_samples, ethucy_dataset, read_trajectory_file, scene_sequences, split_files
from ._graph import LABELS, WEIGHTS, batch_to, collate, config_to_graph, graph_statistics
from ._idx import read_idx, read_mnist
from ._images import ImageSet, collate_images, load_image_set
from ._loader import AtomicGraphDataset, ShardSampler, make_loader
from ._mnist_world import MNISTWorld, mnist_world
from ._molgraph import MolecularGraph, canonical_smiles, molecule_graph, rdkit_chem
from ._moving_mnist import MovingSequences, rotating_mnist, translating_mnist
from ._neighbors import neighbor_list
from ._qm9 import QM9_ELEMENTS, QM9_GDB_SIZE, QM9_NUM_MOLECULES, QM9Molecule, qm9_files, qm9_graphs, qm9_split, read_qm9
from ._readers import KCAL_MOL_TO_EV, DataKeys, atoms_to_configuration, frame_source, read_ase, read_dataset, read_rmd17
from ._split import random_split
from ._trajectory import TrajectoryDataset, collate_scenes, fully_connected_edges
from ._validation import MIN_DISTANCE, check_elements, check_finite, check_overlaps, check_shapes, validate

__all__ = [
    "AffnistRanges",
    "affnist_like",
    "affnist_matrices",
    "pad_images",
    "ISOLATED_ATOM",
    "Configuration",
    "check_e0s_spec",
    "e0s_from_isolated_atoms",
    "fit_e0s_least_squares",
    "resolve_e0s",
    "split_isolated_atoms",
    "embedded_datasets",
    "embedded_path",
    "LABELS",
    "WEIGHTS",
    "batch_to",
    "collate",
    "config_to_graph",
    "graph_statistics",
    "AtomicGraphDataset",
    "ShardSampler",
    "make_loader",
    "neighbor_list",
    "MolecularGraph",
    "canonical_smiles",
    "molecule_graph",
    "rdkit_chem",
    "QM9_ELEMENTS",
    "QM9_GDB_SIZE",
    "QM9_NUM_MOLECULES",
    "QM9Molecule",
    "qm9_files",
    "qm9_graphs",
    "qm9_split",
    "read_qm9",
    "KCAL_MOL_TO_EV",
    "DataKeys",
    "atoms_to_configuration",
    "frame_source",
    "read_ase",
    "read_dataset",
    "read_rmd17",
    "read_idx",
    "ImageSet",
    "MNISTWorld",
    "MovingSequences",
    "mnist_world",
    "rotating_mnist",
    "translating_mnist",
    "collate_images",
    "load_image_set",
    "read_mnist",
    "random_split",
    "TrajectoryDataset",
    "TrackTable",
    "ego_samples",
    "ethucy_dataset",
    "read_trajectory_file",
    "scene_sequences",
    "split_files",
    "collate_scenes",
    "fully_connected_edges",
    "MIN_DISTANCE",
    "check_elements",
    "check_finite",
    "check_overlaps",
    "check_shapes",
    "validate",
]
