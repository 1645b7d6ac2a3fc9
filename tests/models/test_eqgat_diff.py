"""EQGAT-diff and the EDM-style baseline: E(3) and permutation equivariance (float32, float64), and the sampled
distribution's equivariance with fixed seeds through the diffusion core."""

from __future__ import annotations

import pytest
import torch

from equivar.diffusion import (
    CategoricalDiffusion,
    GaussianDiffusion,
    NoiseSource,
    complete_graph_pairs,
    cosine_schedule,
    sample,
)
from equivar.models import EDMDenoiser, EQGATDiff, build_model
from equivar.models.eqgat_diff import scatter_softmax
from equivar.o3 import rand_matrix
from equivar.testing import Typed, assert_equivariant

BATCH = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1, 1, 2, 2])
G = 3


def _inputs(dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    pairs = complete_graph_pairs(BATCH, G)
    pos = torch.randn(len(BATCH), 3, generator=g, dtype=torch.float64).to(dtype) * 1.5
    atoms = torch.randint(0, 5, (len(BATCH),), generator=g)
    charges = torch.randint(0, 3, (len(BATCH),), generator=g)
    bonds = torch.randint(0, 4, (pairs.shape[1],), generator=g)
    t = torch.tensor([0.1, 0.5, 0.9], dtype=dtype)
    return pos, atoms, charges, bonds, pairs, BATCH, t


def _eqgat(dtype):
    torch.manual_seed(0)
    return EQGATDiff(s_dim=16, v_dim=4, edge_dim=8, num_layers=2).to(dtype)


def test_eqgat_diff_is_e3_and_permutation_equivariant(dtype):
    model = _eqgat(dtype)

    def fn(pos, atoms, charges, bonds, pairs, batch, t):
        return model(pos, atoms, charges, bonds, pairs, batch, t, G)

    nodes = [Typed(None, nodes=True)]
    in_types = [Typed("positions", nodes=True)] + nodes * 2 + [None, "index", Typed(None, nodes=True), None]
    out_types = {
        "pos": Typed("positions", nodes=True),
        "atoms": Typed("5x0e", nodes=True),
        "charges": Typed("3x0e", nodes=True),
        "bonds": "4x0e",  # one row per listed pair; relabelling the pairs' atoms keeps the rows
    }
    report = assert_equivariant(fn, list(_inputs(dtype)), in_types, out_types, permutations=True)
    assert {k[0] for k in report.errors} >= {"rotation", "improper", "translation", "permutation"}


def test_eqgat_diff_bond_logits_do_not_depend_on_pair_order(dtype):
    """A pair listed (j, i) instead of (i, j) gets the same logits (the edge features are symmetrised)."""
    model = _eqgat(dtype)
    pos, atoms, charges, bonds, pairs, batch, t = _inputs(dtype)
    a = model(pos, atoms, charges, bonds, pairs, batch, t, G)
    b = model(pos, atoms, charges, bonds, pairs.flip(0), batch, t, G)
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(a["bonds"], b["bonds"], rtol=tol, atol=tol)
    torch.testing.assert_close(a["pos"], b["pos"], rtol=tol, atol=tol)


def test_eqgat_diff_molecules_do_not_talk_to_each_other():
    """Changing molecule 0 leaves the predictions for molecules 1 and 2 untouched (no cross-molecule edges)."""
    model = _eqgat(torch.float64)
    pos, atoms, charges, bonds, pairs, batch, t = _inputs(torch.float64)
    a = model(pos, atoms, charges, bonds, pairs, batch, t, G)
    pos2 = pos.clone()
    pos2[:4] += torch.randn(4, 3, dtype=torch.float64)
    b = model(pos2, atoms, charges, bonds, pairs, batch, t, G)
    torch.testing.assert_close(a["pos"][4:], b["pos"][4:], rtol=1e-12, atol=1e-12)
    assert (a["pos"][:4] - b["pos"][:4]).abs().max() > 1e-3


def test_scatter_softmax_normalises_per_receiver():
    logits = torch.tensor([[1.0, 2.0], [3.0, -1.0], [0.5, 0.5]], dtype=torch.float64)
    index = torch.tensor([0, 0, 1])
    w = scatter_softmax(logits, index, 2)
    torch.testing.assert_close(w[:2], torch.softmax(logits[:2], 0))
    torch.testing.assert_close(w[2], torch.ones(2, dtype=torch.float64))


def test_edm_denoiser_is_equivariant(dtype):
    torch.manual_seed(0)
    model = EDMDenoiser(hidden_dim=16, num_layers=2).to(dtype)
    pairs = complete_graph_pairs(BATCH, G)
    edge_index = torch.cat([pairs, pairs.flip(0)], 1)
    pos, *_ = _inputs(dtype)
    h = torch.randn(len(BATCH), 5, dtype=dtype)
    t = torch.tensor([0.1, 0.5, 0.9], dtype=dtype)

    def fn(pos, h, batch, t, edge_index):
        return model(pos, h, batch, t, G, edge_index)

    in_types = [Typed("positions", nodes=True), Typed(None, nodes=True), Typed(None, nodes=True), None, "index"]
    out_types = {"pos": Typed("vector", nodes=True), "h": Typed("5x0e", nodes=True)}  # eps_x: a vector field
    assert_equivariant(fn, [pos, h, BATCH, t, edge_index], in_types, out_types, permutations=True)


def test_registered_and_rebuilt_from_hparams():
    m = _eqgat(torch.float32)
    assert build_model(**m.hparams).hparams == m.hparams and m.hparams["name"] == "eqgat_diff"
    e = EDMDenoiser(hidden_dim=8, num_layers=1)
    assert build_model(**e.hparams).hparams == e.hparams and e.hparams["name"] == "edm_egnn"
    with pytest.raises(ValueError, match="num_layers must be an integer >= 1, got 0"):
        EQGATDiff(num_layers=0)


# --- the sampled distribution --------------------------------------------------------------------------------
class RotatedNoise(NoiseSource):
    """The draws of NoiseSource(seed) with every normal 3-vector rotated by R (uniforms untouched)."""

    def __init__(self, seed, R):
        super().__init__(seed)
        self.R = R

    def normal(self, shape, dtype=torch.float64, device=None):
        return (super().normal(shape) @ self.R.T).to(dtype=dtype, device=device)


@pytest.mark.parametrize("reflect", [False, True])
def test_sampled_molecules_are_equivariant_in_distribution(dtype, reflect):
    """With the same seed, rotated (reflected) prior noise gives rotated samples and the same classes, so with
    isotropic noise the distribution of samples is E(3)-invariant (the sampler's docstring)."""
    model = _eqgat(dtype)
    T = 12
    gd = GaussianDiffusion(cosine_schedule(T, nu=2.5, clip_min=0.05))
    cats = {
        "atoms": CategoricalDiffusion([0.5, 0.3, 0.1, 0.07, 0.03], cosine_schedule(T, nu=1.0, clip_min=0.05)),
        "charges": CategoricalDiffusion([0.05, 0.9, 0.05], cosine_schedule(T, nu=1.0, clip_min=0.05)),
        "bonds": CategoricalDiffusion([0.7, 0.2, 0.07, 0.03], cosine_schedule(T, nu=1.5, clip_min=0.05)),
    }
    pairs = complete_graph_pairs(BATCH, G)
    index = {"atoms": BATCH, "charges": BATCH, "bonds": BATCH[pairs[0]]}
    R = rand_matrix(generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    if reflect:
        R = -R

    def run(noise):
        return sample(
            model.denoise, batch=BATCH, num_graphs=G, gaussian=gd, categorical=cats, index=index,
            cond={"pairs": pairs}, noise=noise, dtype=dtype,
        )  # fmt: skip

    with torch.no_grad():
        a = run(NoiseSource(5))
        b = run(RotatedNoise(5, R))
    tol = 1e-4 if dtype == torch.float32 else 1e-9
    err = (b.pos.double() - a.pos.double() @ R.T).norm() / a.pos.double().norm()
    assert err < tol
    for k in cats:
        assert torch.equal(a.classes[k], b.classes[k]), k
    # and the samples are not trivially invariant: another seed gives other molecules
    c = run(NoiseSource(6))
    assert (c.pos - a.pos).abs().max() > 1e-2
