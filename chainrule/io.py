"""Save and load checkpoints (state dicts) without pickle.

A checkpoint is one zip in NumPy's ``.npz`` layout: every array is a ``.npy`` entry, and the
structure around them (dicts, lists, scalars, strings) is a JSON manifest kept as a uint8 entry
named ``__chainrule_manifest__``. Loading never unpickles, so a checkpoint from an untrusted
source cannot run code.

    >>> chainrule.save({"model": model.state_dict(), "epoch": 3}, "run.ckpt")
    >>> state = chainrule.load("run.ckpt")
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import tempfile
import zipfile
from collections import OrderedDict

import numpy as np

__all__ = ["save", "load", "CheckpointError", "FORMAT", "VERSION", "MANIFEST_KEY", "write_text",
           "remove_stale_temps", "check_output_file", "check_output_dir"]

FORMAT = "chainrule-checkpoint"
VERSION = 1
MANIFEST_KEY = "__chainrule_manifest__"

# Numeric and bool only: these are exactly the dtypes .npy stores without pickle.
_ARRAY_KINDS = "biufc"
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")   # a zip with entries / an empty zip


class CheckpointError(ValueError):
    """A file that exists but is not a checkpoint this version can read."""


# ---------------------------------------------------------------------------------------- save

def save(obj, path) -> None:
    """Write ``obj`` (a nested state dict) to ``path`` atomically.

    Leaves may be numpy arrays and scalars, objects with ``__array__`` (Tensors), Python
    int/float/bool/str/None; containers dict (str or int keys), OrderedDict, list and tuple.
    The path is used exactly as given (no ``.npz`` is appended). Either the whole new file
    is in place afterwards or, on any error, the old one is untouched.
    """
    path = os.fspath(path)
    arrays: list[np.ndarray] = []
    # Encode everything before touching the disk, so a bad leaf costs no I/O at all.
    manifest = {"format": FORMAT, "version": VERSION,
                "root": _encode(obj, [], arrays, set())}
    blob = np.frombuffer(json.dumps(manifest).encode("utf-8"), dtype=np.uint8)

    # Replace the file a symlink points to, not the link, and keep the temp file on the
    # target's filesystem so os.replace stays an atomic rename.
    def write(f):
        with zipfile.ZipFile(f, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
            _write_entry(zf, MANIFEST_KEY, blob)
            for i, a in enumerate(arrays):
                _write_entry(zf, f"arr_{i}", a)

    _write_atomic(path, write, "chainrule.io.save")


def write_text(path, text) -> str:
    """Write ``text`` (UTF-8) to ``path`` atomically, as :func:`save` writes a checkpoint: the old
    file stays whole until the new one is complete. Returns the path."""
    data = text.encode("utf-8")
    _write_atomic(os.fspath(path), lambda f: f.write(data), "write")
    return os.fspath(path)


# A temporary file is '.NAME.PID.XXXXXXXX.tmp' next to NAME: the writer's process id tells a file
# whose writer was killed (removed by the next write or resume) from one being written right now.
_TEMP = r"^\.(?P<name>{})\.(?:(?P<pid>\d+)\.)?[A-Za-z0-9_]{{8}}\.tmp$"


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return False                     # ours, but not being written: a write that failed
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:                      # exists, owned by someone else
        return True
    return True


def remove_stale_temps(directory, name=None) -> list:
    """Remove the temporary files that an interrupted write (a kill, a power cut) left in
    ``directory`` (only those of the file ``name``, if given); returns their paths. Files of a
    writer still running are kept."""
    directory = os.fspath(directory) or "."
    removed = []
    try:
        entries = os.listdir(directory)
    except OSError:
        return removed
    pattern = re.compile(_TEMP.format(".+?" if name is None else re.escape(name)))
    for entry in entries:
        m = pattern.match(entry)
        if not m:
            continue
        if m.group("pid") and _alive(int(m.group("pid"))):
            continue
        p = os.path.join(directory, entry)
        with contextlib.suppress(OSError):
            os.unlink(p)
            removed.append(p)
    return removed


def _write_atomic(path: str, write, who: str) -> None:
    """Write through ``write(file)`` into a temporary file next to ``path``, fsync it, and rename
    it over ``path``. On any error the temporary file is removed, the old file is untouched, and
    an OSError names ``path`` (a full disk: 'No space left on device ... : path')."""
    # Replace the file a symlink points to, not the link, and keep the temp file on the
    # target's filesystem so os.replace stays an atomic rename.
    target = os.path.realpath(path) if os.path.islink(path) else path
    if os.path.isdir(target):
        raise IsADirectoryError(errno.EISDIR, f"{who}: the path is a directory, not a file", path)
    directory = os.path.dirname(os.path.abspath(target))
    base = os.path.basename(target)
    remove_stale_temps(directory, base)
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{base}.{os.getpid()}.", suffix=".tmp")
    except OSError as e:
        raise _named(e, who, path) from None
    try:
        # mkstemp creates 0600; give the file the mode an ordinary open() would.
        _chmod_like(tmp, target)
        # Through a file object: np.savez would append ".npz" to a bare name.
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(e, OSError) and e.errno is not None:
            raise _named(e, who, path) from e
        raise
    _fsync_dir(directory)


def _named(e: OSError, who: str, path: str) -> OSError:
    """``e`` again, saying what was being written and that the old file is intact."""
    keep = " (the previous file is unchanged)" if os.path.exists(path) else ""
    return type(e)(e.errno, f"{who}: cannot write {os.path.basename(path)}: "
                            f"{e.strerror or e}{keep}", path)


def _writable_dir(d: str, what: str) -> None:
    """Raise OSError unless a file can be created in the existing directory ``d``: a probe file
    is made and removed, which catches read-only file systems, permissions and a full disk."""
    try:
        fd, probe = tempfile.mkstemp(dir=d, prefix=".chainrule-probe.")
    except OSError as e:
        why = {errno.EROFS: "is on a read-only file system", errno.EACCES: "is not writable",
               errno.EPERM: "is not writable", errno.ENOSPC: "is on a full disk"}.get(
            e.errno, f"cannot be written ({e.strerror})")
        raise type(e)(e.errno, f"{what}: the folder {why}", d) from None
    os.close(fd)
    os.unlink(probe)


def _existing_ancestor(path: str) -> str:
    d = os.path.abspath(path)
    while not os.path.exists(d):
        d = os.path.dirname(d)
    return d


def check_output_file(path, what="output") -> None:
    """Raise OSError (naming ``what`` and ``path``) unless ``path`` can be written as a file: not
    a directory, not a read-only file, and its folder (or the nearest one that exists, under which
    the missing ones would be made) writable. Call it before the work whose result goes there."""
    if path is None:
        return
    path = os.fspath(path)
    if os.path.isdir(path):
        raise IsADirectoryError(errno.EISDIR, f"{what} is a directory; give a file name", path)
    if os.path.exists(path) and not os.access(path, os.W_OK):
        raise PermissionError(errno.EACCES, f"{what}: the file is read-only", path)
    parent = _existing_ancestor(os.path.dirname(os.path.abspath(path)))
    if not os.path.isdir(parent):
        raise NotADirectoryError(errno.ENOTDIR, f"{what}: a parent of this path is a file", path)
    _writable_dir(parent, what)


def check_output_dir(path, what="output folder") -> None:
    """Raise OSError unless ``path`` is, or can be made as, a writable directory."""
    if path is None:
        return
    path = os.fspath(path)
    if os.path.exists(path) and not os.path.isdir(path):
        raise NotADirectoryError(errno.ENOTDIR, f"{what} must be a directory, not a file", path)
    parent = _existing_ancestor(path)
    if not os.path.isdir(parent):
        raise NotADirectoryError(errno.ENOTDIR, f"{what}: a parent of this path is a file", path)
    _writable_dir(parent, what)


def _write_entry(zf: zipfile.ZipFile, name: str, array: np.ndarray) -> None:
    # force_zip64: the size is unknown when the entry is opened, and arrays may pass 4 GiB.
    with zf.open(name + ".npy", "w", force_zip64=True) as f:
        np.lib.format.write_array(f, array, allow_pickle=False)


def _encode(obj, keys: list, arrays: list, active: set):
    """One manifest node for ``obj``; arrays are appended to ``arrays`` and referenced."""
    # numpy scalars before Python ones: np.float64 is a float and np.bool_ must stay numpy.
    if isinstance(obj, np.ndarray) or (isinstance(obj, np.generic)
                                       and not isinstance(obj, (str, bytes))):
        return _encode_array(np.asarray(obj), keys, arrays, scalar=isinstance(obj, np.generic))
    if obj is None:
        return {"t": "none"}
    if isinstance(obj, bool):
        return {"t": "bool", "v": obj}
    if isinstance(obj, int):
        return {"t": "int", "v": int(obj)}
    if isinstance(obj, float):
        return {"t": "float", "v": repr(float(obj))}   # repr round-trips exactly, nan/inf too
    if isinstance(obj, str):
        return {"t": "str", "v": str(obj)}
    if isinstance(obj, (dict, list, tuple)):
        if id(obj) in active:
            raise ValueError(f"chainrule.io.save: {_where(keys)} contains itself")
        active.add(id(obj))
        try:
            if isinstance(obj, dict):
                items = [[_encode_key(k, keys), _encode(v, keys + [k], arrays, active)]
                         for k, v in obj.items()]
                return {"t": "odict" if isinstance(obj, OrderedDict) else "dict",
                        "items": items}
            return {"t": "tuple" if isinstance(obj, tuple) else "list",
                    "items": [_encode(v, keys + [i], arrays, active)
                              for i, v in enumerate(obj)]}
        finally:
            active.discard(id(obj))
    if hasattr(obj, "__array__"):   # Tensors, without importing chainrule.autograd
        return _encode_array(np.asarray(obj), keys, arrays, scalar=False)
    raise TypeError(f"chainrule.io.save: cannot save {type(obj).__name__} at {_where(keys)}; "
                    "expected an array, Tensor, number, str, None, dict, list or tuple")


def _encode_array(a: np.ndarray, keys: list, arrays: list, scalar: bool) -> dict:
    if a.dtype.kind not in _ARRAY_KINDS:
        what = "object array" if a.dtype.kind == "O" else f"array of dtype {a.dtype}"
        raise TypeError(f"chainrule.io.save: cannot save {what} at {_where(keys)}; "
                        "only numeric and bool arrays are stored (no pickle)")
    arrays.append(a)
    node = {"t": "array", "ref": f"arr_{len(arrays) - 1}"}
    if scalar:
        node["scalar"] = True
    return node


def _encode_key(k, keys: list):
    # JSON keeps the difference between "0" and 0, which optimizer state dicts rely on.
    if isinstance(k, str):
        return k
    if isinstance(k, (int, np.integer)) and not isinstance(k, (bool, np.bool_)):
        return int(k)
    raise TypeError(f"chainrule.io.save: dict key {k!r} ({type(k).__name__}) at {_where(keys)} "
                    "is not a str or int")


def _where(keys: list) -> str:
    """Key path as it would be indexed: ``['state'][0]['exp_avg']``."""
    return "".join(f"[{k!r}]" for k in keys) or "<root>"


def _chmod_like(tmp: str, target: str) -> None:
    try:
        mode = os.stat(target).st_mode & 0o7777
    except OSError:
        mode = 0o666 & ~_umask()
    with contextlib.suppress(OSError):
        os.chmod(tmp, mode)


def _umask() -> int:
    # Read it from /proc where possible: os.umask() can only read by setting, which races
    # with other threads creating files.
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_dir(directory: str) -> None:
    # Makes the rename itself durable on POSIX; not possible (nor needed) everywhere.
    with contextlib.suppress(OSError, AttributeError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# ---------------------------------------------------------------------------------------- load

def load(path):
    """Read a checkpoint written by :func:`save`.

    Arrays (and Tensors) come back as numpy arrays, numpy scalars as numpy scalars, everything
    else as it was saved. Raises FileNotFoundError for a missing file and CheckpointError for
    one that is truncated, foreign, or from a newer format version.
    """
    path = os.fspath(path)
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        raise FileNotFoundError(2, "chainrule.io.load: no such checkpoint file", path) from None
    with f:
        magic = f.read(4)
        if not magic:
            raise CheckpointError(f"chainrule.io.load: {path!r} is empty")
        if magic not in _ZIP_MAGIC:
            raise CheckpointError(f"chainrule.io.load: {path!r} is not a chainrule checkpoint "
                                  "(not a zip/npz file)")
        f.seek(0)
        try:
            npz = np.load(f, allow_pickle=False)
        except (zipfile.BadZipFile, EOFError, OSError, ValueError) as e:
            raise CheckpointError(f"chainrule.io.load: {path!r} is truncated or corrupt "
                                  f"({e})") from e
        with npz:
            manifest = _read_manifest(npz, path)
            return _decode(manifest["root"], npz, path)


def _read_manifest(npz, path: str) -> dict:
    if MANIFEST_KEY not in npz.files:
        raise CheckpointError(f"chainrule.io.load: {path!r} is not a chainrule checkpoint "
                              f"(an npz without {MANIFEST_KEY})")
    blob = _read_array(npz, MANIFEST_KEY, path)
    try:
        if blob.dtype != np.uint8 or blob.ndim != 1:
            raise ValueError(f"expected a 1-d uint8 array, got {blob.dtype} {blob.shape}")
        manifest = json.loads(blob.tobytes().decode("utf-8"))
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise ValueError(f"format is not {FORMAT!r}")
        version = manifest.get("version")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise ValueError(f"bad version {version!r}")
        if "root" not in manifest:
            raise ValueError("no root")
    except ValueError as e:   # UnicodeDecodeError and JSONDecodeError are ValueErrors too
        raise CheckpointError(f"chainrule.io.load: {path!r} has a malformed manifest ({e})") from e
    if version > VERSION:
        raise CheckpointError(f"chainrule.io.load: {path!r} uses checkpoint format version "
                              f"{version}, newer than the {VERSION} this chainrule reads; "
                              "upgrade chainrule")
    return manifest


def _read_array(npz, name: str, path: str) -> np.ndarray:
    if name not in npz.files:
        raise CheckpointError(f"chainrule.io.load: {path!r} is corrupt: the manifest refers to "
                              f"array {name!r}, which the file does not contain")
    try:
        # allow_pickle=False on np.load makes this raise on pickled (object) data instead of
        # unpickling it.
        return npz[name]
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as e:
        raise CheckpointError(f"chainrule.io.load: {path!r}: cannot read array {name!r} "
                              f"({e})") from e


def _decode(node, npz, path: str):
    try:
        t = node["t"]
        if t == "array":
            ref = node["ref"]
            if not isinstance(ref, str):
                raise TypeError(f"array ref {ref!r}")
            a = _read_array(npz, ref, path)
            return a[()] if node.get("scalar") else a
        if t == "none":
            return None
        if t == "bool":
            return bool(node["v"])
        if t == "int":
            return int(node["v"])
        if t == "float":
            return float(node["v"])
        if t == "str":
            return str(node["v"])
        if t in ("list", "tuple"):
            items = [_decode(v, npz, path) for v in node["items"]]
            return tuple(items) if t == "tuple" else items
        if t in ("dict", "odict"):
            d = OrderedDict() if t == "odict" else {}
            for k, v in node["items"]:
                if not isinstance(k, (str, int)) or isinstance(k, bool):
                    raise TypeError(f"dict key {k!r}")
                d[k] = _decode(v, npz, path)
            return d
        raise ValueError(f"unknown node type {t!r}")
    except (KeyError, TypeError, ValueError) as e:
        if isinstance(e, CheckpointError):
            raise
        raise CheckpointError(f"chainrule.io.load: {path!r} has a malformed manifest "
                              f"({type(e).__name__}: {e})") from e
