"""Nothing lost: eval/md/relax outputs through device nodes and symbolic links, MD streamed and stopped by Ctrl-C."""

import os
import signal
import stat
import subprocess
import sys
import time

import ase.io
import numpy as np
import pytest
import torch
from helpers import tests_dir as _tests_dir
from helpers import write_tiny_dataset
from standin import PairPotential

from equivar.cli.main import main
from equivar.train import model_payload, save_checkpoint


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("outputs")
    torch.manual_seed(0)
    model = PairPotential([29, 79], [3.51, 3.8], r_max=4.0, hidden=8).double()
    save_checkpoint(str(d / "model.pt"), model_payload(model, {"r_max": 4.0, "atomic_numbers": [29, 79]}))
    write_tiny_dataset(str(d / "test.xyz"), n_frames=3, with_isolated=False)
    return d


def _full_device(path):
    try:
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 7))  # what /dev/full is
    except OSError as e:
        pytest.skip(f"cannot create a device node here ({e})")
    return str(path)


def test_eval_to_full_device_fails_and_keeps_the_device(files, tmp_path, capsys):
    full = _full_device(tmp_path / "full")
    code = main(["eval", "--model", str(files / "model.pt"), "--data", str(files / "test.xyz"), "-o", full])
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip().splitlines() == [f"equivar eval: error: {full}: write failed (No space left on device)"]
    assert stat.S_ISCHR(os.stat(full).st_mode)  # not replaced by a regular file


def test_eval_to_null_device_succeeds(files, tmp_path, capsys):
    null = tmp_path / "null"
    try:
        os.mknod(null, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    except OSError as e:
        pytest.skip(f"cannot create a device node here ({e})")
    args = ["eval", "--model", str(files / "model.pt"), "--data", str(files / "test.xyz"), "-o", str(null)]
    assert main(args + ["--table", str(null)]) == 0
    assert stat.S_ISCHR(os.stat(null).st_mode)


def test_eval_and_relax_follow_symlinks(files, tmp_path, capsys):
    (tmp_path / "store").mkdir()
    pred, table, relaxed = (tmp_path / "store" / n for n in ("pred.xyz", "t.csv", "r.xyz"))
    for p in (pred, table, relaxed):
        p.write_text("old\n")
        os.symlink(p, tmp_path / p.name)
    m, data = str(files / "model.pt"), str(files / "test.xyz")
    assert (
        main(
            ["eval", "--model", m, "--data", data, "-o", str(tmp_path / "pred.xyz"), "--table", str(tmp_path / "t.csv")]
        )
        == 0
    )
    code = main(["relax", "--model", m, "--structure", data, "--steps", "2", "-o", str(tmp_path / "r.xyz")])
    assert code in (0, 1)
    for p in (pred, table, relaxed):
        assert os.path.islink(tmp_path / p.name) and os.readlink(tmp_path / p.name) == str(p)
    assert len(ase.io.read(pred, ":")) == 3 and len(ase.io.read(relaxed, ":")) == 1
    assert table.read_text().startswith("set,config_type,n,")


def test_md_streams_and_stops_cleanly_on_ctrl_c(files, tmp_path):
    traj = tmp_path / "md.xyz"
    env = dict(os.environ)
    import equivar

    src = os.path.dirname(os.path.dirname(os.path.abspath(equivar.__file__)))  # the equivar under test
    env["PYTHONPATH"] = os.pathsep.join([src, _tests_dir(), env.get("PYTHONPATH", "")])
    cmd = [sys.executable, "-m", "equivar", "md", "--model", str(files / "model.pt"), "--structure"]
    cmd += [str(files / "test.xyz"), "--steps", "1000000", "--interval", "5", "--flush-every", "10"]
    cmd += ["--trajectory", str(traj), "--threads", "1"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None:
            if traj.exists() and traj.stat().st_size > 0:
                break
            time.sleep(0.2)
        assert traj.exists() and traj.stat().st_size > 0, "no frame written while the run goes"
        frames_while_running = len(ase.io.read(traj, ":"))  # flushed frames are whole
        assert frames_while_running >= 1
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert "interrupted (Ctrl-C) after" in out
    frames = ase.io.read(traj, ":")
    log = np.genfromtxt(tmp_path / "md_energy.csv", delimiter=",", names=True)
    assert len(frames) >= frames_while_running
    assert f"trajectory -> {traj} ({len(frames)} frames)" in out
    assert f"energy log -> {tmp_path / 'md_energy.csv'} ({len(log)} lines)" in out
    # a frame every 5 steps plus the step where the run stopped, and the log has the same steps: nothing lost
    steps = log["step"].astype(int)
    assert len(log) == len(frames)
    assert list(steps[:-1]) == list(range(0, 5 * (len(frames) - 1), 5)) and steps[-1] > steps[-2]
    np.testing.assert_allclose(log["etot_eV"], log["epot_eV"] + log["ekin_eV"], rtol=1e-9)
    np.testing.assert_allclose(log["epot_eV"], [a.get_potential_energy() for a in frames], rtol=1e-9)
    done = int(out.split("interrupted (Ctrl-C) after ")[1].split()[0])
    assert steps[-1] == done and done >= 5 * (frames_while_running - 1)


def test_md_announces_where_files_are(files, tmp_path, capsys):
    traj = tmp_path / "t.xyz"
    args = ["md", "--model", str(files / "model.pt"), "--structure", str(files / "test.xyz"), "--steps", "7"]
    assert main(args + ["--interval", "3", "--trajectory", str(traj), "--log", str(tmp_path / "e.csv")]) == 0
    out = capsys.readouterr().out
    assert f"streaming trajectory -> {traj} and log -> {tmp_path / 'e.csv'} (every 3 steps, flushed every 100" in out
    frames = ase.io.read(traj, ":")
    log = np.genfromtxt(tmp_path / "e.csv", delimiter=",", names=True)
    assert list(log["step"].astype(int)) == [0, 3, 6, 7]
    assert len(frames) == 4  # steps 0, 3, 6 and the last step, 7, off the interval
    np.testing.assert_allclose(log["epot_eV"], [a.get_potential_energy() for a in frames], rtol=1e-9)
    assert np.abs(frames[3].positions - frames[2].positions).max() > 0  # step 7 is a new frame, not step 6 again


def test_md_writes_the_last_step_when_steps_is_below_the_interval(files, tmp_path, capsys):
    """``--steps 5`` with the default ``--interval 10``: the trajectory and the log hold steps 0 and 5."""
    traj = tmp_path / "t.xyz"
    args = ["md", "--model", str(files / "model.pt"), "--structure", str(files / "test.xyz"), "--steps", "5"]
    assert main(args + ["--trajectory", str(traj)]) == 0
    frames = ase.io.read(traj, ":")
    log = np.genfromtxt(tmp_path / "t_energy.csv", delimiter=",", names=True)
    assert list(log["step"].astype(int)) == [0, 5] and len(frames) == 2
    np.testing.assert_allclose(log["epot_eV"], [a.get_potential_energy() for a in frames], rtol=1e-9)
    assert f"trajectory -> {traj} (2 frames)" in capsys.readouterr().out


def test_stream_is_on_disk_every_flush_every_steps(tmp_path):
    """What a crash (SIGKILL) would leave: every frame and log line up to the last flush, at most N steps back."""
    from ase.build import bulk
    from ase.calculators.singlepoint import SinglePointCalculator

    from equivar.cli._md_stream import MDStream

    traj, log = tmp_path / "t.xyz", tmp_path / "e.csv"
    stream = MDStream(str(traj), str(log), flush_every=3)
    atoms = bulk("Cu", "fcc", a=3.6)
    on_disk = []
    for step in range(8):
        frame = atoms.copy()
        frame.calc = SinglePointCalculator(frame, energy=-float(step), forces=np.zeros((1, 3)))
        stream.frame(frame)
        stream.energy(step, step * 1e-3, -float(step), 0.1, 300.0)
        stream.step(step)
        text = traj.read_text()  # read through another handle: only what reached the file
        on_disk.append((text.count("Lattice="), len(log.read_text().splitlines()) - 1))
    stream.close()
    # flushed after steps 3 and 6 (every 3 steps), nothing lost at the end
    assert on_disk == [(0, 0), (0, 0), (0, 0), (4, 4), (4, 4), (4, 4), (7, 7), (7, 7)]
    assert len(ase.io.read(traj, ":")) == 8 and len(log.read_text().splitlines()) == 9
