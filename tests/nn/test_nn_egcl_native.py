"""The native EGCL layer kernel (equivar.nn._egcl_native) against the PyTorch path of egcl_dense_fused.

Values and every gradient (h, x, all parameters), float32 and float64, the layer's options, batch sizes that do not
fill the kernel's work units (16 graphs) and tiles (4 graphs), pre-activations far in the tails of SiLU (the kernel's own exp), results
independent of the thread count, and finite differences through the kernel.
"""

import pytest
import torch
from torch.func import functional_call

from equivar import _threads
from equivar.nn import EGCL, egcl_dense_fused
from equivar.nn import _egcl_native as native
from equivar.tp import native_kernels

pytestmark = pytest.mark.skipif(
    native.library() is None, reason=f"native EGCL kernel unavailable: {native.native_error()}"
)

TOL = {torch.float32: 2e-5, torch.float64: 1e-12}


def _layer(dtype, f=16, edge_attr_dim=2, velocity=True, coords_aggregation="mean", residual=True, seed=0):
    torch.manual_seed(seed)
    layer = EGCL(
        f, edge_attr_dim=edge_attr_dim, velocity=velocity, coords_aggregation=coords_aggregation, residual=residual
    ).to(dtype)
    with torch.no_grad():
        layer.coord_mlp[2].weight.mul_(300.0)  # non-trivial position messages
    return layer


def _inputs(dtype, b, n, f, a, seed=1, scale=1.0):
    """Node-major h [n b, f], x, vel [n b, 3] and edge attributes [n (n-1) b, a] (None if a == 0)."""
    g = torch.Generator().manual_seed(seed)
    h = torch.randn(n * b, f, dtype=dtype, generator=g) * scale
    x = torch.randn(n * b, 3, dtype=dtype, generator=g)
    vel = torch.randn(n * b, 3, dtype=dtype, generator=g)
    ea = torch.randn(n * (n - 1) * b, a, dtype=dtype, generator=g) if a else None
    return h, x, vel, ea


def _run(layer, h, x, vel, ea, n, update_h, use_native, seed=5):
    """Outputs and gradients of a random linear functional of them (inputs h, x and every parameter)."""
    layer.zero_grad()
    hh, xx = h.clone().requires_grad_(), x.clone().requires_grad_()
    with native_kernels(use_native):
        h_o, x_o = egcl_dense_fused(layer, hh, xx, ea, vel, n, update_h=update_h)
    g = torch.Generator().manual_seed(seed)
    loss = (x_o * torch.randn(x_o.shape, dtype=x_o.dtype, generator=g)).sum()
    if update_h:
        loss = loss + (h_o * torch.randn(h_o.shape, dtype=h_o.dtype, generator=g)).sum()
    loss.backward()
    grads = {k: p.grad.clone() for k, p in layer.named_parameters() if p.grad is not None}
    return {"h": h_o.detach(), "x": x_o.detach(), "g_h": hh.grad, "g_x": xx.grad, **grads}


def _assert_same(got, ref, tol):
    assert got.keys() == ref.keys()
    for k, r in ref.items():
        err = float((got[k] - r).norm() / r.norm().clamp_min(1e-30))
        assert err < tol, (k, err)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("update_h", [True, False])
@pytest.mark.parametrize(
    "options",
    [{}, {"velocity": False}, {"coords_aggregation": "sum"}, {"edge_attr_dim": 0}, {"residual": False}, {"f": 64}],
)
def test_native_equals_pytorch_path_values_and_gradients(options, update_h, dtype):
    layer = _layer(dtype, **options)
    n, b = 5, 7  # 7 graphs: one block of 4 and one of 3
    h, x, vel, ea = _inputs(dtype, b, n, layer.hidden_dim, layer.edge_attr_dim)
    vel = vel if layer.coord_mlp_vel is not None else None
    got = _run(layer, h, x, vel, ea, n, update_h, True)
    ref = _run(layer, h, x, vel, ea, n, update_h, False)
    _assert_same(got, ref, TOL[dtype])
    assert float(ref["g_x"].abs().max()) > 1e-3 and float(ref["edge_out.weight"].abs().max()) > 1e-3


def test_the_kernel_is_used_and_its_gradients_of_shared_weights_are_sums_over_all_edges():
    """The native path is taken for F % 16 == 0 (not for F = 8), and the gradients the kernel sums per work unit of
    16 graphs and adds up afterwards equal the PyTorch path's on 1, 3 and 37 graphs (3 units, the last partial)."""
    calls = []
    real = native.layer_backward

    def counting(*a, **k):
        calls.append(1)
        return real(*a, **k)

    native.layer_backward = counting
    try:
        for b in (1, 3, 37):
            layer = _layer(torch.float64)
            h, x, vel, ea = _inputs(torch.float64, b, 4, 16, 2)
            got = _run(layer, h, x, vel, ea, 4, True, True)
            ref = _run(layer, h, x, vel, ea, 4, True, False)
            _assert_same(got, ref, 1e-12)
        n_native = len(calls)
        layer = _layer(torch.float64, f=8)
        h, x, vel, ea = _inputs(torch.float64, 3, 4, 8, 2)
        _run(layer, h, x, vel, ea, 4, True, True)
    finally:
        native.layer_backward = real
    assert n_native == 3 and len(calls) == 3


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_silu_tails_and_large_preactivations(dtype):
    """Node features scaled so that pre-activations reach |z| > 710 (exp's clamping and the SiLU tails)."""
    layer = _layer(dtype)
    h, x, vel, ea = _inputs(dtype, 6, 3, 16, 2, scale=1000.0)
    with torch.no_grad():
        z = torch.mm(h, layer.edge_in_nodes[:, :16])
    assert float(z.abs().max()) > 710  # beyond the clamp of exp in float64 (708)
    got = _run(layer, h, x, vel, ea, 3, True, True)
    ref = _run(layer, h, x, vel, ea, 3, True, False)
    _assert_same(got, ref, TOL[dtype])
    assert all(torch.isfinite(v).all() for v in got.values())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_results_do_not_depend_on_the_thread_count(dtype, monkeypatch):
    layer = _layer(dtype, f=32)
    h, x, vel, ea = _inputs(dtype, 37, 5, 32, 2)
    monkeypatch.setattr(native, "PARALLEL_EDGES", 0)  # threads even for this small batch
    results = []
    for threads in (1, 2, 3):
        monkeypatch.setattr(_threads, "_kernel_threads", threads)
        results.append(_run(layer, h, x, vel, ea, 5, True, True))
    for other in results[1:]:
        for k in results[0]:
            assert torch.equal(other[k], results[0][k]), k


def test_native_gradcheck_against_finite_differences():
    dtype = torch.float64
    layer = _layer(dtype)
    with torch.no_grad():
        layer.coord_mlp[2].weight.div_(30.0)
    n, b = 3, 5
    h, x, vel, ea = _inputs(dtype, b, n, 16, 2)

    class Fused(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.layer = layer

        def forward(self, h, x):
            return egcl_dense_fused(self.layer, h, x, ea, vel, n)

    module = Fused()
    assert native.usable(h)
    hh, xx = h.clone().requires_grad_(), x.clone().requires_grad_()
    assert torch.autograd.gradcheck(module, (hh, xx))
    params = {k: v.detach() for k, v in module.named_parameters()}
    for name in [
        "layer.edge_in_nodes",
        "layer.edge_in_pairs",
        "layer.edge_in_bias",
        "layer.edge_out.weight",
        "layer.edge_out.bias",
        "layer.coord_mlp.0.weight",
        "layer.coord_mlp.0.bias",
        "layer.coord_mlp.2.weight",
    ]:
        p = params[name].clone().requires_grad_()

        def f(p, name=name):
            return functional_call(module, {**params, name: p}, (h, x))

        assert torch.autograd.gradcheck(f, (p,)), name
