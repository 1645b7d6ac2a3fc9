"""TensorProduct: equivariance with parity, gradients, batching, bad input, torch.compile."""

import pytest
import torch
from _tp_cases import MODES, mode_case

from equivar import tp as T
from equivar.testing import assert_equivariant


@pytest.mark.parametrize("mode", MODES)
def test_equivariant_with_parity(mode, dtype):
    i1, i2, io, ins = mode_case(mode)
    tp = T.TensorProduct(i1, i2, io, ins, shared_weights=False).to(dtype)
    g = torch.Generator().manual_seed(1)
    x1 = torch.randn(5, i1.dim, generator=g, dtype=dtype)
    x2 = torch.randn(5, i2.dim, generator=g, dtype=dtype)
    w = torch.randn(5, tp.weight_numel, generator=g, dtype=dtype)
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    assert_equivariant(lambda a, b: tp(a, b, w), [x1, x2], [i1, i2], io, tolerance=tol, group="O3")


def test_cross_product_path():
    """1o x 1o -> 1e (odd l1+l2+l3) is the cross product up to the CG normalization."""
    tp = T.TensorProduct("1o", "1o", "1e", [(0, 0, 0, "uuu", False)], irrep_normalization="none")
    a, b = torch.randn(10, 3, dtype=torch.float64), torch.randn(10, 3, dtype=torch.float64)
    out = tp.double()(a, b)
    c = torch.linalg.cross(a, b)
    ratio = out / c
    assert torch.allclose(ratio, ratio[0, 0].expand_as(ratio), rtol=1e-10)
    assert abs(abs(float(ratio[0, 0])) - 6**-0.5) < 1e-12


@pytest.mark.parametrize("mode", ["uvw", "uvu", "uuu", "uvv"])
def test_gradcheck_and_gradgradcheck(mode):
    i1, i2, io, ins = mode_case(mode, mul=1)
    tp = T.TensorProduct(i1, i2, io, ins, shared_weights=False).double()
    g = torch.Generator().manual_seed(2)
    x1 = torch.randn(2, i1.dim, generator=g, dtype=torch.float64, requires_grad=True)
    x2 = torch.randn(2, i2.dim, generator=g, dtype=torch.float64, requires_grad=True)
    w = torch.randn(2, tp.weight_numel, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(tp, (x1, x2, w), fast_mode=mode != "uvu")
    assert torch.autograd.gradgradcheck(tp, (x1, x2, w), fast_mode=True)


def test_internal_weights_gradcheck():
    i1, i2, io, ins = mode_case("uvw", mul=1)
    tp = T.TensorProduct(i1, i2, io, ins).double()
    assert isinstance(tp.weight, torch.nn.Parameter) and tp.weight.shape == (tp.weight_numel,)
    x1 = torch.randn(3, i1.dim, dtype=torch.float64, requires_grad=True)
    x2 = torch.randn(3, i2.dim, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradgradcheck(lambda a, b, w: tp(a, b, w), (x1, x2, tp.weight), fast_mode=True)


def test_empty_batch(dtype):
    i1, i2, io, ins = mode_case("uvu")
    tp = T.TensorProduct(i1, i2, io, ins, shared_weights=False).to(dtype)
    x1 = torch.randn(0, i1.dim, dtype=dtype, requires_grad=True)
    out = tp(x1, torch.randn(0, i2.dim, dtype=dtype), torch.randn(0, tp.weight_numel, dtype=dtype))
    assert out.shape == (0, io.dim) and out.dtype == dtype
    out.sum().backward()
    assert x1.grad.shape == x1.shape
    assert tp(
        torch.randn(3, 0, i1.dim, dtype=dtype),
        torch.randn(i2.dim, dtype=dtype),
        torch.randn(1, tp.weight_numel, dtype=dtype),
    ).shape == (3, 0, io.dim)


def test_broadcasting_matches_explicit_expansion():
    i1, i2, io, ins = mode_case("uvu")
    tp = T.TensorProduct(i1, i2, io, ins, shared_weights=False).double()
    x1 = torch.randn(4, 1, i1.dim, dtype=torch.float64)
    x2 = torch.randn(1, 3, i2.dim, dtype=torch.float64)
    w = torch.randn(3, tp.weight_numel, dtype=torch.float64)
    out = tp(x1, x2, w)
    assert out.shape == (4, 3, io.dim)
    ref = tp(
        x1.expand(4, 3, -1).reshape(12, -1), x2.expand(4, 3, -1).reshape(12, -1), w.expand(4, 3, -1).reshape(12, -1)
    ).reshape(4, 3, -1)
    torch.testing.assert_close(out, ref, rtol=1e-13, atol=1e-13)
    # shared weights broadcast over any batch shape
    tps = T.TensorProduct(i1, i2, io, ins).double()
    assert tps(x1, x2).shape == (4, 3, io.dim)


def test_output_mask_and_unused_outputs_are_zero():
    tp = T.TensorProduct("2x1o", "1x1o", "2x0e+2x2o", [(0, 0, 0, "uvu", True)])
    assert tp.output_mask.tolist() == [1.0, 1.0] + [0.0] * 10
    out = tp(torch.randn(3, 6), torch.randn(3, 3))
    assert (out[:, 2:] == 0).all() and (out[:, :2] != 0).any()


def test_state_dict_keys_like_e3nn():
    tp = T.FullyConnectedTensorProduct("2x0e+1x1o", "1x1o", "1x1o+1x0e")
    assert set(tp.state_dict()) == {"weight", "output_mask"}


def test_float64_constants_survive_dtype_round_trip():
    tp = T.TensorProduct("1x2e", "1x2e", "1x2e", [(0, 0, 0, "uuu", False)])  # float32 at construction
    tp64 = T.TensorProduct("1x2e", "1x2e", "1x2e", [(0, 0, 0, "uuu", False)]).double()
    x = torch.randn(4, 5, dtype=torch.float64)
    assert torch.equal(tp.float().double()(x, x), tp64(x, x))


# --- bad input -------------------------------------------------------------
@pytest.mark.parametrize(
    "irreps,ins,match",
    [
        (("1o", "1o", "3e"), [(0, 0, 0, "uvw", True)], r"selection rule.*1o.*1o.*3e"),
        (("1o", "1o", "1o"), [(0, 0, 0, "uvw", True)], r"parity.*1o.*1o.*1o"),
        (("1o", "1o", "1e"), [(0, 2, 0, "uvw", True)], r"out of range for irreps_in2 = 1x1o"),
        (("2x1o", "1o", "3x1e"), [(0, 0, 0, "uvu", True)], r"2x1o.*'uvu' needs mul_in1 == mul_out"),
        (("1o", "1o", "1e"), [(0, 0, 0, "xyz", True)], r"unknown connection mode 'xyz'"),
        (("1o", "1o", "1e"), [(0, 0, 0, "uvw")], r"must be \(i_in1"),
        (("1o", "1o", "1e"), [(0, 0, 0, "uvw", True, -1.0)], r"path_weight must be >= 0"),
    ],
)
def test_bad_instructions_raise(irreps, ins, match):
    with pytest.raises(ValueError, match=match):
        T.TensorProduct(*irreps, ins)


def test_bad_inputs_raise():
    tp = T.TensorProduct(
        "2x0e+2x1o", "1x1o", "2x1o+2x1e", [(0, 0, 0, "uvu", True), (1, 0, 1, "uvu", True)], shared_weights=False
    )
    x1, x2, w = torch.randn(3, 8), torch.randn(3, 3), torch.randn(3, tp.weight_numel)
    with pytest.raises(ValueError, match=r"x1 has shape \(3, 7\).*irreps_in1.dim = 8 \(2x0e\+2x1o\)"):
        tp(x1[:, :7], x2, w)
    with pytest.raises(ValueError, match=r"x2 has shape \(3, 4\).*1x1o"):
        tp(x1, torch.randn(3, 4), w)
    with pytest.raises(ValueError, match=r"weight must have shape \[\.\.\., 4\]"):
        tp(x1, x2, torch.randn(3, 5))
    with pytest.raises(ValueError, match="weights must be given"):
        tp(x1, x2)
    with pytest.raises(ValueError, match="do not broadcast"):
        tp(x1, torch.randn(2, 3), w)
    with pytest.raises(ValueError, match=r"one dtype, got x1 torch.float64, x2 torch.float32"):
        tp(x1.double(), x2, w)
    with pytest.raises(ValueError, match=r"weight torch.float64"):
        tp(x1, x2, w.double())
    with pytest.raises(ValueError, match=r"x2 must be a floating-point tensor, got dtype torch.int64"):
        tp(x1, x2.long(), w)
    with pytest.raises(ValueError, match=r"weight must be a torch.Tensor or a list of tensors .*got list of list"):
        tp(x1, x2, w.tolist())
    g = T.TensorProduct(
        "2x0e+2x1o",
        "1x1o",
        "2x1o+2x1e",
        [(0, 0, 0, "uvu", True), (1, 0, 1, "uvu", True)],
        shared_weights=False,
        backend="gaunt",
    )
    with pytest.raises(ValueError, match=r"backend 'gaunt' supports dtypes .*float32.*got torch.float16"):
        g(x1.half(), x2.half(), torch.randn(3, g.weight_numel).half())
    shared = T.TensorProduct("2x0e", "1x0e", "2x0e", [(0, 0, 0, "uvu", True)])
    with pytest.raises(ValueError, match=r"internal weights are torch.float32 but the inputs are torch.float64"):
        shared(torch.randn(3, 2, dtype=torch.float64), torch.randn(3, 1, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"shared weight must have shape \(2,\)"):
        shared(torch.randn(3, 2), torch.randn(3, 1), torch.randn(3, 2))
    with pytest.raises(ValueError, match="unknown tensor-product backend 'nope'"):
        T.TensorProduct("1o", "1o", "1e", [(0, 0, 0, "uvw", True)], backend="nope")
    with pytest.raises(ValueError, match="internal_weights=True needs shared_weights=True"):
        T.TensorProduct("1o", "1o", "1e", [(0, 0, 0, "uvw", True)], internal_weights=True, shared_weights=False)


def test_default_instructions_from_mode():
    tp = T.TensorProduct("2x0e+2x1o", "0e+1o", "2x0e+2x1o+2x1e", mode="uvu")
    assert sorted(i[:3] for i in tp.instructions) == sorted([(0, 0, 0), (1, 1, 0), (0, 1, 1), (1, 0, 1), (1, 1, 2)])


def test_torch_compile_matches_eager():
    i1, i2, io, ins = mode_case("uvu")
    tp = T.TensorProduct(i1, i2, io, ins, shared_weights=False)
    x1, x2 = torch.randn(8, i1.dim), torch.randn(8, i2.dim)
    w = torch.randn(8, tp.weight_numel)
    ref = tp(x1, x2, w)
    compiled = torch.compile(tp, backend="eager", fullgraph=True)
    torch.testing.assert_close(compiled(x1, x2, w), ref)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_cpu():
    i1, i2, io, ins = mode_case("uvu")
    tp = T.TensorProduct(i1, i2, io, ins + mode_case("uvw")[3][:3], shared_weights=False).double()
    x1, x2 = torch.randn(9, i1.dim, dtype=torch.float64), torch.randn(9, i2.dim, dtype=torch.float64)
    w = torch.randn(9, tp.weight_numel, dtype=torch.float64)
    ref = tp(x1, x2, w)
    out = tp.cuda()(x1.cuda(), x2.cuda(), w.cuda())
    torch.testing.assert_close(out.cpu(), ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("backend", ["cg", "gaunt", "s2grid", "cp"])
def test_torch_compile_with_gradients_matches_eager(backend):
    """fullgraph torch.compile of every backend, with an input that requires grad: values and gradients."""
    tp = T.TensorProduct(
        "4x0e+4x1o",
        "0e+1o",
        "4x0e+4x1o+4x1e",
        [(0, 0, 0, "uvu", True), (1, 1, 0, "uvu", True), (1, 0, 1, "uvu", True), (0, 1, 1, "uvu", True)],
        shared_weights=False,
        backend=backend,
    )
    g = torch.Generator().manual_seed(0)
    x1 = torch.randn(6, 16, generator=g, requires_grad=True)
    x2, w = torch.randn(6, 4, generator=g), torch.randn(6, tp.weight_numel, generator=g)
    ref = tp(x1, x2, w)
    out = torch.compile(tp, backend="eager", fullgraph=True)(x1, x2, w)
    torch.testing.assert_close(out, ref)
    torch.testing.assert_close(torch.autograd.grad(out.sum(), x1)[0], torch.autograd.grad(ref.sum(), x1)[0])


@pytest.mark.parametrize("backend", ["cg", "gaunt", "s2grid", "cp"])
def test_torch_compile_second_derivatives_match_eager(backend):
    """Force-training derivatives through a compiled product: under torch.compile every backend runs plain
    PyTorch operations (a custom autograd.Function traced by dynamo loses its double backward)."""
    conv, _ = T.channelwise_tp("4x0e+4x1o", "0e+1o+2e", backend=backend)
    conv = conv.double()
    g = torch.Generator().manual_seed(1)
    h, Y, w = (
        torch.randn(5, d, generator=g, dtype=torch.float64, requires_grad=True) for d in (16, 9, conv.weight_numel)
    )
    res = []
    for m in (conv, torch.compile(conv, backend="eager", fullgraph=True)):
        (gY,) = torch.autograd.grad((m(h, Y, w) ** 2).sum(), Y, create_graph=True)
        res.append(torch.autograd.grad((gY**2).sum(), (w, h, Y)))
    for a, b in zip(*res):
        torch.testing.assert_close(b, a, rtol=1e-10, atol=1e-10)


def test_torch_compile_empty_batch_stays_connected():
    """cg under compile with zero samples: the (empty) output still requires grad, as in eager mode."""
    conv, _ = T.channelwise_tp("4x0e+4x1o", "0e+1o+2e", backend="cg")
    h, Y, w = (torch.zeros(0, d, requires_grad=True) for d in (16, 9, conv.weight_numel))
    out = torch.compile(conv, backend="eager", fullgraph=True)(h, Y, w)
    assert out.shape == (0, conv.irreps_out.dim) and out.requires_grad
    (gh,) = torch.autograd.grad(out.sum(), h)
    assert gh.shape == h.shape
