"""The array namespace, the default dtype and the global random generator.

Everything numeric goes through ``xp`` (NumPy today); array code takes its namespace from the data so
that a GPU array library with NumPy's interface can slot in later.
"""
import numpy as np

xp = np

_default_dtype = np.dtype(np.float32)
_rng = np.random.default_rng()


def get_default_dtype():
    """The floating dtype new tensors and parameters get (float32 unless changed)."""
    return _default_dtype


def set_default_dtype(dtype):
    """Set the floating dtype for new tensors and parameters, e.g. ``set_default_dtype('float64')``."""
    global _default_dtype
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise TypeError(f"set_default_dtype: expected a floating dtype, got {dtype}")
    _default_dtype = dtype


def manual_seed(seed):
    """Seed chainrule's global random generator (initialisation, dropout, shuffling)."""
    global _rng
    _rng = np.random.default_rng(seed)
    return _rng


def get_rng():
    """The global ``numpy.random.Generator`` used by initialisers, dropout and loaders."""
    return _rng


def get_rng_state():
    """A copy of the global generator's state (a dict), for checkpoints."""
    return _rng.bit_generator.state


def set_rng_state(state):
    _rng.bit_generator.state = state


def array_namespace(a):
    """The array module that owns ``a`` (NumPy for NumPy arrays)."""
    return np


# -- BLAS threads ----------------------------------------------------------------------------------
_blas = None


def blas_controls():
    """(get, set) functions for the thread count of the OpenBLAS that NumPy loaded, found through
    ctypes; (None, None) where there is none (another BLAS, or no /proc)."""
    global _blas
    if _blas is not None:
        return _blas
    _blas = (None, None)
    try:
        import ctypes
        with open("/proc/self/maps") as f:
            paths = {line.split()[-1] for line in f if "openblas" in line.lower()}
    except (OSError, ImportError):
        return _blas
    for path in sorted((p for p in paths if p.startswith("/")), key=lambda p: "numpy" not in p):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for get_name, set_name in (
                ("scipy_openblas_get_num_threads64_", "scipy_openblas_set_num_threads64_"),
                ("scipy_openblas_get_num_threads", "scipy_openblas_set_num_threads"),
                ("openblas_get_num_threads64_", "openblas_set_num_threads64_"),
                ("openblas_get_num_threads", "openblas_set_num_threads")):
            get, put = getattr(lib, get_name, None), getattr(lib, set_name, None)
            if get is not None and put is not None:
                get.restype, get.argtypes = ctypes.c_int, []
                put.restype, put.argtypes = None, [ctypes.c_int]
                _blas = (get, put)
                return _blas
    return _blas


def get_num_threads():
    """Threads NumPy's BLAS uses for matrix products (None when it cannot be told)."""
    get, _ = blas_controls()
    return get() if get is not None else None


def set_num_threads(n):
    """Set the threads of NumPy's BLAS, like ``torch.set_num_threads``. On a machine shared with
    other busy processes, 1 thread avoids BLAS threads waiting on each other (small products can
    otherwise be 100x slower); on an idle machine more threads speed up large products.
    Returns the previous count (None if the BLAS cannot be controlled)."""
    if int(n) < 1:
        raise ValueError(f"set_num_threads: expected a positive thread count, got {n}")
    get, put = blas_controls()
    if put is None:
        return None
    prev = get()
    put(int(n))
    return prev
