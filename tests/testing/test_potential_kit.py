"""The potential test kit catches what each of its checks is for.

A small MACE passes every check (``check_potential``); wrappers that break
one property each (a parity-odd energy term, flipped forces, scaled stress,
an energy that depends on the batch, a shifted lone atom, a hard cutoff,
hyperparameters that no longer describe the model, a perturbed native
kernel) are caught by the check for that property, and only where expected.
"""

from __future__ import annotations

import pytest
import torch

from equivar.models import MACE
from equivar.testing import (
    CHECKS,
    check_batch_consistency,
    check_checkpoint_roundtrip,
    check_cutoff_smoothness,
    check_forces_finite_differences,
    check_hparams_roundtrip,
    check_isolated_atoms,
    check_native_training_gradient,
    check_potential,
    check_stress_finite_strain,
    check_symmetry,
    isolated_atom_energy,
    potential_structures,
)

SMALL = dict(
    r_max=3.0,
    num_bessel=4,
    max_ell=2,
    num_channels=4,
    max_L=1,
    correlation=2,
    num_interactions=2,
    atomic_numbers=[1, 6, 8],
    atomic_energies=[-0.5, -37.8, -75.0],
    avg_num_neighbors=4.0,
    radial_mlp=[8],
    readout_mlp=8,
)


def _mace(dtype=torch.float64, **kw):
    return MACE(**dict(SMALL, dtype="float64" if dtype == torch.float64 else "float32", seed=2, **kw))


class Broken(torch.nn.Module):
    """A potential whose outputs ``edit(batch, out)`` changes (the contract's attributes pass through)."""

    def __init__(self, inner, edit):
        super().__init__()
        self.inner, self.edit = inner, edit
        self.r_max, self.atomic_numbers, self.hparams = inner.r_max, inner.atomic_numbers, inner.hparams

    @property
    def dtype(self):
        return self.inner.dtype

    def isolated_atom_energy(self, z):
        return isolated_atom_energy(self.inner, z)

    def forward(self, batch, compute_forces=True, compute_stress=False):
        return self.edit(batch, dict(self.inner(batch, compute_forces, compute_stress)))


def _centered(batch):
    pos = batch["positions"]
    G = int(batch["ptr"].numel() - 1)
    cent = torch.zeros(G, 3, dtype=pos.dtype).index_add_(0, batch["batch"], pos)
    cent = cent / torch.bincount(batch["batch"], minlength=G)[:, None]
    return pos - cent[batch["batch"]]


def _chiral(batch, out):
    """+ a pseudoscalar per graph: v1 . (v2 x v3) with v_k = sum_i x_i |x_i|^(2k) (centred): invariant under
    rotations, translations and permutations, odd under inversion."""
    x = _centered(batch)
    G = out["energy"].shape[0]
    r2 = (x * x).sum(-1, keepdim=True)
    v = [torch.zeros(G, 3, dtype=x.dtype).index_add_(0, batch["batch"], x * r2**k) for k in (1, 2, 3)]
    out["energy"] = out["energy"] + 0.1 * (v[0] * torch.linalg.cross(v[1], v[2])).sum(-1)
    return out


def test_small_mace_passes_every_check():
    report = check_potential(_mace)
    assert set(report.results) == {(c, d) for c, (_, dts) in CHECKS.items() for d in dts}
    report.assert_ok()
    assert report.results[("symmetry", "float64")][1] < 1e-12  # measured, not just "ran"
    assert report.results[("forces_finite_differences", "float64")][1] < 1e-7


def test_symmetry_catches_a_parity_odd_term():
    model = Broken(_mace(), _chiral)
    rep = check_symmetry(model, group="SO3")  # rotations, translations, permutations: fine
    assert rep.max < 1e-9
    with pytest.raises(AssertionError, match="improper"):
        check_symmetry(model)


def test_symmetry_catches_a_rotation_dependent_term():
    def edit(batch, out):
        out["energy"] = out["energy"] + 0.1 * torch.zeros_like(out["energy"]).index_add_(
            0, batch["batch"], _centered(batch)[:, 0] ** 2
        )
        return out

    with pytest.raises(AssertionError, match="rotation"):
        check_symmetry(Broken(_mace(), edit), group="SO3")


def test_forces_check_catches_wrong_forces():
    def edit(batch, out):
        if "forces" in out:
            out["forces"] = -out["forces"]
        return out

    assert check_forces_finite_differences(_mace()) < 1e-7
    with pytest.raises(AssertionError, match="finite differences"):
        check_forces_finite_differences(Broken(_mace(), edit))
    with pytest.raises(ValueError, match="float64"):
        check_forces_finite_differences(_mace(torch.float32))


def test_stress_check_catches_a_scaled_stress():
    def edit(batch, out):
        if "stress" in out:
            out["stress"] = out["stress"] * 1.01
        return out

    assert check_stress_finite_strain(_mace()) < 1e-7
    with pytest.raises(AssertionError, match="finite strain"):
        check_stress_finite_strain(Broken(_mace(), edit))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_batch_check_catches_batch_dependence(dtype):
    def edit(batch, out):  # every graph sees the size of the whole batch
        out["energy"] = out["energy"] + 0.01 * batch["positions"].shape[0]
        return out

    with pytest.raises(AssertionError, match="batch of two"):
        check_batch_consistency(Broken(_mace(dtype), edit))


def test_isolated_atom_check_catches_a_lone_atom_energy():
    def edit(batch, out):  # a lone atom that still interacts with itself
        out["node_energy"] = out["node_energy"] + 1e-3
        out["energy"] = out["energy"] + 1e-3 * torch.bincount(batch["batch"], minlength=out["energy"].shape[0])
        return out

    assert check_isolated_atoms(_mace()) == 0.0
    with pytest.raises(AssertionError, match="isolated"):
        check_isolated_atoms(Broken(_mace(), edit))


def test_smoothness_check_catches_a_hard_cutoff():
    def edit(batch, out):  # + 0.05 eV per edge: a step at r_max
        e = batch["edge_index"]
        out["energy"] = out["energy"] + 0.05 * torch.bincount(batch["batch"][e[1]], minlength=out["energy"].shape[0])
        return out

    assert check_cutoff_smoothness(_mace()) < 1e-6
    with pytest.raises(AssertionError, match="jump across r_max"):
        check_cutoff_smoothness(Broken(_mace(), edit))


def test_roundtrip_checks_catch_hparams_that_do_not_describe_the_model(tmp_path):
    model = _mace()
    assert check_hparams_roundtrip(model) == 0.0
    assert check_checkpoint_roundtrip(model, directory=str(tmp_path)) < 1e-12
    model.hparams = dict(model.hparams, r_max=2.5)  # the model was built with 3.0
    with pytest.raises(AssertionError, match="build_model"):
        check_hparams_roundtrip(model)
    with pytest.raises(AssertionError, match="checkpoint"):
        check_checkpoint_roundtrip(model, directory=str(tmp_path))


def test_native_gradient_check_catches_a_wrong_kernel_gradient(monkeypatch):
    from equivar.tp import _cg_native, native_available

    if native_available().get("equivar_cg") is not None:
        pytest.skip(f"native cg kernel unavailable: {native_available()['equivar_cg']}")
    model = _mace()
    assert check_native_training_gradient(model) < 1e-10
    real = _cg_native.uvu_backward

    def skewed(*args, **kw):  # the native backward, 1% off
        return tuple(None if g is None else 1.01 * g for g in real(*args, **kw))

    monkeypatch.setattr(_cg_native, "uvu_backward", skewed)
    with pytest.raises(AssertionError, match="native kernels vs PyTorch"):
        check_native_training_gradient(model)


def test_structures_follow_the_model():
    model = _mace()
    s = potential_structures(model)
    assert set(s) == {"molecule", "periodic"}
    assert set(s["molecule"].atomic_numbers.tolist()) <= {1, 6, 8}
    assert s["periodic"].pbc.all() and abs(float(torch.linalg.det(torch.tensor(s["periodic"].cell)))) > 20.0
    with pytest.raises(ValueError, match="unknown check"):
        check_potential(_mace, ["nope"])
