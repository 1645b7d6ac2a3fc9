"""Soft equivariance: exact projections, penalties, training lowers the equivariance error, adaptive strengths."""

import pytest
import torch

from equivar import o3
from equivar.symmetry import Typed
from equivar.symmetry._types import irreps_matrix
from equivar.symmetry.audit import Subject, equivariance_errors
from equivar.symmetry.regularizers import (
    AdaptiveSymmetry,
    EquivariantProjector,
    equivariant_projection,
    linear_penalty,
    orbit_consistency,
    sample_elements,
)

POS = Typed("positions", nodes=True, node_axis=1)


@pytest.mark.parametrize("group", ["SO3", "O3", "SO2(z)", "SO2(1,0,1)", "Oh", "D3(x)", "C4", "Ci"])
def test_projection_is_exact_orthogonal_projection(group, dtype):
    rin, rout = "2x1o+1x2e", "1x0e+1x1e+2x1o+1x2o"
    g = torch.Generator().manual_seed(0)
    P = EquivariantProjector(rin, rout, group)
    W = torch.randn(o3.Irreps(rout).dim, o3.Irreps(rin).dim, generator=g, dtype=torch.float64).to(dtype)
    V = torch.randn(W.shape, generator=g, dtype=torch.float64).to(dtype)
    PW = P(W)
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    assert (P(PW) - PW).abs().max() < tol  # idempotent
    assert abs(float((PW * V).sum() - (W * P(V)).sum())) < tol * 10  # self-adjoint
    for e in sample_elements(group, 4, g):  # equivariant: D_out(g) P(W) = P(W) D_in(g)
        Do = irreps_matrix(o3.Irreps(rout), e.R.to(dtype))
        Di = irreps_matrix(o3.Irreps(rin), e.R.to(dtype))
        assert (Do @ PW - PW @ Di).abs().max() < tol * 10
    assert 0 < float(linear_penalty(W, rin, rout, group)) < 1
    assert float(linear_penalty(PW, rin, rout, group)) < tol


def test_so3_projection_matches_schur():
    # SO(3), irreps -> irreps: P(W) = A (x) I per pair of equal degrees, A = block traces / (2l+1)
    W = torch.randn(6, 6, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    PW = equivariant_projection(W, "2x1o", "2x1o", "SO3")
    A = torch.stack(
        [torch.stack([W[3 * i : 3 * i + 3, 3 * j : 3 * j + 3].trace() / 3 for j in range(2)]) for i in range(2)]
    )
    assert torch.allclose(PW, torch.kron(A, torch.eye(3, dtype=torch.float64)), atol=1e-13)
    # O(3) forbids 1o -> 1e maps, SO(3) allows them
    W2 = torch.randn(3, 3, dtype=torch.float64)
    assert equivariant_projection(W2, "1o", "1e", "O3").abs().max() < 1e-13
    assert equivariant_projection(W2, "1o", "1e", "SO3").abs().max() > 1e-3


def test_linear_penalty_descent_reaches_equivariance():
    lin = torch.nn.Linear(12, 6).double()
    for _ in range(200):
        loss = linear_penalty(lin, "4x1o", "1x1o+1x1e", "O3")
        lin.zero_grad()
        loss.backward()
        with torch.no_grad():
            for p in lin.parameters():
                p -= 5.0 * p.grad
    assert float(linear_penalty(lin, "4x1o", "1x1o+1x1e", "O3").detach()) < 1e-6
    assert lin.bias.abs().max() < 1e-3  # a vector output admits no invariant bias
    with pytest.raises(ValueError, match="rotation group"):
        linear_penalty(lin, "4x1o", "1x1o+1x1e", "translations")
    with pytest.raises(ValueError, match="does not match"):
        linear_penalty(lin, "3x1o", "1x1o+1x1e", "O3")


def test_orbit_consistency():
    x = torch.randn(8, 4, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)

    def inv(p):
        return (p[:, :, None] - p[:, None]).norm(dim=-1).sum((1, 2))[:, None]

    for group in ("SO3", "O3", "Oh", "translations", "permutations"):
        ctx = {"num_nodes": 4} if group == "permutations" else {}
        els = sample_elements(group, 3, torch.Generator().manual_seed(1), **ctx)
        assert float(orbit_consistency(inv, [x], [POS], "0e", group, elements=els)) < 1e-25
    mlp = torch.nn.Sequential(
        torch.nn.Flatten(), torch.nn.Linear(12, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1)
    ).double()
    r = orbit_consistency(mlp, [x], [POS], "0e", "SO3", n=3, generator=torch.Generator().manual_seed(0))
    assert float(r.detach()) > 1e-3 and r.requires_grad
    # batched (one call on all copies) and unbatched evaluations agree
    els = sample_elements("SO3", 3, torch.Generator().manual_seed(2))
    a = orbit_consistency(mlp, [x], [POS], "0e", "SO3", elements=els)
    b = orbit_consistency(mlp, [x], [POS], "0e", "SO3", elements=els, batched=False)
    assert torch.allclose(a, b, rtol=1e-10)


def _invariant_task(n, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, 3, generator=g, dtype=torch.float64)
    d = (x[:, :, None] - x[:, None]).norm(dim=-1)
    return x, torch.exp(-d).sum((1, 2))[:, None]


def _train(strength, steps=150, seed=0):
    torch.manual_seed(seed)
    mlp = torch.nn.Sequential(
        torch.nn.Flatten(), torch.nn.Linear(12, 32), torch.nn.SiLU(), torch.nn.Linear(32, 1)
    ).double()
    opt = torch.optim.Adam(mlp.parameters(), lr=3e-3)
    x, y = _invariant_task(64, 0)
    gen = torch.Generator().manual_seed(seed)
    errs = []
    xt, _ = _invariant_task(64, 1)
    s = Subject.batched(mlp, [xt], [POS], "0e")
    for step in range(steps + 1):
        if step % 50 == 0:
            errs.append(equivariance_errors(s, ["O3"], n_elements=4, seed=5)["O3"].aggregate["out"])
        pred = mlp(x)
        loss = (pred - y).pow(2).mean()
        if strength:
            loss = loss + strength * orbit_consistency(mlp, [x], [POS], "0e", "O3", n=2, generator=gen, y=pred)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return errs


def test_regularizer_lowers_equivariance_error_during_training():
    reg = _train(strength=10.0)
    free = _train(strength=0.0)
    assert reg[-1] < 0.5 * reg[0]  # decreases during training
    assert reg[-1] < 0.3 * free[-1]  # and ends well below the unregularized model's


def test_adaptive_strengths_find_exact_and_broken_symmetries():
    # target z0 + z1/2: exactly invariant under rotations about z, odd under inversion, not SO(3)-invariant
    g = torch.Generator().manual_seed(0)
    x = torch.randn(128, 3, 3, generator=g, dtype=torch.float64)
    xv = torch.randn(64, 3, 3, generator=g, dtype=torch.float64)

    def target(p):
        return (p[:, 0, 2] + 0.5 * p[:, 1, 2])[:, None]

    y, yv = target(x), target(xv)
    torch.manual_seed(0)
    mlp = torch.nn.Sequential(
        torch.nn.Flatten(), torch.nn.Linear(9, 32), torch.nn.SiLU(), torch.nn.Linear(32, 1)
    ).double()
    reg = AdaptiveSymmetry(["SO2(z)", "Ci", "SO3"], [POS], "0e", warmup=2, factor=4.0, seed=0)
    opt = torch.optim.Adam(mlp.parameters(), lr=1e-2)
    for step in range(1, 201):
        pred = mlp(x)
        pen, terms = reg.penalty(mlp, [x], y=pred)
        loss = (pred - y).pow(2).mean() / y.var() + pen
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 20 == 0:
            reg.update(mlp, [xv], yv, torch.nn.functional.mse_loss)
    assert set(terms) == {"SO2(z)", "Ci", "SO3"}
    assert reg.strengths["SO2(z)"] == reg.max_strength
    assert reg.strengths["Ci"] == reg.min_strength and reg.strengths["SO3"] == reg.min_strength
    lv = reg.levels(mlp, [xv])
    assert lv["SO2(z)"] < 0.05 and lv["Ci"] > 1.5 and lv["SO3"] > 0.5
    assert len(reg.history) == 10 and reg.history[0]["strengths"]["Ci"] == reg.min_strength
