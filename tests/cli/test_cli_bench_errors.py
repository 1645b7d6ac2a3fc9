"""``equivar bench``: bad flags and unwritable outputs fail in one line before any measurement."""

import json

import pytest

from equivar.cli.main import main

TINY = [
    "--L",
    "1",
    "--channels",
    "2",
    "--batch",
    "8",
    "--backends",
    "cg",
    "--no-e3nn",
    "--no-memory",
    "--repeats",
    "1",
    "--measures",
    "fwd",
    "--threads",
    "1",
]


def _tp(args, capsys):
    rc = main(["bench", "tp"] + args)
    out = capsys.readouterr()
    return rc, out.out, out.err


@pytest.mark.parametrize(
    "flags,message",
    [
        (["--L", "-1"], "--L must be >= 0, got -1"),
        (["--channels", "0"], "--channels must be >= 1, got 0"),
        (["--batch", "0"], "--batch must be >= 1, got 0"),
        (["--threads", "0"], "--threads must be >= 1, got 0"),
        (["--repeats", "0"], "--repeats must be >= 1, got 0"),
        (["--device", "gpu"], "--device 'gpu' is not a torch device"),
        (["--L", "100"], "--L must be at most 32"),
        (["--backend-max-L", "foo=3"], "--backend-max-L: unknown backend 'foo'"),
    ],
)
def test_bench_tp_bad_flag_is_one_line(flags, message, capsys):
    rc, out, err = _tp(TINY + flags, capsys)
    assert rc == 2 and message in err and "Traceback" not in err, err
    assert "# equivar bench tp" not in out  # nothing measured


def test_bench_tp_cuda_without_cuda(capsys):
    import torch

    if torch.cuda.is_available():  # pragma: no cover - CPU CI
        pytest.skip("CUDA present")
    rc, out, err = _tp(TINY + ["--device", "cuda"], capsys)
    assert rc == 2 and "--device 'cuda' requested but CUDA is not available" in err, err


@pytest.mark.parametrize("flag", ["--json", "--png"])
def test_bench_tp_unwritable_output_fails_before_measuring(flag, tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    target = blocker / "out.x"
    rc, out, err = _tp(TINY + [flag, str(target)], capsys)
    assert rc == 2 and f"{flag} {target}" in err, err
    assert "# equivar bench tp" not in out  # checked before the benchmark, not after


def test_bench_tp_output_in_a_directory_root_cannot_write(capsys):
    import os

    if not os.path.isdir("/proc/self"):  # pragma: no cover - not Linux
        pytest.skip("no /proc")
    rc, out, err = _tp(TINY + ["--json", "/proc/bench.json"], capsys)  # os.access says yes to root here
    assert rc == 2 and "--json /proc/bench.json: cannot create a file in /proc" in err, err
    assert "# equivar bench tp" not in out


def test_bench_tp_writes_json(tmp_path, capsys):
    path = tmp_path / "tp.json"
    rc, out, err = _tp(TINY + ["--json", str(path)], capsys)
    assert rc == 0, err
    data = json.loads(path.read_text())
    assert data["rows"] and data["meta"]["threads"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["tp.json"]  # no temporary file left


def test_bench_json_write_is_atomic(tmp_path, monkeypatch):
    from equivar import _paths

    path = tmp_path / "tp.json"
    path.write_text('{"old": 1}')

    def broken_dump(obj, f, **kw):
        f.write('{"half')
        raise OSError("disk full")

    monkeypatch.setattr(_paths.json, "dump", broken_dump)
    with pytest.raises(OSError):
        _paths.write_json_atomic(str(path), {"new": 2})
    assert json.loads(path.read_text()) == {"old": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["tp.json"]


@pytest.mark.parametrize(
    "flags,message",
    [
        (["--L", "-1"], "--L must be in 0..64, got -1"),
        (["--L", "100"], "--L must be in 0..64, got 100"),
        (["--n", "0"], "--n must be >= 1, got 0"),
        (["--threads", "0"], "--threads must be >= 1, got 0"),
        (["--repeats", "0"], "--repeats must be >= 1, got 0"),
    ],
)
def test_bench_sh_bad_flag_is_one_line(flags, message, capsys):
    assert main(["bench", "sh", "--n", "10", "--L", "1", "--repeats", "1"] + flags) == 2
    out = capsys.readouterr()
    assert message in out.err and "Traceback" not in out.err and "spherical harmonics" not in out.out


def test_bench_sh_unwritable_json_fails_before_measuring(tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    assert main(["bench", "sh", "--n", "10", "--L", "1", "--repeats", "1", "--json", str(blocker / "x.json")]) == 2
    out = capsys.readouterr()
    assert f"--json {blocker / 'x.json'}" in out.err and "spherical harmonics" not in out.out
