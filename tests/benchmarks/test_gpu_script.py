"""benchmarks/gpu.py --dry-run: the device script's every section runs on the CPU at tiny sizes and its
correctness checks pass (CPU against CPU here; on a GPU machine the same checks compare CUDA with CPU)."""

import importlib.util
import json
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ASPIRIN = os.environ.get(
    "EQUIVAR_TEST_ASPIRIN", os.path.join(ROOT, "..", "shared", "data", "rmd17", "rmd17_aspirin_train_01.npz")
)


def _load():
    spec = importlib.util.spec_from_file_location("gpu_script", os.path.join(ROOT, "benchmarks", "gpu.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.skipif(not os.path.exists(ASPIRIN), reason="rMD17 aspirin not in ../shared/data")
def test_gpu_script_dry_run(tmp_path):
    gpu = _load()
    assert gpu.main([str(tmp_path), "--dry-run", "--data", ASPIRIN]) == 0
    res = json.loads((tmp_path / "gpu.json").read_text())
    sec = res["sections"]
    assert res["meta"]["dry_run"] and res["meta"]["device"] == "cpu"
    assert set(sec) == {"tp_cuda_vs_cpu", "equivariance_cuda", "mace_cuda_vs_cpu", "sync", "tp_bench", "mace_bench"}
    for name in ("tp_cuda_vs_cpu", "equivariance_cuda", "mace_cuda_vs_cpu", "tp_bench", "mace_bench"):
        assert sec[name]["ok"] is True, (name, sec[name].get("error"))
    # every TP backend compared in both dtypes, with finite errors under the tolerances
    rows = sec["tp_cuda_vs_cpu"]["rows"]
    assert {r["dtype"] for r in rows} == {"float32", "float64"} and len(rows) >= 8
    assert all(r["pass"] and r["max_rel_err"] <= 1e-5 for r in rows)
    eq = {r["what"]: r for r in sec["equivariance_cuda"]["rows"]}
    assert 0 < eq["MACE (energy, forces)"]["max_rel_err"] < 1e-5
    # the benchmark measured equivar and e3nn and computed the ratio from the same run
    tp = [r for r in sec["tp_bench"]["rows"] if r.get("backend") == "equivar"]
    assert tp and all(r["fwd_ms"] > 0 and r["fwd_bwd_ms"] > 0 and r["double_ms"] > 0 for r in tp)
    p1 = next(r for r in tp if r["config"] == "P")
    e3 = next(r for r in sec["tp_bench"]["rows"] if r.get("backend") == "e3nn" and r["config"] == "P")
    assert p1["fwd_speedup_vs_e3nn"] == pytest.approx(e3["fwd_ms"] / p1["fwd_ms"], rel=1e-2)
    mb = sec["mace_bench"]["equivar"]
    assert mb["train_aspirin_batch5"]["ms"] > 0 and mb["md_cell"]["ms"] > 0
    md = (tmp_path / "gpu.md").read_text()
    assert "| P | 1 | 4 | 64 | equivar |" in md
