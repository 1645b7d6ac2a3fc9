"""eval reports virials errors (meV/atom) when the data carry virials labels, next to the stress errors."""

import ase.io
import numpy as np
import pytest
import torch
from helpers import write_tiny_dataset
from standin import PairPotential

from equivar.cli.main import main
from equivar.train import model_payload, save_checkpoint


def test_eval_reports_virials_errors(tmp_path, capsys):
    torch.manual_seed(0)
    model = PairPotential([29, 79], [3.51, 3.8], r_max=4.0, hidden=8).double()
    save_checkpoint(str(tmp_path / "m.pt"), model_payload(model, {"r_max": 4.0, "atomic_numbers": [29, 79]}))
    frames = ase.io.read(write_tiny_dataset(str(tmp_path / "d.xyz"), n_frames=4, with_isolated=False), ":")
    rng = np.random.default_rng(0)
    for a in frames:  # reference virials: EMT's -stress * V plus noise, so the error is not the stress error
        a.info["my_virials"] = (-a.get_stress(voigt=False) * a.get_volume() + 0.01 * rng.normal(size=(3, 3))).ravel()
    ase.io.write(tmp_path / "v.xyz", frames)
    assert (
        main(
            [
                "eval",
                "--model",
                str(tmp_path / "m.pt"),
                "--data",
                str(tmp_path / "v.xyz"),
                "--virials-key",
                "my_virials",
                "-o",
                str(tmp_path / "p.xyz"),
                "--table",
                str(tmp_path / "t.csv"),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "V MAE meV/atom" in out and "S MAE meV/Å³" in out
    pred = ase.io.read(tmp_path / "p.xyz", ":")
    d = np.concatenate([(p.info["virials"] - f.info["my_virials"]) / len(f) for p, f in zip(pred, frames)])
    np.testing.assert_allclose(pred[0].info["REF_virials"], frames[0].info["my_virials"])
    # the prediction's virials are -stress * volume of the same prediction
    np.testing.assert_allclose(
        pred[1].info["virials"], -pred[1].get_stress(voigt=False).ravel() * pred[1].get_volume(), rtol=1e-9, atol=1e-12
    )
    import csv

    row = next(csv.DictReader(open(tmp_path / "t.csv")))
    assert float(row["mae_v_per_atom"]) == pytest.approx(1e3 * np.abs(d).mean(), rel=1e-9)
    assert float(row["rmse_v_per_atom"]) == pytest.approx(1e3 * np.sqrt((d**2).mean()), rel=1e-9)
