"""The tensor API: factories (``chainrule.zeros`` ...), and every function that is also a Tensor
method, each defined once here and attached to ``Tensor`` by the table ``TENSOR_METHODS`` at the
bottom (DeZero's ``setup_variable``): ``x.sum(axis=1)`` is ``chainrule.sum(x, axis=1)``.

Operators are the op's ``apply`` itself (``Tensor.__add__ is Add.apply``), with no wrapper frame:
a training step of a small MLP is dominated by per-call overhead. Reflected operators
(``2 - x``) swap their arguments in a one-line function.
"""
import builtins as _builtins
import math

import numpy as np

from . import backend
from . import autograd as _autograd
from .autograd import Tensor, _bump, _make, _raw, _raw_index
from .backend import array_namespace
from .ops import activation as _act
from .ops import basic as _basic


def _dtype(dtype):
    return backend.get_default_dtype() if dtype is None else np.dtype(dtype)


# -- factories -------------------------------------------------------------------------------------
def tensor(data, dtype=None, requires_grad=False):
    """A new tensor from a list, scalar or array. Python floats become float32 (the default dtype);
    NumPy arrays keep their dtype, as in ``torch.tensor``/``torch.from_numpy``."""
    data = _raw(data)
    xp = array_namespace(data)
    arr = xp.array(data, dtype=dtype, copy=True)
    if dtype is None and not isinstance(data, (np.ndarray, np.generic)) and xp is np:
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
    a = _raw(t)
    return Tensor(array_namespace(a).zeros(t.shape, dtype or t.dtype), requires_grad=requires_grad)


def ones_like(t, dtype=None, requires_grad=False):
    a = _raw(t)
    return Tensor(array_namespace(a).ones(t.shape, dtype or t.dtype), requires_grad=requires_grad)


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


# -- joining and selecting -------------------------------------------------------------------------
def cat(tensors, axis=0, dim=None):
    """Join tensors along an existing axis."""
    return _basic.Concat.apply(*tensors, axis=axis if dim is None else dim)


concatenate = cat


def stack(tensors, axis=0, dim=None):
    """Join tensors of equal shape along a new axis."""
    return _basic.Stack.apply(*tensors, axis=axis if dim is None else dim)


def where(condition, a, b):
    c = _raw(condition)
    return _basic.Where.apply(array_namespace(c).asarray(c), a, b)


def maximum(a, b):
    return _basic.Maximum.apply(a, b)


def minimum(a, b):
    return _basic.Minimum.apply(a, b)


def split(t, split_size_or_sections, axis=0):
    """Split along ``axis`` into pieces of ``split_size`` (int) or of the given sizes (list)."""
    n = t.shape[axis]
    if isinstance(split_size_or_sections, int):
        size = split_size_or_sections
        if size <= 0:
            raise ValueError(f"split: split_size must be positive, got {size}")
        sizes = [size] * (n // size) + ([n % size] if n % size else [])
    else:
        sizes = list(split_size_or_sections)
        total = _builtins.sum(sizes)
        if total != n:
            raise ValueError(f"split: sections {sizes} sum to {total}, but axis {axis} has {n}")
    return list(_basic.Split.apply(t, sizes=tuple(sizes), axis=axis))


def _getitem(t, index):
    return _basic.GetItem.apply(t, index=_raw_index(index))


# -- elementwise math ------------------------------------------------------------------------------
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


def pow(x, exponent):
    return _basic.Pow.apply(x, exponent)


def clip(x, min=None, max=None):
    return _basic.Clip.apply(x, lo=min, hi=max)


clamp = clip


def sigmoid(x):
    return _act.Sigmoid.apply(x)


def tanh(x):
    return _act.Tanh.apply(x)


def relu(x):
    return _act.ReLU.apply(x)


def softmax(x, axis=-1, dim=None):
    return _act.Softmax.apply(x, axis=axis if dim is None else dim)


def log_softmax(x, axis=-1, dim=None):
    return _act.LogSoftmax.apply(x, axis=axis if dim is None else dim)


# -- reductions ------------------------------------------------------------------------------------
def sum(x, axis=None, keepdims=False):
    return _basic.Sum.apply(x, axis=axis, keepdims=keepdims)


def mean(x, axis=None, keepdims=False):
    return _basic.Mean.apply(x, axis=axis, keepdims=keepdims)


def var(x, axis=None, keepdims=False, unbiased=True):
    shape = x.data.shape
    n = math.prod(shape) if axis is None else math.prod(
        shape[a] for a in (axis if isinstance(axis, (tuple, list)) else (axis,)))
    d = x - x.mean(axis=axis, keepdims=True)
    divisor = n - 1 if unbiased else n
    if divisor <= 0:                     # no (or one, unbiased) element: nan, as in PyTorch
        return (d * d).sum(axis=axis, keepdims=keepdims) * float("nan")
    return (d * d).sum(axis=axis, keepdims=keepdims) / divisor


def max(x, axis=None, keepdims=False):
    """Largest values along ``axis`` (values only, as ``numpy.max``; see ``argmax``)."""
    return _basic.Max.apply(x, axis=axis, keepdims=keepdims)


def min(x, axis=None, keepdims=False):
    return _basic.Min.apply(x, axis=axis, keepdims=keepdims)


def argmax(x, axis=None, keepdims=False):
    """Indices of the largest values along ``axis`` (no gradient); ``x`` may be an array."""
    a = _raw(x)
    return _make(_basic.arg_reduce(a, "argmax", axis, keepdims), False, None, 0)


def argmin(x, axis=None, keepdims=False):
    a = _raw(x)
    return _make(_basic.arg_reduce(a, "argmin", axis, keepdims), False, None, 0)


def norm(x):
    """The Euclidean (Frobenius) norm of all elements (gradient 0 at the origin, as PyTorch's)."""
    return _basic.Norm.apply(x)


# -- shape -----------------------------------------------------------------------------------------
def reshape(x, *shape):
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    return _basic.Reshape.apply(x, shape=shape)


def flatten(x, start_dim=0, end_dim=-1):
    s = x.data.shape
    if not s:
        return x.reshape(1)
    end = end_dim % len(s)
    start = start_dim % len(s)
    return x.reshape(s[:start] + (-1,) + s[end + 1:])


def transpose(x, *axes):
    """``t.transpose(a, b)`` swaps two axes (PyTorch); ``t.transpose((..))`` permutes; no
    arguments reverses the axes (NumPy)."""
    nd = x.data.ndim
    if not axes:
        perm = tuple(range(nd))[::-1]
    elif len(axes) == 1 and isinstance(axes[0], (tuple, list)):
        perm = tuple(a % nd for a in axes[0])
    elif len(axes) == 2:
        p = list(range(nd))
        a, b = axes[0] % nd, axes[1] % nd
        p[a], p[b] = p[b], p[a]
        perm = tuple(p)
    else:
        perm = tuple(a % nd for a in axes)
    return _basic.Transpose.apply(x, axes=perm)


def permute(x, *axes):
    if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
        axes = tuple(axes[0])
    return _basic.Transpose.apply(x, axes=tuple(a % x.data.ndim for a in axes))


def unsqueeze(x, axis):
    s = list(x.data.shape)
    s.insert(axis % (len(s) + 1), 1)
    return x.reshape(tuple(s))


def squeeze(x, axis=None):
    s = x.data.shape
    if axis is None:
        return x.reshape(tuple(n for n in s if n != 1))
    axis = axis % len(s)
    if s[axis] != 1:
        return x
    return x.reshape(s[:axis] + s[axis + 1:])


# -- dtype -----------------------------------------------------------------------------------------
def astype(x, dtype):
    dtype = np.dtype(dtype)
    if dtype.kind not in "fc":               # integer / bool results carry no gradient
        return _make(x.data.astype(dtype), False, None, 0)
    return _basic.Cast.apply(x, dtype=dtype)


def _to(x, dtype):
    return x.astype(dtype)


def _float(x):
    return x.astype(np.float32)


def _double(x):
    return x.astype(np.float64)


def _long(x):
    return _make(x.data.astype(np.int64), False, None, 0)


def clone(x):
    return _basic.Cast.apply(x, dtype=x.data.dtype, copy=True)


# -- in-place ops ----------------------------------------------------------------------------------
# Each bumps the tensor's version (shared with its views), so that backward through an op that
# saved the tensor raises instead of computing a gradient from the changed values. They are not
# recorded in the graph: in grad mode they refuse tensors that take part in autograd (a leaf that
# requires grad, as PyTorch does, and, unlike PyTorch, a non-leaf one too: use the out-of-place op).
def _inplace(t, name, other=None):
    if _autograd._grad_enabled and (t.requires_grad or getattr(other, "requires_grad", False)):
        if t.requires_grad and t._ctx is None:
            raise RuntimeError(f"{name}: a leaf Variable that requires grad is being used in an "
                               f"in-place operation (wrap it in chainrule.no_grad())")
        raise RuntimeError(
            f"{name}: in-place operations are not recorded by autograd; this tensor (or the "
            f"argument) requires grad: use the out-of-place form, or chainrule.no_grad()")


def _write(t, name, fn):
    """Apply ``fn(array)`` (which writes into it), naming the op when the shapes do not fit."""
    try:
        fn(t.data)
    except ValueError as e:
        raise ValueError(f"{name}: cannot write a result into a tensor of shape {t.data.shape}: "
                         f"{e}") from None
    _bump(t)
    return t


def zero_(t):
    _inplace(t, "zero_")
    return _write(t, "zero_", lambda a: a.fill(0))


def fill_(t, value):
    _inplace(t, "fill_", value)
    v = _raw(value)
    return _write(t, "fill_", lambda a: a.__setitem__(Ellipsis, v))


def copy_(t, src):
    _inplace(t, "copy_", src)
    v = _raw(src)
    return _write(t, "copy_", lambda a: a.__setitem__(Ellipsis, v))


def add_(t, other, alpha=1):
    _inplace(t, "add_", other)
    v = _raw(other)
    return _write(t, "add_", lambda a: a.__iadd__(v if alpha == 1 else alpha * v))


def sub_(t, other, alpha=1):
    _inplace(t, "sub_", other)
    v = _raw(other)
    return _write(t, "sub_", lambda a: a.__isub__(v if alpha == 1 else alpha * v))


def mul_(t, other):
    _inplace(t, "mul_", other)
    v = _raw(other)
    return _write(t, "mul_", lambda a: a.__imul__(v))


def div_(t, other):
    _inplace(t, "div_", other)
    v = _raw(other)
    return _write(t, "div_", lambda a: a.__itruediv__(v))


def clamp_(t, min=None, max=None):
    _inplace(t, "clamp_")
    if min is None and max is None:
        raise ValueError("clamp_: at least one of min and max must be given")
    return _write(t, "clamp_", lambda a: array_namespace(a).clip(a, _raw(min), _raw(max), out=a))


def _setitem(t, index, value):
    _inplace(t, "item assignment", value)
    v, i = _raw(value), _raw_index(index)
    return _write(t, "item assignment", lambda a: a.__setitem__(i, v))


# -- reflected operators: the op with its arguments swapped --------------------------------------
def _radd(x, other):
    return _basic.Add.apply(other, x)


def _rsub(x, other):
    return _basic.Sub.apply(other, x)


def _rmul(x, other):
    return _basic.Mul.apply(other, x)


def _rtruediv(x, other):
    return _basic.Div.apply(other, x)


def _rpow(x, base):
    return _basic.Pow.apply(base, x)


def _rmatmul(x, other):
    return _basic.MatMul.apply(other, x)


def _pos(x):
    return x


# -- the Tensor methods: name -> its one definition ------------------------------------------------
TENSOR_METHODS = {
    # operators: the op's apply itself (a plain function, so it binds as a method)
    "__add__": _basic.Add.apply, "__radd__": _radd,
    "__sub__": _basic.Sub.apply, "__rsub__": _rsub,
    "__mul__": _basic.Mul.apply, "__rmul__": _rmul,
    "__truediv__": _basic.Div.apply, "__rtruediv__": _rtruediv,
    "__pow__": _basic.Pow.apply, "__rpow__": _rpow,
    "__matmul__": _basic.MatMul.apply, "__rmatmul__": _rmatmul,
    "__neg__": _basic.Neg.apply, "__pos__": _pos, "__abs__": _basic.Abs.apply,
    "__getitem__": _getitem, "__setitem__": _setitem,
    # in-place
    "zero_": zero_, "fill_": fill_, "copy_": copy_, "add_": add_, "sub_": sub_, "mul_": mul_,
    "div_": div_, "clamp_": clamp_, "clip_": clamp_,
    # elementwise math
    "exp": exp, "log": log, "sqrt": sqrt, "abs": abs, "pow": pow, "clip": clip, "clamp": clamp,
    "sigmoid": sigmoid, "tanh": tanh, "relu": relu, "softmax": softmax, "log_softmax": log_softmax,
    "matmul": matmul,
    # reductions
    "sum": sum, "mean": mean, "var": var, "max": max, "min": min, "argmax": argmax,
    "argmin": argmin, "norm": norm,
    # shape
    "reshape": reshape, "view": reshape, "flatten": flatten, "transpose": transpose,
    "permute": permute, "T": property(transpose), "unsqueeze": unsqueeze, "squeeze": squeeze,
    "split": split,
    # dtype
    "astype": astype, "to": _to, "float": _float, "double": _double, "long": _long,
    "clone": clone,
}

for _name, _fn in TENSOR_METHODS.items():
    setattr(Tensor, _name, _fn)
del _name, _fn
