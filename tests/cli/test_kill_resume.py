"""A real process is killed and resumed: `equivar train` as a subprocess, SIGKILL mid-epoch, while it writes a
checkpoint and while it writes its final outputs, SIGINT (Ctrl-C) or SIGTERM mid-epoch; `--resume` then gives exactly (bit
for bit, CPU) the weights, EMA, optimizer state, metrics.csv, error table and predictions of an uninterrupted run.

The signals are real (``os.kill``); ``signal_runner.py`` only picks the moment reproducibly (the n-th training
step, or the rename of one output file), so the test does not depend on timing.
"""

import csv
import os
import signal
import subprocess
import sys

import pytest
import torch
import yaml
from helpers import tiny_config_dict, write_tiny_dataset

import equivar
from equivar.train import load_checkpoint

HERE = os.path.dirname(os.path.abspath(__file__))
EPOCHS = 3  # 18 training frames, batch 4: 5 steps per epoch


def _env(signal_spec=None):
    env = dict(os.environ)
    src = os.path.dirname(os.path.dirname(os.path.abspath(equivar.__file__)))
    env["PYTHONPATH"] = os.pathsep.join([src, os.path.join(HERE, "..", "train")])  # the stand-in model
    env["OMP_NUM_THREADS"] = "1"
    env.pop("EQUIVAR_TEST_SIGNAL", None)
    if signal_spec:
        env["EQUIVAR_TEST_SIGNAL"] = signal_spec
    return env


def _train(args, signal_spec=None, timeout=300):
    cmd = [sys.executable, os.path.join(HERE, "signal_runner.py"), "train", *args]
    return subprocess.run(cmd, env=_env(signal_spec), capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    d = tmp_path_factory.mktemp("kill")
    data = write_tiny_dataset(str(d / "tiny.xyz"))
    test = write_tiny_dataset(str(d / "test.xyz"), n_frames=4, with_isolated=False, start=5)
    cfg = tiny_config_dict(data, str(d / "unused"), epochs=EPOCHS)
    cfg["num_threads"] = 1
    cfg["data"]["test_files"] = {"held_out": test}
    (d / "c.yaml").write_text(yaml.safe_dump(cfg))
    p = _train(["-c", str(d / "c.yaml"), "-o", str(d / "ref")])
    assert p.returncode == 0, p.stderr
    return d


def _same(a, b, where=""):
    """Exact equality of nested dicts / lists / tensors / numbers."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), (where, set(a) ^ set(b))
        for k in a:
            _same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _same(x, y, f"{where}[{i}]")
    else:
        assert a == b, (where, a, b)


def _metrics(path):
    with open(path) as f:
        rows = list(csv.DictReader(f))
    return [{k: v for k, v in r.items() if k not in ("time_s", "cpu_s")} for r in rows]  # wall/CPU clocks differ


def _assert_same_run(ref, run):
    a, b = load_checkpoint(str(ref / "checkpoint.pt")), load_checkpoint(str(run / "checkpoint.pt"))
    _same(a["state_dict"], b["state_dict"], "live weights")
    sa, sb = a["train_state"], b["train_state"]
    assert sa["ema"] is not None
    for k in ("ema", "optimizer", "scheduler", "epoch", "step", "best_loss", "best_epoch"):
        _same(sa[k], sb[k], k)
    assert sb["epoch"] == EPOCHS
    _same(load_checkpoint(str(ref / "model.pt"))["state_dict"], load_checkpoint(str(run / "model.pt"))["state_dict"])
    assert _metrics(ref / "metrics.csv") == _metrics(run / "metrics.csv")
    assert len(_metrics(run / "metrics.csv")) == EPOCHS
    for f in ("errors.csv", "predictions_held_out.xyz"):
        assert (ref / f).read_text() == (run / f).read_text(), f


def _epoch_of(path):
    return load_checkpoint(str(path))["train_state"]["epoch"]


def test_sigkill_mid_epoch_and_during_final_outputs_then_resume(setup):
    run = setup / "killed"
    p = _train(["-c", str(setup / "c.yaml"), "-o", str(run)], "KILL@backward:8")  # step 8: mid epoch 2
    assert p.returncode == -signal.SIGKILL, (p.returncode, p.stderr)
    assert _epoch_of(run / "checkpoint.pt") == 1 and not (run / "model.pt").exists()
    p = _train(["--resume", "-o", str(run)], "KILL@replace:checkpoint.pt")  # epoch 2's checkpoint, written not renamed
    assert p.returncode == -signal.SIGKILL, (p.returncode, p.stderr)
    assert "resumed from epoch 1" in p.stdout
    assert _epoch_of(run / "checkpoint.pt") == 1  # the previous checkpoint is intact (atomic write)
    p = _train(["--resume", "-o", str(run)], "KILL@replace:errors.csv")  # while writing the final outputs
    assert p.returncode == -signal.SIGKILL, (p.returncode, p.stderr)
    assert "resumed from epoch 1" in p.stdout
    assert _epoch_of(run / "checkpoint.pt") == EPOCHS and not (run / "errors.csv").exists()
    p = _train(["--resume", "-o", str(run)])
    assert p.returncode == 0, p.stderr
    assert f"resumed from epoch {EPOCHS}" in p.stdout
    _assert_same_run(setup / "ref", run)


@pytest.mark.parametrize("sig, status, named", [("INT", 130, "interrupted;"), ("TERM", 143, "interrupted by SIGTERM;")])
def test_sigint_or_sigterm_ends_cleanly_with_a_resumable_checkpoint(setup, sig, status, named):
    """Ctrl-C and SIGTERM (``kill``, SLURM preemption) both end with one line and a resumable checkpoint."""
    run = setup / f"interrupted_{sig}"
    p = _train(["-c", str(setup / "c.yaml"), "-o", str(run)], f"{sig}@backward:8")
    assert p.returncode == status, (p.returncode, p.stderr)
    err = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert len(err) == 1 and "Traceback" not in p.stderr, p.stderr
    assert named in err[0] and "checkpoint.pt holds epoch 1" in err[0] and "--resume" in err[0], err[0]
    assert _epoch_of(run / "checkpoint.pt") == 1
    assert not [f for f in os.listdir(run) if ".tmp" in f], os.listdir(run)  # no temporary files left behind
    p = _train(["--resume", "-o", str(run)])
    assert p.returncode == 0, p.stderr
    _assert_same_run(setup / "ref", run)


def test_interrupt_message_before_any_checkpoint(tmp_path):
    from equivar.cli.train import interrupted_message

    msg = interrupted_message(str(tmp_path))
    assert msg == f"equivar train: interrupted before the first epoch ended: nothing to resume in {tmp_path}"
    msg = interrupted_message(str(tmp_path), signal.SIGTERM)
    assert msg == f"equivar train: interrupted by SIGTERM before the first epoch ended: nothing to resume in {tmp_path}"
