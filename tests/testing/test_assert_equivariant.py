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


@pytest.mark.parametrize("batched", [False, True])
def test_blockwise_action_matches_the_dense_matrix(batched):
    """symmetry.act applies D(R) block by block (never the dense [dim, dim] matrix); same values."""
    from equivar.o3 import Irreps, rand_matrix
    from equivar.symmetry import GroupElement, act
    from equivar.symmetry._types import precompute

    irreps = Irreps("3x0e+2x1o+0x2e+1x2o+2x3e")
    gen = torch.Generator().manual_seed(0)
    if batched:  # one improper rotation per row of x
        R = -torch.stack([rand_matrix(generator=gen, dtype=torch.float64) for _ in range(4)])
        x = torch.randn(4, 5, irreps.dim, dtype=torch.float64)
        dense = torch.einsum("bij,bnj->bni", irreps.D_from_matrix(R), x)
    else:
        R = -rand_matrix(generator=gen, dtype=torch.float64)  # improper: parity acts too
        x = torch.randn(4, 5, irreps.dim, dtype=torch.float64)
        dense = x @ irreps.D_from_matrix(R).T
    g = GroupElement(R=R)
    torch.testing.assert_close(act(x, irreps, g), dense, rtol=1e-12, atol=1e-12)
    if not batched:
        precompute([g], [irreps])  # cached per irrep: the same values again
        assert set(g.cache) == {"2o", "3e"}
        torch.testing.assert_close(act(x, irreps, g), dense, rtol=1e-12, atol=1e-12)


def test_one_type_system():
    """testing's types are symmetry's (same Typed, same aliases, same actions)."""
    import equivar.symmetry as sym
    import equivar.testing as tst

    assert tst.Typed is sym.Typed
    assert sym.norm_type("forces").irreps == sym.norm_type("vector").irreps
    x = torch.randn(6, 3, dtype=torch.float64)
    rep = equivariance_error(lambda v: v.norm(dim=-1), [x], ["forces"], "energy")
    assert rep.max < 1e-12  # an energy [N] without a trailing irreps axis is accepted


@pytest.mark.parametrize("dtype_", [torch.float32, torch.float64])
def test_module_types_and_inputs_read_from_irreps_in_out(dtype_):
    """assert_equivariant(module): irreps_in / irreps_out read from the module, random inputs in its dtype."""
    from equivar.nn import Gate, Linear
    from equivar.tp import FullyConnectedTensorProduct

    lin = Linear("4x0e+2x1o+1x2e", "3x0e+2x1o+1x2e").to(dtype_)
    rep = assert_equivariant(lin)
    assert {k[2] for k in rep.errors} == {"3x0e", "2x1o", "1x2e"} and {k[0] for k in rep.errors} == {
        "rotation",
        "improper",
    }
    gate = Gate("2x0e", [torch.tanh], "1x0e", [torch.sigmoid], "1x1o").to(dtype_)
    assert_equivariant(gate)
    tp = FullyConnectedTensorProduct("2x0e+1x1o", "1x0e+1x1o", "2x0e+1x1e+1x1o").to(dtype_)
    rep = assert_equivariant(tp)  # irreps_in1, irreps_in2
    assert ("improper", "out", "1x1e") in rep.errors


def test_module_types_catch_a_wrong_declaration():
    """A module whose declared irreps_out is wrong (parity) fails, so the read types are really used."""
    from equivar.nn import Linear

    lin = Linear("2x1o", "2x1o").double()
    lin.irreps_out = o3.Irreps("2x1e")
    with pytest.raises(AssertionError, match="improper"):
        assert_equivariant(lin)
    assert_equivariant(lin, group="SO3")


def test_e3nn_keyword_names():
    from equivar.nn import Linear

    lin = Linear("2x0e+1x1o", "1x0e+2x1o").double()
    x = torch.randn(3, lin.irreps_in.dim, dtype=torch.float64)
    rep = assert_equivariant(lin, args_in=[x], irreps_in=[lin.irreps_in], irreps_out=lin.irreps_out)
    assert rep.max < 1e-12
    with pytest.raises(AssertionError, match="not equivariant"):
        assert_equivariant(lin, args_in=[x], irreps_in=["2x0e+1x1o"], irreps_out="1x0e+2x1e")
    with pytest.raises(ValueError, match="not both"):
        assert_equivariant(lin, [x], irreps_in=[lin.irreps_in], args_in=[x])


def test_module_without_declared_types_is_one_line():
    with pytest.raises(ValueError, match="declares no irreps_in"):
        assert_equivariant(torch.nn.Identity())
    with pytest.raises(ValueError, match="input 1 has type 'index'"):
        assert_equivariant(lambda p, e: p, None, ["positions", "index"], "positions")
