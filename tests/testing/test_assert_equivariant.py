import pytest
import torch

from equivar import o3
from equivar.testing import Typed, assert_equivariant, equivariance_error


def test_catches_non_equivariant_function(dtype):
    x = torch.randn(10, 3, dtype=dtype)
    # squares each component: not equivariant
    with pytest.raises(AssertionError, match="not equivariant"):
        assert_equivariant(lambda v: v**2, [x], ["vector"], "vector")


def test_catches_parity_violation(dtype):
    x = torch.randn(10, 3, dtype=dtype)
    # cross product of a vector with a fixed-free combination: |v| v is a vector (1o); |v| alone is 0e;
    # claiming output 1e (pseudovector) for a polar vector must fail only under improper rotations
    rep = equivariance_error(lambda v: v, [x], ["vector"], "1e")
    assert rep.errors[("rotation", "out", "1x1e")] < 1e-6
    assert rep.errors[("improper", "out", "1x1e")] > 1.0
    assert_equivariant(lambda v: v, [x], ["vector"], "1e", group="SO3")


def test_passes_sh_tuples_dicts_translations(dtype):
    pos = torch.randn(6, 3, dtype=dtype)

    def f(p):
        rel = p[:, None] - p[None]
        d = rel.norm(dim=-1)
        return {
            "energy": d.sum()[None],
            "sh": o3.spherical_harmonics("0e+1o+2e", rel.reshape(-1, 3)),
            "centroid": p.mean(0),
        }

    rep = assert_equivariant(f, [pos], ["positions"], {"energy": "0e", "sh": "0e+1o+2e", "centroid": "positions"})
    assert any(k[0] == "translation" for k in rep.errors)


def test_permutations_and_index_relabelling():
    pos = torch.randn(5, 3, dtype=torch.float64)
    edges = torch.tensor([[0, 1, 2, 3], [1, 2, 3, 4]])

    def f(p, e):
        v = p[e[1]] - p[e[0]]
        out = torch.zeros_like(p).index_add_(0, e[1], v)
        return out

    assert_equivariant(
        f, [pos, edges], [Typed("positions", nodes=True), "index"], Typed("vector", nodes=True), permutations=True
    )
    with pytest.raises(AssertionError):
        # claiming the output does not follow the node order must fail under permutations
        assert_equivariant(f, [pos, edges], [Typed("positions", nodes=True), "index"], "vector", permutations=True)


def test_module_eval_mode_restored():
    m = torch.nn.Dropout(0.5)
    m.train()
    assert_equivariant(m, [torch.randn(4, 16, dtype=torch.float64)], ["16x0e"], "16x0e", translations=False)
    assert m.training


def test_bad_types():
    with pytest.raises(ValueError, match="unknown type"):
        equivariance_error(lambda v: v, [torch.randn(3)], ["vectorz"], "1o")


def test_blockwise_D_matches_the_dense_matrix():
    from equivar.o3 import Irreps, rand_matrix
    from equivar.testing._equivariance import _apply_D

    irreps = Irreps("3x0e+2x1o+0x2e+1x2o+2x3e")
    R = -rand_matrix(generator=torch.Generator().manual_seed(0)).double()  # improper: parity acts too
    x = torch.randn(4, 5, irreps.dim, dtype=torch.float64)
    torch.testing.assert_close(_apply_D(irreps, R, x), x @ irreps.D_from_matrix(R).T, rtol=1e-12, atol=1e-12)
