"""World models on a partially observed world: the flow model is exactly invariant to scene flows (objects and
self-motion together), its memory permutes its velocity channels, its twin is not; sizes and errors."""

import pytest
import torch

from equivar.models import build_model
from equivar.models.world_model import FlowWorldModel, RNNWorldModel, shift_each
from equivar.testing import check_world_model, default_tolerance, scene_flow_error

DTYPES = [torch.float32, torch.float64]


def _inputs(B=2, T=4, P=3, w=3, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(B, T, 1, w, w, generator=g, dtype=dtype), torch.randint(-2, 3, (B, T + P - 1, 2), generator=g)


def _pair(seed=0, **kw):
    torch.manual_seed(seed)
    f = FlowWorldModel(**kw)
    g = RNNWorldModel(**{k: v for k, v in kw.items() if k != "v_range"})
    with torch.no_grad():  # the same weights where they are shared; the twin's action weights stay its own
        g.cell.conv_u.weight[:, :2] = f.cell.conv_u.weight
        g.cell.conv_h.weight.copy_(f.cell.conv_h.weight)
        for a, b in zip(f.decoder.parameters(), g.decoder.parameters()):
            b.copy_(a)
    return f, g


def test_shift_each_is_a_roll_per_sample():
    x = torch.randn(3, 2, 4, 5, 6)
    s = torch.tensor([[1, -2], [0, 7], [-5, 3]])
    y = shift_each(x, s)
    for b in range(3):
        assert torch.equal(y[b], torch.roll(x[b], tuple(s[b].tolist()), dims=(-2, -1)))
    with pytest.raises(ValueError, match="shifts must be \\[B, 2\\] = \\[3, 2\\], got \\(2, 2\\)"):
        shift_each(x, s[:2])


def test_twins_sizes_and_registry():
    f, g = _pair(hidden_channels=6, v_range=2, image_size=4, memory_size=9, decoder_layers=1)
    nf, ng = (sum(p.numel() for p in m.parameters()) for m in (f, g))
    assert nf == 6 * 2 * 9 + 6 * 6 * 9 + 6 * 6 * 9 + 1 * 6 * 9  # conv_u (window + mask), conv_h, decoder, output
    assert ng == nf + 6 * 2 * 9  # the twin's action input
    assert f.velocities.shape == (25, 2) and g.velocities.tolist() == [[0, 0]]
    m = build_model("flow_world_model", hidden_channels=2, v_range=1, image_size=4, memory_size=8)
    assert isinstance(m, FlowWorldModel) and m.hparams["memory_size"] == 8
    assert isinstance(build_model("rnn_world_model", image_size=4, memory_size=8), RNNWorldModel)
    x, a = _inputs(w=4)
    pred, hid = m.double()(x, a, 3, return_hidden=True)
    assert pred.shape == (2, 3, 1, 4, 4) and hid.shape == (2, 7, 9, 2, 8, 8)


@pytest.mark.parametrize("dtype", DTYPES)
def test_flow_world_model_exactly_invariant_to_scene_flows(dtype):
    # 5 x 5 memory, V = {-2..2}^2 = all of Z_5^2: every scene flow permutes the velocity channels
    f, _ = _pair(hidden_channels=3, v_range=2, image_size=3, memory_size=5)
    x, a = _inputs()
    errs = check_world_model(f, x, a, 3, dtypes=[dtype])
    assert set(errs) == {("planar:flows", str(dtype)[6:])}


@pytest.mark.parametrize("dtype", DTYPES)
def test_memory_permutes_velocity_channels_on_any_grid(dtype):
    # 7 x 7 memory, V = {-1..1}^2 not closed: the memory is still exactly equivariant, h'_t(v) = h_t(v - u)
    f, _ = _pair(hidden_channels=3, v_range=1, image_size=3, memory_size=7)
    f = f.to(dtype)
    x, a = _inputs(dtype=dtype, P=4)
    vel = f.velocities.tolist()
    _, h = f(x, a, 4, return_hidden=True)
    for u, n_pairs in (([1, 0], 6), ([-1, 1], 4)):
        _, h2 = f(x, a + torch.tensor(u), 4, return_hidden=True)
        shifted = [[v[0] - u[0], v[1] - u[1]] for v in vel]
        pairs = [(i, vel.index(s)) for i, s in enumerate(shifted) if s in vel]
        assert len(pairs) == n_pairs
        tol = default_tolerance(dtype)
        for i, j in pairs:  # exact up to rounding (the convolutions see the channels in another order)
            torch.testing.assert_close(h2[:, :, i], h[:, :, j], rtol=tol, atol=tol * float(h.detach().abs().max()))
        assert not torch.allclose(h2, h)  # but the memory did change (a real test)
    # the pooled prediction is then not exactly invariant (boundary truncation)
    assert scene_flow_error(f, x, a, 4, [1, 0]) > 1e-3


@pytest.mark.parametrize("dtype", DTYPES)
def test_twin_is_not_invariant(dtype):
    f, g = _pair(hidden_channels=3, v_range=2, image_size=3, memory_size=5)
    f, g = f.to(dtype), g.to(dtype)
    x, a = _inputs(dtype=dtype)
    errs_g = [scene_flow_error(g, x, a, 3, u) for u in ([1, 0], [0, -1], [2, 1])]
    errs_f = [scene_flow_error(f, x, a, 3, u) for u in ([1, 0], [0, -1], [2, 1])]
    assert min(errs_g) > 0.05 and max(errs_f) < 1e-5
    with pytest.raises(ValueError, match="RNNWorldModel claims no 'planar:flows'"):
        check_world_model(g, x, a, 3)
    g.symmetry_groups = ("planar:flows",)  # a false claim is caught
    with pytest.raises(AssertionError, match="RNNWorldModel not invariant under scene flows"):
        check_world_model(g, x, a, 3, velocities=[[1, 0]], dtypes=[dtype])


def test_memory_outlives_the_window():
    # hand-set weights: W = identity, U writes the window (the mask is ignored), decoder = identity.
    # A digit seen once, then out of view while the agent moves away and back, is predicted exactly.
    m = FlowWorldModel(image_size=2, memory_size=6, hidden_channels=1, v_range=0, decoder_layers=0).double()
    with torch.no_grad():
        m.cell.conv_h.weight.zero_()
        m.cell.conv_h.weight[0, 0, 1, 1] = 1.0
        m.cell.conv_u.weight.zero_()
        m.cell.conv_u.weight[0, 0, 1, 1] = 1.0
        m.decoder[0].weight.zero_()
        m.decoder[0].weight[0, 0, 1, 1] = 1.0
    x = torch.zeros(1, 1, 1, 2, 2, dtype=torch.float64)
    x[0, 0, 0] = torch.tensor([[0.5, 0.0], [0.25, 1.0]])
    a = torch.tensor([[[0, 1], [0, 2], [0, -3]]])  # one step right, two more (out of view), back
    pred = m(x, a, 3)
    torch.testing.assert_close(pred[0, 0, 0, :, 0], x[0, 0, 0, :, 1])  # the digit moved one column left in view
    assert pred[0, 0, 0, :, 1].abs().max() == 0 and pred[0, 1].abs().max() == 0  # then out of view
    torch.testing.assert_close(pred[0, 2], x[0, 0])  # and back, from memory


def test_errors():
    m = FlowWorldModel(image_size=3, memory_size=5, hidden_channels=2)
    x, a = _inputs(dtype=torch.float32)
    with pytest.raises(
        ValueError, match="actions must be \\[B, T_in \\+ pred_len - 1, 2\\] = \\[2, 6, 2\\], got \\[2, 5, 2\\]"
    ):
        m(x, a[:, :5], 3)
    with pytest.raises(ValueError, match="frames must be \\[B, T_in >= 1, 1, 3, 3\\], got shape \\(2, 4, 1, 4, 4\\)"):
        m(torch.zeros(2, 4, 1, 4, 4), a, 3)
    for bad in (0, 2.5):
        with pytest.raises(ValueError, match=f"pred_len must be an integer >= 1, got {bad}"):
            m(x, a, bad)
    with pytest.raises(ValueError, match="image_size \\(the window\\) must be in \\[1, memory_size=5\\], got 6"):
        FlowWorldModel(image_size=6, memory_size=5)


@pytest.mark.parametrize("model_cls", [FlowWorldModel, RNNWorldModel])
def test_non_finite_frames_or_actions_are_named(model_cls):
    """A NaN or inf in the observed frames or in (float) actions is a one-line ``ValueError`` naming the input and
    the first bad index, not NaN predictions or a wrapped-around shift (NaN rounds to a huge integer action)."""
    m = model_cls(image_size=3, memory_size=5, hidden_channels=2)
    x, a = _inputs(dtype=torch.float32)
    bad_x = x.clone()
    bad_x[1, 2, 0, 1, 0] = float("nan")
    with pytest.raises(ValueError, match=r"^frames holds 1 non-finite value\(s\) \(NaN or inf\) of 72, the first nan "
                       r"at index \(1, 2, 0, 1, 0\)$"):  # fmt: skip
        m(bad_x, a, 3)
    bad_a = a.to(torch.float64)
    bad_a[0, 4, 1], bad_a[1, 0, 0] = float("inf"), float("-inf")
    with pytest.raises(
        ValueError, match=r"^actions holds 2 non-finite value\(s\) .* the first inf at index \(0, 4, 1\)$"
    ):
        m(x, bad_a, 3)
    # finite float actions are still taken (rounded) and give the integer actions' predictions
    assert torch.equal(m(x, a.to(torch.float64), 3), m(x, a, 3))
