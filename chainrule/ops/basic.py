"""Arithmetic with broadcasting, matrix products, reductions, shape and indexing ops.

Array code takes its module from the data (``xp = array_namespace(x)``), so the same op runs on
NumPy, CuPy or any array library with NumPy's interface; ``numpy`` itself is only used for facts
about Python operands (their shape) and index types.
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
    def forward(self, a, b):
        self.sa, self.sb = _shape(a), _shape(b)
        return a + b

    def backward(self, g):                       # d(a+b)/da = d(a+b)/db = 1
        na, nb = self.needs_input_grad
        return (unbroadcast(g, self.sa) if na else None,
                unbroadcast(g, self.sb) if nb else None)


class Sub(Function):
    def forward(self, a, b):
        self.sa, self.sb = _shape(a), _shape(b)
        return a - b

    def backward(self, g):                       # d(a-b)/da = 1, d(a-b)/db = -1
        na, nb = self.needs_input_grad
        return (unbroadcast(g, self.sa) if na else None,
                unbroadcast(-g, self.sb) if nb else None)


class Mul(Function):
    def forward(self, a, b):
        self.a, self.b = a, b
        return a * b

    def backward(self, g):                       # d(ab)/da = b, d(ab)/db = a
        na, nb = self.needs_input_grad
        a, b = self.a, self.b
        return (unbroadcast(g * b, _shape(a)) if na else None,
                unbroadcast(g * a, _shape(b)) if nb else None)


class Div(Function):
    def forward(self, a, b):
        self.a, self.b = a, b
        return a / b

    def backward(self, g):                       # d(a/b)/da = 1/b, d(a/b)/db = -a/b^2
        na, nb = self.needs_input_grad
        a, b = self.a, self.b
        ga = unbroadcast(g / b, _shape(a)) if na else None
        gb = unbroadcast(-g * a / (b * b), _shape(b)) if nb else None
        return ga, gb


class Neg(Function):
    def forward(self, a):
        return -a

    def backward(self, g):
        return -g


class Pow(Function):
    def forward(self, a, p):
        self.a, self.p = a, p
        self.y = y = a ** p
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

    def forward(self, a, b):
        ka = a.shape[-1] if a.ndim else None
        kb = (b.shape[-2] if b.ndim > 1 else b.shape[0]) if b.ndim else None
        if a.ndim == 0 or b.ndim == 0 or ka != kb:
            raise ValueError(
                f"matmul: shapes {a.shape} and {b.shape} do not match: the last axis of the first "
                f"({ka}) must equal the {'second-to-last' if b.ndim > 1 else 'only'} axis of the "
                f"second ({kb})")
        self.a, self.b = a, b
        return a @ b

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


class Linear(Function):
    """y = x W^T + b, fused: one matrix product forward, two backward (the input's when needed).

    x: (..., in), W: (out, in), b: (out,) or None -> y: (..., out)
    """

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
    if axis is None:
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


class Sum(Function):
    def forward(self, a, axis=None, keepdims=False):
        self.shape, self.axis, self.keepdims = a.shape, axis, keepdims
        return array_namespace(a).asarray(a.sum(axis=axis, keepdims=keepdims))

    def backward(self, g):                       # every element contributes with slope 1
        g = _expand_to(g, self.shape, self.axis, self.keepdims)
        return array_namespace(g).broadcast_to(g, self.shape)


class Mean(Function):
    def forward(self, a, axis=None, keepdims=False):
        self.shape, self.axis, self.keepdims = a.shape, axis, keepdims
        y = array_namespace(a).asarray(a.mean(axis=axis, keepdims=keepdims))
        self.count = a.size // y.size if y.size else 1
        return y

    def backward(self, g):                       # d(mean)/da_i = 1/n
        g = _expand_to(g, self.shape, self.axis, self.keepdims) / self.count
        return array_namespace(g).broadcast_to(g, self.shape)


class Max(Function):
    """Largest value along ``axis``; ties share the gradient equally (like ``torch.amax``)."""

    reduce = "max"                               # the array module's function of that name

    def forward(self, a, axis=None, keepdims=False):
        if a.size == 0:
            raise ValueError(f"{type(self).__name__.lower()}: empty tensor of shape {a.shape}")
        xp = array_namespace(a)
        y = xp.asarray(getattr(xp, self.reduce)(a, axis=axis, keepdims=keepdims))
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
    def forward(self, a):
        self.y = y = array_namespace(a).exp(a)
        return y

    def backward(self, g):                       # d(e^a)/da = e^a
        return g * self.y


class Log(Function):
    def forward(self, a):
        self.a = a
        return array_namespace(a).log(a)

    def backward(self, g):                       # d(ln a)/da = 1/a
        return g / self.a


class Sqrt(Function):
    def forward(self, a):
        self.y = y = array_namespace(a).sqrt(a)
        return y

    def backward(self, g):                       # d(sqrt a)/da = 1 / (2 sqrt a)
        return g / (2 * self.y)


class Abs(Function):
    def forward(self, a):
        self.a = a
        return array_namespace(a).abs(a)

    def backward(self, g):                       # d|a|/da = sign(a), 0 at 0 (as PyTorch)
        return g * array_namespace(g).sign(self.a)


class Clip(Function):
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
    def forward(self, a, dtype, copy=False):
        self.dtype = a.dtype
        return a.astype(dtype, copy=copy)

    def backward(self, g):
        return g.astype(self.dtype, copy=False)


class Reshape(Function):
    def forward(self, a, shape):
        self.shape = a.shape
        try:
            return a.reshape(shape)
        except ValueError:
            raise ValueError(f"reshape: cannot reshape a tensor of shape {a.shape} "
                             f"({a.size} elements) into {tuple(shape)}") from None

    def backward(self, g):
        return g.reshape(self.shape)


class Transpose(Function):
    def forward(self, a, axes):
        if sorted(axes) != list(range(a.ndim)):
            raise ValueError(f"permute: {axes} is not a permutation of the {a.ndim} axes of {a.shape}")
        self.axes = axes
        return a.transpose(axes)

    def backward(self, g):                       # the inverse permutation (argsort of axes)
        return g.transpose(sorted(range(len(self.axes)), key=self.axes.__getitem__))


def _is_basic_index(index):
    items = index if isinstance(index, tuple) else (index,)
    return all(i is None or i is Ellipsis or isinstance(i, (slice, int, np.integer)) for i in items)


class GetItem(Function):
    """``a[index]``: basic slices give views; the gradient is scattered back into a zero array
    (with ``xp.add.at`` for advanced indices, where an element may be picked twice)."""

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


class Concat(Function):
    def forward(self, *arrays, axis=0):
        try:
            y = array_namespace(arrays[0]).concatenate(arrays, axis=axis)
        except ValueError as e:
            raise ValueError(f"cat: shapes {[a.shape for a in arrays]} along axis {axis}: {e}") from None
        self.axis = axis
        self.bounds = list(accumulate(a.shape[axis] for a in arrays))[:-1]
        return y

    def backward(self, g):
        parts = array_namespace(g).split(g, self.bounds, axis=self.axis)
        return tuple(p if n else None for p, n in zip(parts, self.needs_input_grad))


class Stack(Function):
    def forward(self, *arrays, axis=0):
        shapes = {a.shape for a in arrays}
        if len(shapes) > 1:
            raise ValueError(f"stack: all tensors must have the same shape, got {[a.shape for a in arrays]}")
        self.axis = axis
        return array_namespace(arrays[0]).stack(arrays, axis=axis)

    def backward(self, g):
        xp = array_namespace(g)
        return tuple(xp.take(g, i, axis=self.axis) if n else None
                     for i, n in enumerate(self.needs_input_grad))


class Split(Function):
    """Several outputs: consecutive pieces of ``sizes`` along ``axis``."""

    def forward(self, a, sizes, axis=0):
        self.axis = axis
        return tuple(array_namespace(a).split(a, list(accumulate(sizes))[:-1], axis=axis))

    def backward(self, *grads):
        return array_namespace(grads[0]).concatenate(grads, axis=self.axis)


class Where(Function):
    def forward(self, cond, a, b):
        self.cond, self.sa, self.sb = cond, _shape(a), _shape(b)
        return array_namespace(cond).where(cond, a, b)

    def backward(self, g):
        _, na, nb = self.needs_input_grad
        c, xp = self.cond, array_namespace(g)
        return (None,
                unbroadcast(xp.where(c, g, 0), self.sa) if na else None,
                unbroadcast(xp.where(c, 0, g), self.sb) if nb else None)


class Maximum(Function):
    def forward(self, a, b):
        self.a, self.b = a, b
        return _namespace(a, b).maximum(a, b)

    def backward(self, g):                       # ties split the gradient, like PyTorch
        na, nb = self.needs_input_grad
        a, b = self.a, self.b
        wa = ((a > b) + 0.5 * (a == b)).astype(g.dtype, copy=False)   # keep float32 grads
        return (unbroadcast(g * wa, _shape(a)) if na else None,
                unbroadcast(g * (1 - wa), _shape(b)) if nb else None)


class Minimum(Function):
    def forward(self, a, b):
        self.a, self.b = a, b
        return _namespace(a, b).minimum(a, b)

    def backward(self, g):                       # ties split the gradient, like PyTorch
        na, nb = self.needs_input_grad
        a, b = self.a, self.b
        wa = ((a < b) + 0.5 * (a == b)).astype(g.dtype, copy=False)   # keep float32 grads
        return (unbroadcast(g * wa, _shape(a)) if na else None,
                unbroadcast(g * (1 - wa), _shape(b)) if nb else None)
