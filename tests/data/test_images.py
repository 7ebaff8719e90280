"""Image loaders on small files written in the real formats: MNIST IDX, CIFAR-10 binary, image folders."""
import gzip
import os
import pickle

import numpy as np
import pytest

from chainrule.data import DataLoader
from chainrule.data.datasets import (CIFAR10_CLASSES, ImageFolder, load_cifar10,
                                     load_fashion_mnist, load_image_folder, load_mnist,
                                     read_cifar10_batch, read_idx)

# ---------------------------------------------------------------- MNIST IDX


def idx_bytes(arr, magic=None):
    """An IDX file of unsigned bytes: magic 0x00000800 + ndim, then big-endian sizes, then data."""
    arr = np.asarray(arr, dtype=np.uint8)
    magic = 0x0800 + arr.ndim if magic is None else magic
    header = magic.to_bytes(4, "big") + b"".join(int(s).to_bytes(4, "big") for s in arr.shape)
    return header + arr.tobytes()


def write(path, data, gz=False):
    if gz:
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


def make_mnist(tmp_path, kind="train", n=6, rows=28, cols=28, gz=False, seed=0, dotted=False):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, rows, cols), dtype=np.uint8)
    images[0, 0, 0], images[0, 0, 1] = 0, 255
    labels = rng.integers(0, 10, size=n, dtype=np.uint8)
    ext = ".gz" if gz else ""
    sep = "." if dotted else "-"
    write(tmp_path / f"{kind}-images{sep}idx3-ubyte{ext}", idx_bytes(images), gz)
    write(tmp_path / f"{kind}-labels{sep}idx1-ubyte{ext}", idx_bytes(labels), gz)
    return images, labels


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_raw_and_gzipped(tmp_path, gz):
    images, labels = make_mnist(tmp_path, "train", n=6, gz=gz)
    test_images, test_labels = make_mnist(tmp_path, "t10k", n=3, gz=gz, seed=1)
    X, y = load_mnist(tmp_path)
    assert X.shape == (6, 1, 28, 28) and X.dtype == np.float32
    assert y.shape == (6,) and y.dtype == np.int64
    np.testing.assert_allclose(X[:, 0], images / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(y, labels)
    assert X[0, 0, 0, 0] == 0.0 and X[0, 0, 0, 1] == 1.0
    Xt, yt = load_mnist(str(tmp_path), kind="t10k")
    assert Xt.shape == (3, 1, 28, 28)
    np.testing.assert_array_equal(yt, test_labels)
    np.testing.assert_array_equal(load_mnist(tmp_path, kind="test")[1], test_labels)
    raw, _ = load_mnist(tmp_path, scale=False)
    assert raw.dtype == np.uint8 and raw.shape == (6, 1, 28, 28)
    np.testing.assert_array_equal(raw[:, 0], images)


def test_mnist_explicit_paths_other_sizes_and_fashion(tmp_path):
    images, labels = make_mnist(tmp_path, "train", n=4, rows=5, cols=7, dotted=True)
    X, y = load_mnist((tmp_path / "train-images.idx3-ubyte", tmp_path / "train-labels.idx1-ubyte"))
    assert X.shape == (4, 1, 5, 7)
    np.testing.assert_array_equal(y, labels)
    X2, y2 = load_fashion_mnist(tmp_path)          # same format, found under the dotted names
    np.testing.assert_array_equal(X2, X)
    assert read_idx(tmp_path / "train-images.idx3-ubyte").shape == (4, 5, 7)


def test_read_idx_other_dtypes(tmp_path):
    arr = (np.arange(6).reshape(2, 3) - 3).astype(">i4")
    header = (0x0C02).to_bytes(4, "big") + (2).to_bytes(4, "big") + (3).to_bytes(4, "big")
    path = write(tmp_path / "ints.idx", header + arr.tobytes())
    out = read_idx(path)
    np.testing.assert_array_equal(out, arr)
    assert out.dtype == np.int32 and out.dtype.isnative


def test_mnist_errors_name_the_file(tmp_path):
    images, labels = make_mnist(tmp_path, "train", n=5)
    img = tmp_path / "train-images-idx3-ubyte"
    lab = tmp_path / "train-labels-idx1-ubyte"
    good_images = img.read_bytes()

    # Truncated: fewer pixel bytes than the header promises.
    img.write_bytes(good_images[:-10])
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte is truncated"):
        load_mnist(tmp_path)
    # Truncated inside the header itself.
    img.write_bytes(good_images[:9])
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte is truncated"):
        load_mnist(tmp_path)
    # Extra bytes after the data.
    img.write_bytes(good_images + b"\x00")
    with pytest.raises(ValueError, match="longer than its header"):
        load_mnist(tmp_path)
    # Wrong magic: not an IDX file at all, then a labels file where images belong.
    img.write_bytes(b"\x89PNG" + good_images[4:])
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte is not an IDX file.*0x89504E47"):
        load_mnist(tmp_path)
    img.write_bytes(idx_bytes(labels))
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte has IDX magic number "
                                         r"0x00000801, expected 0x00000803"):
        load_mnist(tmp_path)
    # Image and label counts disagree.
    img.write_bytes(good_images)
    lab.write_bytes(idx_bytes(labels[:4]))
    with pytest.raises(ValueError, match=r"5 images but .*train-labels-idx1-ubyte holds 4 labels"):
        load_mnist(tmp_path)
    # A truncated gzip stream.
    lab.unlink()
    gzpath = tmp_path / "train-labels-idx1-ubyte.gz"
    gzpath.write_bytes(gzip.compress(idx_bytes(labels))[:-12])
    with pytest.raises(ValueError, match=r"train-labels-idx1-ubyte.gz is a corrupt or truncated gzip"):
        load_mnist(tmp_path)
    # Missing files and bad arguments.
    with pytest.raises(FileNotFoundError, match="no t10k images file"):
        load_mnist(tmp_path, kind="t10k")
    with pytest.raises(ValueError, match="kind must be"):
        load_mnist(tmp_path, kind="validation")
    with pytest.raises(FileNotFoundError, match="not a directory"):
        load_mnist(tmp_path / "nowhere")


# ---------------------------------------------------------------- CIFAR-10 binary


def cifar_records(n, seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, size=n, dtype=np.uint8)
    images = rng.integers(0, 256, size=(n, 3, 32, 32), dtype=np.uint8)
    raw = np.concatenate([labels[:, None], images.reshape(n, -1)], axis=1).tobytes()
    return raw, images, labels


def test_cifar_batch_layout(tmp_path):
    raw, images, labels = cifar_records(5, seed=0)
    path = write(tmp_path / "data_batch_1.bin", raw)
    X, y = read_cifar10_batch(path)
    assert X.shape == (5, 3, 32, 32) and X.dtype == np.float32
    assert y.dtype == np.int64
    np.testing.assert_array_equal(y, labels)
    np.testing.assert_allclose(X, images / 255.0, rtol=1e-6)
    # Record layout: byte 1 + c*1024 + r*32 + col is channel c, row r, column col.
    rec = np.frombuffer(raw, np.uint8)[3073 * 2:3073 * 3]
    assert X[2, 1, 4, 7] == np.float32(rec[1 + 1024 + 4 * 32 + 7]) / np.float32(255)
    Xu, _ = read_cifar10_batch(path, scale=False)
    assert Xu.dtype == np.uint8 and np.array_equal(Xu, images)


def write_cifar_dir(root, sizes=(5, 4, 3, 2, 1), n_test=3):
    root.mkdir(parents=True, exist_ok=True)
    parts = []
    for i, n in enumerate(sizes, start=1):
        raw, images, labels = cifar_records(n, seed=i)
        write(root / f"data_batch_{i}.bin", raw)
        parts.append((images, labels))
    raw, test_images, test_labels = cifar_records(n_test, seed=99)
    write(root / "test_batch.bin", raw)
    (root / "batches.meta.txt").write_text("\n".join(CIFAR10_CLASSES) + "\n")
    return parts, (test_images, test_labels)


def test_load_cifar10_train_and_test(tmp_path):
    parts, (test_images, test_labels) = write_cifar_dir(tmp_path / "cifar-10-batches-bin")
    for where in (tmp_path / "cifar-10-batches-bin", tmp_path):   # the folder or its parent
        X_tr, y_tr, X_te, y_te = load_cifar10(where)
        assert X_tr.shape == (15, 3, 32, 32) and X_te.shape == (3, 3, 32, 32)
        assert X_tr.dtype == np.float32 and y_tr.dtype == np.int64
        np.testing.assert_array_equal(y_tr, np.concatenate([lab for _, lab in parts]))
        np.testing.assert_allclose(X_tr, np.concatenate([im for im, _ in parts]) / 255.0, rtol=1e-6)
        np.testing.assert_array_equal(y_te, test_labels)
        np.testing.assert_allclose(X_te, test_images / 255.0, rtol=1e-6)
    assert len(CIFAR10_CLASSES) == 10


def test_cifar_errors(tmp_path):
    root = tmp_path / "bin"
    write_cifar_dir(root)
    good = (root / "data_batch_3.bin").read_bytes()
    (root / "data_batch_3.bin").write_bytes(good[:-100])
    with pytest.raises(ValueError, match=r"data_batch_3.bin is truncated .* not a positive multiple "
                                         r"of the 3073-byte record"):
        load_cifar10(root)
    bad = bytearray(good)
    bad[3073] = 12            # second record's label byte
    (root / "data_batch_3.bin").write_bytes(bytes(bad))
    with pytest.raises(ValueError, match=r"data_batch_3.bin: record 1 has label 12"):
        load_cifar10(root)
    (root / "data_batch_3.bin").write_bytes(good)
    (root / "data_batch_5.bin").unlink()
    with pytest.raises(FileNotFoundError, match="lacks data_batch_5.bin"):
        load_cifar10(root)
    with pytest.raises(ValueError, match="extract it first"):
        load_cifar10(write(tmp_path / "cifar-10-binary.tar.gz", b"\x1f\x8b"))


def test_cifar_python_version_is_refused(tmp_path):
    py = tmp_path / "cifar-10-batches-py"
    py.mkdir()
    pickled = pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 1]}, protocol=2)
    write(py / "data_batch_1", pickled)
    for where in (py, tmp_path):
        with pytest.raises(ValueError, match=r"pickled 'python version'.*binary version"):
            load_cifar10(where)
    # A pickled batch renamed to .bin is caught from its first byte.
    with pytest.raises(ValueError, match="binary version"):
        read_cifar10_batch(write(tmp_path / "data_batch_1.bin", pickled))


# ---------------------------------------------------------------- image folders


def save_png(path, array, mode):
    from PIL import Image
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(array, dtype=np.uint8), mode=mode).save(path)


@pytest.fixture
def folder(tmp_path):
    pytest.importorskip("PIL")
    root = tmp_path / "shapes"
    rng = np.random.default_rng(0)
    pics = {}
    # Classes listed out of order on purpose, images of different sizes and modes.
    for name, n in (("zebra", 2), ("cat", 3), ("dog", 1)):
        for i in range(n):
            h, w = 6 + i, 4 + 2 * i
            if i % 2:
                a = rng.integers(0, 256, size=(h, w), dtype=np.uint8)
                save_png(root / name / f"{i}.png", a, "L")
            else:
                a = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
                save_png(root / name / f"{i}.PNG", a, "RGB")
            pics[(name, i)] = a
    (root / "cat" / "notes.txt").write_text("not an image")
    (root / "README").write_text("files at the top level are not classes")
    return root, pics


def test_image_folder_classes_and_values(folder):
    root, pics = folder
    ds = ImageFolder(root)
    assert ds.classes == ["cat", "dog", "zebra"]
    assert ds.class_to_idx == {"cat": 0, "dog": 1, "zebra": 2}
    assert len(ds) == 6
    np.testing.assert_array_equal(ds.targets, [0, 0, 0, 1, 2, 2])
    x, y = ds[0]                                  # cat/0.PNG: RGB 6x4, kept at its size
    assert x.shape == (3, 6, 4) and x.dtype == np.float32 and y == 0
    np.testing.assert_allclose(x, pics[("cat", 0)].transpose(2, 0, 1) / 255.0, rtol=1e-6)
    x, _ = ds[1]                                  # cat/1.png: grayscale 7x6 read as RGB
    assert x.shape == (3, 7, 6)
    for c in range(3):
        np.testing.assert_allclose(x[c], pics[("cat", 1)] / 255.0, rtol=1e-6)
    gray = ImageFolder(root, mode="L")
    xg, _ = gray[1]
    assert xg.shape == (1, 7, 6)
    np.testing.assert_allclose(xg[0], pics[("cat", 1)] / 255.0, rtol=1e-6)
    assert "3 classes" in repr(ds)


def test_image_folder_resizes_and_batches(folder):
    root, pics = folder
    ds = ImageFolder(root, size=(5, 3), mode="RGB")
    shapes = {ds[i][0].shape for i in range(len(ds))}
    assert shapes == {(3, 5, 3)}
    assert all(0.0 <= ds[i][0].min() and ds[i][0].max() <= 1.0 for i in range(len(ds)))
    xb, yb = next(iter(DataLoader(ds, batch_size=4, shuffle=True, seed=0).iter_arrays()))
    assert xb.shape == (4, 3, 5, 3) and xb.dtype == np.float32 and yb.dtype == np.int64
    # A constant image stays constant after resizing.
    save_png(root / "dog" / "flat.png", np.full((9, 9, 3), 51), "RGB")
    X, y, classes = load_image_folder(root, size=4, mode="L")
    assert X.shape == (7, 1, 4, 4) and X.dtype == np.float32 and y.dtype == np.int64
    assert classes == ["cat", "dog", "zebra"]
    np.testing.assert_array_equal(y, [0, 0, 0, 1, 1, 2, 2])
    np.testing.assert_allclose(X[4], 0.2, atol=1e-6)       # dog/flat.png sorts after dog/0.PNG


def test_load_image_folder_needs_size_for_mixed_sizes(folder):
    root, _ = folder
    with pytest.raises(ValueError, match=r"cat.1\.png is 7x6 but .*cat.0\.PNG is 6x4; pass size"):
        load_image_folder(root)


def test_image_folder_errors(folder, tmp_path):
    root, _ = folder
    (root / "cat" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    ds = ImageFolder(root, size=4)
    broken = [i for i, (p, _) in enumerate(ds.samples) if p.endswith("broken.png")][0]
    with pytest.raises(ValueError, match=r"cannot read image .*broken\.png"):
        ds[broken]
    with pytest.raises(ValueError, match=r"broken\.png"):
        load_image_folder(root, size=4)
    (root / "cat" / "broken.png").unlink()

    (root / "empty").mkdir()
    (root / "empty" / "notes.txt").write_text("no images")
    with pytest.raises(FileNotFoundError, match=r"class folder .*empty holds no image files"):
        ImageFolder(root)
    os.remove(root / "empty" / "notes.txt")
    os.rmdir(root / "empty")

    flat = tmp_path / "flat"
    flat.mkdir()
    (flat / "a.png").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match=r"no classes found in .*flat"):
        ImageFolder(flat)
    with pytest.raises(FileNotFoundError, match="not a directory"):
        ImageFolder(tmp_path / "missing")
    with pytest.raises(ValueError, match="mode must be"):
        ImageFolder(root, mode="CMYK")
    with pytest.raises(ValueError, match="size must be"):
        ImageFolder(root, size=(0, 4))
    with pytest.raises(IndexError):
        ImageFolder(root)[100]


def test_image_folder_extensions_filter(folder):
    root, _ = folder
    ds = ImageFolder(root, extensions=(".PNG",))       # case-insensitive: .png and .PNG
    assert len(ds) == 6
    with pytest.raises(FileNotFoundError, match="holds no image files"):
        ImageFolder(root, extensions=(".jpg",))


def test_pillow_missing_gives_install_hint(folder, monkeypatch):
    import builtins
    root, _ = folder
    real_import = builtins.__import__

    def no_pil(name, *args, **kwargs):
        if name == "PIL" or name.startswith("PIL."):
            raise ImportError("No module named 'PIL'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pil)
    with pytest.raises(ImportError, match=r"pip install chainrule\[images\]"):
        ImageFolder(root)[0]

