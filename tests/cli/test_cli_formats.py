"""md / relax read what eval reads: rMD17 .npz (frame by --index) as well as ASE files."""

import ase.io
import numpy as np
import pytest
import torch
from standin import PairPotential

from equivar.cli._mlip import read_structure
from equivar.cli.main import main
from equivar.data import KCAL_MOL_TO_EV
from equivar.train import model_payload, save_checkpoint


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("formats")
    torch.manual_seed(0)
    model = PairPotential([29, 79], [3.51, 3.8], r_max=4.0, hidden=8).double()
    save_checkpoint(str(d / "model.pt"), model_payload(model, {"r_max": 4.0, "atomic_numbers": [29, 79]}))
    rng = np.random.default_rng(0)
    base = np.array([[0, 0, 0], [2.5, 0, 0], [0, 2.5, 0], [0, 0, 2.5], [2.5, 2.5, 0.3]])
    coords = base[None] + 0.05 * rng.normal(size=(4, 5, 3))
    np.savez(
        d / "cluster.npz",
        nuclear_charges=np.array([29, 29, 79, 29, 79]),
        coords=coords,
        energies=rng.normal(size=4),
        forces=rng.normal(size=(4, 5, 3)),
    )
    return d, coords


def test_read_structure_reads_rmd17_frames(files):
    d, coords = files
    for index, frame in (("2", 2), ("-1", 3), ("0", 0)):
        atoms = read_structure(str(d / "cluster.npz"), index)
        np.testing.assert_array_equal(atoms.positions, coords[frame])
        assert list(atoms.numbers) == [29, 29, 79, 29, 79] and not atoms.pbc.any()
        assert atoms.info["equivar_source"] == f"{d / 'cluster.npz'}, frame {int(index)}"
    with pytest.raises(ValueError, match=r"cluster\.npz: --index 4 is out of range: the file has 4 frames"):
        read_structure(str(d / "cluster.npz"), "4")
    with pytest.raises(ValueError, match="--index -5 is out of range"):
        read_structure(str(d / "cluster.npz"), "-5")
    np.savez(d / "cluster.bin", coords=coords)  # numpy appends .npz: give a name without it through --format
    with pytest.raises(ValueError, match=r"missing rMD17 key 'nuclear_charges'"):
        read_structure(str(d / "cluster.bin.npz"), "0", format="rmd17")
    assert KCAL_MOL_TO_EV == pytest.approx(0.0433641)


def test_md_and_relax_run_on_an_npz_frame(files, capsys):
    d, coords = files
    m, npz = str(d / "model.pt"), str(d / "cluster.npz")
    traj = d / "md.xyz"
    assert (
        main(["md", "--model", m, "--structure", npz, "--index", "1", "--steps", "4", "--trajectory", str(traj)]) == 0
    )
    first = ase.io.read(traj, 0)
    np.testing.assert_allclose(
        first.positions, coords[1], atol=1e-7
    )  # extxyz text; frame 0 of the trajectory is the chosen frame
    code = main(["relax", "--model", m, "--structure", npz, "--index", "-1", "--steps", "3"])
    out = capsys.readouterr().out
    assert code in (0, 1) and "relax (bfgs, 5 atoms)" in out
    relaxed = ase.io.read(d / "cluster_frame-1_relaxed.xyz")
    assert list(relaxed.numbers) == [29, 29, 79, 29, 79]
