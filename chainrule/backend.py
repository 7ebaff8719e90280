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


_ndarray = np.ndarray
_NAMESPACES = {}


def register_array_namespace(array_type, module):
    """Make ``array_namespace`` answer ``module`` for arrays of ``array_type``, e.g.
    ``register_array_namespace(cupy.ndarray, cupy)`` (a registered module wins over the
    array's own ``__array_namespace__``, which may be a stricter array-API subset)."""
    _NAMESPACES[array_type] = module


def array_namespace(a):
    """The array module of ``a``, for code written once for NumPy, CuPy or a test shim:
    ``xp = array_namespace(x)`` then ``xp.exp(x)``, ``xp.zeros(shape, x.dtype)`` ...

    NumPy for NumPy arrays, NumPy scalars and Python data; a module registered for the array's
    type (``register_array_namespace``); else what the array's ``__array_namespace__()`` gives.
    Called once or twice per op, so NumPy arrays take a single type check.
    """
    if type(a) is _ndarray:
        return np
    t = type(a)
    xp = _NAMESPACES.get(t)
    if xp is not None:
        return xp
    get = getattr(t, "__array_namespace__", None)
    return np if get is None else get(a)
