"""Tests for chainrule/io.py: round trips, atomic writes, and refusing foreign or unsafe files."""

import json
import os
import pickle
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest

from chainrule import io as cio
from chainrule.io import CheckpointError, load, save


class FakeTensor:
    """Stands in for chainrule.Tensor: only __array__ matters to io."""

    def __init__(self, data):
        self.data = np.asarray(data)

    def __array__(self, dtype=None, copy=None):
        return self.data if dtype is None else self.data.astype(dtype)


UNPICKLED = []


def _record_unpickle(tag):
    UNPICKLED.append(tag)
    return tag


class Evil:
    """Unpickling this runs _record_unpickle: the alarm for 'load never unpickles'."""

    def __reduce__(self):
        return (_record_unpickle, ("pwned",))


def assert_same(a, b, where="root"):
    """Equal structure, key order, container and leaf types, dtypes and values."""
    if isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray), where
        assert a.dtype == b.dtype and a.shape == b.shape, where
        np.testing.assert_array_equal(a, b, err_msg=where)
        return
    assert type(a) is type(b), f"{where}: {type(a)} != {type(b)}"
    if isinstance(a, dict):
        assert list(a) == list(b), where
        assert [type(k) for k in a] == [type(k) for k in b], where
        for k in a:
            assert_same(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, float) and np.isnan(a):
        assert np.isnan(b), where
    elif isinstance(a, np.generic):
        assert a.dtype == b.dtype and (a == b or (np.isnan(a) and np.isnan(b))), where
    else:
        assert a == b, where


def write_zip(path, entries):
    """A zip of .npy entries, written by hand to craft foreign or hostile files."""
    with zipfile.ZipFile(path, "w") as zf:
        for name, array, allow_pickle in entries:
            with zf.open(name + ".npy", "w") as f:
                np.lib.format.write_array(f, array, allow_pickle=allow_pickle)


def manifest_array(manifest):
    return np.frombuffer(json.dumps(manifest).encode(), dtype=np.uint8)


def model_and_optimizer_state():
    rng = np.random.default_rng(0)
    return {
        "model": OrderedDict([
            ("fc1.weight", rng.standard_normal((4, 3)).astype(np.float32)),
            ("fc1.bias", np.zeros(4, np.float32)),
            ("bn.running_mean", rng.standard_normal(4)),            # float64
            ("bn.num_batches_tracked", np.array(7, dtype=np.int64)),  # 0-d
            ("mask", np.array([True, False, True])),
        ]),
        "optimizer": {
            "state": {0: {"step": 3, "exp_avg": rng.standard_normal((4, 3)).astype(np.float32)},
                      1: {"step": 3, "exp_avg": np.ones(4, np.float32)}},
            "param_groups": [{"lr": 0.1, "betas": (0.9, 0.999), "eps": 1e-8,
                              "weight_decay": 0.0, "nesterov": False, "params": [0, 1]}],
        },
        "epoch": 12,
        "best": None,
        "name": "lenet-ß",
    }


# ------------------------------------------------------------------------------- round trips

def test_round_trip_model_and_optimizer_state(tmp_path):
    state = model_and_optimizer_state()
    save(state, tmp_path / "ckpt.npz")
    assert_same(state, load(tmp_path / "ckpt.npz"))


def test_round_trip_keeps_int_keys_and_key_order(tmp_path):
    state = {"b": 1, "a": 2, 10: "ten", 2: "two", "10": "string ten", -1: None}
    save(state, tmp_path / "c")
    out = load(tmp_path / "c")
    assert list(out) == ["b", "a", 10, 2, "10", -1]
    assert out[10] == "ten" and out["10"] == "string ten"
    assert_same(state, out)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, np.int8, np.int32,
                                   np.int64, np.uint8, np.uint64, np.bool_, np.complex64])
@pytest.mark.parametrize("shape", [(), (0,), (5,), (2, 3), (2, 0, 3), (1, 2, 3, 4)])
def test_round_trip_dtypes_and_shapes(tmp_path, dtype, shape):
    a = (np.arange(int(np.prod(shape))) % 3).reshape(shape).astype(dtype)
    save({"a": a}, tmp_path / "c")
    assert_same({"a": a}, load(tmp_path / "c"))


def test_round_trip_non_contiguous_fortran_and_big_endian(tmp_path):
    base = np.arange(24, dtype=np.float64).reshape(4, 6)
    state = [base[:, ::2], np.asfortranarray(base), base.astype(">f4")]
    save(state, tmp_path / "c")
    out = load(tmp_path / "c")
    for a, b in zip(state, out):
        np.testing.assert_array_equal(a, b)
    assert out[2].dtype == np.dtype(">f4")


def test_round_trip_python_scalars_exactly(tmp_path):
    state = [0.1, 1 / 3, -0.0, float("inf"), float("nan"), 1e-310, 2**100, -5, True, False,
             None, "", "with \"quotes\" and \n newline", (), [], {}, (1, [2, (3,)])]
    save(state, tmp_path / "c")
    out = load(tmp_path / "c")
    assert_same(state, out)
    assert str(out[2]) == "-0.0"
    assert type(out[8]) is bool and type(out[9]) is bool


def test_numpy_scalars_stay_numpy_scalars(tmp_path):
    state = {"f": np.float32(1.5), "d": np.float64(0.1), "i": np.int64(-3), "b": np.bool_(True)}
    save(state, tmp_path / "c")
    assert_same(state, load(tmp_path / "c"))


def test_ordered_dict_comes_back_ordered_dict(tmp_path):
    state = OrderedDict([("z", 1), ("a", np.ones(2))])
    save(state, tmp_path / "c")
    out = load(tmp_path / "c")
    assert type(out) is OrderedDict and list(out) == ["z", "a"]


def test_array_like_saved_as_numpy_array(tmp_path):
    t = FakeTensor(np.arange(6, dtype=np.float32).reshape(2, 3))
    save({"weight": t, "scalar": FakeTensor(np.float64(2.5))}, tmp_path / "c")
    out = load(tmp_path / "c")
    assert type(out["weight"]) is np.ndarray and out["weight"].dtype == np.float32
    np.testing.assert_array_equal(out["weight"], t.data)
    assert out["scalar"].shape == () and out["scalar"] == 2.5


def test_path_kept_exactly_and_pathlike_accepted(tmp_path):
    for name in ("model.pt", "noext", "x.npz"):
        save({"a": 1}, str(tmp_path / name))
        assert load(Path(tmp_path / name)) == {"a": 1}
    assert sorted(os.listdir(tmp_path)) == ["model.pt", "noext", "x.npz"]


def test_file_is_a_plain_npz(tmp_path):
    # Other tools can inspect a checkpoint with np.load, no pickle needed.
    save({"w": np.ones(3)}, tmp_path / "c")
    with np.load(tmp_path / "c", allow_pickle=False) as npz:
        manifest = json.loads(npz[cio.MANIFEST_KEY].tobytes())
        assert manifest["format"] == cio.FORMAT and manifest["version"] == cio.VERSION
        ref = manifest["root"]["items"][0][1]["ref"]
        np.testing.assert_array_equal(npz[ref], np.ones(3))


def test_overwrite_replaces_and_keeps_mode(tmp_path):
    p = tmp_path / "c"
    save({"v": 1}, p)
    os.chmod(p, 0o640)
    save({"v": 2}, p)
    assert load(p) == {"v": 2}
    assert os.stat(p).st_mode & 0o777 == 0o640
    assert os.listdir(tmp_path) == ["c"]


def test_new_file_mode_follows_umask_not_mkstemp(tmp_path):
    old = os.umask(0o022)
    try:
        save({}, tmp_path / "c")
    finally:
        os.umask(old)
    assert os.stat(tmp_path / "c").st_mode & 0o777 == 0o644


def test_save_through_symlink_replaces_the_target(tmp_path):
    real = tmp_path / "real"
    save({"v": 1}, real)
    (tmp_path / "link").symlink_to(real)
    save({"v": 2}, tmp_path / "link")
    assert (tmp_path / "link").is_symlink()
    assert load(real) == {"v": 2}


# ------------------------------------------------------------------------- refused on save

def test_object_array_refused_naming_key_path(tmp_path):
    state = {"state": {0: {"buf": np.array([1, "a"], dtype=object)}}}
    with pytest.raises(TypeError, match=r"object array at \['state'\]\[0\]\['buf'\]"):
        save(state, tmp_path / "c")
    assert os.listdir(tmp_path) == []    # nothing written, not even a temp file


@pytest.mark.parametrize("bad, where", [
    ({"a": [1, {2, 3}]}, r"set at \['a'\]\[1\]"),
    ({"a": np.array(["x", "y"])}, r"dtype <U1 at \['a'\]"),
    ({"a": {1.5: 0}}, r"key 1\.5 \(float\) at \['a'\]"),
    ({"a": {True: 0}}, r"key True \(bool\)"),
    (b"bytes", r"bytes at <root>"),
])
def test_unsupported_leaves_refused(tmp_path, bad, where):
    with pytest.raises(TypeError, match=where):
        save(bad, tmp_path / "c")


def test_cycle_refused(tmp_path):
    d = {"a": []}
    d["a"].append(d)
    with pytest.raises(ValueError, match="contains itself"):
        save(d, tmp_path / "c")


def test_shared_subtree_is_not_a_cycle(tmp_path):
    shared = [np.ones(2)]
    save({"a": shared, "b": shared}, tmp_path / "c")
    out = load(tmp_path / "c")
    np.testing.assert_array_equal(out["a"][0], out["b"][0])


# ------------------------------------------------------------------------------- atomicity

def _fail_on_second_array(real):
    calls = []

    def write_array(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:    # manifest, first array, then fail: a half-written zip
            raise OSError("disk full")
        return real(*args, **kwargs)
    return write_array


@pytest.mark.parametrize("what", ["write_array", "fsync", "replace", "interrupt"])
def test_failed_save_leaves_old_file_and_no_temp(tmp_path, monkeypatch, what):
    p = tmp_path / "ckpt"
    old = {"w": np.arange(5.0), "epoch": 1}
    save(old, p)
    before = p.read_bytes()

    if what == "write_array":
        monkeypatch.setattr(np.lib.format, "write_array",
                            _fail_on_second_array(np.lib.format.write_array))
        err = OSError
    elif what == "fsync":
        def fsync(fd):
            raise OSError("fsync failed")
        monkeypatch.setattr(os, "fsync", fsync)
        err = OSError
    elif what == "replace":
        def replace(src, dst):
            raise PermissionError("replace failed")
        monkeypatch.setattr(os, "replace", replace)
        err = PermissionError
    else:   # Ctrl-C mid-write must clean up too
        def write_array(*args, **kwargs):
            raise KeyboardInterrupt
        monkeypatch.setattr(np.lib.format, "write_array", write_array)
        err = KeyboardInterrupt

    with pytest.raises(err):
        save({"w": np.zeros(5), "v": np.ones(3), "epoch": 2}, p)
    monkeypatch.undo()

    assert os.listdir(tmp_path) == ["ckpt"]
    assert p.read_bytes() == before
    assert_same(old, load(p))


def test_failed_first_save_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "fsync", lambda fd: (_ for _ in ()).throw(OSError("no")))
    with pytest.raises(OSError):
        save({"w": np.ones(2)}, tmp_path / "c")
    assert os.listdir(tmp_path) == []


# ---------------------------------------------------------------------------- load errors

def test_missing_file(tmp_path):
    p = tmp_path / "nope.ckpt"
    with pytest.raises(FileNotFoundError, match="nope.ckpt") as e:
        load(p)
    assert e.value.filename == str(p)


@pytest.mark.parametrize("keep", [0.5, 0.9, 0.1])
def test_truncated_file(tmp_path, keep):
    p = tmp_path / "ckpt"
    save(model_and_optimizer_state(), p)
    data = p.read_bytes()
    p.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(CheckpointError, match=r"ckpt.*truncated or corrupt"):
        load(p)


def test_corrupt_array_data(tmp_path):
    p = tmp_path / "ckpt"
    save({"w": np.arange(1000.0)}, p)
    data = bytearray(p.read_bytes())
    i = data.find(np.arange(1000.0)[500:501].tobytes())
    data[i] ^= 0xFF     # flip a byte inside the array: the zip CRC catches it
    p.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="ckpt"):
        load(p)


def test_empty_file(tmp_path):
    (tmp_path / "e").write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty"):
        load(tmp_path / "e")


def test_text_file_is_not_a_checkpoint(tmp_path):
    p = tmp_path / "notes.txt"
    p.write_text("hello, not a checkpoint\n")
    with pytest.raises(CheckpointError, match=r"notes\.txt.*not a chainrule checkpoint"):
        load(p)


def test_plain_npy_is_not_a_checkpoint(tmp_path):
    p = tmp_path / "a.npy"
    np.save(p, np.ones(3))
    with pytest.raises(CheckpointError, match="not a chainrule checkpoint"):
        load(p)


def test_plain_npz_without_manifest(tmp_path):
    p = tmp_path / "plain.npz"
    np.savez(p, w=np.ones(3))
    with pytest.raises(CheckpointError, match=r"plain\.npz.*not a chainrule checkpoint"):
        load(p)


def test_empty_zip_without_manifest(tmp_path):
    p = tmp_path / "z"
    zipfile.ZipFile(p, "w").close()
    with pytest.raises(CheckpointError, match="not a chainrule checkpoint"):
        load(p)


def test_newer_version_refused(tmp_path):
    p = tmp_path / "future"
    m = {"format": cio.FORMAT, "version": cio.VERSION + 1, "root": {"t": "none"}}
    write_zip(p, [(cio.MANIFEST_KEY, manifest_array(m), False)])
    with pytest.raises(CheckpointError, match=rf"future.*version {cio.VERSION + 1}.*newer"):
        load(p)


@pytest.mark.parametrize("manifest", [
    {"format": "something-else", "version": 1, "root": {"t": "none"}},
    {"format": cio.FORMAT, "root": {"t": "none"}},
    {"format": cio.FORMAT, "version": 1},
    {"format": cio.FORMAT, "version": 1, "root": {"t": "mystery"}},
    {"format": cio.FORMAT, "version": 1, "root": {"t": "dict", "items": [[1.5, {"t": "none"}]]}},
    {"format": cio.FORMAT, "version": 1, "root": {"t": "list"}},
    [1, 2, 3],
])
def test_malformed_manifest(tmp_path, manifest):
    p = tmp_path / "bad"
    write_zip(p, [(cio.MANIFEST_KEY, manifest_array(manifest), False)])
    with pytest.raises(CheckpointError, match="bad.*manifest"):
        load(p)


def test_manifest_not_json(tmp_path):
    p = tmp_path / "bad"
    write_zip(p, [(cio.MANIFEST_KEY, np.frombuffer(b"\xff{not json", np.uint8), False)])
    with pytest.raises(CheckpointError, match="malformed manifest"):
        load(p)


def test_manifest_refers_to_missing_array(tmp_path):
    p = tmp_path / "ckpt"
    m = {"format": cio.FORMAT, "version": 1,
         "root": {"t": "dict", "items": [["w", {"t": "array", "ref": "arr_5"}]]}}
    write_zip(p, [(cio.MANIFEST_KEY, manifest_array(m), False)])
    with pytest.raises(CheckpointError, match=r"ckpt.*'arr_5'.*does not contain"):
        load(p)


# ----------------------------------------------------------------------- never unpickles

@pytest.fixture
def no_pickle(monkeypatch):
    """Fail the test if anything reaches pickle while loading."""
    UNPICKLED.clear()

    def forbidden(*args, **kwargs):
        raise AssertionError("load() reached pickle")
    monkeypatch.setattr(pickle, "load", forbidden)
    monkeypatch.setattr(pickle, "loads", forbidden)
    monkeypatch.setattr(pickle, "Unpickler", forbidden)
    yield
    assert UNPICKLED == []


def evil_array():
    return np.array([Evil()], dtype=object)


def test_crafted_file_would_unpickle_with_plain_numpy(tmp_path):
    # Control for the tests below: the crafted entry really does run code when unpickled.
    p = tmp_path / "evil"
    write_zip(p, [("arr_0", evil_array(), True)])
    UNPICKLED.clear()
    with np.load(p, allow_pickle=True) as npz:
        npz["arr_0"]
    assert UNPICKLED == ["pwned"]
    UNPICKLED.clear()


def test_pickled_array_referenced_by_manifest_is_not_unpickled(tmp_path, no_pickle):
    p = tmp_path / "evil"
    m = {"format": cio.FORMAT, "version": 1,
         "root": {"t": "dict", "items": [["w", {"t": "array", "ref": "arr_0"}]]}}
    write_zip(p, [(cio.MANIFEST_KEY, manifest_array(m), False), ("arr_0", evil_array(), True)])
    with pytest.raises(CheckpointError, match=r"evil.*'arr_0'"):
        load(p)


def test_pickled_manifest_is_not_unpickled(tmp_path, no_pickle):
    p = tmp_path / "evil"
    write_zip(p, [(cio.MANIFEST_KEY, evil_array(), True)])
    with pytest.raises(CheckpointError, match="evil"):
        load(p)


def test_pickled_npz_without_manifest_is_not_unpickled(tmp_path, no_pickle):
    p = tmp_path / "evil.npz"
    np.savez(p, arr_0=evil_array())          # np.savez pickles object arrays by default
    with pytest.raises(CheckpointError, match="not a chainrule checkpoint"):
        load(p)


def test_raw_pickle_file_is_not_unpickled(tmp_path, no_pickle):
    p = tmp_path / "evil.pkl"
    p.write_bytes(pickle.dumps(Evil()))
    with pytest.raises(CheckpointError, match="not a zip/npz"):
        load(p)
