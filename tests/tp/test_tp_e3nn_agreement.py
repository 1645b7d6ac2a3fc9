"""The cg backend reproduces e3nn.o3.TensorProduct (same instructions, same weights)."""

import pytest
import torch
from _tp_cases import MODES, mode_case

from equivar import tp as T

eo = pytest.importorskip("e3nn.o3")


def _e3nn(i1, i2, io, ins, dtype, **kw):
    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)  # e3nn builds its CG constants in the default dtype
    try:
        return eo.TensorProduct(i1, i2, io, ins, **kw)
    finally:
        torch.set_default_dtype(old)


def _rel(a, b):
    a, b = a.detach(), b.detach()
    return float((a - b).abs().max() / b.abs().max())


def _limit(dtype):
    return 1e-5 if dtype == torch.float32 else 1e-10


@pytest.mark.parametrize("shared", [True, False], ids=["shared", "per-sample"])
@pytest.mark.parametrize("mode", MODES)
def test_matches_e3nn(mode, shared, dtype):
    i1, i2, io, ins = mode_case(mode)
    kw = dict(shared_weights=shared, internal_weights=False)
    ref = _e3nn(str(i1), str(i2), str(io), ins, dtype, **kw)
    ours = T.TensorProduct(i1, i2, io, ins, **kw).to(dtype)
    assert ours.weight_numel == ref.weight_numel
    assert [tuple(i.path_shape) for i in ours.instructions] == [tuple(i.path_shape) for i in ref.instructions]
    for a, b in zip(ours.instructions, ref.instructions):
        assert a.path_weight == pytest.approx(b.path_weight, rel=1e-14)
    g = torch.Generator().manual_seed(0)
    x1 = torch.randn(6, i1.dim, generator=g, dtype=dtype)
    x2 = torch.randn(6, i2.dim, generator=g, dtype=dtype)
    w = torch.randn(*(() if shared else (6,)), ours.weight_numel, generator=g, dtype=dtype)
    assert _rel(ours(x1, x2, w), ref(x1, x2, w)) < _limit(dtype)


@pytest.mark.parametrize(
    "irrep_normalization,path_normalization",
    [("norm", "path"), ("component", "path"), ("norm", "element"), ("none", "none")],
)
def test_normalizations_match_e3nn(irrep_normalization, path_normalization):
    dtype = torch.float64
    i1, i2, io, ins = mode_case("uvw")
    kw = dict(irrep_normalization=irrep_normalization, path_normalization=path_normalization)
    ref = _e3nn(str(i1), str(i2), str(io), ins, dtype, in1_var=[1, 2, 3], out_var=[1, 2, 3, 4, 5, 6], **kw)
    ours = T.TensorProduct(i1, i2, io, ins, in1_var=[1, 2, 3], out_var=[1, 2, 3, 4, 5, 6], **kw).to(dtype)
    ours.weight.data.copy_(ref.weight.data)
    x1, x2 = torch.randn(4, i1.dim, dtype=dtype), torch.randn(4, i2.dim, dtype=dtype)
    assert _rel(ours(x1, x2), ref(x1, x2)) < 1e-10


def test_fully_connected_and_from_e3nn(dtype):
    i1, i2, io = "3x0e+2x1o+1x2e", "1x0e+2x1o+1x2o", "2x0e+2x1o+2x1e+1x2e"
    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        ref = eo.FullyConnectedTensorProduct(i1, i2, io)
    finally:
        torch.set_default_dtype(old)
    ours = T.FullyConnectedTensorProduct(i1, i2, io).to(dtype)
    assert [i[:5] for i in ours.instructions] == [tuple(i)[:5] for i in ref.instructions]
    ours.weight.data.copy_(ref.weight.data)
    x1 = torch.randn(5, ref.irreps_in1.dim, dtype=dtype)
    x2 = torch.randn(5, ref.irreps_in2.dim, dtype=dtype)
    assert _rel(ours(x1, x2), ref(x1, x2)) < _limit(dtype)
    imported = T.from_e3nn(ref)
    assert imported.weight.dtype == dtype
    assert _rel(imported(x1, x2), ref(x1, x2)) < _limit(dtype)


@pytest.mark.parametrize(
    "node,sh,target",
    [
        ("4x0e+4x1o+4x2e", "0e+1o+2e+3o", "0e+1o+2e+3o"),
        # both parities of one l in the output (e3nn sorts odd before even for every l)
        ("3x0e+2x0o+3x1o+2x1e", "0e+1o+2e", None),
        ("2x1e+2x1o+2x2o", "0e+1o+1e", "0o+0e+1e+1o+2e+2o"),
    ],
    ids=["mace", "mixed-parity", "mixed-parity-target"],
)
def test_channelwise_matches_mace_construction(node, sh, target, dtype):
    """channelwise_tp builds MACE's irreps_mid and instructions; outputs match e3nn."""
    tp, mid = T.channelwise_tp(node, sh, target)
    # MACE's tp_out_irreps_with_instructions, re-derived with e3nn
    n, s = eo.Irreps(node), eo.Irreps(sh)
    t = None if target is None else eo.Irreps(target)
    out_list, ins = [], []
    for i, (mul, ir_in) in enumerate(n):
        for j, (_, ir_edge) in enumerate(s):
            for ir_out in ir_in * ir_edge:
                if t is None or ir_out in t:
                    ins.append((i, j, len(out_list), "uvu", True))
                    out_list.append((mul, ir_out))
    mid_ref, p, _ = eo.Irreps(out_list).sort()
    ins = sorted([(a, b, p[c], m, w) for a, b, c, m, w in ins], key=lambda x: x[2])
    assert str(mid) == str(mid_ref)
    assert [i[:5] for i in tp.instructions] == ins
    ref = _e3nn(node, sh, str(mid_ref), ins, dtype, shared_weights=False, internal_weights=False)
    tp = tp.to(dtype)
    E = 9
    x1, x2 = torch.randn(E, n.dim, dtype=dtype), torch.randn(E, s.dim, dtype=dtype)
    w = torch.randn(E, tp.weight_numel, dtype=dtype)
    assert _rel(tp(x1, x2, w), ref(x1, x2, w)) < _limit(dtype)
