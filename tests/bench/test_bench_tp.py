"""Smoke tests of the tensor-product benchmark and the ``equivar bench tp`` command."""

import json

import pytest
import torch

from equivar.bench import tp as _bench
from equivar.cli.main import main
from equivar.tp import p_config, s_config


def test_configs_and_useful_work():
    i1, i2, io, ins = p_config(3, 32)
    assert len(ins) == 34 and io.dim == 4992  # MACE construction, l3 <= 3, both parities
    # 0.16 GFLOP of sparse CG work at L=3, 32 channels, 4096 edges (the figure of the design notes)
    assert _bench.useful_flops(i1, i2, io, ins, 4096) / 1e9 == pytest.approx(0.160, abs=0.001)
    i1, i2, io, ins = s_config(2, 4)
    assert str(io) == "4x0e+4x1o+4x2e" and all((i1[a].ir.l + i2[b].ir.l + io[c].ir.l) % 2 == 0 for a, b, c, *_ in ins)


def test_run_rows_have_ratios_and_errors():
    rows = _bench.run_benchmark(
        Ls=[1], batches=[16], backends=["cg"], configs=["P"], repeats=1, threads=1, memory=True, log=lambda *_: None
    )
    by = {r["backend"]: r for r in rows}
    assert set(by) >= {"cg"}
    cg = by["cg"]
    assert cg["fwd_ms"] > 0 and cg["fwd_bwd_ms"] > 0 and cg["double_ms"] > 0
    assert cg["equivariance_error"] < 1e-5
    if "e3nn" in by:
        assert cg["fwd_bwd_vs_e3nn"] == pytest.approx(by["e3nn"]["fwd_bwd_ms"] / cg["fwd_bwd_ms"])


def test_cli_writes_json_and_png(tmp_path):
    js, png = tmp_path / "tp.json", tmp_path / "tp.png"
    rc = main(
        [
            "bench",
            "tp",
            "--L",
            "1",
            "2",
            "--batch",
            "8",
            "--repeats",
            "1",
            "--backends",
            "cg",
            "--configs",
            "S",
            "--threads",
            "1",
            "--no-memory",
            "--no-e3nn",
            "--measures",
            "fwd",
            "fwd_bwd",
            "--json",
            str(js),
            "--png",
            str(png),
        ]
    )
    assert rc == 0
    data = json.loads(js.read_text())
    assert [r["L"] for r in data["rows"]] == [1, 2] and data["meta"]["matmul_gflops"] > 0
    assert png.stat().st_size > 1000
    torch.set_num_threads(2)


def test_cli_rejects_unknown_backend(capsys):
    assert main(["bench", "tp", "--backends", "nope", "--no-e3nn"]) == 2
    assert "unknown backend" in capsys.readouterr().err


def test_out_of_memory_is_reported_in_the_row_and_the_run_goes_on(monkeypatch):
    real = _bench.MEASURES["double"]

    def double(m, inputs):
        if getattr(m, "backend_name", None) == "cg":
            raise RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory")
        return real(m, inputs)

    monkeypatch.setitem(_bench.MEASURES, "double", double)
    rows = _bench.run_benchmark(
        Ls=[1, 2],
        batches=[8],
        backends=["cg"],
        configs=["P"],
        repeats=1,
        threads=1,
        memory=False,
        e3nn=False,
        log=lambda *_: None,
    )
    assert [r["L"] for r in rows] == [1, 2]  # both L measured despite the failure at L=1
    for r in rows:
        assert r["fwd_ms"] > 0 and r["fwd_bwd_ms"] > 0 and "double_ms" not in r
        assert r["notes"] == ["double: out of memory"]
        assert "[double: out of memory]" in _bench.format_row(r)


def test_other_errors_still_raise(monkeypatch):
    def boom(m, inputs):
        raise RuntimeError("shape mismatch")

    monkeypatch.setitem(_bench.MEASURES, "fwd", boom)
    with pytest.raises(RuntimeError, match="shape mismatch"):
        _bench.run_benchmark(
            Ls=[1],
            batches=[8],
            backends=["cg"],
            configs=["P"],
            repeats=1,
            threads=1,
            memory=False,
            e3nn=False,
            log=lambda *_: None,
        )


def test_limit_address_space_in_a_child_process():
    import subprocess
    import sys

    code = (
        "from equivar.bench import tp as _bench; import resource; cap = _bench.limit_address_space(); "
        "print(cap is None or resource.getrlimit(resource.RLIMIT_AS)[0] == cap)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "True", out.stderr
