"""Tensor factories and free functions (``chainrule.zeros``, ``chainrule.cat`` ...)."""
import numpy as np

from . import backend
from .autograd import Tensor, _make, split  # noqa: F401  (split re-exported)
from .nn.functional import log_softmax, relu, sigmoid, softmax, tanh  # noqa: F401  (re-exported)
from .ops import basic as _basic


def _dtype(dtype):
    return backend.get_default_dtype() if dtype is None else np.dtype(dtype)


def tensor(data, dtype=None, requires_grad=False):
    """A new tensor from a list, scalar or array. Python floats become float32 (the default dtype);
    NumPy arrays keep their dtype, as in ``torch.tensor``/``torch.from_numpy``."""
    arr = np.array(data.data if isinstance(data, Tensor) else data, dtype=dtype, copy=True)
    if dtype is None and not isinstance(data, (np.ndarray, np.generic, Tensor)):
        if arr.dtype == np.float64:
            arr = arr.astype(backend.get_default_dtype())
        elif arr.dtype.kind == "i":
            arr = arr.astype(np.int64)
    return Tensor(arr, requires_grad=requires_grad)


def _shape(shape):
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        return tuple(shape[0])
    return tuple(shape)


def zeros(*shape, dtype=None, requires_grad=False):
    return Tensor(np.zeros(_shape(shape), _dtype(dtype)), requires_grad=requires_grad)


def ones(*shape, dtype=None, requires_grad=False):
    return Tensor(np.ones(_shape(shape), _dtype(dtype)), requires_grad=requires_grad)


def full(shape, value, dtype=None, requires_grad=False):
    return Tensor(np.full(_shape((shape,)), value, _dtype(dtype)), requires_grad=requires_grad)


def zeros_like(t, dtype=None, requires_grad=False):
    return Tensor(np.zeros(t.shape, dtype or t.dtype), requires_grad=requires_grad)


def ones_like(t, dtype=None, requires_grad=False):
    return Tensor(np.ones(t.shape, dtype or t.dtype), requires_grad=requires_grad)


def randn(*shape, dtype=None, requires_grad=False):
    """Standard normal samples from chainrule's seeded generator (see ``manual_seed``)."""
    d = _dtype(dtype)
    return Tensor(backend.get_rng().standard_normal(_shape(shape)).astype(d), requires_grad=requires_grad)


def rand(*shape, dtype=None, requires_grad=False):
    """Uniform samples in [0, 1) from chainrule's seeded generator."""
    d = _dtype(dtype)
    return Tensor(backend.get_rng().random(_shape(shape)).astype(d), requires_grad=requires_grad)


def randint(low, high, shape):
    return Tensor(backend.get_rng().integers(low, high, _shape((shape,)) if isinstance(shape, int) else shape))


def arange(start, stop=None, step=1, dtype=None, requires_grad=False):
    """Like ``torch.arange``: integers give int64, any float argument gives the default float dtype."""
    if stop is None:
        start, stop = 0, start
    if dtype is None:
        floats = any(isinstance(v, float) for v in (start, stop, step))
        dtype = backend.get_default_dtype() if floats else np.int64
    return Tensor(np.arange(start, stop, step, dtype=dtype), requires_grad=requires_grad)


def linspace(start, stop, num, dtype=None):
    return Tensor(np.linspace(start, stop, num, dtype=_dtype(dtype)))


def from_numpy(a):
    """A tensor sharing memory with the array ``a``."""
    return Tensor(np.asarray(a))


def cat(tensors, axis=0, dim=None):
    """Join tensors along an existing axis."""
    return _basic.Concat.apply(*tensors, axis=axis if dim is None else dim)


concatenate = cat


def stack(tensors, axis=0, dim=None):
    """Join tensors of equal shape along a new axis."""
    return _basic.Stack.apply(*tensors, axis=axis if dim is None else dim)


def where(condition, a, b):
    c = condition.data if isinstance(condition, Tensor) else np.asarray(condition)
    return _basic.Where.apply(c, a, b)


def maximum(a, b):
    return _basic.Maximum.apply(a, b)


def minimum(a, b):
    return _basic.Minimum.apply(a, b)


def matmul(a, b):
    return _basic.MatMul.apply(a, b)


def exp(x):
    return _basic.Exp.apply(x)


def log(x):
    return _basic.Log.apply(x)


def sqrt(x):
    return _basic.Sqrt.apply(x)


def abs(x):
    return _basic.Abs.apply(x)


def clip(x, min=None, max=None):
    return _basic.Clip.apply(x, lo=min, hi=max)


clamp = clip


def sum(x, axis=None, keepdims=False):
    return _basic.Sum.apply(x, axis=axis, keepdims=keepdims)


def mean(x, axis=None, keepdims=False):
    return _basic.Mean.apply(x, axis=axis, keepdims=keepdims)


def max(x, axis=None, keepdims=False):
    return _basic.Max.apply(x, axis=axis, keepdims=keepdims)


def min(x, axis=None, keepdims=False):
    return _basic.Min.apply(x, axis=axis, keepdims=keepdims)


def argmax(x, axis=None):
    return _make(np.argmax(x.data if isinstance(x, Tensor) else x, axis=axis), False, None, 0)
