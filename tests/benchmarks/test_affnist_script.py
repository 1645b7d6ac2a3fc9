"""benchmarks/affnist.py end to end on a tiny synthetic MNIST folder: equal parameter counts, the JSON it writes
(accuracies per set, invariance error per number of group samples) and the merged table and figure."""

import gzip
import importlib.util
import json
import os
import struct
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _load():
    spec = importlib.util.spec_from_file_location("affnist_bench", os.path.join(ROOT, "benchmarks", "affnist.py"))
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


ab = _load()


def _idx(arr):
    return bytes([0, 0, 8, arr.ndim]) + b"".join(struct.pack(">I", d) for d in arr.shape) + arr.tobytes()


def _mnist_like(folder, n=40):
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    for split in ("train", "t10k"):
        x = np.zeros((n, 28, 28), np.uint8)
        y = rng.integers(0, 10, n).astype(np.uint8)
        for i in range(n):
            x[i, 8 + y[i] : 14 + y[i], 10:18] = 255  # a bar whose height tells the class
        (folder / f"{split}-images-idx3-ubyte.gz").write_bytes(gzip.compress(_idx(x)))
        (folder / f"{split}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(_idx(y)))


def test_models_have_equal_parameter_counts():
    counts = {k: sum(p.numel() for p in ab.make_model(k).parameters()) for k in ab.MODELS}
    assert counts["affine_sl2"] == counts["affine_gl2"] == 9090
    assert max(counts.values()) / min(counts.values()) < 1.025, counts


def test_train_evaluate_and_plot(tmp_path, monkeypatch, capsys):
    _mnist_like(tmp_path / "data" / "mnist")
    monkeypatch.setattr(ab, "ROOT", str(tmp_path / "data"))
    for m in ("cnn", "affine_sl2"):
        out = tmp_path / f"{m}.json"
        args = ["--model", m, "--cpu-seconds", "0.5", "--test-limit", "6", "--invariance-images", "2", "-o", str(out)]
        assert ab.main(args + ["--batch-size", "8", "--save", str(tmp_path / f"{m}.pt")]) == 0
        r = json.loads(out.read_text())
        acc = r["eval"]["accuracy"]
        assert set(acc) >= {"mnist40", "affnist_like", "strength_0.5", "rotation_only", "shear_only", "scale_only"}
        assert all(0.0 <= v <= 1.0 for v in acc.values()) and r["eval"]["test_images"] == 6
        assert r["train"]["steps"] >= 1 and r["train"]["cpu_s"] >= 0.5
        inv = r["eval"]["invariance"]
        assert inv["affine_error"] >= 0
        if m == "affine_sl2":
            assert set(inv["per_num_samples"]) == {"4", "8", "16", "32"}
        # --load evaluates the saved weights: the same numbers
        again = tmp_path / f"{m}_again.json"
        assert (
            ab.main(["--model", m, "--load", str(tmp_path / f"{m}.pt"), "--test-limit", "6"] + ["-o", str(again)]) == 0
        )
        assert json.loads(again.read_text())["eval"]["accuracy"] == acc
    fig = tmp_path / "fig.png"
    assert ab.main(["--plot", str(tmp_path / "cnn.json"), str(tmp_path / "affine_sl2.json"), "--figure", str(fig)]) == 0
    table = capsys.readouterr().out
    assert "| affine_sl2 | 9,090 |" in table and "| cnn | 9,172 |" in table
    assert fig.stat().st_size > 1000


def test_bad_arguments_fail_before_any_work(tmp_path, capsys):
    """Each bad flag is a one-line usage error naming it, before data are read or a model trained."""
    import pytest

    cases = {
        ("--model", "cnn", "--cpu-seconds", "-1"): "--cpu-seconds must be > 0, got -1.0",
        ("--model", "cnn", "-o", str(tmp_path / "no" / "x.json")): "does not exist",
        ("--plot", str(tmp_path / "none.json")): "--plot",
        ("--model", "cnn", "--load", str(tmp_path / "none.pt")): "--load",
        ("--model", "cnn", "--train-limit", "0"): "--train-limit must be >= 1, got 0",
    }
    for argv, msg in cases.items():
        with pytest.raises(SystemExit) as e:
            ab.main(list(argv))
        assert e.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()[-1]
        assert msg in err and "Traceback" not in err


def test_outputs_are_never_clobbered_by_accident(tmp_path, monkeypatch, capsys):
    """An existing -o / --save is refused (one line) unless --overwrite; the weights a run loads can never be
    its output; -o and --save must differ; --load refuses another model's weights; nothing else is touched."""
    import pytest

    _mnist_like(tmp_path / "data" / "mnist")
    monkeypatch.setattr(ab, "ROOT", str(tmp_path / "data"))
    out, pt = tmp_path / "cnn.json", tmp_path / "cnn.pt"
    base = ["--model", "cnn", "--cpu-seconds", "0.2", "--test-limit", "4", "--invariance-images", "2"]
    assert ab.main(base + ["-o", str(out), "--save", str(pt), "--batch-size", "8"]) == 0
    before = out.read_bytes(), pt.read_bytes()
    cases = {
        ("-o", str(out)): f"-o {out}: already exists; pass --overwrite to replace it",
        ("--load", str(pt), "-o", str(pt), "--overwrite"): "is the input --load file",
        ("-o", str(tmp_path / "a.json"), "--save", str(tmp_path / "a.json")): "must name different files",
        ("--invariance-images", "0"): "--invariance-images must be >= 1, got 0",
    }
    for extra, msg in cases.items():
        with pytest.raises(SystemExit) as e:
            ab.main(base + list(extra))
        assert e.value.code == 2
        assert msg in capsys.readouterr().err.strip().splitlines()[-1]
    with pytest.raises(SystemExit):
        ab.main(["--plot", str(out), "--figure", str(tmp_path / "f.json")])
    assert "--figure" in capsys.readouterr().err and not (tmp_path / "f.json").exists()
    with pytest.raises(SystemExit):
        ab.main(["--model", "p4cnn", "--load", str(pt), "--test-limit", "4"])
    assert "holds the weights of --model cnn, not p4cnn" in capsys.readouterr().err
    assert (out.read_bytes(), pt.read_bytes()) == before
    assert ab.main(base + ["-o", str(out), "--overwrite"]) == 0
    assert json.loads(out.read_text())["model"] == "cnn" and out.read_bytes() != before[0]
