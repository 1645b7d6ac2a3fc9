"""Importing mace-torch models (equivar.models.mace.from_mace, ``equivar convert --from-mace``).

The references are mace-torch's own float64 outputs: ``tests/data/reference/mace_*.model.xz`` and
``mace_*_reference.npz`` were written by ``scripts/make_mace_fixture.py`` with mace-torch 0.3.16 (see
the README there). ``test_live_mace_torch`` trains and saves a fresh model with mace-torch in a
subprocess when an interpreter with mace-torch is found (``EQUIVAR_MACE_PYTHON``, or
``/tmp/macevenv/bin/python``), and is skipped otherwise. mace-torch is never imported here.
"""

from __future__ import annotations

import lzma
import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import torch
from ase import Atoms

from equivar.calculators import EquivarCalculator
from equivar.models.mace import MACE, from_mace
from equivar.testing import check_forces_finite_differences, check_symmetry

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REF = os.path.join(TESTS, "data", "reference")
ROOT = os.path.dirname(TESTS)
SRC = os.path.join(ROOT, "src")

#: what scripts/make_mace_fixture.py built (mace-torch hyperparameters -> equivar's)
FIXTURES = {
    "mace_ethanol": dict(
        cls="ScaleShiftMACE",
        r_max=5.0,
        num_bessel=8,
        num_polynomial_cutoff=5,
        max_ell=3,
        hidden_irreps="8x0e+8x1o",
        correlation=2,
        num_interactions=2,
        radial_mlp=[16, 16],
        readout_mlp=16,
        atomic_numbers=[1, 6, 8],
        atomic_energies=[-13.587222780835477, -1029.4889999855063, -2041.9816003861047],
    ),
    "mace_cuau": dict(
        cls="MACE",
        r_max=4.5,
        num_bessel=6,
        num_polynomial_cutoff=6,
        max_ell=1,
        hidden_irreps="4x0e+4x1o",
        correlation=3,
        num_interactions=3,
        radial_mlp=[8, 8, 8],
        readout_mlp=8,
        atomic_numbers=[29, 79],
        scale=1.0,
        shift=0.0,
    ),
}


def unpack(name: str, dest) -> str:
    """``tests/data/reference/<name>.model.xz`` decompressed into ``dest``; returns the path."""
    path = os.path.join(str(dest), f"{name}.model")
    with lzma.open(os.path.join(REF, f"{name}.model.xz")) as f, open(path, "wb") as g:
        g.write(f.read())
    return path


def reference_frames(npz_path: str) -> list:
    """``[(atoms, energy, forces, stress or None)]`` recorded by scripts/make_mace_fixture.py."""
    ref = np.load(npz_path)
    out = []
    for f in range(int(ref["num_frames"])):
        atoms = Atoms(
            numbers=ref[f"frame{f}_numbers"],
            positions=ref[f"frame{f}_positions"],
            cell=ref[f"frame{f}_cell"],
            pbc=ref[f"frame{f}_pbc"],
        )
        stress = ref[f"frame{f}_stress"] if f"frame{f}_stress" in ref else None
        out.append((atoms, float(ref[f"frame{f}_energy"]), ref[f"frame{f}_forces"], stress))
    return out


def compare(model, frames, rtol: float) -> dict:
    """Largest relative errors against mace-torch: energy relative to the interaction energy (the energy minus
    the E0s, far smaller than the total), forces and stress relative to their largest component."""
    calc = EquivarCalculator(model)
    e0 = dict(zip(model.atomic_numbers, model.hparams["atomic_energies"]))
    worst = {"energy": 0.0, "forces": 0.0, "stress": 0.0}
    for atoms, energy, forces, stress in frames:
        a = atoms.copy()
        a.calc = calc
        inter = energy - sum(e0[int(z)] for z in a.numbers)
        worst["energy"] = max(worst["energy"], abs(a.get_potential_energy() - energy) / abs(inter))
        if len(a) > 1:
            worst["forces"] = max(worst["forces"], np.abs(a.get_forces() - forces).max() / np.abs(forces).max())
        if stress is not None:
            worst["stress"] = max(worst["stress"], np.abs(a.get_stress() - stress).max() / np.abs(stress).max())
    assert all(v <= rtol for v in worst.values()), worst
    return worst


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_fixture_matches_mace_torch_float64(name, tmp_path):
    model = from_mace(unpack(name, tmp_path))
    assert isinstance(model, MACE) and model.dtype == torch.float64 and not model.training
    frames = reference_frames(os.path.join(REF, f"{name}_reference.npz"))
    assert any(s is not None for *_, s in frames) and any(len(a) == 1 for a, *_ in frames)  # a cell, a lone atom
    worst = compare(model, frames, rtol=1e-6)
    assert max(worst.values()) < 1e-9  # exact mapping: round-off, not an approximation


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_fixture_hyperparameters(name, tmp_path):
    want = dict(FIXTURES[name])
    cls = want.pop("cls")
    model = from_mace(unpack(name, tmp_path))
    hp = model.hparams
    for key, value in want.items():
        assert hp[key] == pytest.approx(value) if isinstance(value, float) else hp[key] == value, key
    assert hp["isolation_width"] is None and hp["residual_first"] is True
    assert model.mace_torch_class == cls
    assert hp["avg_num_neighbors"] > 1  # mace-torch's compute_avg_num_neighbors, not the default 1
    if cls == "ScaleShiftMACE":
        assert hp["scale"] != 1.0 and hp["shift"] != 0.0


def test_fixture_float32(tmp_path):
    model = from_mace(unpack("mace_ethanol", tmp_path), dtype="float32")
    assert model.dtype == torch.float32 and model.hparams["dtype"] == "float32"
    compare(model, reference_frames(os.path.join(REF, "mace_ethanol_reference.npz")), rtol=1e-4)


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_imported_model_is_a_consistent_potential(name, dtype, tmp_path):
    model = from_mace(unpack(name, tmp_path), dtype="float64" if dtype == torch.float64 else "float32")
    check_symmetry(model)  # O(3), translations, permutations: 1e-4 relative in float32, 1e-9 in float64
    if dtype == torch.float64:
        check_forces_finite_differences(model)


# ---- unsupported variants and foreign files -------------------------------------------------------


def _patched(src: str, dest: str, old: bytes, new: bytes) -> str:
    """A copy of the model file ``src`` whose pickle has ``old`` replaced by ``new`` (class names, globals)."""
    with zipfile.ZipFile(src) as z:
        items = [(i, z.read(i.filename)) for i in z.infolist()]
    hits = 0
    with zipfile.ZipFile(dest, "w") as out:
        for info, data in items:
            if info.filename.endswith("data.pkl"):
                hits = data.count(old)
                data = data.replace(old, new)
            out.writestr(info, data)
    assert hits, f"{old!r} not in the pickle"
    return dest


@pytest.mark.parametrize(
    "old, new, named",
    [
        (b"RealAgnosticResidualInteractionBlock", b"RealAgnosticDensityInteractionBlock", "RealAgnosticDensity"),
        (b"\nScaleShiftMACE\n", b"\nAtomicDipolesMACE\n", "AtomicDipolesMACE"),
        (b"\nNonLinearReadoutBlock\n", b"\nNonLinearBiasReadoutBlock\n", "NonLinearBiasReadoutBlock"),
        (b"\nBesselBasis\n", b"\nGaussianBasis\n", "GaussianBasis"),
    ],
)
def test_unsupported_variant_one_line_error(old, new, named, tmp_path):
    path = _patched(unpack("mace_ethanol", tmp_path), str(tmp_path / "variant.model"), old, new)
    with pytest.raises(ValueError) as e:
        from_mace(path)
    msg = str(e.value)
    assert named in msg and "not supported" in msg and "\n" not in msg and "variant.model" in msg


def test_refuses_foreign_globals_without_running_them(tmp_path):
    # a pickle that names os.system instead of silu: refused while reading, nothing executed
    path = _patched(
        unpack("mace_ethanol", tmp_path),
        str(tmp_path / "evil.model"),
        b"torch.nn.functional\nsilu\n",
        b"os\nsystem\n",
    )
    with pytest.raises(ValueError, match=r"refusing to unpickle global os\.system") as e:
        from_mace(path)
    assert "\n" not in str(e.value)


def test_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.model"):
        from_mace(str(tmp_path / "nope.model"))
    junk = tmp_path / "junk.model"
    junk.write_bytes(b"not a model")
    with pytest.raises(ValueError, match="junk.model: not a readable mace-torch model file"):
        from_mace(str(junk))
    tensor = tmp_path / "tensor.model"
    torch.save(torch.zeros(3), tensor)
    with pytest.raises(ValueError, match="not a pickled mace-torch model"):
        from_mace(str(tensor))
    with pytest.raises(ValueError, match="dtype"):
        from_mace(str(tensor), dtype="float16")


# ---- the command line, in fresh processes ---------------------------------------------------------


def _cli(*args, cwd=None):
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run(
        [sys.executable, "-m", "equivar", *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=600
    )


def test_cli_convert_then_eval_and_md_in_fresh_processes(tmp_path):
    import ase.io

    src = unpack("mace_cuau", tmp_path)
    frames = reference_frames(os.path.join(REF, "mace_cuau_reference.npz"))
    out = tmp_path / "model.pt"
    r = _cli("convert", "--from-mace", src, "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert "MACE" in r.stdout and str(out) in r.stdout
    periodic = [a for a, *_ in frames if a.pbc.all()]
    ase.io.write(tmp_path / "cells.xyz", periodic, format="extxyz")
    r = _cli("eval", "--model", str(out), "--data", str(tmp_path / "cells.xyz"), "--out-dir", str(tmp_path / "ev"))
    assert r.returncode == 0, r.stderr
    pred = ase.io.read(tmp_path / "ev" / "cells_predictions.xyz", ":")
    refs = [(e, f) for a, e, f, s in frames if a.pbc.all()]
    assert len(pred) == len(refs)
    for p, (e, f) in zip(pred, refs):
        assert abs(p.get_potential_energy() - e) <= 1e-6 * abs(e)
        assert np.abs(p.get_forces() - f).max() <= 1e-6 * np.abs(f).max()
    r = _cli(
        "md", "--model", str(out), "--structure", str(tmp_path / "cells.xyz"), "--steps", "4", "--interval", "2",
        "--trajectory", str(tmp_path / "md.xyz"), "--threads", "1",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    log = np.genfromtxt(tmp_path / "md_energy.csv", delimiter=",", names=True)
    assert len(log) == 3 and abs(log["epot_eV"][0] - refs[0][0]) <= 1e-6 * abs(refs[0][0])


def test_cli_convert_refuses_an_unsupported_variant_and_writes_nothing(tmp_path):
    path = _patched(
        unpack("mace_ethanol", tmp_path),
        str(tmp_path / "variant.model"),
        b"RealAgnosticResidualInteractionBlock",
        b"RealAgnosticAttResidualInteractionBlock",
    )
    r = _cli("convert", "--from-mace", path, "-o", str(tmp_path / "out.pt"))
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "RealAgnosticAttResidualInteractionBlock" in lines[0], r.stderr
    assert not (tmp_path / "out.pt").exists()


def test_cli_convert_refuses_to_overwrite_its_input(tmp_path):
    src = unpack("mace_ethanol", tmp_path)
    before = open(src, "rb").read()
    link = tmp_path / "link.pt"
    os.symlink(src, link)
    for out in (src, str(link)):
        r = _cli("convert", "--from-mace", src, "-o", out)
        assert r.returncode == 2, r.stderr
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and "is the input --from-mace file" in lines[0] and out in lines[0], r.stderr
        assert open(src, "rb").read() == before


# ---- a model trained by mace-torch now, in its own interpreter --------------------------------------


def _mace_python():
    for p in (os.environ.get("EQUIVAR_MACE_PYTHON"), "/tmp/macevenv/bin/python"):
        if p and os.path.isfile(p) and os.access(p, os.X_OK):
            return p
    return None


@pytest.mark.slow
def test_live_mace_torch(tmp_path, shared_data):
    python = _mace_python()
    if python is None:
        pytest.skip("no interpreter with mace-torch (set EQUIVAR_MACE_PYTHON)")
    check = subprocess.run([python, "-c", "import mace, e3nn"], capture_output=True, timeout=300)
    if check.returncode != 0:
        pytest.skip(f"{python} cannot import mace-torch")
    env = {**os.environ, "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1"}
    r = subprocess.run(
        [python, os.path.join(ROOT, "scripts", "make_mace_fixture.py"), "--set", "live", "--out", str(tmp_path),
         "--data", os.path.join(shared_data, "rmd17"), "--steps", "5"],
        capture_output=True, text=True, env=env, timeout=900,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    model = from_mace(str(tmp_path / "mace_live.model"))
    assert model.hparams["correlation"] == 3 and model.hparams["max_ell"] == 3
    frames = reference_frames(str(tmp_path / "mace_live_reference.npz"))
    worst = compare(model, frames, rtol=1e-6)
    assert max(worst.values()) < 1e-9
    # use_last_readout_only: one (non-linear) readout of the last layer; the others become zero readouts
    model = from_mace(str(tmp_path / "mace_live_lastonly.model"))
    assert model.hparams["num_interactions"] == 3 and not model.readouts[0].weight.any()
    compare(model, reference_frames(str(tmp_path / "mace_live_lastonly_reference.npz")), rtol=1e-6)
    with pytest.raises(ValueError, match="RealAgnosticDensityInteractionBlock is not supported") as e:
        from_mace(str(tmp_path / "mace_live_density.model"))
    assert "\n" not in str(e.value)


def test_reader_imports_neither_mace_nor_e3nn(tmp_path):
    from equivar.models.mace._unpickle import Stub, load_stubs, qualname

    path = unpack("mace_ethanol", tmp_path)
    root = load_stubs(path)
    assert isinstance(root, Stub) and qualname(root) == "mace.modules.models.ScaleShiftMACE"
    assert torch.equal(root.atomic_numbers, torch.tensor([1, 6, 8]))
    code = (
        "import sys; from equivar.models.mace import from_mace; from_mace(sys.argv[1]); "
        "print(sorted({k.split('.')[0] for k in sys.modules} & {'mace', 'e3nn', 'opt_einsum_fx'}))"
    )
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    r = subprocess.run([sys.executable, "-c", code, path], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0 and r.stdout.strip() == "[]", r.stdout + r.stderr
