"""Drop-in compatibility with e3nn 0.6 TensorProduct / Linear: state dicts both ways with strict=True (constant
Wigner-3j buffers included), e3nn's positional signature and performance-only options, weights as a list, right()."""

import itertools

import pytest
import torch

from equivar import nn as N
from equivar import tp as T

eo = pytest.importorskip("e3nn.o3")


def _e3nn(cls, *args, dtype=torch.float64, **kw):
    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)  # e3nn builds its constants in the default dtype
    try:
        return cls(*args, **kw)
    finally:
        torch.set_default_dtype(old)


def _mace_conv(node, sh, target, dtype=torch.float64):
    """MACE's conv_tp: tp_out_irreps_with_instructions + o3.TensorProduct(shared_weights=False, internal_weights=False)."""
    n, s, t = eo.Irreps(node), eo.Irreps(sh), eo.Irreps(target)
    out_list, ins = [], []
    for i, (mul, ir_in) in enumerate(n):
        for j, (_, ir_edge) in enumerate(s):
            for ir_out in ir_in * ir_edge:
                if ir_out in t:
                    ins.append((i, j, len(out_list), "uvu", True))
                    out_list.append((mul, ir_out))
    mid, p, _ = eo.Irreps(out_list).sort()
    ins = sorted([(a, b, p[c], m, w) for a, b, c, m, w in ins], key=lambda x: x[2])
    return _e3nn(eo.TensorProduct, n, s, mid, ins, shared_weights=False, internal_weights=False, dtype=dtype)


MACE_CASES = {
    "mace-L2": ("8x0e+8x1o+8x2e", "0e+1o+2e+3o", "0e+1o+2e+3o"),
    "mixed-parity": ("4x0e+4x0o+4x1o+4x1e", "0e+1o+2e", "0e+0o+1o+1e+2e+2o"),
}


@pytest.mark.parametrize("case", sorted(MACE_CASES))
def test_mace_channelwise_weights_load_strict_and_match(case):
    """Done-when of issue 11: an e3nn MACE-style channelwise product's state dict loads into the equivalent
    equivar layer with strict=True, and the outputs agree to 1e-10 in float64."""
    node, sh, target = MACE_CASES[case]
    ref = _mace_conv(node, sh, target)
    assert any("_w3j_" in k for k in ref.state_dict())  # the constant buffers real MACE checkpoints carry
    ours, mid = T.channelwise_tp(node, sh, target)
    assert str(mid) == str(ref.irreps_out)
    ours = ours.double()
    ours.load_state_dict(ref.state_dict(), strict=True)
    g = torch.Generator().manual_seed(0)
    E = 37
    x = torch.randn(E, ref.irreps_in1.dim, generator=g, dtype=torch.float64)
    y = torch.randn(E, ref.irreps_in2.dim, generator=g, dtype=torch.float64)
    w = torch.randn(E, ref.weight_numel, generator=g, dtype=torch.float64)
    a, b = ours(x, y, w), ref(x, y, w)
    assert (a - b).abs().max() <= 1e-10 * b.abs().max()
    # and back: e3nn loads equivar's state dict (with the constants added) strictly
    twin = _mace_conv(node, sh, target)
    twin.load_state_dict(N.e3nn_state_dict(ours), strict=True)


def test_internal_weights_round_trip_both_ways():
    """MACE's skip product (FullyConnectedTensorProduct, internal weights): e3nn -> equivar -> e3nn, strict."""
    i1, i2, io = "4x0e+2x1o+2x2e", "3x0e", "4x0e+2x1o+2x2e"
    ref = _e3nn(eo.FullyConnectedTensorProduct, i1, i2, io)
    ours = T.FullyConnectedTensorProduct(i1, i2, io).double()
    ours.load_state_dict(ref.state_dict(), strict=True)
    x, y = torch.randn(5, ref.irreps_in1.dim, dtype=torch.float64), torch.randn(5, 3, dtype=torch.float64)
    torch.testing.assert_close(ours(x, y), ref(x, y), rtol=1e-12, atol=1e-12)
    with torch.no_grad():
        ours.weight.normal_()
    twin = _e3nn(eo.FullyConnectedTensorProduct, i1, i2, io)
    twin.load_state_dict(N.e3nn_state_dict(ours), strict=True)
    torch.testing.assert_close(twin(x, y), ours(x, y), rtol=1e-12, atol=1e-12)


# instruction sets that exercise e3nn's code-generation special cases (which decide its buffers)
BUFFER_CASES = {
    "uvw": ("2x0e+2x1o+1x2e", "0e+1o+2e", "2x0e+2x1o+2x1e+1x2e", "uvw", True),
    "uvu-unweighted": ("2x0e+2x1o+1x2e", "0e+1o", "2x0e+2x1o+2x1e+1x2e+2x1o", "uvu", False),
    "uvv": ("2x1o", "3x0e+3x1o", "3x1o+3x0e+3x1e", "uvv", True),
    "uuw-unweighted": ("2x1o+2x2e", "2x1o+2x2e", "1x0e+1x1e+1x2e+1x1o", "uuw", False),
    "uuu": ("3x1o+3x0e", "3x1o+3x0e", "3x1e+3x0e+3x1o", "uuu", True),
    "uuu-unweighted": ("3x1o", "3x1o", "3x1e+3x0e+3x2e", "uuu", False),
    "uvuv": ("2x1o", "2x1o", "4x0e+4x1e", "uvuv", True),
}


@pytest.mark.parametrize("case", sorted(BUFFER_CASES))
@pytest.mark.parametrize("specialized", [True, False])
def test_e3nn_loads_our_state_dict_strictly(case, specialized):
    i1, i2, io, mode, weighted = BUFFER_CASES[case]
    ours = T.TensorProduct(i1, i2, io, mode=mode, _specialized_code=specialized).double()
    ins = [tuple(i)[:5] for i in ours.instructions]
    ins = [(a, b, c, m, weighted) for a, b, c, m, _ in ins]
    ours = T.TensorProduct(i1, i2, io, ins, _specialized_code=specialized).double()
    ref = _e3nn(eo.TensorProduct, i1, i2, io, ins, _specialized_code=specialized)
    sd = N.e3nn_state_dict(ours)
    assert sorted(sd) == sorted(ref.state_dict())
    ref.load_state_dict(sd, strict=True)
    x = torch.randn(4, ours.irreps_in1.dim, dtype=torch.float64)
    y = torch.randn(4, ours.irreps_in2.dim, dtype=torch.float64)
    torch.testing.assert_close(ref(x, y), ours(x, y), rtol=1e-11, atol=1e-11)
    ours.load_state_dict(ref.state_dict(), strict=True)


def test_e3nn_compile_right_keys_on_request():
    i1, i2, io = "2x0e+2x1o", "0e+1o", "2x0e+2x1o+2x1e"
    ref = _e3nn(eo.FullyConnectedTensorProduct, i1, i2, io, compile_right=True)
    ours = T.FullyConnectedTensorProduct(i1, i2, io, compile_right=True).double()
    ours.load_state_dict(ref.state_dict(), strict=True)
    ref.load_state_dict(N.e3nn_state_dict(ours, keys=ref.state_dict().keys()), strict=True)
    x, y = torch.randn(3, 8, dtype=torch.float64), torch.randn(3, 4, dtype=torch.float64)
    torch.testing.assert_close(ours.right(y), ref.right(y), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(ours(x, y), ref(x, y), rtol=1e-12, atol=1e-12)


def test_wrong_w3j_buffer_is_an_error():
    node, sh, target = MACE_CASES["mace-L2"]
    ref = _mace_conv(node, sh, target)
    sd = ref.state_dict()
    key = next(k for k in sd if "_w3j_1_1_2" in k)
    sd[key] = sd[key].flip(0)  # another basis order
    ours, _ = T.channelwise_tp(node, sh, target)
    with pytest.raises(RuntimeError, match=r"_w3j_1_1_2: differs from equivar.o3.wigner_3j\(1, 1, 2\)"):
        ours.double().load_state_dict(sd)


@pytest.mark.parametrize("biases", [False, True])
def test_linear_state_dicts_both_ways(biases):
    i, o = "3x0e+2x1o+2x1e+1x2e", "4x0e+3x1o+2x2e+1x0o"
    ref = _e3nn(eo.Linear, i, o, biases=biases)
    with torch.no_grad():
        if biases:
            ref.bias.normal_()
    ours = N.Linear(i, o, biases=biases).double()
    ours.load_state_dict(ref.state_dict(), strict=True)
    x = torch.randn(6, ours.irreps_in.dim, dtype=torch.float64)
    torch.testing.assert_close(ours(x), ref(x), rtol=1e-12, atol=1e-12)
    twin = _e3nn(eo.Linear, i, o, biases=biases)
    twin.load_state_dict(N.e3nn_state_dict(ours), strict=True)
    torch.testing.assert_close(twin(x), ref(x), rtol=1e-12, atol=1e-12)
    conv = N.from_e3nn(ref)
    assert isinstance(conv, N.Linear) and conv.weight.dtype == torch.float64
    torch.testing.assert_close(conv(x), ref(x), rtol=1e-12, atol=1e-12)


def test_from_e3nn_covers_mace_layers():
    node, sh, target = MACE_CASES["mace-L2"]
    conv = _mace_conv(node, sh, target)
    skip = _e3nn(eo.FullyConnectedTensorProduct, node, "3x0e", node)
    lin = _e3nn(eo.Linear, node, "8x0e+8x1o", biases=False)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(5, conv.irreps_in1.dim, generator=g, dtype=torch.float64)
    y = torch.randn(5, conv.irreps_in2.dim, generator=g, dtype=torch.float64)
    w = torch.randn(5, conv.weight_numel, generator=g, dtype=torch.float64)
    a = torch.randn(5, 3, generator=g, dtype=torch.float64)
    for m, args in ((conv, (x, y, w)), (skip, (x, a)), (lin, (x,))):
        ours = N.from_e3nn(m)
        torch.testing.assert_close(ours(*args), m(*args), rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="no equivar equivalent registered for torch.nn.modules.linear.Linear"):
        N.from_e3nn(torch.nn.Linear(2, 2))


def test_e3nn_positional_signature_and_performance_options_change_nothing():
    i1, i2, io = "2x0e+2x1o+1x2e", "0e+1o", "2x0e+2x1o+2x1e"
    ins = [(0, 0, 0, "uvw", True), (1, 1, 0, "uvw", True, 0.5), (1, 0, 1, "uvw", True), (1, 1, 2, "uvw", True)]
    base = T.TensorProduct(i1, i2, io, ins).double()
    g = torch.Generator().manual_seed(2)
    x = torch.randn(4, base.irreps_in1.dim, generator=g, dtype=torch.float64)
    y = torch.randn(4, base.irreps_in2.dim, generator=g, dtype=torch.float64)
    want = base(x, y)
    # e3nn's positional order: instructions, in1_var, in2_var, out_var, irrep_normalization, path_normalization,
    # internal_weights, shared_weights, compile_left_right, compile_right, normalization, _specialized_code,
    # _optimize_einsums
    for clr, cr, spec, opt in itertools.product([True, False], repeat=4):
        m = T.TensorProduct(
            i1, i2, io, ins, None, None, None, "component", "element", None, None, clr, cr, None, spec, opt
        )
        m = m.double()
        m.load_state_dict(base.state_dict(), strict=True)
        assert torch.equal(m(x, y), want)
        assert m._specialized_code == spec and m._optimize_einsums == opt
    ref = _e3nn(eo.TensorProduct, i1, i2, io, ins, None, None, None, "component", "element", None, None, True, True)
    ref.load_state_dict(N.e3nn_state_dict(base, keys=ref.state_dict().keys()), strict=True)
    torch.testing.assert_close(ref(x, y), want, rtol=1e-12, atol=1e-12)
    # e3nn's deprecated alias
    norm = T.TensorProduct(i1, i2, io, ins, normalization="norm").double()
    assert norm.irrep_normalization == "norm"
    with pytest.raises(ValueError, match="disagree"):
        T.TensorProduct(i1, i2, io, ins, irrep_normalization="component", normalization="norm")


@pytest.mark.parametrize("shared", [True, False], ids=["shared", "per-sample"])
def test_weights_as_list_and_right(shared):
    i1, i2, io = "1e+2e+3x3o", "1e+2e+3x3o", "1e+2e+3x3o"
    kw = dict(internal_weights=False, shared_weights=shared)
    ours = T.FullyConnectedTensorProduct(i1, i2, io, **kw).double()
    ref = _e3nn(eo.FullyConnectedTensorProduct, i1, i2, io, compile_right=True, **kw)
    g = torch.Generator().manual_seed(3)
    B = 3
    x = torch.randn(B, ours.irreps_in1.dim, generator=g, dtype=torch.float64)
    y = torch.randn(B, ours.irreps_in2.dim, generator=g, dtype=torch.float64)
    lead = () if shared else (B,)
    ws = [torch.randn(lead + tuple(i.path_shape), generator=g, dtype=torch.float64) for i in ours.instructions]
    flat = torch.cat([w.reshape(lead + (-1,)) for w in ws], -1)
    assert torch.equal(ours(x, y, ws), ours(x, y, flat))
    torch.testing.assert_close(ours(x, y, ws), ref(x, y, ws), rtol=1e-12, atol=1e-12)
    R = ours.right(y, flat)
    assert R.shape == (B, ours.irreps_in1.dim, ours.irreps_out.dim)
    torch.testing.assert_close(torch.einsum("zi,zij->zj", x, R), ours(x, y, flat), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(R, ref.right(y, flat), rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="weight list has 2 tensors"):
        ours(x, y, ws[:2])
