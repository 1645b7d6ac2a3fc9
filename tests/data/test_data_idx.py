"""IDX reader (MNIST / Fashion-MNIST) on synthetic files and the shared data."""

import gzip
import os
import struct

import numpy as np
import pytest
import torch

from equivar.data import read_idx, read_mnist


def _idx_bytes(arr: np.ndarray, code: int) -> bytes:
    be = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}[code]
    head = bytes([0, 0, code, arr.ndim]) + b"".join(struct.pack(">I", d) for d in arr.shape)
    return head + arr.astype(be).tobytes()


@pytest.mark.parametrize(
    "code,arr",
    [
        (0x08, np.arange(24, dtype=np.uint8).reshape(2, 3, 4)),
        (0x09, np.array([-3, 0, 127], dtype=np.int8)),
        (0x0B, np.array([[-30000, 1], [2, 30000]], dtype=np.int16)),
        (0x0C, np.array([1 << 30, -5], dtype=np.int32)),
        (0x0D, np.array([1.5, -2.25e-3], dtype=np.float32)),
        (0x0E, np.array([[np.pi]], dtype=np.float64)),
    ],
)
@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_round_trip_big_endian(tmp_path, code, arr, gz):
    raw = _idx_bytes(arr, code)
    path = tmp_path / ("x.idx.gz" if gz else "x.idx")
    path.write_bytes(gzip.compress(raw) if gz else raw)
    out = read_idx(path)
    assert out.shape == arr.shape and out.dtype.isnative
    np.testing.assert_array_equal(out, arr)


def test_read_idx_errors_name_the_file(tmp_path):
    good = _idx_bytes(np.arange(12, dtype=np.uint8).reshape(3, 4), 0x08)
    cases = {
        "magic.idx": (b"\x08\x03" + good[2:], "bad IDX magic number 0x0803"),
        "type.idx": (bytes([0, 0, 0x42, 2]) + good[4:], "bad IDX magic number 0x00004202"),
        "head.idx": (good[:6], "truncated IDX header"),
        "tiny.idx": (good[:3], "truncated IDX header"),
        "data.idx": (good[:-1], "truncated IDX data (11 of 12 bytes"),
        "trail.idx": (good + b"\x00", "1 trailing bytes"),
        "cut.gz": (gzip.compress(good)[:-9], "corrupt or truncated gzip"),
    }
    for name, (raw, msg) in cases.items():
        p = tmp_path / name
        p.write_bytes(raw)
        with pytest.raises(ValueError) as e:
            read_idx(p)
        assert msg in str(e.value) and str(p) in str(e.value) and "\n" not in str(e.value), str(e.value)
    with pytest.raises(FileNotFoundError, match="nope.idx"):
        read_idx(tmp_path / "nope.idx")


def test_read_mnist_layout_errors(tmp_path):
    imgs = _idx_bytes(np.zeros((3, 2, 2), np.uint8), 0x08)
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(imgs)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(_idx_bytes(np.array([1, 2], np.uint8), 0x08)))
    with pytest.raises(ValueError, match="2 labels for 3 images"):
        read_mnist(tmp_path, "test")
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte"):
        read_mnist(tmp_path, "train")
    with pytest.raises(ValueError, match="unknown split 'valid'"):
        read_mnist(tmp_path, "valid")
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(
        gzip.compress(_idx_bytes(np.array([1, 2, 12], np.uint8), 0x08))
    )
    with pytest.raises(ValueError, match="labels outside 0..9"):
        read_mnist(tmp_path, "test")


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_read_shared_mnist(shared_data, name):
    root = os.path.join(shared_data, name)
    x, y = read_mnist(root, "test")
    assert x.shape == (10000, 28, 28) and x.dtype == np.uint8 and y.dtype == np.int64
    counts = np.bincount(y, minlength=10).tolist()
    if name == "mnist":  # the published class counts of the MNIST test set and its first labels
        assert counts == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
        assert y[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    else:  # Fashion-MNIST: 1000 per class; first test label 9 (ankle boot)
        assert counts == [1000] * 10 and y[0] == 9
    assert x.max() == 255 and x.min() == 0


def test_load_image_set(tmp_path):
    from equivar.data import load_image_set

    imgs = np.arange(5 * 2 * 3, dtype=np.uint8).reshape(5, 2, 3) * 8
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(_idx_bytes(imgs, 0x08)))
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(
        gzip.compress(_idx_bytes(np.array([3, 1, 4, 1, 5], np.uint8), 0x08))
    )
    s = load_image_set(tmp_path, "test", limit=4)
    assert len(s) == 4 and s.images.shape == (4, 1, 2, 3) and s.images.dtype == torch.float32
    assert s.images[1, 0, 0, 1].item() == pytest.approx(7 * 8 / 255)
    assert s.labels.tolist() == [3, 1, 4, 1]
    b = list(s.batches(3))
    assert [len(x["labels"]) for x in b] == [3, 1] and torch.equal(b[1]["images"][0], s.images[3])
    with pytest.raises(ValueError, match="limit must be >= 1"):
        load_image_set(tmp_path, "test", limit=0)
