"""MNIST and Fashion-MNIST from the IDX files a user downloads (raw or gzipped); no download here.

The IDX format is a big-endian header (two zero bytes, a type code, the number of dimensions, then
one 32-bit size per dimension) followed by the data in C order. The header is parsed here with
NumPy, so there is no dependency beyond it.
"""
import gzip
import os
import zlib

import numpy as np

# IDX type code -> big-endian NumPy dtype.
_IDX_DTYPES = {0x08: np.dtype("u1"), 0x09: np.dtype("i1"), 0x0B: np.dtype(">i2"),
               0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
_LABELS_MAGIC = 0x00000801   # unsigned bytes, 1 dimension (N,)
_IMAGES_MAGIC = 0x00000803   # unsigned bytes, 3 dimensions (N, rows, cols)

FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                         "Sneaker", "Bag", "Ankle boot")


def _read_bytes(path, where):
    """The file's bytes, gunzipped when it starts with the gzip magic (whatever its name)."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise OSError(f"{where}: cannot read {path}: {e.strerror or e}") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(raw)
        except (EOFError, OSError, zlib.error) as e:
            raise ValueError(f"{where}: {path} is a corrupt or truncated gzip file ({e})") from None
    return raw


def read_idx(path, expected_magic=None, _where="read_idx"):
    """Read one IDX file (raw or .gz) into a NumPy array with the shape its header gives.

    ``expected_magic`` (e.g. 0x00000803 for MNIST images) makes a file of another kind an error.
    Errors name the file: a wrong magic number, a file shorter (truncated) or longer than its header
    says.

    >>> y = read_idx("train-labels-idx1-ubyte.gz")        # (60000,) uint8
    """
    where = _where
    data = _read_bytes(path, where)
    if len(data) < 4:
        raise ValueError(f"{where}: {path} is too short for an IDX header ({len(data)} bytes)")
    magic = int.from_bytes(data[:4], "big")
    code, ndim = data[2], data[3]
    if data[:2] != b"\x00\x00" or code not in _IDX_DTYPES or ndim == 0:
        want = f", expected 0x{expected_magic:08X}" if expected_magic is not None else ""
        raise ValueError(f"{where}: {path} is not an IDX file: bad magic number "
                         f"0x{magic:08X}{want}")
    if expected_magic is not None and magic != expected_magic:
        raise ValueError(f"{where}: {path} has IDX magic number 0x{magic:08X}, expected "
                         f"0x{expected_magic:08X} ({_describe(expected_magic)}); are the image and "
                         f"label files swapped?")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{where}: {path} is truncated: its header needs {header} bytes, "
                         f"the file has {len(data)}")
    shape = tuple(int(s) for s in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype = _IDX_DTYPES[code]
    need = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) != need:
        what = "truncated" if len(data) < need else "longer than its header says"
        raise ValueError(f"{where}: {path} is {what}: header gives shape {shape} ({need} bytes in "
                         f"all), the file has {len(data)} bytes")
    arr = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    # Native byte order, and a writeable array that does not pin the file's bytes.
    return arr.astype(dtype.newbyteorder("="))


def _describe(magic):
    return {_LABELS_MAGIC: "labels, 1-D unsigned bytes",
            _IMAGES_MAGIC: "images, 3-D unsigned bytes"}.get(magic, "IDX")


def _find(directory, kind, what):
    """The images or labels file of ``kind`` in ``directory``, under any of its usual names."""
    idx = "idx3" if what == "images" else "idx1"
    stems = [f"{kind}-{what}-{idx}-ubyte", f"{kind}-{what}.{idx}-ubyte"]
    names = [s + ext for s in stems for ext in ("", ".gz")]
    for name in names:
        path = os.path.join(directory, name)
        if os.path.isfile(path):
            return path
    try:
        present = sorted(os.listdir(directory))
    except OSError as e:
        raise FileNotFoundError(f"load_mnist: cannot list directory {directory}: "
                                f"{e.strerror or e}") from None
    shown = ", ".join(present[:12]) + (", ..." if len(present) > 12 else "") or "nothing"
    raise FileNotFoundError(f"load_mnist: no {kind} {what} file in {directory}; looked for "
                            f"{' / '.join(names)}; found {shown}")


def load_mnist(path, kind="train", scale=True):
    """MNIST or Fashion-MNIST (the same IDX format) as ``(X, y)``.

    Args:
        path: a directory holding the files under their usual names
            (``train-images-idx3-ubyte[.gz]``, ``train-labels-idx1-ubyte[.gz]``, ``t10k-...``;
            ``train-images.idx3-ubyte`` too), or a pair ``(images_file, labels_file)``.
        kind: ``'train'`` or ``'t10k'`` (alias ``'test'``); ignored for a pair of files.
        scale: float32 pixels in [0, 1] (the bytes / 255); ``False`` keeps uint8 0..255.

    Returns X (N, 1, rows, cols), (N, 1, 28, 28) for MNIST, and y int64 (N,).

    >>> X_tr, y_tr = load_mnist("~/data/mnist")                  # (60000, 1, 28, 28)
    >>> X_te, y_te = load_mnist("~/data/fashion", kind="t10k")   # (10000, 1, 28, 28)
    """
    if isinstance(path, (tuple, list)):
        if len(path) != 2:
            raise ValueError(f"load_mnist: expected a directory or a pair (images_file, "
                             f"labels_file), got {len(path)} paths")
        images_path, labels_path = (os.fspath(os.path.expanduser(p)) for p in path)
    else:
        directory = os.path.expanduser(os.fspath(path))
        if kind == "test":
            kind = "t10k"
        if kind not in ("train", "t10k"):
            raise ValueError(f"load_mnist: kind must be 'train' or 't10k' (or 'test'), got {kind!r}")
        if not os.path.isdir(directory):
            raise FileNotFoundError(f"load_mnist: {directory} is not a directory; pass the folder "
                                    f"holding the IDX files or a pair (images_file, labels_file)")
        images_path = _find(directory, kind, "images")
        labels_path = _find(directory, kind, "labels")

    images = read_idx(images_path, expected_magic=_IMAGES_MAGIC, _where="load_mnist")
    labels = read_idx(labels_path, expected_magic=_LABELS_MAGIC, _where="load_mnist")
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"load_mnist: {images_path} holds {images.shape[0]} images but "
                         f"{labels_path} holds {labels.shape[0]} labels")
    X = images[:, None, :, :]
    if scale:
        X = X.astype(np.float32) / np.float32(255.0)
    return X, labels.astype(np.int64)


def load_fashion_mnist(path, kind="train", scale=True):
    """Fashion-MNIST: the same files and layout as MNIST (see ``load_mnist``); class names are
    ``FASHION_MNIST_CLASSES``."""
    return load_mnist(path, kind=kind, scale=scale)
