"""Gaunt-family backends (``gaunt``: 2D Fourier + FFT; ``s2grid``: spherical grid).

Checked against the exact ``cg`` backend (and e3nn) with the backend's
weights mapped to per-path weights, for equivariance with parity, first and
second derivatives, the parity-complete (vector) product for odd
``l1 + l2 + l3`` paths, and the error messages for what they cannot express.
"""

import numpy as np
import pytest
import torch

from equivar.o3 import Irreps, gaunt, wigner_3j
from equivar.testing import assert_equivariant
from equivar.tp import TensorProduct, p_config, s_config
from equivar.tp._fourier import fourier_coefficients, sphere_projection
from equivar.tp._gaunt_plan import EVEN, ODD, coupling

BACKENDS = ["s2grid", "gaunt"]


def rel(a, b):
    return float((a - b).norm() / b.norm())


def mixed_case(mode="uvu"):
    """Both parities on each input, l up to 2, odd paths (1o x 1o -> 1e, ...), two paths into some outputs."""
    i1 = Irreps("3x0e+3x1o+3x1e+3x2e")
    i2 = Irreps("0e+1o+1e") if mode == "uvu" else Irreps("3x0e+3x1o+3x1e")
    io = Irreps("3x0e+3x0o+3x1o+3x1e+3x2e+3x2o")
    ins = []
    for a, (_, r1) in enumerate(i1):
        for b, (_, r2) in enumerate(i2):
            for c, (_, ro) in enumerate(io):
                if ro in list(r1 * r2):
                    ins.append((a, b, c, mode, True, 1.0 + 0.5 * a + 0.25 * b))
    return i1, i2, io, ins


def _inputs(i1, i2, nw, dtype, Z=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    x1 = torch.randn(Z, i1.dim, generator=g, dtype=dtype)
    x2 = torch.randn(Z, i2.dim, generator=g, dtype=dtype)
    w = torch.randn(Z, nw, generator=g, dtype=dtype)
    return x1, x2, w


# ----------------------------------------------------------------------------
# coefficients
def test_couplings_are_gaunt_and_elsasser():
    # even paths: exactly the Gaunt coefficients of equivar.o3; odd paths: non-zero multiples of wigner_3j
    for l1 in range(3):
        for l2 in range(4):
            for l3 in range(abs(l1 - l2), l1 + l2 + 1):
                T, g = coupling(l1, l2, l3, EVEN if (l1 + l2 + l3) % 2 == 0 else ODD)
                C = wigner_3j(l1, l2, l3, dtype=torch.float64).numpy()
                if (l1 + l2 + l3) % 2 == 0:
                    np.testing.assert_allclose(T, gaunt(l1, l2, l3, dtype=torch.float64).numpy(), atol=1e-13)
                    assert abs(g) > 1e-3
                else:
                    assert abs(g) > 1e-3, (l1, l2, l3)  # the vector product reaches every odd path
                np.testing.assert_allclose(T, g * C, atol=1e-12)
    # and never the other kind
    assert coupling(1, 1, 1, EVEN)[1] == 0.0 and coupling(1, 1, 2, ODD)[1] == 0.0


def test_fourier_projection_is_exact():
    # Fourier coefficients of Y_l, back-projected with the closed-form sphere integrals: identity
    for l in range(4):
        n_beta, v_max = 2 * l + 3, l + 1
        F = fourier_coefficients(l, "Y", l)  # [d, 2l+1, 2l+1] FFT order
        G = np.zeros((2 * l + 1, n_beta, v_max + 1), dtype=complex)
        for u in range(-l, l + 1):
            G[:, u % n_beta, : l + 1] = F[:, u % (2 * l + 1), : l + 1]
        flat = np.stack([G.real, G.imag], -1).reshape(2 * l + 1, -1)
        np.testing.assert_allclose(flat @ sphere_projection(l, n_beta, v_max), np.eye(2 * l + 1), atol=1e-12)


# ----------------------------------------------------------------------------
# agreement with cg / e3nn
@pytest.mark.parametrize("backend", BACKENDS)
def test_s_config_matches_cg(backend, dtype):
    i1, i2, io, ins = s_config(3, 3)
    tp = TensorProduct(i1, i2, io, ins, backend=backend, shared_weights=False).to(dtype)
    cg = TensorProduct(i1, i2, io, ins, backend="cg", shared_weights=False).to(dtype)
    assert tp.backend.weight_form == "factorized" and len(tp.backend.products) == 1
    assert tp.weight_numel == 3 * 4 + 4 + 3 * 4  # a[l1, u], b[l2], c[l3, u]
    x1, x2, w = _inputs(i1, i2, tp.weight_numel, dtype)
    y = tp(x1, x2, w)
    y0 = cg(x1, x2, tp.backend.to_path_weights(w))
    assert rel(y, y0) < (1e-5 if dtype == torch.float32 else 1e-10)


def test_s_config_matches_e3nn():
    o3 = pytest.importorskip("e3nn.o3")
    i1, i2, io, ins = s_config(2, 2)
    tp = TensorProduct(i1, i2, io, ins, backend="s2grid", shared_weights=False).double()
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # e3nn builds its coefficients in the default dtype
    try:
        ref = o3.TensorProduct(str(i1), str(i2), str(io), ins, shared_weights=False, internal_weights=False)
    finally:
        torch.set_default_dtype(old)
    x1, x2, w = _inputs(i1, i2, tp.weight_numel, torch.float64)
    assert rel(tp(x1, x2, w), ref(x1, x2, tp.backend.to_path_weights(w))) < 1e-10


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("mode", ["uvu", "uuu"])
def test_path_form_with_odd_paths_matches_cg(backend, mode, dtype):
    # every path weighted with e3nn's layout; the odd ones (e.g. 1o x 1o -> 1e) go through the vector product
    i1, i2, io, ins = mixed_case(mode)
    tp = TensorProduct(i1, i2, io, ins, backend=backend, shared_weights=False, weight_form="path").to(dtype)
    cg = TensorProduct(i1, i2, io, ins, backend="cg", shared_weights=False).to(dtype)
    assert tp.weight_numel == cg.weight_numel
    assert any(p.kind == ODD for p in tp.backend.products)
    x1, x2, w = _inputs(i1, i2, tp.weight_numel, dtype)
    assert rel(tp(x1, x2, w), cg(x1, x2, w)) < (1e-5 if dtype == torch.float32 else 1e-10)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("mode,parts", [("uvu", ("in1", "in2", "out")), ("uuu", ("in2", "out")), ("uvu", ("out",))])
def test_factorized_form_with_mixed_parities_matches_cg(backend, mode, parts):
    # several rectangles (products) are needed: parities split the paths of one output block
    i1, i2, io, ins = mixed_case(mode)
    tp = TensorProduct(
        i1, i2, io, ins, backend=backend, shared_weights=False, weight_form="factorized", weight_parts=parts
    ).double()
    assert tp.weight_numel == sum(
        {"in1": i1.num_irreps, "in2": i2.num_irreps if mode == "uuu" else len(i2), "out": io.num_irreps}[p]
        for p in parts
    )
    cg = TensorProduct(i1, i2, io, ins, backend="cg", shared_weights=False).double()
    assert len(tp.backend.products) > 2
    x1, x2, w = _inputs(i1, i2, tp.weight_numel, torch.float64)
    assert rel(tp(x1, x2, w), cg(x1, x2, tp.backend.to_path_weights(w))) < 1e-10


def test_auto_weight_form():
    assert TensorProduct(*p_config(2, 2), backend="s2grid").backend.weight_form == "path"
    assert TensorProduct(*s_config(2, 2), backend="s2grid").backend.weight_form == "factorized"
    with pytest.raises(ValueError, match="weight_form"):
        TensorProduct(*s_config(1, 2), backend="s2grid", weight_form="nope")


def test_unweighted_s_product_is_normalized():
    # no weights at all: the plain (normalized) Gaunt product; 'component' gives unit output variance
    i1, i2, io, ins = s_config(3, 1)
    ins = [i[:4] + (False,) for i in ins]
    tp = TensorProduct(i1, i2, io, ins, backend="s2grid").double()
    assert tp.weight_numel == 0
    g = torch.Generator().manual_seed(0)
    y = tp(
        torch.randn(20000, i1.dim, generator=g, dtype=torch.float64),
        torch.randn(20000, i2.dim, generator=g, dtype=torch.float64),
    )
    var = y.pow(2).mean(0)
    for (mul, ir), s in zip(io, io.slices()):
        assert abs(float(var[s].mean()) - 1.0) < 0.05, (ir, float(var[s].mean()))


# ----------------------------------------------------------------------------
# equivariance and derivatives
@pytest.mark.parametrize("backend", BACKENDS)
def test_equivariance(backend, dtype):
    torch.manual_seed(0)
    for i1, i2, io, ins in (s_config(2, 2), mixed_case("uvu")):
        tp = TensorProduct(i1, i2, io, ins, backend=backend).to(dtype)
        x1, x2, _ = _inputs(i1, i2, 1, dtype, Z=4)
        assert_equivariant(tp, [x1, x2], [i1, i2], io, tolerance=1e-5 if dtype == torch.float32 else 1e-10)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("form", ["factorized", "path"])
def test_gradcheck(backend, form):
    # even paths, an odd one (1o x 1o -> 1e) and two paths into one output; float64
    i1, i2, io = Irreps("0e+1o+1e"), Irreps("0e+1o"), Irreps("0e+1o+1e")
    ins = [
        (a, b, c, "uvu", True)
        for a, (_, r1) in enumerate(i1)
        for b, (_, r2) in enumerate(i2)
        for c, (_, ro) in enumerate(io)
        if ro in list(r1 * r2)
    ]
    tp = TensorProduct(i1, i2, io, ins, backend=backend, shared_weights=False, weight_form=form).double()
    assert any(p.kind == ODD for p in tp.backend.products)
    x1, x2, w = _inputs(i1, i2, tp.weight_numel, torch.float64, Z=2)
    args = [t.requires_grad_() for t in (x1, x2, w)]
    assert torch.autograd.gradcheck(tp, args, fast_mode=True)
    assert torch.autograd.gradgradcheck(tp, args, fast_mode=True)


# ----------------------------------------------------------------------------
# what cannot be expressed
@pytest.mark.parametrize("backend", BACKENDS)
def test_parity_incomplete_names_the_odd_paths(backend):
    i1, i2, io = Irreps("1o"), Irreps("1o"), Irreps("0e+1e+2e")
    ins = [(0, 0, 0, "uvu", True), (0, 0, 1, "uvu", True), (0, 0, 2, "uvu", True)]
    with pytest.raises(ValueError, match=r"1x1o \(in1\[0\]\) x 1x1o \(in2\[0\]\) -> 1x1e \(out\[1\]\)") as e:
        TensorProduct(i1, i2, io, ins, backend=backend, parity_complete=False)
    assert "out[0]" not in str(e.value) and "out[2]" not in str(e.value)
    # default: parity-complete, the cross product is realized (and equals cg's)
    tp = TensorProduct(i1, i2, io, ins, backend=backend, shared_weights=False).double()
    cg = TensorProduct(i1, i2, io, ins, backend="cg", shared_weights=False).double()
    assert any(p.kind == ODD for p in tp.backend.products)
    x1, x2, w = _inputs(i1, i2, tp.weight_numel, torch.float64)
    assert rel(tp(x1, x2, w), cg(x1, x2, w)) < 1e-12


def test_why_not_and_uvw():
    i1, i2, io, ins = s_config(1, 2)
    tp = TensorProduct(i1, i2, io, ins, backend="s2grid", parity_complete=False)
    from equivar.tp import Instruction

    odd = Instruction(1, 1, 1, "uvu", True, 1.0, (2, 1))  # 1o x 1o -> 1o: l-sum 3 is odd
    assert "odd" in tp.backend.why_not(odd) and not tp.backend.expressible(odd)
    with pytest.raises(ValueError, match="cannot express"):
        TensorProduct(
            "2x0e+2x1o", "2x0e", "2x0e+2x1o", [(0, 0, 0, "uvw", True), (1, 0, 1, "uvw", True)], backend="gaunt"
        )


@pytest.mark.parametrize("backend", BACKENDS)
def test_empty_and_zero_batch(backend):
    tp = TensorProduct("2x0e+2x1o", "0e+1o", "2x0e+2x1o", [], backend=backend)
    assert tp(torch.randn(3, 8), torch.randn(3, 4)).abs().max() == 0
    i1, i2, io, ins = s_config(2, 2)
    tp = TensorProduct(i1, i2, io, ins, backend=backend, shared_weights=False)
    out = tp(torch.randn(0, i1.dim), torch.randn(0, i2.dim), torch.randn(0, tp.weight_numel))
    assert out.shape == (0, io.dim)
    # leading batch dimensions and broadcasting of x2
    out = tp(torch.randn(2, 3, i1.dim), torch.randn(1, 3, i2.dim), torch.randn(2, 3, tp.weight_numel))
    assert out.shape == (2, 3, io.dim)


def test_gaunt_equals_s2grid_float64():
    i1, i2, io, ins = p_config(3, 2)
    a = TensorProduct(i1, i2, io, ins, backend="gaunt", shared_weights=False).double()
    b = TensorProduct(i1, i2, io, ins, backend="s2grid", shared_weights=False).double()
    x1, x2, w = _inputs(i1, i2, a.weight_numel, torch.float64)
    assert rel(a(x1, x2, w), b(x1, x2, w)) < 1e-12
    r = a.backend.resolution()
    assert r["exact"] and len(r["fft_shapes"]) == len(a.backend.products)
    for pr, (nb, na) in zip(a.backend.products, r["fft_shapes"]):
        L1, L2 = max(i1[i].ir.l for i in pr.A), max(i2[i].ir.l for i in pr.B)
        assert nb == 2 * (L1 + L2) + 1 and na >= L1 + L2 + max(t.l3 for t in pr.targets) + 1
