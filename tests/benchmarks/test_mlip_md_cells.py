"""benchmarks/mlip_md_cells.py's set-up: the EMT cells and equivar's two calculators (the timings are the benchmark)."""

import importlib.util
import os
import sys

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _load():
    spec = importlib.util.spec_from_file_location("mlip_md_cells", os.path.join(ROOT, "benchmarks", "mlip_md_cells.py"))
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


B = _load()


def test_cells_and_calculators(tmp_path):
    paths = B.make_cells([108], str(tmp_path))
    atoms = B._atoms(paths[108])
    assert len(atoms) == 108 and atoms.pbc.all()
    assert set(np.unique(atoms.numbers)) == {29, 79}
    assert 0.3 < np.mean(atoms.numbers == 79) < 0.7
    temperature = atoms.get_kinetic_energy() / (1.5 * len(atoms) * 8.617333e-5)
    assert 100 < temperature < 1500  # thermalized by EMT MD from 600 K
    edges = B._edges(atoms, B.ARCH["r_max"])
    assert 12 * len(atoms) < edges < 24 * len(atoms)  # fcc Cu/Au within 4 Å: 12-18 neighbours
    calcs = B._equivar_calculators("float64")
    forces = {}
    for mode, calc in calcs.items():
        a = atoms.copy()
        a.calc = calc
        forces[mode] = a.get_forces()
        if mode == "forces+stress":
            assert "stress" in calc.results and np.isfinite(calc.results["stress"]).all()
        else:
            assert "stress" not in calc.results
    np.testing.assert_allclose(forces["forces"], forces["forces+stress"], rtol=1e-10, atol=1e-12)
    assert np.abs(forces["forces"]).max() > 0
    assert calcs["forces"].model.dtype == torch.float64
