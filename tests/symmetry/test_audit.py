"""Audit: errors per group/sample/output, NERO sweeps, consensus, task metrics, potentials."""

import math

import pytest
import torch

from equivar import o3
from equivar.symmetry import Typed
from equivar.symmetry.audit import Subject, axis_sweep, disc_sweep, equivariance_errors, potential_subject

POS = Typed("positions", nodes=True, node_axis=1)


def _sh(v):
    return o3.spherical_harmonics("0e+1o+2e+3o", v)


def test_exactly_equivariant_function(dtype):
    x = torch.randn(16, 3, generator=torch.Generator().manual_seed(0), dtype=dtype)
    s = Subject.batched(_sh, [x], ["vector"], "0e+1o+2e+3o")
    errs = equivariance_errors(s, ["SO3", "O3", "SO2(x)", "Oh", "D4(z)", "C3(1,1,1)", "Ih"], n_elements=6)
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    for name, e in errs.items():
        assert e.max < tol, (name, e.max)
        assert e.per_element["out"].shape[1] == 16
    assert set(errs["O3"].per_block["out"]) == {"1x0e", "1x1o", "1x2e", "1x3o"}
    # finite groups are tested exhaustively (identity excluded)
    assert len(errs["Oh"].labels) == 47 and len(errs["Ih"].labels) == 119


def test_wrong_parity_is_caught():
    x = torch.randn(8, 3, dtype=torch.float64)
    s = Subject.batched(lambda v: v, [x], ["vector"], "1e")  # a polar vector claimed axial
    errs = equivariance_errors(s, ["SO3", "O3", "Ci"])
    assert errs["SO3"].max < 1e-14
    assert errs["Ci"].max == pytest.approx(2.0)  # |f(-v) - (+v)| / max(|f(-v)|, |v|) = |-2v| / |v|
    assert errs["O3"].aggregate["out"] > 0.5


def _c4_invariant(v):
    """Invariant under rotations by multiples of 90 degrees about z only."""
    return (v[..., 0] ** 4 + v[..., 1] ** 4 + v[..., 2] + (v[..., 0] * v[..., 1]) ** 2)[..., None]


def test_breaking_angles_of_c4_function(dtype):
    x = torch.randn(6, 3, generator=torch.Generator().manual_seed(1), dtype=dtype)
    s = Subject.batched(_c4_invariant, [x], ["vector"], "0e")
    sw = axis_sweep(s, n_angles=72)  # 5 degree steps
    err_z = sw.mean("error", "out")[list(sw.axes).index("z")]
    deg = torch.rad2deg(sw.angles)
    on = torch.isclose(torch.remainder(deg, 90.0), torch.zeros_like(deg), atol=1e-6)
    tol = 1e-6 if dtype == torch.float32 else 1e-13
    assert err_z[on].max() < tol
    assert err_z[~on].min() > 1e-3
    assert torch.equal(sw.breaking_angles("out", 1e-4, "z"), deg[~on])
    # about x every non-zero angle breaks it
    err_x = sw.mean("error", "out")[0]
    assert err_x[1:].min() > 1e-3 and err_x[0] == 0
    errs = equivariance_errors(s, ["C4(z)", "D4(z)", "SO3"])
    assert errs["C4(z)"].max < tol
    assert errs["D4(z)"].max > 0.01 and errs["SO3"].max > 0.01
    # consensus: the orbit average about z of a C4-only function differs from its predictions
    assert sw.mean("consensus", "out").max() > 1e-3


def test_per_sample_errors_find_the_symmetric_sample():
    x = torch.randn(5, 3, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    x[3] = torch.tensor([0.0, 0.0, 1.3])  # on the z axis: every rotation about z leaves it fixed
    s = Subject.batched(_c4_invariant, [x], ["vector"], "0e")
    errs = equivariance_errors(s, ["SO2(z)"], n_elements=5)
    per = errs["SO2(z)"].per_sample("out")
    assert per[3] < 1e-14 and per[[0, 1, 2, 4]].min() > 1e-4


def test_consensus_and_task_metric_for_equivariant_model():
    x = torch.randn(4, 5, 3, generator=torch.Generator().manual_seed(3), dtype=torch.float64)

    def f(p):  # centroid-relative sum of |r| r : a translation-invariant vector per cloud
        c = p - p.mean(1, keepdim=True)
        return (c.norm(dim=-1, keepdim=True) * c).sum(1)

    labels = f(x)
    s = Subject.batched(f, [x], [POS], "1o", labels=labels)
    sw = axis_sweep(s, n_angles=12)
    assert sw.error["out"].max() < 1e-13
    assert sw.consensus["out"].max() < 1e-13
    assert sw.task["out"].max() < 1e-13
    d = disc_sweep(s, angles_deg=(60, 180), resolution=5)
    assert d.error["out"].shape == (2, d.uv.shape[0], 4) and d.error["out"].max() < 1e-13
    # labels that are not the model's: the task metric sees it at every angle
    s2 = Subject.batched(f, [x], [POS], "1o", labels=labels + 1.0)
    t = axis_sweep(s2, n_angles=8).task["out"]
    assert t.min() > 0.1


def test_disc_axes_cover_sphere():
    from equivar.symmetry.audit import disc_axes

    uv, axes = disc_axes(21)
    assert torch.allclose(axes.norm(dim=-1), torch.ones(len(axes), dtype=torch.float64))
    assert axes[:, 2].min() < -0.9 and axes[:, 2].max() > 0.99  # both poles reached
    # equal-area: about as many axes in each hemisphere
    assert abs(int((axes[:, 2] > 0).sum()) - int((axes[:, 2] < 0).sum())) < 0.15 * len(axes)


def test_translations_and_permutations():
    x = torch.randn(3, 6, 3, generator=torch.Generator().manual_seed(4), dtype=torch.float64)

    def invariant(p):
        return (p[:, :, None] - p[:, None]).norm(dim=-1).sum((1, 2))

    def ordered(p):  # depends on node order and absolute position
        return (p * torch.arange(1.0, 7.0, dtype=p.dtype)[None, :, None]).sum((1, 2))

    s = Subject.batched(invariant, [x], [POS], "0e")
    e = equivariance_errors(s, ["O3", "translations", "permutations"])
    assert max(v.max for v in e.values()) < 1e-13
    s = Subject.batched(ordered, [x], [POS], "0e")
    e = equivariance_errors(s, ["translations", "permutations"])
    assert e["translations"].max > 1e-2 and e["permutations"].max > 1e-2


def _pair_potential(batch, compute_forces=True):
    pos = batch["positions"]
    if not pos.requires_grad:
        pos = pos.detach().requires_grad_(True)
    s, r = batch["edge_index"]
    d = (pos[r] - pos[s] + batch["shifts"]).norm(dim=-1)
    e_edge = (d - 1.2) ** 2 * torch.exp(-d)
    e = torch.zeros(int(batch["ptr"].numel() - 1), dtype=pos.dtype).index_add(0, batch["batch"][r], e_edge)
    (g,) = torch.autograd.grad(e.sum(), pos)
    return {"energy": e, "forces": -g}


def _batch(n_graphs=3, n=5, seed=0, dtype=torch.float64):
    from equivar import data as D

    gen = torch.Generator().manual_seed(seed)
    graphs = []
    for i in range(n_graphs):
        pos = torch.randn(n, 3, generator=gen, dtype=torch.float64) * 1.5
        c = D.Configuration(
            torch.tensor([1, 6, 8, 1, 6])[:n].numpy(),
            pos.numpy(),
            torch.zeros(3, 3).numpy(),
            torch.zeros(3, dtype=torch.bool).numpy(),
            source=f"t{i}",
        )
        graphs.append(D.config_to_graph(c, 4.0))
    return D.batch_to(D.collate(graphs), dtype=dtype)


def test_potential_subject_pair_potential(dtype):
    b = _batch(dtype=dtype)
    b["energy"] = _pair_potential(b)["energy"].detach()
    s = potential_subject(_pair_potential, b)
    assert s.num_samples == 3 and set(s.out_types) == {"energy", "forces"}
    e = equivariance_errors(s, ["SO3", "O3", "translations", "permutations", "Oh"], n_elements=4)
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    for name, v in e.items():
        assert v.max < tol, (name, v.max)
        assert v.per_element["forces"].shape[1] == 3
    sw = axis_sweep(s, n_angles=8)
    assert sw.task["energy"].max() < tol * 10


def test_flat_mlp_breaks_everywhere():
    from equivar.symmetry._baselines import FlatMLPPotential

    b = _batch()
    m = FlatMLPPotential(5, hidden=16)
    s = potential_subject(m, b)
    e = equivariance_errors(s, ["SO3", "translations", "permutations", "C4"], n_elements=3)
    for name, v in e.items():
        assert v.aggregate["forces"] > 1e-3, name
    assert m.training is True  # restored after the audit (put in eval for it)


def test_equivar_model_is_equivariant_float32():
    # an exactly equivariant equivar model (MACE, tiny) audited in float32: error < 1e-5 relative
    from equivar.models import build_model

    m = build_model(
        name="mace",
        r_max=4.0,
        num_bessel=4,
        max_ell=2,
        num_channels=4,
        max_L=1,
        correlation=2,
        num_interactions=2,
        atomic_numbers=[1, 6, 8],
        radial_mlp=[8, 8],
        readout_mlp=8,
        dtype="float32",
        seed=0,
    )
    b = _batch(n_graphs=2, dtype=torch.float32)
    s = potential_subject(m, b)
    e = equivariance_errors(s, ["SO3", "O3", "translations", "permutations", "D4(z)"], n_elements=3)
    for name, v in e.items():
        assert v.max < 1e-5, (name, v.max)


def test_bad_inputs():
    x = torch.randn(4, 3)
    with pytest.raises(ValueError, match="unknown type"):
        Subject.batched(lambda v: v, [x], ["vectr"], "1o")
    with pytest.raises(ValueError, match="in_types"):
        Subject.batched(lambda v: v, [x], ["1o", "1o"], "1o")
    s = Subject.batched(lambda v: v, [x], ["1o"], "1o")
    with pytest.raises(ValueError, match="nodes=True"):
        equivariance_errors(s, ["permutations"])
    with pytest.raises(ValueError, match="unknown group"):
        equivariance_errors(s, ["SU2"])
    assert math.isfinite(equivariance_errors(s, ["SO3"])["SO3"].max)
