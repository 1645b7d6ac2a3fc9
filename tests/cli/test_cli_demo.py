"""`make demo` path with the real MACE model, shrunk to seconds: train -> evaluate -> MD -> relax -> summary."""

from equivar.cli.main import main


def test_demo_smoke(tmp_path, capsys):
    code = main(
        [
            "demo",
            "--output-dir",
            str(tmp_path / "demo"),
            "--time-budget",
            "2",
            "--epochs",
            "1",
            "--md-steps",
            "4",
            "--relax-steps",
            "3",
            "--set",
            "data.max_train=10",
            "--set",
            "progress=false",
            "--set",
            "model.num_channels=4",
            "--set",
            "training.valid_batch_size=50",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    for marker in ("[1/4] training", "NVE energy drift", "model vs EMT on", "[4/4] summary", "test 600K"):
        assert marker in out, marker
    assert (tmp_path / "demo" / "model.pt").exists() and (tmp_path / "demo" / "md.xyz").exists()


def test_demo_uses_the_shipped_isolated_atom_energies():
    """The embedded set ships IsolatedAtom references: the demo's E0s are those, not a least-squares fit."""
    from equivar.cli.demo import DEMO_CONFIG
    from equivar.data import e0s_from_isolated_atoms, embedded_path, read_dataset, split_isolated_atoms
    from equivar.train import config_from_dict, load_datasets

    refs = e0s_from_isolated_atoms(split_isolated_atoms(read_dataset(embedded_path("cuau_emt")))[0])
    assert sorted(refs) == [29, 79]
    ds = load_datasets(config_from_dict(DEMO_CONFIG), log=lambda s: None)
    assert ds.e0s == refs
