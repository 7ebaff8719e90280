"""Arithmetic with broadcasting, matrix products, reductions, shape and indexing ops.

Array code takes its module from the data (``xp = array_namespace(x)``), so the same op runs on
NumPy, CuPy or any array library with NumPy's interface; ``numpy`` itself is only used for facts
about Python operands (their shape) and index types.

Longer than our ~600-line guide: it holds some forty small ops that share the broadcasting,
axis and error-message helpers at its top; split by topic, each part would import them back.
"""
from itertools import accumulate

import numpy as np

from ..autograd import Function
from ..backend import array_namespace


def _shape(a):
    """The shape of an operand: an array's own, or NumPy's reading of a Python scalar or list."""
    try:
        return a.shape
    except AttributeError:
        return np.shape(a)


def _namespace(a, b):
    """The array module of a binary op whose operands may be a Python scalar and an array."""
    xp = array_namespace(a)
    return xp if hasattr(a, "shape") else array_namespace(b)


# Shape errors are found by catching the array library's own error and explaining it: a try costs
# nothing when no error is raised, where checking shapes first would cost every call.
def _shapes_error(op, error, *operands):
    """The error for operands of ``op`` whose shapes do not broadcast, naming the op, the shapes
    and the first clashing axis (counted from the right, as broadcasting aligns them); the
    library's own ``error`` when the shapes do broadcast (it then had another cause)."""
    shapes = [tuple(_shape(x)) for x in operands]
    try:
        np.broadcast_shapes(*shapes)
        return error
    except ValueError:
        pass
    for k in range(1, max(len(s) for s in shapes) + 1):
        sizes = {s[-k] for s in shapes if len(s) >= k} - {1}
        if len(sizes) > 1:
            break
    listed = ", ".join(map(str, shapes[:-1])) + " and " + str(shapes[-1])
    return ValueError(f"{type(op).__name__}: shapes {listed} do not broadcast (axis -{k} has "
                      f"sizes {', '.join(str(s[-k]) if len(s) >= k else '-' for s in shapes)}; "
                      f"aligned from the right, each size must match the others or be 1)")


def unbroadcast(grad, shape):
    """Sum ``grad`` over the axes that broadcasting added or stretched, back to ``shape``."""
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    if extra:
        grad = grad.sum(axis=tuple(range(extra)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    return grad


class Add(Function):
    saves = ()
    def forward(self, a, b):
        self.sa, self.sb = _shape(a), _shape(b)
        try:
            return a + b
        except ValueError as e:
            raise _shapes_error(self, e, a, b) from None

    def backward(self, g):                       # d(a+b)/da = d(a+b)/db = 1
        na, nb = self.needs_input_grad
        return (unbroadcast(g, self.sa) if na else None,
                unbroadcast(g, self.sb) if nb else None)


class Sub(Function):
    saves = ()
    def forward(self, a, b):
        self.sa, self.sb = _shape(a), _shape(b)
        try:
            return a - b
        except ValueError as e:
            raise _shapes_error(self, e, a, b) from None

    def backward(self, g):                       # d(a-b)/da = 1, d(a-b)/db = -1
        na, nb = self.needs_input_grad
        return (unbroadcast(g, self.sa) if na else None,
                unbroadcast(-g, self.sb) if nb else None)


class Mul(Function):
    saves = ("inputs",)
    def forward(self, a, b):
        self.a, self.b = a, b
        try:
            return a * b
        except ValueError as e:
            raise _shapes_error(self, e, a, b) from None

    def backward(self, g):                       # d(ab)/da = b, d(ab)/db = a
        na, nb = self.needs_input_grad
        a, b = self.a, self.b
        return (unbroadcast(g * b, _shape(a)) if na else None,
                unbroadcast(g * a, _shape(b)) if nb else None)


class Div(Function):
    saves = ("inputs",)
    def forward(self, a, b):
        self.a, self.b = a, b
        try:
            return a / b
        except ValueError as e:
            raise _shapes_error(self, e, a, b) from None

    def backward(self, g):                       # d(a/b)/da = 1/b, d(a/b)/db = -a/b^2
        na, nb = self.needs_input_grad
        a, b = self.a, self.b
        ga = unbroadcast(g / b, _shape(a)) if na else None
        gb = unbroadcast(-g * a / (b * b), _shape(b)) if nb else None
        return ga, gb


class Neg(Function):
    saves = ()
    def forward(self, a):
        return -a

    def backward(self, g):
        return -g


class Pow(Function):
    saves = ("inputs", "output")
    def forward(self, a, p):
        self.a, self.p = a, p
        try:
            self.y = y = a ** p
        except ValueError as e:
            raise _shapes_error(self, e, a, p) from None
        return y

    def backward(self, g):
        na, np_ = self.needs_input_grad
        a, p = self.a, self.p
        xp = array_namespace(g)
        ga = gp = None
        if na:                                   # d(a^p)/da = p a^(p-1), and 0 where p = 0
            if len(_shape(p)) == 0:              # (PyTorch's rule: no 0 * inf = nan at a = 0)
                ga = g * p * a ** (p - 1) if p != 0 else xp.zeros_like(g)
            else:
                ga = g * p * a ** xp.where(p == 0, 1, p - 1)
            ga = unbroadcast(ga, _shape(a))
        if np_:                                  # d(a^p)/dp = a^p ln a, and 0 where a = 0
            gp = unbroadcast(g * self.y * xp.log(xp.where(a == 0, 1, a)), _shape(p))
        return ga, gp


class MatMul(Function):
    """``a @ b`` with NumPy's rules: 1-D operands, batched stacks with broadcasting."""
    saves = ("inputs",)

    def forward(self, a, b):
        self.a, self.b = a, b
        try:
            return a @ b
        except ValueError as e:
            raise _matmul_error(self, e, a, b) from None

    def backward(self, g):
        na, nb = self.needs_input_grad
        a, b = self.a, self.b
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        g2 = g                                   # re-insert the axes that 1-D operands dropped
        if b.ndim == 1:                          # (the column first: a vector . vector g is 0-d)
            g2 = g2[..., None]
        if a.ndim == 1:
            g2 = g2[..., None, :]
        ga = gb = None
        if na:                                   # dL/da = dL/dy b^T
            ga = unbroadcast(g2 @ b2.swapaxes(-1, -2), a2.shape).reshape(a.shape)
        if nb:                                   # dL/db = a^T dL/dy
            gb = unbroadcast(a2.swapaxes(-1, -2) @ g2, b2.shape).reshape(b.shape)
        return ga, gb


def _matmul_error(op, error, a, b):
    """Why ``a @ b`` failed, in the op's name: a 0-d operand, different inner sizes, or batch
    shapes that do not broadcast; the library's own ``error`` for any other cause."""
    sa, sb = _shape(a), _shape(b)
    head = f"{type(op).__name__}: {sa} @ {sb}"
    if not sa or not sb:
        return ValueError(f"{head}: both arguments to matmul need at least one axis (multiply by "
                          f"a 0-d tensor with *)")
    ka, kb = sa[-1], sb[-2] if len(sb) > 1 else sb[0]
    if ka != kb:
        return ValueError(f"{head}: inner sizes {ka} and {kb} differ (the last axis of the first "
                          f"must equal the {'second-to-last' if len(sb) > 1 else 'only'} axis of "
                          f"the second)")
    ba, bb = sa[:-2], sb[:-2]
    try:
        np.broadcast_shapes(ba, bb)
    except ValueError:
        return ValueError(f"{head}: batch shapes {ba} and {bb} do not broadcast")
    return error


class Linear(Function):
    """y = x W^T + b, fused: one matrix product forward, two backward (the input's when needed).

    x: (..., in), W: (out, in), b: (out,) or None -> y: (..., out)
    """
    saves = (0, 1)          # not the bias

    def forward(self, x, w, b=None):
        self.x, self.w = x, w
        if x.ndim > 2:                           # one 2-D product: NumPy's stacked matmul falls
            y = (x.reshape(-1, x.shape[-1]) @ w.T).reshape(x.shape[:-1] + (w.shape[0],))
        else:                                    # back to a slow loop for the transposed w.T
            y = x @ w.T
        if b is not None:
            y += b
        return y

    def backward(self, g):
        nx, nw = self.needs_input_grad[:2]
        x = self.x
        gx = gw = gb = None
        if nx:                                   # dL/dx = dL/dy W
            gx = g @ self.w if g.ndim <= 2 else (g.reshape(-1, g.shape[-1]) @ self.w).reshape(x.shape)
        if x.ndim != 2:                          # (..., in) and a single (in,) vector alike
            x = x.reshape(-1, x.shape[-1])
            g = g.reshape(-1, g.shape[-1])
        if nw:                                   # dL/dW = dL/dy^T x
            gw = g.T @ x
        if len(self.needs_input_grad) > 2 and self.needs_input_grad[2]:
            gb = g.sum(axis=0)                   # dL/db = sum over the batch of dL/dy
        return gx, gw, gb


def _norm_axis(axis, ndim):
    if axis is None or ndim == 0:                # (a 0-d tensor's dim 0 or -1: the whole of it)
        return tuple(range(ndim))
    if isinstance(axis, (tuple, list)):
        return tuple(a % ndim for a in axis)
    return (axis % ndim,)


def _expand_to(g, shape, axis, keepdims):
    """Re-insert the reduced axes of ``g`` so that it broadcasts against ``shape``."""
    if not keepdims and axis is not None:
        g = array_namespace(g).expand_dims(g, _norm_axis(axis, len(shape)))
    elif not keepdims:
        g = g.reshape((1,) * len(shape))
    return g


def _retry_axis(name, error, a, axis):
    """The axis to retry a failed reduction of ``a`` with: None where ``a`` is 0-d and ``axis``
    is 0 or -1 (PyTorch reads them as its one axis, NumPy refuses some forms); otherwise raises
    the op's error for an axis out of range or repeated, or the library's own ``error``."""
    items = axis if isinstance(axis, (tuple, list)) else (axis,)
    ints = all(isinstance(k, (int, np.integer)) for k in items)
    if ints and a.ndim == 0 and all(k in (0, -1) for k in items):
        return None
    if ints:
        bad = [k for k in items if not -a.ndim <= k < a.ndim]
        if bad:
            raise IndexError(f"{name}: axis {bad[0]} is out of range for a tensor of shape "
                             f"{a.shape}") from None
        if len({k % a.ndim for k in items}) < len(items):
            raise ValueError(f"{name}: axis {axis} names an axis twice") from None
    raise error


class Sum(Function):
    saves = ()
    def forward(self, a, axis=None, keepdims=False):
        try:
            y = a.sum(axis=axis, keepdims=keepdims)
        except ValueError as e:
            axis = _retry_axis(type(self).__name__, e, a, axis)
            y = a.sum(axis=axis, keepdims=keepdims)
        self.shape, self.axis, self.keepdims = a.shape, axis, keepdims
        return array_namespace(a).asarray(y)

    def backward(self, g):                       # every element contributes with slope 1
        g = _expand_to(g, self.shape, self.axis, self.keepdims)
        return array_namespace(g).broadcast_to(g, self.shape)


class Mean(Function):
    saves = ()
    def forward(self, a, axis=None, keepdims=False):
        xp = array_namespace(a)
        try:
            if a.size:
                y = xp.asarray(a.mean(axis=axis, keepdims=keepdims))
            else:                                # nan, as PyTorch, without NumPy's warnings
                y = xp.asarray(a.sum(axis=axis, keepdims=keepdims) * xp.nan, dtype=a.dtype)
        except ValueError as e:                  # (a 0-d tensor's axis 0: no empty case)
            axis = _retry_axis(type(self).__name__, e, a, axis)
            y = xp.asarray(a.mean(axis=axis, keepdims=keepdims))
        self.shape, self.axis, self.keepdims = a.shape, axis, keepdims
        self.count = a.size // y.size if a.size else 1
        return y

    def backward(self, g):                       # d(mean)/da_i = 1/n
        g = _expand_to(g, self.shape, self.axis, self.keepdims) / self.count
        return array_namespace(g).broadcast_to(g, self.shape)


def _empty_reduce_error(name, what, error, a, axis):
    """The error of the reduction ``name`` without identity (max, argmax: ``what`` is "maximum")
    over an axis of size 0; the library's own ``error`` when no reduced axis is empty."""
    if a.size:
        return error
    if axis is None:
        return ValueError(f"{name}: empty tensor of shape {a.shape} has no {what}; "
                          f"give an axis of non-zero size to reduce over")
    try:
        items = axis if isinstance(axis, (tuple, list)) else (axis,)
        if not all(-a.ndim <= k < a.ndim for k in items):
            return error                         # (out of range: not this error)
        empty = [k for k in _norm_axis(axis, a.ndim) if a.shape[k] == 0]
    except (TypeError, IndexError):
        return error
    if not empty:
        return error
    return ValueError(f"{name}: cannot reduce over axis {empty[0]} of size 0 (empty tensor of "
                      f"shape {a.shape}; there is no {what} of nothing)")


def arg_reduce(a, which, axis=None, keepdims=False):
    """``xp.argmax`` / ``xp.argmin`` (``which``) of the array ``a``, raising in the op's name
    (not the library's "empty sequence") over an axis of size 0, as PyTorch does."""
    xp = array_namespace(a)
    try:
        return getattr(xp, which)(a, axis=axis, keepdims=keepdims)
    except ValueError as e:
        name, what = ("ArgMin", "minimum") if which == "argmin" else ("ArgMax", "maximum")
        error = _empty_reduce_error(name, what, e, a, axis)
        if error is not e:
            raise error from None
        return getattr(xp, which)(a, axis=_retry_axis(name, e, a, axis), keepdims=keepdims)


class Max(Function):
    """Largest value along ``axis``; ties share the gradient equally (like ``torch.amax``)."""
    saves = ("inputs", "output")

    reduce = "max"                               # the array module's function of that name

    def forward(self, a, axis=None, keepdims=False):
        xp = array_namespace(a)
        reduce = getattr(xp, self.reduce)
        try:
            y = xp.asarray(reduce(a, axis=axis, keepdims=keepdims))
        except ValueError as e:                  # as PyTorch: an empty axis has no maximum
            error = _empty_reduce_error(type(self).__name__, self.reduce + "imum", e, a, axis)
            if error is not e:
                raise error from None
            axis = _retry_axis(type(self).__name__, e, a, axis)
            y = xp.asarray(reduce(a, axis=axis, keepdims=keepdims))
        self.a, self.y, self.axis, self.keepdims = a, y, axis, keepdims
        return y

    def backward(self, g):                       # only the winner(s) see the gradient
        a = self.a
        y = _expand_to(self.y, a.shape, self.axis, self.keepdims)
        g = _expand_to(g, a.shape, self.axis, self.keepdims)
        mask = a == y
        count = mask.sum(axis=_norm_axis(self.axis, a.ndim), keepdims=True)
        return array_namespace(a).where(mask, g / count, 0).astype(a.dtype, copy=False)


class Min(Max):
    reduce = "min"


class Exp(Function):
    saves = ("output",)
    def forward(self, a):
        self.y = y = array_namespace(a).exp(a)
        return y

    def backward(self, g):                       # d(e^a)/da = e^a
        return g * self.y


class Log(Function):
    saves = ("inputs",)
    def forward(self, a):
        self.a = a
        return array_namespace(a).log(a)

    def backward(self, g):                       # d(ln a)/da = 1/a
        return g / self.a


class Sqrt(Function):
    saves = ("output",)
    def forward(self, a):
        self.y = y = array_namespace(a).sqrt(a)
        return y

    def backward(self, g):                       # d(sqrt a)/da = 1 / (2 sqrt a)
        return g / (2 * self.y)


class Norm(Function):
    """The Euclidean norm of all elements, one op so that its gradient at 0 is 0 (PyTorch's
    subgradient) instead of the 0 * inf = nan of sqrt(sum(x * x))."""
    saves = ("inputs", "output")

    def forward(self, a):
        self.a = a
        self.y = y = array_namespace(a).sqrt((a * a).sum())
        return y

    def backward(self, g):                       # d|a|/da = a / |a|, and 0 at a = 0
        y = self.y
        return g * self.a / y if y != 0 else self.a * 0


class Abs(Function):
    saves = ("inputs",)
    def forward(self, a):
        self.a = a
        return array_namespace(a).abs(a)

    def backward(self, g):                       # d|a|/da = sign(a), 0 at 0 (as PyTorch)
        return g * array_namespace(g).sign(self.a)


class Clip(Function):
    saves = ("inputs",)
    def forward(self, a, lo=None, hi=None):
        self.a, self.lo, self.hi = a, lo, hi
        if lo is None and hi is None:
            raise ValueError("clip: give at least one of min and max")
        return array_namespace(a).clip(a, lo, hi)

    def backward(self, g):                       # slope 1 inside [lo, hi], 0 where clipped
        a = self.a
        keep = array_namespace(a).ones(a.shape, dtype=bool)
        if self.lo is not None:
            keep &= a >= self.lo
        if self.hi is not None:
            keep &= a <= self.hi
        return g * keep


class Cast(Function):
    saves = ()
    is_view = True
    def forward(self, a, dtype, copy=False):
        self.dtype = a.dtype
        return a.astype(dtype, copy=copy)

    def backward(self, g):
        return g.astype(self.dtype, copy=False)


class Reshape(Function):
    saves = ()
    is_view = True
    def forward(self, a, shape):
        self.shape = a.shape
        try:
            return a.reshape(shape)
        except (ValueError, TypeError):
            shape = tuple(shape) if isinstance(shape, (tuple, list)) else (shape,)
            why = ("only one size may be -1" if shape.count(-1) > 1 else
                   "-1 is ambiguous for a tensor of 0 elements" if -1 in shape and not a.size else
                   "sizes must be non-negative integers, or one -1" if any(
                       not isinstance(n, (int, np.integer)) or n < -1 for n in shape) else
                   "the number of elements differs")
            raise ValueError(f"{type(self).__name__}: cannot reshape a tensor of shape {a.shape} "
                             f"({a.size} elements) into {shape}: {why}") from None

    def backward(self, g):
        return g.reshape(self.shape)


class Transpose(Function):
    saves = ()
    is_view = True
    def forward(self, a, axes):
        self.axes = axes
        try:
            return a.transpose(axes)
        except (ValueError, TypeError):
            raise ValueError(f"{type(self).__name__}: {tuple(axes)} is not a permutation of the "
                             f"{a.ndim} axes of {a.shape}") from None

    def backward(self, g):                       # the inverse permutation (argsort of axes)
        return g.transpose(sorted(range(len(self.axes)), key=self.axes.__getitem__))


def _is_basic_index(index):
    items = index if isinstance(index, tuple) else (index,)
    return all(i is None or i is Ellipsis or isinstance(i, (slice, int, np.integer)) for i in items)


class GetItem(Function):
    """``a[index]``: basic slices give views; the gradient is scattered back into a zero array
    (with ``xp.add.at`` for advanced indices, where an element may be picked twice)."""
    saves = ()
    is_view = True

    def forward(self, a, index):
        self.shape, self.dtype, self.index = a.shape, a.dtype, index
        try:
            return a[index]
        except IndexError as e:
            raise IndexError(f"index {index!r} into a tensor of shape {a.shape}: {e}") from None

    def backward(self, g):
        xp = array_namespace(g)
        out = xp.zeros(self.shape, dtype=self.dtype)
        if _is_basic_index(self.index):
            out[self.index] = g
        else:
            xp.add.at(out, self.index, g)
        return out


def _join_error(op, error, arrays, axis, new_axis):
    """Why joining ``arrays`` along ``axis`` failed (cat: every axis but ``axis`` must match;
    stack: all shapes must match), in the op's name; the library's own ``error`` otherwise."""
    name = type(op).__name__
    if not arrays:
        return ValueError(f"{name}: expected a non-empty list of tensors")
    shapes = [tuple(_shape(a)) for a in arrays]
    ndim = len(shapes[0]) + new_axis
    if not -ndim <= axis < ndim:
        return IndexError(f"{name}: axis {axis} is out of range for {ndim}-d "
                          f"{'results' if new_axis else 'tensors'} (shapes {shapes})")
    if new_axis:
        if len(set(shapes)) > 1:
            return ValueError(f"{name}: all tensors must have the same shape, got {shapes}")
        return error
    if len({len(s) for s in shapes}) > 1:
        return ValueError(f"{name}: tensors must have the same number of axes, got shapes {shapes}")
    a = axis % ndim
    for s in shapes[1:]:
        for k in range(ndim):
            if k != a and s[k] != shapes[0][k]:
                return ValueError(f"{name}: shapes {shapes} must match except along axis {axis}, "
                                  f"but axis {k} has sizes {shapes[0][k]} and {s[k]}")
    return error


class Concat(Function):
    saves = ()
    def forward(self, *arrays, axis=0):
        try:
            y = array_namespace(arrays[0]).concatenate(arrays, axis=axis)
        except (ValueError, IndexError) as e:
            raise _join_error(self, e, arrays, axis, new_axis=False) from None
        self.axis = axis
        self.bounds = list(accumulate(a.shape[axis] for a in arrays))[:-1]
        return y

    def backward(self, g):
        parts = array_namespace(g).split(g, self.bounds, axis=self.axis)
        return tuple(p if n else None for p, n in zip(parts, self.needs_input_grad))


class Stack(Function):
    saves = ()
    def forward(self, *arrays, axis=0):
        self.axis = axis
        try:
            return array_namespace(arrays[0]).stack(arrays, axis=axis)
        except (ValueError, IndexError) as e:
            raise _join_error(self, e, arrays, axis, new_axis=True) from None

    def backward(self, g):
        xp = array_namespace(g)
        return tuple(xp.take(g, i, axis=self.axis) if n else None
                     for i, n in enumerate(self.needs_input_grad))


class Split(Function):
    """Several outputs: consecutive pieces of ``sizes`` along ``axis``."""
    saves = ()
    is_view = True

    def forward(self, a, sizes, axis=0):
        self.axis = axis
        return tuple(array_namespace(a).split(a, list(accumulate(sizes))[:-1], axis=axis))

    def backward(self, *grads):
        return array_namespace(grads[0]).concatenate(grads, axis=self.axis)


class Where(Function):
    saves = ()
    def forward(self, cond, a, b):
        self.cond, self.sa, self.sb = cond, _shape(a), _shape(b)
        try:
            return array_namespace(cond).where(cond, a, b)
        except ValueError as e:
            raise _shapes_error(self, e, cond, a, b) from None

    def backward(self, g):
        _, na, nb = self.needs_input_grad
        c, xp = self.cond, array_namespace(g)
        return (None,
                unbroadcast(xp.where(c, g, 0), self.sa) if na else None,
                unbroadcast(xp.where(c, 0, g), self.sb) if nb else None)


class Maximum(Function):
    saves = ("inputs",)
    def forward(self, a, b):
        self.a, self.b = a, b
        try:
            return _namespace(a, b).maximum(a, b)
        except ValueError as e:
            raise _shapes_error(self, e, a, b) from None

    def backward(self, g):                       # ties split the gradient, like PyTorch
        na, nb = self.needs_input_grad
        a, b = self.a, self.b
        wa = ((a > b) + 0.5 * (a == b)).astype(g.dtype, copy=False)   # keep float32 grads
        return (unbroadcast(g * wa, _shape(a)) if na else None,
                unbroadcast(g * (1 - wa), _shape(b)) if nb else None)


class Minimum(Function):
    saves = ("inputs",)
    def forward(self, a, b):
        self.a, self.b = a, b
        try:
            return _namespace(a, b).minimum(a, b)
        except ValueError as e:
            raise _shapes_error(self, e, a, b) from None

    def backward(self, g):                       # ties split the gradient, like PyTorch
        na, nb = self.needs_input_grad
        a, b = self.a, self.b
        wa = ((a < b) + 0.5 * (a == b)).astype(g.dtype, copy=False)   # keep float32 grads
        return (unbroadcast(g * wa, _shape(a)) if na else None,
                unbroadcast(g * (1 - wa), _shape(b)) if nb else None)
