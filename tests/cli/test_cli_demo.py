"""`make demo` path with the real MACE model, shrunk to seconds: train -> evaluate -> MD -> relax -> summary."""
from equivar.cli.main import main


def test_demo_smoke(tmp_path, capsys):
    code = main(["demo", "--output-dir", str(tmp_path / "demo"), "--time-budget", "2", "--epochs", "1",
                 "--md-steps", "4", "--relax-steps", "3", "--set", "data.max_train=10", "--set", "progress=false",
                 "--set", "model.num_channels=4", "--set", "training.valid_batch_size=50"])
    out = capsys.readouterr().out
    assert code == 0
    for marker in ("[1/4] training", "NVE energy drift", "model vs EMT on", "[4/4] summary", "test 600K"):
        assert marker in out, marker
    assert (tmp_path / "demo" / "model.pt").exists() and (tmp_path / "demo" / "md.xyz").exists()
