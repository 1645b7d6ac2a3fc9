"""Frame averaging: exact equivariance of any backbone, degenerate point clouds, stochastic mode."""

import math

import pytest
import torch

from equivar.symmetry import FrameAveraging, Typed, frame_set
from equivar.symmetry.audit import Subject, equivariance_errors

N = 6
POS = Typed("positions", nodes=True, node_axis=1)
OUT = {"e": "0e", "v": "1o", "f": "1o+2e", "p": POS}
IN = [POS, Typed("2x0e", nodes=True, node_axis=1), Typed("1o", nodes=True, node_axis=1)]


class Backbone(torch.nn.Module):
    """A plain MLP on flattened positions + node features: equivariant to nothing."""

    def __init__(self, dtype):
        super().__init__()
        torch.manual_seed(0)
        self.net = torch.nn.Sequential(
            torch.nn.Linear(N * 8, 64), torch.nn.SiLU(), torch.nn.Linear(64, 1 + 3 + 8 + 3 * N)
        ).to(dtype)

    def forward(self, x, s, v):
        y = self.net(torch.cat([x, s, v], -1).flatten(1))
        return {"e": y[:, :1], "v": y[:, 1:4], "f": y[:, 4:12], "p": y[:, 12:].reshape(-1, N, 3)}


def _inputs(dtype, B=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, N, 3, generator=g, dtype=dtype) * torch.tensor([2.0, 1.0, 0.5], dtype=dtype)
    return [x, torch.randn(B, N, 2, generator=g, dtype=dtype), torch.randn(B, N, 3, generator=g, dtype=dtype)]


def _audit_groups(group):
    rot = "O3" if group in ("O3", "E3") else "SO3"
    return [rot] + (["translations"] if group in ("E3", "SE3") else [])


@pytest.mark.parametrize("group", ["O3", "SO3", "E3", "SE3"])
def test_mlp_becomes_equivariant(group, dtype):
    fa = FrameAveraging(Backbone(dtype), group, IN, OUT)
    args = _inputs(dtype)
    s = Subject.batched(fa, args, IN, OUT)
    errs = equivariance_errors(s, _audit_groups(group), n_elements=4)
    tol = 1e-6 if dtype == torch.float64 else 1e-4
    for name, e in errs.items():
        assert e.max < tol, (group, name, e.max)
    assert fa.stats["pca"] == fa.stats["samples"] and fa.degenerate_count == 0
    assert fa.stats["frames"] == fa.stats["samples"] * (4 if group.startswith("S") else 8)
    # without frame averaging the backbone is far from equivariant
    s0 = Subject.batched(Backbone(dtype), args, IN, OUT)
    assert equivariance_errors(s0, ["SO3"], n_elements=2)["SO3"].max > 1e-2


def test_so3_frames_are_proper_and_do_not_give_parity():
    # a pseudoscalar read off by an SO(3)-averaged backbone is SO(3)-invariant but flips under inversion
    fa = FrameAveraging(lambda x: torch.linalg.det(x[:, :3]).reshape(-1, 1), "SO3", ["positions"], "0e")
    x = _inputs(torch.float64)[0]
    s = Subject.batched(fa, [x], ["positions"], "0e")
    e = equivariance_errors(s, ["SO3", "Ci"])
    assert e["SO3"].max < 1e-10 and e["Ci"].max > 0.1
    fs = frame_set(x[0], proper=True, use_centroid=True, eig_tol=1e-4, tie_tol=1e-6)
    assert torch.allclose(torch.linalg.det(fs.frames), torch.ones(4, dtype=torch.float64))


def _tetrahedron():
    return torch.tensor([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1.0]], dtype=torch.float64)


def _octahedron():
    return torch.cat([torch.eye(3), -torch.eye(3)]).double() * 1.3


def _cube():
    return torch.tensor([[a, b, c] for a in (-1, 1) for b in (-1, 1) for c in (-1, 1)], dtype=torch.float64)


def _polygon(n=5):
    a = torch.arange(n, dtype=torch.float64) * 2 * math.pi / n
    return torch.stack([a.cos(), a.sin(), torch.zeros_like(a)], -1) + torch.tensor(
        [0.3, -1.0, 2.0], dtype=torch.float64
    )


def _line(n=5):
    return torch.linspace(-1, 2, n, dtype=torch.float64)[:, None] * torch.tensor([1.0, 2.0, -0.5], dtype=torch.float64)


DEGENERATE = {
    "tetrahedron": (_tetrahedron, "points", 12),
    "octahedron": (_octahedron, "points", 24),
    "cube": (_cube, "points", 48),
    "polygon": (_polygon, "axis+points", 10),
    "collinear": (_line, "axis+average", 24),
    "two points": (lambda: torch.tensor([[0.0, 0, 0], [1.0, 1, 1]], dtype=torch.float64), "axis+average", 24),
    "coincident": (lambda: torch.ones(4, 3, dtype=torch.float64) * 0.7, "isotropic", 60),
}


@pytest.mark.parametrize("name", list(DEGENERATE))
def test_degenerate_clouds_finite_and_equivariant(name, dtype):
    make, case, n_frames = DEGENERATE[name]
    X = make()
    fs = frame_set(X, proper=True, use_centroid=False, eig_tol=1e-4, tie_tol=1e-6)
    assert fs.case == case and fs.frames.shape[0] == n_frames and not fs.truncated
    n = X.shape[0]
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Flatten(), torch.nn.Linear(3 * n, 32), torch.nn.Tanh(), torch.nn.Linear(32, 1 + 3 + 5 + 3 * n)
    ).to(dtype)

    def backbone(x):
        y = net(x)
        return {"e": y[:, :1], "v": y[:, 1:4], "d": y[:, 4:9], "p": y[:, 9:].reshape(-1, n, 3)}

    types = {"e": "0e", "v": "1o", "d": "2e", "p": POS}
    for group in ("E3", "SE3"):
        fa = FrameAveraging(backbone, group, [POS], types)
        x = X[None].to(dtype)
        y = fa(x)
        assert all(torch.isfinite(v).all() for v in y.values())
        y = {k: v.detach() for k, v in y.items()}
        assert fa.degenerate_count == 1 and fa.stats[case] == 1
        s = Subject.batched(fa, [x], [POS], types)
        errs = equivariance_errors(s, _audit_groups(group), n_elements=3)
        tol = 1e-9 if dtype == torch.float64 else 1e-4
        for k in ("e", "p"):
            for g, e in errs.items():
                assert e.aggregate[k] < tol, (name, group, g, k, e.aggregate[k])
        # vector / degree-2 outputs: zero for the symmetric shapes, so compare absolutely
        for k in ("v", "d"):
            for g, e in errs.items():
                rel, scale = e.aggregate[k], float(y[k].detach().abs().max())
                assert rel < tol or scale < 1e-5 * float(y["e"].abs().max() + 1), (name, group, k, rel, scale)


def test_symmetric_shapes_average_out_vectors():
    # frames of a regular tetrahedron are its 12 rotations: a vector read off the canonical cloud without
    # reference to a node (here (a, a, a) + 1) averages to exactly zero
    fa = FrameAveraging(lambda x: x.pow(2).sum(1) + 1.0, "SE3", ["positions"], "1o")
    v = fa(_tetrahedron()[None])
    assert v.abs().max() < 1e-12


def test_near_degenerate_and_float32_data():
    # a tetrahedron stored in float32 (norms equal to ~1e-7) and one perturbed by 1e-9: still the 12 frames
    X = _tetrahedron().float().double() * 1.7
    assert frame_set(X, proper=True, use_centroid=False, eig_tol=1e-4, tie_tol=1e-6).frames.shape[0] == 12
    Xp = _tetrahedron() + 1e-9 * torch.randn(4, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    fs = frame_set(Xp, proper=False, use_centroid=False, eig_tol=1e-4, tie_tol=1e-6)
    assert fs.case == "points" and fs.frames.shape[0] == 24
    # a slightly flattened tetrahedron: gap 1e-6 relative is below eig_tol, not trusted as PCA
    fs = frame_set(
        _tetrahedron() * torch.tensor([1.0, 1.0, 1.0 + 1e-6], dtype=torch.float64),
        proper=True,
        use_centroid=False,
        eig_tol=1e-4,
        tie_tol=1e-6,
    )
    assert fs.case != "pca"


def test_gradients_finite_in_every_case():
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Flatten(), torch.nn.Linear(12, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1)
    ).double()
    fa = FrameAveraging(net, "E3", ["positions"], "0e")
    shapes = [
        _tetrahedron(),
        _line(4),
        _polygon(4),
        torch.zeros(4, 3, dtype=torch.float64),
        torch.randn(4, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64),
    ]
    for X in shapes:
        x = X[None].clone().requires_grad_(True)
        (g,) = torch.autograd.grad(fa(x).sum(), x)
        assert torch.isfinite(g).all()
    # non-degenerate case: the gradient is the true one (frames differentiated through eigh)
    x = shapes[-1][None].clone().requires_grad_(True)
    (g,) = torch.autograd.grad(fa(x).sum(), x)
    h = 1e-6
    d = torch.zeros_like(x)
    d[0, 1, 2] = h
    with torch.no_grad():
        num = (fa(x + d) - fa(x - d)).sum() / (2 * h)
    assert abs(float(num) - float(g[0, 1, 2])) < 1e-6 * max(1.0, abs(float(num)))


def test_stochastic_mode_uses_one_frame_in_training():
    calls = []

    def backbone(x):  # the canonical coordinates of the first point: a different sign pattern per frame
        calls.append(x.shape[0])
        return x[:, 0, :]

    fa = FrameAveraging(backbone, "O3", ["positions"], None, stochastic=True, seed=0)
    x = _inputs(torch.float64, B=5)[0]
    fa.train()
    draws = [fa(x) for _ in range(100)]
    assert calls[-1] == 5 and draws[0].shape == (5, 3)
    patterns = {tuple(torch.sign(d[0]).int().tolist()) for d in draws}
    assert len(patterns) == 8  # every one of the 8 frames gets drawn
    fa.eval()
    ye = fa(x)
    assert calls[-1] == 40
    assert ye.abs().max() < 1e-12  # the full average over the 8 sign patterns


def test_unbatched_and_errors():
    fa = FrameAveraging(lambda x: x.flatten(1)[:, :3], "E3", ["positions"], "1o")
    x = torch.randn(5, 3, dtype=torch.float64)
    assert fa(x).shape == (3,)
    with pytest.raises(ValueError, match="group"):
        FrameAveraging(lambda x: x, "E2", ["positions"], "0e")
    with pytest.raises(ValueError, match="positions"):
        FrameAveraging(lambda x: x, "E3", ["0e"], "0e")
    with pytest.raises(ValueError, match="not finite"):
        fa(torch.full((4, 3), float("nan"), dtype=torch.float64))


@pytest.mark.parametrize("proper", [False, True])
def test_batched_pca_path_matches_frame_set(proper):
    """The batched ``pca`` decision and frames equal :func:`frame_set`'s, cloud by cloud, for generic, nearly
    degenerate and degenerate clouds (the batched path only takes the clouds frame_set puts in its ``pca`` case)."""
    from equivar.symmetry._frames import batched_pca_frames

    g = torch.Generator().manual_seed(5)
    clouds = [torch.randn(7, 3, generator=g, dtype=torch.float64) * torch.tensor([3.0, 1.5, 0.5]) for _ in range(6)]
    t = torch.arange(6, dtype=torch.float64) * math.pi / 3
    hexagon = torch.stack([t.cos(), t.sin(), torch.zeros(6, dtype=torch.float64)], -1)
    clouds.append(torch.cat([hexagon, torch.zeros(1, 3, dtype=torch.float64)]))  # two equal eigenvalues
    near = hexagon * torch.tensor([1.0 + 1e-6, 1.0, 1.0], dtype=torch.float64)  # gap 2e-6, below both eig_tol
    clouds.append(torch.cat([near, torch.zeros(1, 3, dtype=torch.float64)]))
    clouds.append(torch.zeros(7, 3, dtype=torch.float64) + 1.0)  # coincident
    X = torch.stack(clouds) + 4.0
    for dtype, (eig_tol, tie_tol) in ((torch.float64, (1e-4, 1e-6)), (torch.float32, (1e-2, 1e-4))):
        F, ok = batched_pca_frames(X.to(dtype), proper=proper, eig_tol=eig_tol, tie_tol=tie_tol)
        assert F.shape == (len(clouds), 4 if proper else 8, 3, 3)
        for b, x in enumerate(X.to(dtype)):
            fs = frame_set(x, proper=proper, use_centroid=False, eig_tol=eig_tol, tie_tol=tie_tol)
            assert bool(ok[b]) == (fs.case == "pca"), (b, fs.case)
            if fs.case == "pca":  # the same set of frames (eigenvector signs may differ: compare as sets)
                d = (F[b][:, None] - fs.frames[None]).flatten(2).norm(dim=-1)
                assert d.min(1).values.max() < 1e-12 and d.min(0).values.max() < 1e-12
        assert ok[:6].all() and not ok[6:].any()


def test_frame_grad_false_treats_frames_as_constants():
    x = _inputs(torch.float64)[0].requires_grad_(True)
    fa_const = FrameAveraging(
        lambda p: (p[:, :, 0] ** 4).sum(1, keepdim=True), "E3", ["positions"], "0e", frame_grad=False
    )
    fa_grad = FrameAveraging(fa_const.backbone, "E3", ["positions"], "0e")
    y_const, y_grad = fa_const(x), fa_grad(x)
    torch.testing.assert_close(y_const, y_grad, rtol=1e-13, atol=1e-13)  # same value
    (g_const,) = torch.autograd.grad(y_const.sum(), x)
    (g_grad,) = torch.autograd.grad(y_grad.sum(), x)
    assert (g_const - g_grad).abs().max() > 1e-6  # the frames' dependence on x is dropped only with frame_grad=False
