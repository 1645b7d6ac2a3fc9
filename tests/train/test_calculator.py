"""EquivarCalculator: no global torch state changes, forces and stress are derivatives, element checks."""

import numpy as np
import pytest
import torch
from ase.build import bulk
from standin import PairPotential

from equivar.calculators import EquivarCalculator


@pytest.fixture
def model():
    torch.manual_seed(0)
    return PairPotential([29, 79], [3.51, 3.8], r_max=4.0, hidden=8).double().eval()


def _atoms(seed=0):
    a = bulk("Cu", "fcc", a=3.7).repeat((2, 2, 2))
    a.numbers[[1, 5]] = 79
    a.set_cell(a.cell.array @ (np.eye(3) + 0.02 * np.random.default_rng(seed).normal(size=(3, 3))), scale_atoms=True)
    a.rattle(0.05, seed=seed)
    return a


@pytest.mark.parametrize("default", [torch.float32, torch.float64])
def test_global_torch_state_untouched(model, default):
    old = torch.get_default_dtype()
    torch.set_default_dtype(default)
    try:
        a = _atoms()
        a.calc = EquivarCalculator(model, default_dtype="float32")
        with torch.no_grad():
            f = a.get_forces()
            assert not torch.is_grad_enabled()
        a.get_stress()
        assert torch.get_default_dtype() == default
        assert np.abs(f).sum() > 0
        assert next(model.parameters()).dtype == torch.float64  # the caller's model was copied, not cast
    finally:
        torch.set_default_dtype(old)


def test_forces_and_stress_are_derivatives(model):
    a = _atoms(1)
    a.calc = EquivarCalculator(model)
    f = a.get_forces()
    h = 1e-5
    for i, k in [(0, 0), (3, 2), (6, 1)]:
        e = []
        for s in (h, -h):
            b = a.copy()
            b.calc = a.calc
            b.positions[i, k] += s
            e.append(b.get_potential_energy())
        assert f[i, k] == pytest.approx(-(e[0] - e[1]) / (2 * h), rel=1e-6, abs=1e-8)
    # stress = (1/V) dE/d(strain), ASE Voigt order
    s = a.get_stress(voigt=False)
    vol = a.get_volume()
    for i, j in [(0, 0), (1, 2), (2, 0)]:
        e = []
        for d in (h, -h):
            eps = np.eye(3)
            eps[i, j] += d / 2
            eps[j, i] += d / 2
            b = a.copy()
            b.calc = a.calc
            b.set_cell(a.cell.array @ eps, scale_atoms=True)
            e.append(b.get_potential_energy())
        assert s[i, j] == pytest.approx((e[0] - e[1]) / (2 * h) / vol, rel=1e-5, abs=1e-9)


def test_rejects_unknown_element_and_overlap(model):
    a = _atoms()
    a.numbers[0] = 8
    a.calc = EquivarCalculator(model)
    with pytest.raises(ValueError, match=r"element\(s\) O \(Z=8\) not in the model's elements \[Cu, Au\]"):
        a.get_potential_energy()
    b = _atoms()
    b.positions[1] = b.positions[0] + 0.01
    b.calc = EquivarCalculator(model)
    with pytest.raises(ValueError, match="overlapping atoms"):
        b.get_potential_energy()


def test_atom_without_neighbours_gets_its_e0(model):
    from ase import Atoms

    a = Atoms("CuAu", positions=[[0, 0, 0], [0, 0, 12.0]])
    a.calc = EquivarCalculator(model)
    assert a.get_potential_energy() == pytest.approx(3.51 + 3.8, abs=1e-12)
    assert np.all(a.get_forces() == 0)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"device": "gpu"}, r"^EquivarCalculator: device 'gpu' is not a torch device"),
        (
            {"default_dtype": "float16"},
            r"^EquivarCalculator: default_dtype must be 'float32' or 'float64' \(or None\), got 'float16'$",
        ),
        ({"default_dtype": torch.float16}, r"^EquivarCalculator: default_dtype must be .*got torch\.float16$"),
        ({"default_dtype": "floot32"}, r"got 'floot32'$"),
    ],
)
def test_bad_device_and_dtype_are_one_line_errors(model, kwargs, message):
    with pytest.raises(ValueError, match=message):
        EquivarCalculator(model, **kwargs)


def test_cuda_without_cuda_is_a_value_error(model):
    if torch.cuda.is_available():  # pragma: no cover - CPU CI
        pytest.skip("CUDA present")
    with pytest.raises(ValueError, match=r"^EquivarCalculator: device 'cuda' requested but CUDA is not available"):
        EquivarCalculator(model, device="cuda")


def test_dtype_names_and_objects_accepted(model):
    assert EquivarCalculator(model, default_dtype="float32").dtype == torch.float32
    assert EquivarCalculator(model, default_dtype=torch.float64).dtype == torch.float64
