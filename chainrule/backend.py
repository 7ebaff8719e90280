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
