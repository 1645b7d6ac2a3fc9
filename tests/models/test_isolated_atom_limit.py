"""The isolated-atom limit of every potential (Potential base): an atom with no neighbour within r_max has exactly
its E0, and energy and forces stay smooth (C2 weight) as the last neighbour leaves; dimer dissociation curves."""

import ase
import ase.io
import numpy as np
import pytest
import torch
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from equivar.calculators import EquivarCalculator
from equivar.models import MACE
from equivar.nn import neighbour_weight

R_MAX = 4.0
E0 = {29: -0.9, 79: -1.6}
SHIFT = [-3.4, -3.9]


def _mace(dtype="float64", **kw):
    hp = dict(
        r_max=R_MAX,
        num_bessel=4,
        max_ell=2,
        num_channels=4,
        max_L=1,
        correlation=2,
        atomic_numbers=[29, 79],
        atomic_energies=E0,
        avg_num_neighbors=4.0,
        radial_mlp=[16, 16],
        readout_mlp=8,
        scale=0.7,
        shift=SHIFT,
        dtype=dtype,
        seed=3,
    )
    hp.update(kw)
    return MACE(**hp).eval()


def _dimer_weight(r, dtype, width=1.0):
    r = torch.as_tensor(r, dtype=dtype).reshape(1).requires_grad_(True)
    w = neighbour_weight(r, torch.zeros(1, dtype=torch.long), 1, R_MAX, width)[0]
    (d1,) = torch.autograd.grad(w, r, create_graph=True)
    (d2,) = torch.autograd.grad(d1.sum(), r)
    return float(w.detach()), float(d1.detach()), float(d2)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_weight_is_one_inside_zero_outside_and_c2_at_both_knots(dtype):
    for r in (0.5, 2.0, R_MAX - 1.0):
        assert _dimer_weight(r, dtype) == (1.0, 0.0, 0.0)
    for r in (R_MAX, R_MAX + 0.5, 10.0):
        assert _dimer_weight(r, dtype) == (0.0, 0.0, 0.0)
    for knot in (R_MAX - 1.0, R_MAX):  # value, slope and curvature match from both sides
        for eps in (1e-3, 1e-2):
            lo, hi = _dimer_weight(knot - eps, torch.float64), _dimer_weight(knot + eps, torch.float64)
            assert abs(lo[0] - hi[0]) < 1e-5 and abs(lo[1] - hi[1]) < 2e-3 and abs(lo[2] - hi[2]) < 0.3
    w = [_dimer_weight(r, dtype)[0] for r in np.linspace(R_MAX - 1.0, R_MAX, 41)]
    assert all(a >= b for a, b in zip(w, w[1:])) and w[20] not in (0.0, 1.0)  # monotone in between


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(0.5, 6.0), min_size=1, max_size=6), st.floats(0.2, 2.0))
def test_weight_in_unit_interval_and_one_with_a_close_neighbour(distances, width):
    d = torch.tensor(distances, dtype=torch.float64)
    w = float(neighbour_weight(d, torch.zeros(len(d), dtype=torch.long), 1, R_MAX, width)[0])
    assert 0.0 <= w <= 1.0
    if min(distances) <= R_MAX - width:
        assert w == 1.0
    if min(distances) >= R_MAX:
        assert w == 0.0


def _dimer(calc, r, z=(29, 79)):
    a = ase.Atoms(numbers=list(z), positions=[[0.0, 0.0, 0.0], [r, 0.0, 0.0]])
    a.calc = calc
    return a.get_potential_energy(), a.get_forces()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_dimer_dissociates_to_the_sum_of_e0s_smoothly(dtype):
    model = _mace(dtype)
    calc = EquivarCalculator(model)
    limit = E0[29] + E0[79]
    for z in (29, 79):
        a = ase.Atoms(numbers=[z], positions=[[0.0, 0.0, 0.0]])
        a.calc = calc
        assert model.isolated_atom_energy(z) == E0[z]
        assert a.get_potential_energy() == pytest.approx(E0[z], abs=0 if dtype == "float64" else 1e-7)  # its E0
    for r in (R_MAX, R_MAX + 1e-9, R_MAX + 0.7, 9.0):
        e, f = _dimer(calc, r)
        assert e == pytest.approx(limit, abs=1e-12 if dtype == "float64" else 1e-6) and np.abs(f).max() == 0
    # inside r_max the atoms interact: the shift is on, and the energy reaches the limit without a step
    assert abs(_dimer(calc, 2.5)[0] - limit) > 1.0
    assert abs(_dimer(calc, R_MAX - 0.01)[0] - limit) < 1e-6
    if dtype == "float64":  # forces are -dE/dr along the whole curve, through both knots of the weight
        h = 1e-5
        for r in np.concatenate([np.linspace(1.8, R_MAX + 0.2, 23), [R_MAX - 1.0, R_MAX - 1e-3]]):
            e_plus, e_minus = _dimer(calc, r + h)[0], _dimer(calc, r - h)[0]
            f = _dimer(calc, r)[1]
            assert f[1, 0] == pytest.approx(-(e_plus - e_minus) / (2 * h), rel=1e-5, abs=1e-8), r
            assert f[0, 0] == pytest.approx(-f[1, 0], rel=1e-9, abs=1e-12)
        for knot in (R_MAX - 1.0, R_MAX):  # C1 at the knots: the force has no jump
            assert abs(_dimer(calc, knot + 1e-5)[1][1, 0] - _dimer(calc, knot - 1e-5)[1][1, 0]) < 1e-3


def test_weight_changes_nothing_where_every_atom_has_a_close_neighbour():
    from equivar.data import embedded_path

    frames = [a for a in ase.io.read(embedded_path("cuau_emt"), ":20") if len(a) > 1]
    new, old = EquivarCalculator(_mace()), EquivarCalculator(_mace(isolation_width=None))
    for a in frames:
        b = a.copy()
        a.calc, b.calc = new, old
        assert a.get_potential_energy() == b.get_potential_energy()  # bit for bit: w = 1 exactly
        assert np.array_equal(a.get_forces(), b.get_forces())
        assert np.array_equal(a.get_stress(), b.get_stress())
    lone = ase.Atoms(numbers=[29], positions=[[0.0, 0.0, 0.0]])
    lone.calc = old  # mace-torch's convention: E0 + shift
    assert lone.get_potential_energy() == pytest.approx(E0[29] + SHIFT[0], abs=1e-12)
    with pytest.raises(ValueError, match="isolation_width must be a positive width"):
        _mace(isolation_width=0.0)


def test_trained_model_gives_isolated_atoms_their_e0(tmp_path):
    """A model trained (briefly) on data with isolated-atom references: each isolated atom and a dimer pulled
    apart get exactly the references of the training file."""
    import sys

    sys.path.insert(0, str(__import__("pathlib").Path(__file__).parents[1] / "train"))
    from helpers import tiny_config_dict, write_tiny_dataset

    from equivar.cli.main import main

    data = write_tiny_dataset(str(tmp_path / "tiny.xyz"), n_frames=12)
    iso = {int(a.numbers[0]): a.get_potential_energy() for a in ase.io.read(data, ":") if len(a) == 1}
    cfg = tiny_config_dict(data, str(tmp_path / "run"), epochs=2)
    cfg["model"] = dict(name="mace", num_channels=4, max_L=1, max_ell=1, correlation=2, radial_mlp=[8])
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["train", "--config", str(tmp_path / "c.yaml")]) == 0
    calc = EquivarCalculator(str(tmp_path / "run" / "model.pt"))
    assert calc.model.hparams["shift"] != 0  # the shift is there, and switched off for isolated atoms
    for z in (29, 79):
        a = ase.Atoms(numbers=[z], positions=[[0.0, 0.0, 0.0]])
        a.calc = calc
        assert a.get_potential_energy() == pytest.approx(iso[z], abs=1e-9)
    far = [_dimer(calc, r)[0] for r in (4.0, 4.5, 8.0)]  # r_max 4.0
    assert far == pytest.approx([iso[29] + iso[79]] * 3, abs=1e-9)
    assert abs(_dimer(calc, 3.99)[0] - far[0]) < 1e-6
