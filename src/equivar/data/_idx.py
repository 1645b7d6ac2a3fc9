"""IDX files (LeCun's format of MNIST and Fashion-MNIST), plain or gzipped.

Format (http://yann.lecun.com/exdb/mnist/, "THE IDX FILE FORMAT"): a
big-endian header - two zero bytes, a type code (``0x08`` unsigned byte,
``0x09`` signed byte, ``0x0B`` int16, ``0x0C`` int32, ``0x0D`` float32,
``0x0E`` float64), the number of dimensions, then one big-endian uint32 per
dimension - followed by the data in C order, big-endian. MNIST's images are
``idx3-ubyte`` ``[N, 28, 28]``, its labels ``idx1-ubyte`` ``[N]``.
"""

from __future__ import annotations

import gzip
import os
import zlib

import numpy as np

_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_GZIP_MAGIC = b"\x1f\x8b"


def _read_bytes(path: str) -> bytes:
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such file")
    with open(path, "rb") as fh:
        raw = fh.read()
    if raw[:2] == _GZIP_MAGIC:
        try:
            return gzip.decompress(raw)
        except (EOFError, OSError, zlib.error) as e:
            raise ValueError(f"{path}: corrupt or truncated gzip stream ({e})") from None
    return raw


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read one IDX file (optionally gzipped, detected from its first bytes) into a NumPy array.

    Parameters
    ----------
    path : str or PathLike

    Returns
    -------
    numpy.ndarray
        Shape from the header; dtype native-endian of the header's type
        (``uint8`` for MNIST images and labels).

    Raises
    ------
    FileNotFoundError
        No such file.
    ValueError
        Bad magic number or unknown type code, a header or data section
        shorter than the header says (truncated), or trailing bytes; the
        message names the file.

    Examples
    --------
    >>> import gzip, os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "labels-idx1-ubyte.gz")
    >>> with gzip.open(path, "wb") as fh:
    ...     _ = fh.write(bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 2, 1]))
    >>> read_idx(path).tolist()
    [7, 2, 1]
    """
    path = os.fspath(path)
    raw = _read_bytes(path)
    if len(raw) < 4:
        raise ValueError(f"{path}: truncated IDX header ({len(raw)} bytes)")
    if raw[0] != 0 or raw[1] != 0 or raw[2] not in _TYPES:
        raise ValueError(f"{path}: bad IDX magic number 0x{raw[:4].hex()} (expected 0x0000 + type code + ndim)")
    dtype, ndim = np.dtype(_TYPES[raw[2]]), raw[3]
    head = 4 + 4 * ndim
    if len(raw) < head:
        raise ValueError(f"{path}: truncated IDX header ({len(raw)} bytes, {ndim} dimensions need {head})")
    shape = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    need = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    have = len(raw) - head
    if have < need:
        raise ValueError(f"{path}: truncated IDX data ({have} of {need} bytes for shape {shape})")
    if have > need:
        raise ValueError(f"{path}: {have - need} trailing bytes after the IDX data of shape {shape}")
    return np.frombuffer(raw, dtype, offset=head).reshape(shape).astype(dtype.newbyteorder("="))


_MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def _find(root: str, stem: str) -> str:
    for name in (stem + ".gz", stem):
        p = os.path.join(root, name)
        if os.path.exists(p):
            return p
    raise FileNotFoundError(f"{os.path.join(root, stem)}(.gz): no such file (expected the standard MNIST file names)")


def read_mnist(root: str | os.PathLike, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """Images and labels of an MNIST-layout folder (MNIST, Fashion-MNIST): the four standard IDX files.

    Parameters
    ----------
    root : str or PathLike
        Folder with ``train-images-idx3-ubyte(.gz)``, ``train-labels-idx1-ubyte(.gz)``,
        ``t10k-images-idx3-ubyte(.gz)``, ``t10k-labels-idx1-ubyte(.gz)``.
    split : {'train', 'test'}

    Returns
    -------
    images : numpy.ndarray ``[N, H, W]`` uint8 (0 = background)
    labels : numpy.ndarray ``[N]`` int64

    Raises
    ------
    ValueError
        Unknown split; a file that is not 3-d (images) / 1-d (labels);
        image and label counts that differ; labels outside 0..9 (each names the file).
    FileNotFoundError
        A missing file.
    """
    if split not in _MNIST_FILES:
        raise ValueError(f"unknown split {split!r}: use 'train' or 'test'")
    root = os.fspath(root)
    img_path, lbl_path = (_find(root, s) for s in _MNIST_FILES[split])
    images, labels = read_idx(img_path), read_idx(lbl_path)
    if images.ndim != 3:
        raise ValueError(f"{img_path}: expected images [N, H, W], got shape {images.shape}")
    if labels.ndim != 1:
        raise ValueError(f"{lbl_path}: expected labels [N], got shape {labels.shape}")
    if len(images) != len(labels):
        raise ValueError(f"{lbl_path}: {len(labels)} labels for {len(images)} images in {img_path}")
    labels = labels.astype(np.int64)
    if len(labels) and (labels.min() < 0 or labels.max() > 9):
        raise ValueError(f"{lbl_path}: labels outside 0..9 (min {labels.min()}, max {labels.max()})")
    return images, labels
