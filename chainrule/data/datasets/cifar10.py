"""CIFAR-10 from the *binary* batches a user downloads (cifar-10-binary.tar.gz, extracted); no download.

Each batch file is a run of 3073-byte records: one label byte (0..9), then 3072 pixel bytes, the
1024 red, 1024 green and 1024 blue values of a 32x32 image in row order. That is exactly the
(N, 3, 32, 32) layout, so a batch is one ``np.frombuffer`` and a reshape. The pickled "python
version" is refused: unpickling runs arbitrary code, and the binary version holds the same data.
"""
import os

import numpy as np

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                   "truck")
_RECORD = 1 + 3 * 32 * 32
_BINARY_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
_TRAIN_FILES = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
_TEST_FILE = "test_batch.bin"


def _pickle_error(where, path):
    return ValueError(f"{where}: {path} is the pickled 'python version' of CIFAR-10, which chainrule "
                      f"does not read (unpickling can run arbitrary code); download the binary "
                      f"version instead ({_BINARY_URL}) and extract it: its folder "
                      f"cifar-10-batches-bin holds data_batch_1.bin ... test_batch.bin")


def read_cifar10_batch(path, scale=True):
    """One binary batch file as ``(X, y)``: X (N, 3, 32, 32), y int64 (N,).

    ``scale`` gives float32 pixels in [0, 1]; ``False`` keeps uint8. A file whose size is not a
    multiple of 3073 bytes, or with a label outside 0..9, is an error naming the file.
    """
    where = "read_cifar10_batch"
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise OSError(f"{where}: cannot read {path}: {e.strerror or e}") from None
    if raw[:1] == b"\x80":   # pickle protocol 2+ opcode: the python version of the batch
        raise _pickle_error(where, path)
    if len(raw) == 0 or len(raw) % _RECORD:
        raise ValueError(f"{where}: {path} is truncated or not a CIFAR-10 binary batch: its size "
                         f"{len(raw)} bytes is not a positive multiple of the {_RECORD}-byte record "
                         f"(1 label byte + 3072 pixel bytes)")
    records = np.frombuffer(raw, dtype=np.uint8).reshape(-1, _RECORD)
    y = records[:, 0].astype(np.int64)
    if y.max() > 9:
        bad = int(np.argmax(y > 9))
        raise ValueError(f"{where}: {path}: record {bad} has label {y[bad]}, expected 0..9; "
                         f"is this a CIFAR-10 binary batch (CIFAR-100 uses another layout)?")
    X = records[:, 1:].reshape(-1, 3, 32, 32)
    X = X.astype(np.float32) / np.float32(255.0) if scale else X.copy()
    return X, y


def _batches_dir(directory):
    """The folder holding the batch files: ``directory`` itself or its cifar-10-batches-bin."""
    where = "load_cifar10"
    directory = os.path.expanduser(os.fspath(directory))
    if os.path.isfile(directory):
        if directory.endswith((".tar.gz", ".tgz", ".tar")):
            raise ValueError(f"{where}: {directory} is an archive; extract it first "
                             f"(tar xzf) and pass the folder it makes")
        raise ValueError(f"{where}: {directory} is a file; pass the folder holding "
                         f"data_batch_1.bin ... test_batch.bin")
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"{where}: no such directory {directory}")
    for sub in ("cifar-10-batches-bin",):
        if os.path.isdir(os.path.join(directory, sub)):
            directory = os.path.join(directory, sub)
    if not os.path.isfile(os.path.join(directory, _TRAIN_FILES[0])):
        for name in ("data_batch_1", "cifar-10-batches-py"):
            if os.path.exists(os.path.join(directory, name)):
                raise _pickle_error(where, os.path.join(directory, name))
    return directory


def load_cifar10(directory, scale=True):
    """CIFAR-10 as ``(X_train, y_train, X_test, y_test)``.

    ``directory`` is the extracted ``cifar-10-batches-bin`` folder (or the folder containing it),
    with ``data_batch_1.bin`` ... ``data_batch_5.bin`` and ``test_batch.bin``. X is (N, 3, 32, 32)
    float32 in [0, 1] (uint8 with ``scale=False``), y int64 in 0..9; N = 50000 and 10000. Class
    names are ``CIFAR10_CLASSES``.

    >>> X_tr, y_tr, X_te, y_te = load_cifar10("~/data/cifar-10-batches-bin")
    """
    directory = _batches_dir(directory)
    missing = [n for n in _TRAIN_FILES + (_TEST_FILE,)
               if not os.path.isfile(os.path.join(directory, n))]
    if missing:
        raise FileNotFoundError(f"load_cifar10: {directory} lacks {', '.join(missing)}; expected the "
                                f"binary batches data_batch_1.bin ... data_batch_5.bin and "
                                f"test_batch.bin ({_BINARY_URL})")
    # Read as bytes and scale once at the end: float32 copies of every batch would double the peak.
    train = [read_cifar10_batch(os.path.join(directory, n), scale=False) for n in _TRAIN_FILES]
    X_te, y_te = read_cifar10_batch(os.path.join(directory, _TEST_FILE), scale=False)
    X_tr = np.concatenate([X for X, _ in train])
    y_tr = np.concatenate([y for _, y in train])
    if scale:
        X_tr = X_tr.astype(np.float32) / np.float32(255.0)
        X_te = X_te.astype(np.float32) / np.float32(255.0)
    return X_tr, y_tr, X_te, y_te
