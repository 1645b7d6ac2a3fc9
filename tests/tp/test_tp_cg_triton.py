"""The cg backend's Triton kernels (GPU), run by Triton's interpreter on the CPU (tests/conftest.py sets
TRITON_INTERPRET=1 before triton is imported): forward, backward and double backward against the PyTorch
kernels and the per-path reference code, float32 and float64."""

import dataclasses

import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from test_tp_cg_kernels import CASES, _consts

from equivar import tp as T
from equivar.tp import _cg_fused, _cg_triton

pytestmark = pytest.mark.skipif(
    not (_cg_triton.available() and _cg_triton.INTERPRETED),
    reason="triton not installed, or not imported in interpreter mode (TRITON_INTERPRET=1)",
)

# all paths unweighted (no weight tensor at all), a multiplicity above two channel tiles (70 > 2 x 32)
CASES_T = dict(CASES)
CASES_T["unweighted"] = (
    "3x0e+3x1o",
    "1x0e+1x1o",
    "3x0e+3x1o+3x1e",
    [
        (0, 0, 0, "uvu", False),
        (1, 1, 0, "uvu", False),
        (1, 0, 1, "uvu", False),
        (0, 1, 1, "uvu", False),
        (1, 1, 2, "uvu", False),
    ],
)
CASES_T["wide"] = (
    "70x1o",
    "1x1o",
    "70x0e+70x1e+70x2e",
    [(0, 0, 0, "uvu", True), (0, 0, 1, "uvu", True), (0, 0, 2, "uvu", True)],
)


def _tol(dtype):
    return dict(rtol=2e-5, atol=2e-5) if dtype == torch.float32 else dict(rtol=1e-11, atol=1e-11)


def _rel(a, b):
    return ((a - b).norm() / b.norm().clamp_min(1e-30)).item()


def _setup(case, dtype, Z=19, seed=0):
    i1, i2, io, ins = CASES_T[case]
    m = T.TensorProduct(i1, i2, io, ins, shared_weights=False, internal_weights=False).to(dtype)
    b = m.backend
    assert b._plan.triton is not None
    g = torch.Generator().manual_seed(seed)
    x1 = torch.randn(Z, m.irreps_in1.dim, generator=g, dtype=dtype)
    x2 = torch.randn(Z, m.irreps_in2.dim, generator=g, dtype=dtype)
    w = torch.randn(Z, m.weight_numel, generator=g, dtype=dtype)
    G = torch.randn(Z, m.irreps_out.dim, generator=g, dtype=dtype)
    return m, b, x1, x2, w, G


@pytest.mark.parametrize("case", ["mixed", "unweighted", "wide"])
def test_triton_kernels_match_torch_kernels(case, dtype):
    m, b, x1, x2, w, G = _setup(case, dtype, Z=19 if case != "wide" else 9)
    consts = _consts(b, dtype)
    plan_t = b._plan
    plan_ref = dataclasses.replace(plan_t, native=None, triton=None)
    tol = _tol(dtype)
    for uw in (1.0, 0.0):
        with _cg_triton.interpret_on_cpu():
            assert _cg_triton.usable(x1, x2, w)
            out = _cg_fused.fused_forward(plan_t, consts, x1, x2, w, uw)
            grads = _cg_fused.fused_backward(plan_t, consts, G, x1, x2, w, True, True, True, uw)
            alone = [  # each gradient alone (once: uw does not change which kernels run)
                _cg_fused.fused_backward(plan_t, consts, G, x1, x2, w, *[n == which for n in range(3)], uw)
                for which in range(3 if uw == 1.0 else 0)
            ]
        ref = _cg_fused.fused_forward(plan_ref, consts, x1, x2, w, uw)
        refs = _cg_fused.fused_backward(plan_ref, consts, G, x1, x2, w, True, True, True, uw)
        assert ref.abs().max() > 0.1 or (uw == 0 and case == "unweighted")
        torch.testing.assert_close(out, ref, **tol)
        for a, r in zip(grads, refs):
            torch.testing.assert_close(a, r, **tol)
        for which in range(len(alone)):
            assert [t is None for t in alone[which]] == [n != which for n in range(3)]
            torch.testing.assert_close(alone[which][which], grads[which], **tol)


@pytest.mark.parametrize("dirs", ["all", "x1", "w"])
def test_triton_double_backward_kernels_match_composed(dirs, dtype):
    """The fused double backward (one launch per output) equals the composed forward/backward calls."""
    m, b, x1, x2, w, G = _setup("mixed", dtype, Z=13, seed=4)
    consts = _consts(b, dtype)
    g = torch.Generator().manual_seed(9)
    gg1 = torch.randn(x1.shape, generator=g, dtype=dtype) if dirs in ("all", "x1") else None
    gg2 = torch.randn(x2.shape, generator=g, dtype=dtype) if dirs in ("all", "x2", "x2w") else None
    ggw = torch.randn(w.shape, generator=g, dtype=dtype) if dirs in ("all", "w", "x2w") else None
    plan_ref = dataclasses.replace(b._plan, native=None, triton=None)
    args = (plan_ref, consts, G, x1, x2, w, 1.0, True, True, True)
    want = _cg_fused.FusedTPBackward.backward(_Ctx(args), gg1, gg2, ggw)[2:6]
    need = [t is not None for t in want]
    assert any(need)
    with _cg_triton.interpret_on_cpu():
        got = _cg_triton.uvu_double_backward(consts, b._plan.triton, G, x1, x2, w, gg1, gg2, ggw, need, 1.0)
    for a, r in zip(got, want):
        assert (a is None) == (r is None)
        if r is not None:
            torch.testing.assert_close(a, r, **_tol(dtype))
            assert r.abs().max() > 0.1


class _Ctx:
    """Stand-in for the autograd context of FusedTPBackward (saved tensors and flags), all inputs needing grad."""

    def __init__(self, args):
        plan, consts, G, x1, x2, w, uw, n1, n2, nw = args
        self.saved_tensors = (G, x1, x2, w)
        self.plan, self.consts, self.uw, self.flags = plan, consts, uw, (n1, n2, nw)
        self.needs_input_grad = (False, False, True, True, True, True, False, False, False, False)


def test_triton_tiles_and_sample_blocks(monkeypatch):
    """Several sample tiles with a partial last one (tile 256 elements: 32 samples x 8 channels, 70 samples)."""
    monkeypatch.setenv("EQUIVAR_TRITON_TILE", "256")
    m, b, x1, x2, w, G = _setup("mixed", torch.float64, Z=70, seed=2)
    assert _cg_triton._blocks(b._plan.triton[4], torch.float64) == (32, 8)
    consts = _consts(b, torch.float64)
    plan_ref = dataclasses.replace(b._plan, native=None, triton=None)
    with _cg_triton.interpret_on_cpu():
        out = _cg_fused.fused_forward(b._plan, consts, x1, x2, w)
        grads = _cg_fused.fused_backward(b._plan, consts, G, x1, x2, w, True, True, True)
    torch.testing.assert_close(out, _cg_fused.fused_forward(plan_ref, consts, x1, x2, w), **_tol(torch.float64))
    refs = _cg_fused.fused_backward(plan_ref, consts, G, x1, x2, w, True, True, True)
    for a, r in zip(grads, refs):
        torch.testing.assert_close(a, r, **_tol(torch.float64))
    monkeypatch.setenv("EQUIVAR_TRITON_TILE", "100")
    with pytest.raises(ValueError, match="EQUIVAR_TRITON_TILE=100"):
        _cg_triton._blocks(8, torch.float64)


def test_triton_dispatch_rules():
    m, b, x1, x2, w, G = _setup("mixed", torch.float64)
    assert not _cg_triton.usable(x1, x2, w)  # CPU tensors: only under the test hook
    with _cg_triton.interpret_on_cpu():
        assert _cg_triton.usable(x1, x2, w)
        assert not _cg_triton.usable(x1, x2, w[0])  # shared weights: PyTorch kernels
        assert not _cg_triton.usable(x1, x2, w[:1])  # one weight row for many samples (no broadcasting)
        assert not _cg_triton.usable(x1, x2[:3], w)  # mismatched sample counts
        assert not _cg_triton.usable(x1, x2.float(), w)  # mixed dtypes
        assert not _cg_triton.usable(x1.to(torch.bfloat16), x2.to(torch.bfloat16), w.to(torch.bfloat16))


def test_triton_empty_batch(dtype):
    m, b, x1, x2, w, G = _setup("mixed", dtype, Z=0)
    consts = _consts(b, dtype)
    with _cg_triton.interpret_on_cpu():
        out = _cg_fused.fused_forward(b._plan, consts, x1, x2, w)
        gx1, gx2, gw = _cg_fused.fused_backward(b._plan, consts, G, x1, x2, w, True, True, True)
    assert out.shape == (0, m.irreps_out.dim) and gx1.shape == x1.shape and gx2.shape == x2.shape
    assert gw.shape == w.shape


def test_triton_module_forward_backward_double_backward(dtype, monkeypatch):
    """Through the module's autograd Functions (native one-sweep kernel off, so the composed double
    backward runs on the Triton kernels), against the per-path reference differentiated by autograd."""
    i1, i2, io, ins = CASES_T["mixed"]
    m, b, x1, x2, w, G = _setup("mixed", dtype, Z=11, seed=5)
    b._plan = dataclasses.replace(b._plan, native=None)
    ref = T.TensorProduct(i1, i2, io, ins, shared_weights=False, internal_weights=False, fused=False).to(dtype)
    calls = {"fwd": 0, "bwd": 0, "dbl": 0}
    f0, b0, d0 = _cg_triton.uvu_forward, _cg_triton.uvu_backward, _cg_triton.uvu_double_backward

    def counted(name, fn):
        def wrapped(*a, **k):
            calls[name] += 1
            return fn(*a, **k)

        return wrapped

    monkeypatch.setattr(_cg_triton, "uvu_forward", counted("fwd", f0))
    monkeypatch.setattr(_cg_triton, "uvu_backward", counted("bwd", b0))
    monkeypatch.setattr(_cg_triton, "uvu_double_backward", counted("dbl", d0))

    def force_loss(mod):
        a = [t.clone().requires_grad_() for t in (x1, x2, w)]
        e = (mod(*a) * G).sum()
        (f,) = torch.autograd.grad(e, a[1], create_graph=True)  # "forces": d e / d x2
        loss = e + (f * f).sum()
        return e.detach(), f.detach(), torch.autograd.grad(loss, a)

    with _cg_triton.interpret_on_cpu():
        e, f, grads = force_loss(m)
    # the Triton kernels did the work: forward; first backward; second backward = the forward's backward and
    # the first backward's backward (the fused double-backward kernels, gradient recording being off)
    assert calls == {"fwd": 1, "bwd": 2, "dbl": 1}
    e_r, f_r, grads_r = force_loss(ref)
    tol = _tol(dtype)
    torch.testing.assert_close(e, e_r, **tol)
    torch.testing.assert_close(f, f_r, **tol)
    for a, r in zip(grads, grads_r):
        assert _rel(a, r) < (1e-5 if dtype == torch.float32 else 1e-11)


def test_triton_p_config_l2_matches_e3nn_layout(dtype):
    """Configuration P at L=2 (MACE's edge product): the Triton forward equals the PyTorch kernels."""
    from equivar.tp import p_config

    i1, i2, io, ins = p_config(2, channels=5)
    m = T.TensorProduct(i1, i2, io, ins, shared_weights=False, internal_weights=False).to(dtype)
    g = torch.Generator().manual_seed(1)
    Z = 7
    x1 = torch.randn(Z, m.irreps_in1.dim, generator=g, dtype=dtype)
    x2 = torch.randn(Z, m.irreps_in2.dim, generator=g, dtype=dtype)
    w = torch.randn(Z, m.weight_numel, generator=g, dtype=dtype)
    ref = m(x1, x2, w)  # native / PyTorch kernels on the CPU
    with _cg_triton.interpret_on_cpu():
        out = m(x1, x2, w)
    assert _rel(out, ref) < (1e-6 if dtype == torch.float32 else 1e-13)


@st.composite
def _channelwise(draw):
    """A random channelwise product: in1 / in2 irreps up to l=2 (both parities), a random nonempty subset of
    the allowed paths, each weighted or not, outputs sometimes shared by two paths."""
    from equivar.o3 import Irreps

    irs = [(l, p) for l in range(3) for p in (1, -1)]
    n1 = draw(st.integers(1, 3))
    in1 = [(draw(st.integers(1, 5)), draw(st.sampled_from(irs))) for _ in range(n1)]
    in2 = [(draw(st.integers(1, 2)), draw(st.sampled_from(irs))) for _ in range(draw(st.integers(1, 2)))]
    out, ins = [], []
    for a, (m1, (l1, p1)) in enumerate(in1):
        for b, (_, (l2, p2)) in enumerate(in2):
            for l3 in range(abs(l1 - l2), min(l1 + l2, 2) + 1):
                if not draw(st.booleans()):
                    continue
                key = (m1, l3, p1 * p2)
                c = next((i for i, o in enumerate(out) if o == key), None) if draw(st.booleans()) else None
                if c is None:
                    out.append(key)
                    c = len(out) - 1
                ins.append((a, b, c, "uvu", draw(st.booleans())))
    assume(ins)
    fmt = lambda lst: Irreps([(m, (l, p)) for m, (l, p) in lst])  # noqa: E731
    return fmt(in1), fmt(in2), Irreps([(m, (l, p)) for m, l, p in out]), ins, draw(st.integers(1, 40))


@settings(max_examples=6, deadline=None)
@given(_channelwise(), st.sampled_from([torch.float32, torch.float64]))
def test_triton_kernels_property_random_configurations(case, dtype):
    """For any channelwise configuration, the Triton forward, gradients and double backward equal the
    PyTorch kernels."""
    i1, i2, io, ins, Z = case
    m = T.TensorProduct(i1, i2, io, ins, shared_weights=False, internal_weights=False).to(dtype)
    b = m.backend
    g = torch.Generator().manual_seed(Z)
    x1 = torch.randn(Z, m.irreps_in1.dim, generator=g, dtype=dtype)
    x2 = torch.randn(Z, m.irreps_in2.dim, generator=g, dtype=dtype)
    w = torch.randn(Z, m.weight_numel, generator=g, dtype=dtype)
    G = torch.randn(Z, m.irreps_out.dim, generator=g, dtype=dtype)
    gg = [torch.randn(t.shape, generator=g, dtype=dtype) for t in (x1, x2, w)]
    consts = _consts(b, dtype)
    ref_plan = dataclasses.replace(b._plan, native=None, triton=None)
    want = [_cg_fused.fused_forward(ref_plan, consts, x1, x2, w)]
    want += list(_cg_fused.fused_backward(ref_plan, consts, G, x1, x2, w, True, True, True))
    want += list(
        _cg_fused.FusedTPBackward.backward(_Ctx((ref_plan, consts, G, x1, x2, w, 1.0, True, True, True)), *gg)[2:6]
    )
    with _cg_triton.interpret_on_cpu():
        got = [_cg_fused.fused_forward(b._plan, consts, x1, x2, w)]
        got += list(_cg_fused.fused_backward(b._plan, consts, G, x1, x2, w, True, True, True))
        need = [t is not None for t in want[4:]]
        got += list(_cg_triton.uvu_double_backward(consts, b._plan.triton, G, x1, x2, w, *gg, need, 1.0))
    for a, r in zip(got, want):
        assert (a is None) == (r is None)
        if r is not None:
            torch.testing.assert_close(a, r, **_tol(dtype))
