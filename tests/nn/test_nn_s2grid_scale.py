import pytest
import torch

from equivar.nn import AtomicEnergies, S2GridMLP, ScaleShift
from equivar.o3 import Irreps
from equivar.testing import assert_equivariant, equivariance_error

IRREPS = "6x0e+6x1o"


def test_s2grid_linear_is_exactly_equivariant(dtype):
    # projection of degree <= 2 functions onto degree <= 1: exact for band_limit >= 3
    irreps_in = "6x0e+6x1o+6x2e"
    m = S2GridMLP(irreps_in, "3x0e+3x1o", hidden=(), band_limit=3).to(dtype)
    x = Irreps(irreps_in).randn(5, -1, dtype=dtype)
    assert_equivariant(m, [x], [irreps_in], "3x0e+3x1o")


def test_s2grid_mlp_equivariant_at_default_resolution(dtype):
    with torch.random.fork_rng():
        torch.manual_seed(0)
        m = S2GridMLP(IRREPS, IRREPS).to(dtype)
        x = Irreps(IRREPS).randn(8, -1, dtype=dtype)
    assert m.band_limit == 14
    assert_equivariant(m, [x], [IRREPS], IRREPS, tolerance=1e-4 if dtype == torch.float32 else 1e-5)


def test_s2grid_error_falls_with_band_limit_and_parity_is_exact():
    gen = torch.Generator().manual_seed(0)
    x = Irreps(IRREPS).randn(8, -1, dtype=torch.float64, generator=gen)
    errs = []
    for bl in (4, 8, 18):
        with torch.random.fork_rng():
            torch.manual_seed(1)
            m = S2GridMLP(IRREPS, IRREPS, band_limit=bl).double()
        rep = equivariance_error(m, [x], [IRREPS], IRREPS)
        errs.append(rep.max)
        # inversion maps the (even-azimuth) grid to itself: parity alone is exact
        xi = x @ Irreps(IRREPS).D_from_matrix(-torch.eye(3, dtype=torch.float64)).T
        torch.testing.assert_close(m(xi), m(x) @ Irreps(IRREPS).D_from_matrix(-torch.eye(3, dtype=torch.float64)).T)
    assert errs[0] > errs[1] > errs[2] and errs[2] < 1e-6


def test_s2grid_rejects_bad_irreps():
    with pytest.raises(ValueError, match="parity"):
        S2GridMLP("2x0e+2x1e", "2x0e")
    with pytest.raises(ValueError, match="multiplicity"):
        S2GridMLP("2x0e+3x1o", "2x0e")


def test_atomic_energies_and_scale_shift(dtype):
    e0 = AtomicEnergies([-1000.123456789, -13.6]).to(dtype)
    idx = torch.tensor([0, 1, 1])
    oh = torch.nn.functional.one_hot(idx, 2).to(dtype)
    torch.testing.assert_close(e0(idx), e0(oh))
    if dtype == torch.float64:  # exact constants survive .to(float32).to(float64)
        e0f = AtomicEnergies([-1000.123456789, -13.6]).float().double()
        assert e0f(idx)[0].item() == -1000.123456789
    ss = ScaleShift(2.0, 0.5).to(dtype)
    torch.testing.assert_close(ss(torch.ones(3, dtype=dtype)), torch.full((3,), 2.5, dtype=dtype))
    per = ScaleShift([1.0, 3.0], [0.0, -1.0]).to(dtype)
    torch.testing.assert_close(per(torch.ones(3, dtype=dtype), idx), torch.tensor([1.0, 2.0, 2.0], dtype=dtype))
    sd = per.state_dict()
    fresh = ScaleShift([0.0, 0.0], [0.0, 0.0]).to(dtype)
    fresh.load_state_dict(sd)
    torch.testing.assert_close(
        fresh.double()(torch.ones(3, dtype=torch.float64), idx), torch.tensor([1.0, 2.0, 2.0], dtype=torch.float64)
    )
