"""FERNN and its G-RNN twin (Keller 2025): exact flow equivariance, shift equivariance, the twin's failure, sizes."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from equivar import planar as P
from equivar.models import build_model
from equivar.models.fernn import FERNN, GRNN
from equivar.testing import check_sequence_model, default_tolerance, flow_equivariance_error

DTYPES = [torch.float32, torch.float64]


def _frames(B=2, T=4, H=5, W=5, seed=0, dtype=torch.float64):
    return torch.rand(B, T, 1, H, W, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def _pair(seed=0, **kw):
    torch.manual_seed(seed)
    f = FERNN(**kw)
    g = GRNN(**{k: v for k, v in kw.items() if k != "v_range"})
    g.load_state_dict({k: v for k, v in f.state_dict().items() if k != "cell.velocities"}, strict=False)
    return f, g


def test_velocity_grid_and_flow_roll_match_torch_roll():
    v = P.velocity_grid(2)
    assert v.shape == (25, 2) and v[0].tolist() == [-2, -2] and v[12].tolist() == [0, 0] and v[-1].tolist() == [2, 2]
    x = torch.randn(3, 25, 2, 6, 7)
    for t in (1, -2, 5):
        y = P.flow_roll(x, v, t)
        for i, (a, b) in enumerate(v.tolist()):
            assert torch.equal(y[:, i], torch.roll(x[:, i], (t * a, t * b), dims=(-2, -1)))
    with pytest.raises(ValueError, match="velocities \\[V, 2\\]"):
        P.flow_roll(x, v[:3])
    with pytest.raises(ValueError, match="v_range must be an integer >= 0, got -1"):
        P.velocity_grid(-1)


def test_twins_have_the_same_parameters():
    f, g = _pair(hidden_channels=6, v_range=2, decoder_layers=2)
    nf, ng = (sum(p.numel() for p in m.parameters()) for m in (f, g))
    assert nf == ng == 6 * 1 * 9 + 6 * 6 * 9 + 2 * 6 * 6 * 9 + 6 * 1 * 9  # conv_u, conv_h, 2 decoder convs, output
    assert f.cell.num_velocities == 25 and g.cell.num_velocities == 1
    m = build_model("fernn", hidden_channels=6, v_range=1)
    assert isinstance(m, FERNN) and m.hparams["v_range"] == 1 and m.velocities.shape == (9, 2)


@pytest.mark.parametrize("activation", ["relu", "tanh"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_fernn_exactly_flow_and_shift_equivariant_when_velocities_form_a_group(dtype, activation):
    # 5 x 5 torus, V = {-2..2}^2 = all of Z_5 x Z_5: every flow u in V permutes the velocity channels
    f, _ = _pair(hidden_channels=4, v_range=2, image_size=5, activation=activation)
    errs = check_sequence_model(f, frames=_frames(), pred_len=3, dtypes=[dtype], max_shifts=24)
    assert set(errs) == {("planar:shifts", str(dtype)[6:]), ("planar:flows", str(dtype)[6:])}


@pytest.mark.parametrize("dtype", DTYPES)
def test_grnn_shift_equivariant_but_not_flow_equivariant(dtype):
    f, g = _pair(hidden_channels=4, v_range=2, image_size=5)
    check_sequence_model(g, frames=_frames(), pred_len=3, dtypes=[dtype], max_shifts=24)  # static shifts: exact
    x = _frames(dtype=dtype)
    f, g = f.to(dtype), g.to(dtype)
    errs_g = [flow_equivariance_error(g, x, 3, u) for u in ([1, 0], [0, -1], [2, 1])]
    errs_f = [flow_equivariance_error(f, x, 3, u) for u in ([1, 0], [0, -1], [2, 1])]
    # measured 0.86-1.42 (G-RNN) against 0.0 (FERNN, both dtypes), same weights
    assert min(errs_g) > 0.05 and max(errs_f) < 1e-5
    with pytest.raises(AssertionError, match="GRNN not equivariant under planar:flows"):
        check_sequence_model(g, ["planar:flows"], frames=x, velocities=[[1, 0]], dtypes=[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
def test_lifted_hidden_state_flows_exactly_on_any_grid(dtype):
    # 9 x 11 images, V = {-1..1}^2 not closed under addition: the hidden state is still exactly equivariant,
    # h'_t(v) = roll(h_t(v - u), t u) for v and v - u in V (observed frames; Keller 2025, Theorem on FERNNs)
    f, _ = _pair(hidden_channels=3, v_range=1)
    f = f.to(dtype)
    x = _frames(T=5, H=9, W=11, dtype=dtype)
    vel = f.velocities.tolist()
    for u in ([1, 1], [-1, 0], [0, 1]):
        flow = P.Flow(P.CircularShifts(9, 11), torch.tensor(u))
        _, h = f(x, 1, return_hidden=True)
        _, h2 = f(flow.act(x, time_axis=1), 1, return_hidden=True)
        checked = 0
        for i, v in enumerate(vel):
            src = [v[0] - u[0], v[1] - u[1]]
            if src not in vel:
                continue
            j = vel.index(src)
            for t in range(5):
                expect = torch.roll(h[:, t, j], (t * u[0], t * u[1]), dims=(-2, -1))
                err = float((h2[:, t, i] - expect).abs().max()) / max(float(expect.abs().max()), 1e-30)
                assert err <= default_tolerance(dtype), (u, v, t, err)
                checked += 1
        assert checked == 5 * (3 - abs(u[0])) * (3 - abs(u[1]))  # the velocity channels whose partner v - u is in V


@settings(max_examples=12, deadline=None)
@given(
    u=st.tuples(st.integers(-2, 2), st.integers(-2, 2)),
    g=st.tuples(st.integers(0, 4), st.integers(0, 4)),
    seed=st.integers(0, 2**16),
)
def test_fernn_flow_then_shift_property(u, g, seed):
    """For every flow u in V, static shift g and input: f(g psi_u x) = g psi_u f(x) (float64, 5 x 5 torus)."""
    f, _ = _pair(seed=1, hidden_channels=3, v_range=2, image_size=5)
    f = f.double().eval()
    x = _frames(B=1, T=3, seed=seed)
    flow, G = P.Flow(P.CircularShifts(5, 5), torch.tensor(u)), P.CircularShifts(5, 5)
    with torch.no_grad():
        lhs = f(G.act(torch.tensor(g), flow.act(x, time_axis=1)), 2)
        rhs = G.act(torch.tensor(g), flow.act(f(x, 2), time_axis=1, t0=3))
    assert float((lhs - rhs).abs().max()) <= 1e-9 * float(rhs.abs().max())


def test_predictions_feed_back_and_errors():
    f, _ = _pair(hidden_channels=3, v_range=1, image_size=6)
    x = _frames(T=3, H=6, W=6, dtype=torch.float32)
    y = f(x, 4)
    assert y.shape == (2, 4, 1, 6, 6)
    y_long = f(x, 6)
    torch.testing.assert_close(y_long[:, :4], y)  # a longer rollout starts with the same frames
    with pytest.raises(ValueError, match="frames must be \\[B, T_in >= 1, 1, H, W\\], got shape \\(2, 3, 6, 6\\)"):
        f(x[:, :, 0], 2)
    for bad in (0, 2.5):
        with pytest.raises(ValueError, match=f"pred_len must be an integer >= 1, got {bad}"):
            f(x, bad)
    with pytest.raises(ValueError, match="kernel_size must be odd, got 4"):
        FERNN(kernel_size=4)


def test_sequence_kit_errors():
    f, g = _pair(hidden_channels=2, v_range=1, image_size=5)
    with pytest.raises(ValueError, match="unknown sequence-model group 'planar:C4'"):
        check_sequence_model(f, ["planar:C4"])
    with pytest.raises(ValueError, match="GRNN claims no groups"):
        check_sequence_model(g, [])
    with pytest.raises(ValueError, match="Linear claims no groups"):
        check_sequence_model(torch.nn.Linear(1, 1))
    with pytest.raises(ValueError, match="Linear: planar:flows needs velocities"):
        check_sequence_model(torch.nn.Linear(1, 1), ["planar:flows"], frames=_frames())


def _decoder_bound(model) -> float:
    """Largest |prediction| a decoder of bias-free convs and ReLUs can give from pooled features in [-1, 1]."""
    bound = 1.0
    for m in model.decoder:
        if isinstance(m, torch.nn.Conv2d):
            bound *= float(m.weight.abs().sum(dim=(1, 2, 3)).max())
    return bound


@pytest.mark.parametrize("cls", [FERNN, GRNN])
def test_tanh_state_stays_bounded_over_rollouts_far_beyond_training_length(cls):
    """The cause of the 2x-longer failure on Translating MNIST: a ReLU state is unbounded (it integrates the
    fed-back predictions), a tanh state is not. Untrained weights scaled 3x, 60 predicted frames."""
    kw = dict(hidden_channels=4, image_size=8, decoder_layers=1)
    if cls is FERNN:
        kw["v_range"] = 1
    torch.manual_seed(3)
    t = cls(activation="tanh", **kw).double()
    r = cls(activation="relu", **kw).double()
    with torch.no_grad():
        for p in t.parameters():
            p.mul_(3.0)
    r.load_state_dict(t.state_dict())
    x = _frames(B=2, T=10, H=8, W=8)
    with torch.no_grad():
        pred, h = t(x, 60, return_hidden=True)
        pred_r = r(x, 60)  # the same weights with ReLU: the fed-back predictions blow the state up
    assert float(h.abs().max()) <= 1.0  # tanh: |h| <= 1 at every one of the 69 steps (1.0 where it saturates)
    bound = _decoder_bound(t)
    assert float(pred.abs().max()) <= bound and torch.isfinite(pred).all()
    assert float(pred_r[:, -1].abs().max()) > 1e6 * bound
    with pytest.raises(ValueError, match="activation must be 'relu' or 'tanh', got 'gelu'"):
        cls(activation="gelu", **kw)
    assert build_model(cls.__name__.lower(), activation="tanh", **kw).hparams["activation"] == "tanh"
