"""Layers on irreps features: linear maps, nonlinearities, radial functions, products, grids.

Every layer that claims equivariance has ``irreps_in`` / ``irreps_out``
attributes and an equivariance test (float32 and float64, with parity) in
``tests/nn``. Feature layout is e3nn's ``mul_ir`` (see ``equivar.o3``).

=============================  ==============================================
``Linear``                     equivariant channel mixing (e3nn ``o3.Linear``)
``ElementLinear``              one ``Linear`` per chemical element (skip connections)
``Gate``, ``NormActivation``   equivariant nonlinearities (e3nn semantics)
``Activation``                 pointwise activations on scalars
``MLP``                        e3nn-normalised fully connected net on scalars
``BesselBasis``                radial Bessel functions (optionally trainable)
``PolynomialCutoff``           MACE/DimeNet smooth envelope
``RadialEmbedding``            Bessel x cutoff edge features
``RadialMLP``                  per-edge TP weights from edge lengths (MACE)
``SplineRadial``               cubic B-spline radial functions (Facet)
``SymmetricContraction``       MACE product basis up to correlation ``nu``
``symmetric_contraction_basis``  generalised CG (U) tensors
``S2GridMLP``                  pointwise MLP on a sphere grid (Facet)
``AtomicEnergies``, ``ScaleShift``  E0s and energy scale/shift
``neighbour_weight``           smooth 0..1 weight of an atom's neighbours within r_max (isolated atoms: 0)
``EGCL``                       E(n)-equivariant message passing (EGNN, Satorras et al. 2021)
``GCL``, ``GNN``               plain message passing and EGNN's GNN baseline (FA-GNN's backbone)
``scatter_sum``                edge -> node aggregation
``edge_harmonics``             spherical harmonics of edge vectors (native CPU kernels, twice differentiable)
``gather``                     node -> edge rows (its adjoint)
``from_e3nn``                 e3nn layers -> equivar (``e3nn_state_dict``: the reverse)
=============================  ==============================================
"""

from ._activation_utils import NormalizedActivation, get_activation, normalize2mom_constant
from ._complete_graphs import complete_graph_edges, complete_graph_size, off_diagonal
from ._e3nn import e3nn_state_dict, from_e3nn
from ._edge_harmonics import edge_harmonics
from ._egcl import EGCL, aggregate, egcl_params_from_concatenated, gather_add, inverse_degree, uniform_degree
from ._egcl_fused import egcl_dense_fused, egcl_fusable
from ._element_linear import ElementLinear
from ._gate import Activation, Gate, NormActivation
from ._gcl import GCL, GNN
from ._isolation import ISOLATION_WIDTH, neighbour_weight, smootherstep
from ._linear import Linear
from ._mlp import MLP
from ._radial import BesselBasis, PolynomialCutoff, RadialEmbedding, RadialMLP
from ._s2grid_mlp import S2GridMLP
from ._scale_shift import AtomicEnergies, ScaleShift
from ._scatter import gather, scatter_sum
from ._spline import SplineRadial
from ._symmetric_basis import symmetric_contraction_basis
from ._symmetric_contraction import SymmetricContraction

__all__ = [
    "ISOLATION_WIDTH",
    "Activation",
    "AtomicEnergies",
    "BesselBasis",
    "EGCL",
    "GCL",
    "GNN",
    "aggregate",
    "egcl_params_from_concatenated",
    "gather_add",
    "uniform_degree",
    "complete_graph_edges",
    "complete_graph_size",
    "off_diagonal",
    "egcl_dense_fused",
    "egcl_fusable",
    "ElementLinear",
    "Gate",
    "Linear",
    "MLP",
    "NormActivation",
    "NormalizedActivation",
    "PolynomialCutoff",
    "RadialEmbedding",
    "RadialMLP",
    "S2GridMLP",
    "ScaleShift",
    "SplineRadial",
    "SymmetricContraction",
    "e3nn_state_dict",
    "edge_harmonics",
    "from_e3nn",
    "get_activation",
    "normalize2mom_constant",
    "scatter_sum",
    "gather",
    "neighbour_weight",
    "smootherstep",
    "inverse_degree",
    "symmetric_contraction_basis",
]
