"""``s2grid`` specifics: grid exactness and resolution, the fused chunked kernel and its backward."""

import pytest
import torch

from equivar.tp import TensorProduct, p_config, s_config
from equivar.tp._s2grid_ops import grid_bilinear, grid_bilinear_sym


def rel(a, b):
    return float(((a - b).norm() / b.norm()).detach())


def _inputs(i1, i2, nw, dtype=torch.float64, Z=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (
        torch.randn(Z, i1.dim, generator=g, dtype=dtype),
        torch.randn(Z, i2.dim, generator=g, dtype=dtype),
        torch.randn(Z, nw, generator=g, dtype=dtype),
    )


def test_minimal_grid_is_exact_and_finer_grids_agree():
    i1, i2, io, ins = s_config(3, 2)
    tp = TensorProduct(i1, i2, io, ins, backend="s2grid", shared_weights=False).double()
    r = tp.backend.resolution()
    # band limit L1 + L2 + L3 = 9: 5 Gauss-Legendre rings (rounded up to 6 for the y -> -y symmetry), 10 azimuths
    assert r["band_limit"] == 9 and r["grid"] == (6, 10) and r["exact"]
    x1, x2, w = _inputs(i1, i2, tp.weight_numel)
    y = tp(x1, x2, w)
    for nb, na in ((5, 10), (7, 13), (12, 21)):  # odd ring counts use the plain (non-symmetric) kernel
        fine = TensorProduct(i1, i2, io, ins, backend="s2grid", shared_weights=False, n_beta=nb, n_alpha=na).double()
        assert fine.backend.grid_shape == (nb, na)
        assert rel(fine(x1, x2, w), y) < 1e-12
    with pytest.raises(ValueError, match="too small"):
        TensorProduct(i1, i2, io, ins, backend="s2grid", n_beta=4, n_alpha=10)
    with pytest.raises(ValueError, match="too small"):
        TensorProduct(i1, i2, io, ins, backend="s2grid", n_beta=6, n_alpha=9)


def test_resolution_at_l6():
    tp = TensorProduct(*s_config(6, 1), backend="s2grid")
    assert tp.backend.resolution()["grid"] == (10, 19)  # band limit 18: 190 points


@pytest.mark.parametrize("sym", [True, False])
def test_kernel_chunks_and_fused_backward(sym):
    # chunking does not change results; the fused backward (no create_graph) equals the composable one
    i1, i2, io, ins = s_config(2, 3)
    opts = {} if sym else {"n_beta": 5}
    ref = TensorProduct(i1, i2, io, ins, backend="s2grid", shared_weights=False, **opts).double()
    one = TensorProduct(i1, i2, io, ins, backend="s2grid", shared_weights=False, chunk_size=1, **opts).double()
    assert ref.backend._sym == sym
    x1, x2, w = _inputs(i1, i2, ref.weight_numel, Z=7)
    args = [t.requires_grad_() for t in (x1, x2, w)]
    y = ref(*args)
    assert rel(one(*args), y) < 1e-13
    g = torch.randn_like(y)
    fused = torch.autograd.grad(y, args, g)
    composable = torch.autograd.grad(ref(*args), args, g, create_graph=True)
    for a, b in zip(fused, composable):
        assert rel(a, b) < 1e-12


def test_kernel_double_backward_matches_autograd_reference():
    # the custom kernels against the same computation written with plain torch ops
    torch.manual_seed(0)
    Z, U, D1, D2, n, Do = 3, 2, 4, 3, 6, 5
    A = torch.randn(Z, U, D1, dtype=torch.float64, requires_grad=True)
    B = torch.randn(Z, 1, D2, dtype=torch.float64, requires_grad=True)
    SA, SB, M = (
        torch.randn(D1, n, dtype=torch.float64),
        torch.randn(D2, n, dtype=torch.float64),
        torch.randn(n, Do, dtype=torch.float64),
    )

    def ref(A, B):
        return ((A @ SA) * (B @ SB)) @ M

    assert torch.autograd.gradgradcheck(lambda a, b: grid_bilinear(a, b, SA, SB, M, n, 1, U), [A, B])
    assert rel(grid_bilinear(A, B, SA, SB, M, n, 1, U), ref(A, B)) < 1e-14
    # symmetric variant: [e | o] split of the rows, half grid
    De, Doe = 2, 3
    SAe, SAo, SBe, SBo = SA[:De], SA[De:], SB[:1], SB[1:]
    Me, Mo = M[:, :Doe], M[:, Doe:]

    def ref_sym(A, B):
        Ae, Ao = A[..., :De] @ SAe, A[..., De:] @ SAo
        Be, Bo = B[..., :1] @ SBe, B[..., 1:] @ SBo
        return torch.cat([(Ae * Be + Ao * Bo) @ Me, (Ae * Bo + Ao * Be) @ Mo], -1)

    def f(a, b):
        oe, oo = grid_bilinear_sym(a[..., :De], a[..., De:], b[..., :1], b[..., 1:], SAe, SAo, SBe, SBo, Me, Mo, U)
        return torch.cat([oe, oo], -1)

    assert rel(f(A, B), ref_sym(A, B)) < 1e-14
    assert torch.autograd.gradgradcheck(f, [A, B])

    # saving A's grid values for the backward gives the same gradients
    def f2(a, b):
        oe, oo = grid_bilinear_sym(
            a[..., :De], a[..., De:], b[..., :1], b[..., 1:], SAe, SAo, SBe, SBo, Me, Mo, U, None, True
        )
        return torch.cat([oe, oo], -1)

    G = torch.randn(Z, U, Do, dtype=torch.float64)
    for x, y in zip(torch.autograd.grad(f(A, B), [A, B], G), torch.autograd.grad(f2(A, B), [A, B], G)):
        assert rel(x, y) < 1e-13


def test_p_config_path_form_and_shared_weights():
    i1, i2, io, ins = p_config(2, 2)
    tp = TensorProduct(i1, i2, io, ins, backend="s2grid").double()
    cg = TensorProduct(i1, i2, io, ins, backend="cg").double()
    assert tp.backend.weight_form == "path" and tp.weight_numel == cg.weight_numel
    with torch.no_grad():
        cg.weight.copy_(tp.weight)
    x1, x2, _ = _inputs(i1, i2, 0)
    assert rel(tp(x1, x2), cg(x1, x2)) < 1e-12


@pytest.mark.parametrize("shared", [False, True])
def test_whole_product_kernels_match_generic_path(shared):
    # configuration S takes the whole-product path (native CPU kernel and its PyTorch form); both equal the
    # generic gathers + grid_bilinear_sym path, values and first derivatives, with 1 and 2 threads
    from equivar.tp import _s2grid_native

    i1, i2, io, ins = s_config(3, 5)  # 5 channels: padded channel lanes in the native kernel
    tp = TensorProduct(i1, i2, io, ins, backend="s2grid", shared_weights=shared).double()
    assert tp.backend._fused
    x1, x2, w = _inputs(i1, i2, tp.weight_numel, Z=37)  # several blocks of 16 samples
    args = [x1.requires_grad_(), x2.requires_grad_()] + ([] if shared else [w.requires_grad_()])
    wrt = args + ([tp.weight] if shared else [])
    G = torch.randn(37, io.dim, dtype=torch.float64)

    def run(fused, native, threads=1):
        tp.backend._fused, tp.backend.native = fused, native
        old = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            y = tp(*args)
            return (y,) + torch.autograd.grad(y, wrt, G)
        finally:
            torch.set_num_threads(old)
            tp.backend._fused, tp.backend.native = True, True

    ref = run(False, False)
    variants = [run(True, False)]
    if _s2grid_native.library() is not None:
        variants += [run(True, True), run(True, True, threads=2)]
    for got in variants:
        for a, b in zip(got, ref):
            assert rel(a, b) < 1e-13
    if len(variants) == 3:  # the native kernel's results do not depend on the thread count (bitwise)
        assert all(torch.equal(a, b) for a, b in zip(variants[1], variants[2]))


def test_whole_product_double_backward():
    i1, i2, io, ins = s_config(2, 2)
    tp = TensorProduct(i1, i2, io, ins, backend="s2grid", shared_weights=False).double()
    assert tp.backend._fused
    args = [t.requires_grad_() for t in _inputs(i1, i2, tp.weight_numel, Z=3)]
    assert torch.autograd.gradcheck(tp, args, fast_mode=True)
    assert torch.autograd.gradgradcheck(tp, args, fast_mode=True)
    z = [t[:0].detach().requires_grad_() for t in args]
    y = tp(*z)
    assert y.shape == (0, io.dim)
    assert all(
        g.shape == t.shape for g, t in zip(torch.autograd.grad(y.sum(), z, allow_unused=True), z) if g is not None
    )


@pytest.mark.parametrize("bad", [0, -3, 2.5, "8", True])
def test_bad_chunk_size_is_rejected(bad):
    i1, i2, io, ins = s_config(1, 2)
    with pytest.raises(ValueError, match="chunk_size"):
        TensorProduct(i1, i2, io, ins, backend="s2grid", shared_weights=False, chunk_size=bad)
