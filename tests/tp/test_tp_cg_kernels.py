"""The cg backend's channelwise kernels: native C kernel == pure-PyTorch kernel == reference per-path code."""

import dataclasses

import pytest
import torch

from equivar import tp as T
from equivar.tp import _cg_fused, _cg_native

CASES = {
    # mul not a multiple of 8, in2 multiplicity > 1, paths summed into one output block, an unused output block,
    # unweighted paths mixed with weighted ones
    "mixed": (
        "5x0e+5x1o+3x2e",
        "2x0e+1x1o+1x2e",
        "5x0e+5x1o+5x1e+3x2e+3x3o+4x0o",
        [
            (0, 0, 0, "uvu", True),
            (1, 1, 0, "uvu", True),
            (1, 0, 1, "uvu", False),
            (0, 1, 1, "uvu", True),
            (1, 1, 2, "uvu", True),
            (2, 2, 3, "uvu", True),
            (2, 1, 4, "uvu", True),
            (2, 0, 3, "uvu", False),
        ],
    ),
}


def _consts(backend, dtype):
    return {
        k: (
            getattr(backend, "_f" + k).to(dtype)
            if getattr(backend, "_f" + k).is_floating_point()
            else getattr(backend, "_f" + k)
        )
        for k in backend._const_names
    }


@pytest.mark.parametrize("shared", [True, False], ids=["shared", "per-sample"])
def test_native_matches_torch_kernels_and_reference(shared, dtype):
    if _cg_native.library() is None:
        pytest.skip(f"native kernels unavailable: {_cg_native.native_error()}")
    i1, i2, io, ins = CASES["mixed"]
    fused = T.TensorProduct(i1, i2, io, ins, shared_weights=shared, internal_weights=False).to(dtype)
    ref = T.TensorProduct(i1, i2, io, ins, shared_weights=shared, internal_weights=False, fused=False).to(dtype)
    b = fused.backend
    plan_native, consts = b._plan, _consts(b, dtype)
    assert plan_native.native is not None
    plan_torch = dataclasses.replace(plan_native, native=None)
    g = torch.Generator().manual_seed(3)
    Z = 150  # several threads' ranges
    x1 = torch.randn(Z, fused.irreps_in1.dim, generator=g, dtype=dtype)
    x2 = torch.randn(Z, fused.irreps_in2.dim, generator=g, dtype=dtype)
    w = torch.randn(*(() if shared else (Z,)), fused.weight_numel, generator=g, dtype=dtype)
    G = torch.randn(Z, fused.irreps_out.dim, generator=g, dtype=dtype)
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == torch.float32 else dict(rtol=1e-11, atol=1e-11)

    out_n = _cg_fused.fused_forward(plan_native, consts, x1, x2, w)
    out_t = _cg_fused.fused_forward(plan_torch, consts, x1, x2, w)
    torch.testing.assert_close(out_n, out_t, **tol)
    torch.testing.assert_close(out_n, ref(x1, x2, w), **tol)

    grads_n = _cg_fused.fused_backward(plan_native, consts, G, x1, x2, w, True, True, True)
    grads_t = _cg_fused.fused_backward(plan_torch, consts, G, x1, x2, w, True, True, True)
    a1, a2, aw = (t.clone().requires_grad_() for t in (x1, x2, w))
    grads_r = torch.autograd.grad(ref(a1, a2, aw), (a1, a2, aw), G)
    for n, t, r in zip(grads_n, grads_t, grads_r):
        torch.testing.assert_close(n, t, **tol)
        torch.testing.assert_close(n, r, **tol)
    # each gradient alone equals its part of the joint sweep
    for which in range(3):
        need = [False] * 3
        need[which] = True
        alone = _cg_fused.fused_backward(plan_native, consts, G, x1, x2, w, *need)
        assert [a is None for a in alone] == [not n for n in need]
        torch.testing.assert_close(alone[which], grads_n[which], **tol)


def test_fused_double_backward_matches_reference():
    """Second derivatives (forces training) of the fused path equal those of the per-path reference."""
    i1, i2, io, ins = CASES["mixed"]
    kw = dict(shared_weights=False, internal_weights=False)
    fused = T.TensorProduct(i1, i2, io, ins, **kw).double()
    ref = T.TensorProduct(i1, i2, io, ins, fused=False, **kw).double()
    g = torch.Generator().manual_seed(4)
    x1 = torch.randn(7, fused.irreps_in1.dim, generator=g, dtype=torch.float64)
    x2 = torch.randn(7, fused.irreps_in2.dim, generator=g, dtype=torch.float64)
    w = torch.randn(7, fused.weight_numel, generator=g, dtype=torch.float64)
    res = []
    for m in (fused, ref):
        a1, a2, aw = (t.clone().requires_grad_() for t in (x1, x2, w))
        e = (m(a1, a2, aw) ** 2).sum()
        (d2,) = torch.autograd.grad(e, a2, create_graph=True)
        res.append(torch.autograd.grad((d2**2).sum(), (a1, a2, aw)))
    for a, b in zip(*res):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("shared", [True, False], ids=["shared", "per-sample"])
@pytest.mark.parametrize("directions", ["x1", "x2", "w", "all"])
def test_native_double_backward_sweep_matches_composed_calls(shared, directions, dtype):
    """The one-sweep native second backward (gradient recording off) equals the same derivatives taken
    through the differentiable path (forward/backward calls composed, recording on) and the reference."""
    if _cg_native.library() is None:
        pytest.skip(f"native kernels unavailable: {_cg_native.native_error()}")
    i1, i2, io, ins = CASES["mixed"]
    kw = dict(shared_weights=shared, internal_weights=False)
    fused = T.TensorProduct(i1, i2, io, ins, **kw).to(dtype)
    ref = T.TensorProduct(i1, i2, io, ins, fused=False, **kw).to(dtype)
    g = torch.Generator().manual_seed(5)
    Z = 150
    x1 = torch.randn(Z, fused.irreps_in1.dim, generator=g, dtype=dtype)
    x2 = torch.randn(Z, fused.irreps_in2.dim, generator=g, dtype=dtype)
    w = torch.randn(*(() if shared else (Z,)), fused.weight_numel, generator=g, dtype=dtype)
    wrt = {"x1": (0,), "x2": (1,), "w": (2,), "all": (0, 1, 2)}[directions]
    eps = 1e-5 if dtype == torch.float32 else 1e-12  # largest error relative to the largest entry

    def close(a, b):
        assert (a - b).abs().max() <= eps * b.abs().max(), float((a - b).abs().max() / b.abs().max())

    def second(m, record):
        a = [t.clone().requires_grad_() for t in (x1, x2, w)]
        e = (m(*a) ** 2).sum()  # G = 2 out depends on every input: all four second-order outputs are needed
        d = torch.autograd.grad(e, [a[i] for i in wrt], create_graph=True)
        s = sum((di.sin()).sum() for di in d)
        return torch.autograd.grad(s, a, create_graph=record)

    native, composed, reference = second(fused, False), second(fused, True), second(ref, False)
    for n, c, r in zip(native, composed, reference):
        close(n, c.detach())
        if dtype == torch.float64:  # in float32 the per-path reference's own rounding (sums over 150
            close(n, r)  # samples for shared weights) reaches 2e-4 of the largest entry
