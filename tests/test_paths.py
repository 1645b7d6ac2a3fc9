"""Output writes (equivar._paths): atomic for files, symbolic links followed, device nodes and FIFOs never replaced."""

import os
import stat
import threading

import pytest

from equivar._paths import atomic_output, check_output_file


def _char_device(path, minor):
    """A character device node like /dev/null (1, 3) or /dev/full (1, 7) at ``path`` (needs CAP_MKNOD)."""
    try:
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, minor))
    except (PermissionError, OSError) as e:
        pytest.skip(f"cannot create a device node here ({e})")
    return str(path)


def test_file_replaced_atomically_and_keeps_its_mode(tmp_path):
    p = tmp_path / "out.csv"
    p.write_text("old\n")
    os.chmod(p, 0o640)
    with pytest.raises(RuntimeError):
        with atomic_output(str(p)) as f:
            f.write("half")
            raise RuntimeError("crash while writing")
    assert p.read_text() == "old\n"  # a failed write leaves the old file
    with atomic_output(str(p)) as f:
        f.write("new\n")
    assert p.read_text() == "new\n" and stat.S_IMODE(os.stat(p).st_mode) == 0o640
    assert sorted(os.listdir(tmp_path)) == ["out.csv"]  # no temporary file left


def test_symlink_is_followed_and_its_target_replaced(tmp_path):
    (tmp_path / "data").mkdir()
    target = tmp_path / "data" / "real.xyz"
    target.write_text("old\n")
    link = tmp_path / "link.xyz"
    os.symlink(os.path.join("data", "real.xyz"), link)  # relative link
    with atomic_output(str(link)) as f:
        f.write("new\n")
    assert os.path.islink(link) and os.readlink(link) == os.path.join("data", "real.xyz")
    assert target.read_text() == "new\n"
    chain = tmp_path / "chain.xyz"
    os.symlink(link, chain)
    with atomic_output(str(chain), "wb") as f:
        f.write(b"newer\n")
    assert os.path.islink(chain) and os.path.islink(link) and target.read_text() == "newer\n"
    dangling = tmp_path / "dangling.xyz"
    os.symlink(tmp_path / "data" / "later.xyz", dangling)
    with atomic_output(str(dangling)) as f:
        f.write("x")
    assert os.path.islink(dangling) and (tmp_path / "data" / "later.xyz").read_text() == "x"


def test_fifo_is_written_not_replaced(tmp_path):
    fifo = str(tmp_path / "pipe")
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(open(fifo).read()), daemon=True)
    reader.start()
    check_output_file(fifo, "--output")
    with atomic_output(fifo) as f:
        f.write("through the pipe\n")
    reader.join(10)
    assert got == ["through the pipe\n"]
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)


def test_fifo_with_a_reader_already_waiting_gets_the_data(tmp_path):
    """The reader opens first (`cat pipe &` then `equivar eval -o pipe`): the early output check must not hand it
    an end-of-file, or it leaves and the write that follows blocks for ever (it hung `make test` at random)."""
    import time

    fifo = str(tmp_path / "pipe")
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(open(fifo).read()), daemon=True)
    reader.start()
    time.sleep(0.3)  # the reader is now blocked in open(), waiting for a writer

    def write():
        check_output_file(fifo, "--output")
        time.sleep(0.3)  # the command's work between its early output check and the write
        with atomic_output(fifo) as f:
            f.write("through the pipe\n")

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    writer.join(10)
    reader.join(10)
    if writer.is_alive():  # unblock it before failing, so the test process can exit
        with open(fifo) as f:
            f.read()
    assert not writer.is_alive(), "the write blocked: the reader left after an end-of-file"
    assert got == ["through the pipe\n"]


def test_null_device_written_directly(tmp_path):
    null = _char_device(tmp_path / "null", 3)
    check_output_file(null, "--output")
    with atomic_output(null, "wb") as f:
        f.write(b"x" * 100_000)
    assert stat.S_ISCHR(os.stat(null).st_mode)


def test_full_device_is_an_error_and_stays_a_device(tmp_path):
    full = _char_device(tmp_path / "full", 7)
    with pytest.raises(ValueError, match=r"--output .*full: write failed \(No space left on device\)"):
        with atomic_output(full, flag="--output") as f:
            f.write("x" * 100_000)
    assert stat.S_ISCHR(os.stat(full).st_mode)


def test_real_dev_full_and_dev_null():
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full")
    with pytest.raises(ValueError, match="No space left on device"):
        with atomic_output("/dev/full") as f:
            f.write("x")
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)
    with atomic_output("/dev/null") as f:
        f.write("x")
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_check_output_file_follows_links(tmp_path):
    link = tmp_path / "l.xyz"
    os.symlink(tmp_path / "missing_dir" / "t.xyz", link)
    with pytest.raises(ValueError, match=r"--output .*l\.xyz \(-> .*missing_dir/t\.xyz\): directory .* does not exist"):
        check_output_file(str(link), "--output")
    with pytest.raises(ValueError, match="is a directory"):
        check_output_file(str(tmp_path), "--output")


def test_check_output_file_refuses_an_existing_file_without_overwrite(tmp_path):
    """``overwrite=False``: an existing file (or a link's existing target) is one line naming the flag, the path and
    ``--overwrite``, and is left alone; a new name, a dangling link and ``/dev/null`` pass; ``overwrite=True`` passes."""
    out = tmp_path / "mols.sdf"
    out.write_text("old")
    with pytest.raises(ValueError, match=r"^-o .*mols\.sdf: already exists; pass --overwrite to replace it$"):
        check_output_file(str(out), "-o", overwrite=False)
    link = tmp_path / "l.sdf"
    os.symlink(out, link)
    with pytest.raises(ValueError, match=r"^-o .*l\.sdf \(-> .*mols\.sdf\): already exists; pass --overwrite"):
        check_output_file(str(link), "-o", overwrite=False)
    assert out.read_text() == "old"
    check_output_file(str(out), "-o", overwrite=True)
    check_output_file(str(out), "-o")  # the default: the commands that replace their outputs by design
    check_output_file(str(tmp_path / "new.sdf"), "-o", overwrite=False)
    os.symlink(tmp_path / "target.sdf", tmp_path / "dangling.sdf")
    check_output_file(str(tmp_path / "dangling.sdf"), "-o", overwrite=False)
    check_output_file("/dev/null", "-o", overwrite=False)


def test_training_writes_follow_symlinks(tmp_path):
    """Checkpoints, metrics.csv and plots of a run go through the same helper (a run directory of links)."""
    import torch

    from equivar.train import MetricsLog, load_checkpoint, plot_learning_curves, save_checkpoint

    store = tmp_path / "store"
    store.mkdir()
    run = tmp_path / "run"
    run.mkdir()
    for name in ("checkpoint.pt", "metrics.csv", "learning_curves.png"):
        (store / name).write_text("old")
        os.symlink(store / name, run / name)
    save_checkpoint(str(run / "checkpoint.pt"), {"format": "equivar-checkpoint", "x": torch.ones(2)})
    hist = [{"epoch": 1, "train_loss": 2.0}, {"epoch": 2, "train_loss": 1.0}]
    MetricsLog(str(run)).rewrite(hist)
    plot_learning_curves(hist, str(run / "learning_curves.png"))
    assert all(os.path.islink(run / n) for n in ("checkpoint.pt", "metrics.csv", "learning_curves.png"))
    assert torch.equal(load_checkpoint(str(store / "checkpoint.pt"))["x"], torch.ones(2))
    assert (store / "metrics.csv").read_text().splitlines()[0] == "epoch,train_loss"
    assert (store / "learning_curves.png").read_bytes()[:4] == b"\x89PNG"
