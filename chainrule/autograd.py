"""Tensor and the tape: reverse-mode automatic differentiation, define-by-run.

Every result of a differentiable operation keeps the ``Function`` that made it; the function keeps
its inputs. ``Tensor.backward()`` walks these functions in reverse topological order (iteratively,
so graphs thousands of steps deep, e.g. long unrolled RNNs, never hit Python's recursion limit),
hands each function the gradient of its outputs, accumulates gradients into the leaves' ``.grad``
and then lets go of the graph.
"""
import numpy as np

from . import backend

_grad_enabled = True


def is_grad_enabled():
    return _grad_enabled


class _GradMode:
    """Base of ``no_grad`` / ``enable_grad``: a context manager that also works as a decorator."""

    mode = True

    def __new__(cls, func=None):
        self = super().__new__(cls)
        return self(func) if func is not None else self   # bare @no_grad, as in PyTorch 2

    def __enter__(self):
        global _grad_enabled
        self._prev = _grad_enabled
        _grad_enabled = self.mode

    def __exit__(self, *exc):
        global _grad_enabled
        _grad_enabled = self._prev
        return False

    def __call__(self, func):
        import functools

        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            with type(self)():
                return func(*args, **kwargs)

        return wrapper


class no_grad(_GradMode):
    """Operations inside ``with no_grad():`` record nothing (evaluation, parameter updates)."""

    mode = False


class enable_grad(_GradMode):
    mode = True


class Function:
    """One differentiable operation: ``forward`` on arrays, ``backward`` from the output gradient.

    ``forward(*arrays, **options)`` returns an array (or a tuple of arrays for several outputs) and
    saves on ``self`` what ``backward`` needs. ``backward(grad)`` (one argument per output) returns
    one gradient per input, or None for an input that needs none. ``self.needs_input_grad`` tells
    forward and backward which inputs need a gradient, so they can skip the others.
    """

    n_out = 1
    _grads = None            # output gradients gathered during backward
    retain_saved = True      # False while the last backward through this graph runs: backward may
                             # then drop saved arrays as soon as it is done with them

    @classmethod
    def apply(cls, *args, **kwargs):
        fn = cls()
        record = False
        if _grad_enabled:
            needs = tuple([type(a) in _TENSOR_TYPES and a.requires_grad for a in args])
            record = True in needs
        if not record:
            needs = (False,) * len(args)
        fn.needs_input_grad = needs
        out = fn.forward(*[a.data if type(a) in _TENSOR_TYPES else a for a in args], **kwargs)
        if _detect_anomaly:                  # one global read when off: the hot path stays as is
            _check_forward(fn, args, out, record)
        if type(out) is tuple:
            fn.n_out = len(out)
            if record:
                fn.inputs = tuple([a if n else None for a, n in zip(args, needs)])
                fn._out_meta = [(o.shape, o.dtype) for o in out]
                return tuple([_make(o, True, fn, i) for i, o in enumerate(out)])
            return tuple([_make(o, False, None, 0) for o in out])
        if record:
            fn.inputs = tuple([a if n else None for a, n in zip(args, needs)])
            return _make(out, True, fn, 0)
        return _make(out, False, None, 0)


def _make(data, requires_grad, ctx, idx):
    """Wrap an array produced by an op without the checks of ``Tensor.__init__`` (hot path)."""
    t = _new(Tensor)
    # NumPy gives scalars, not 0-d arrays, for ufuncs on 0-d inputs, for x[i] and for full
    # reductions; keep .data an array so np.asarray(t), t.data[...] = v and .grad.data[...] work
    t.data = np.asarray(data) if isinstance(data, np.generic) else data
    t.grad = None
    t.requires_grad = requires_grad
    t._ctx = ctx
    t._idx = idx
    t._retain = False
    return t


_new = object.__new__


def _as_array(data, dtype=None):
    """Convert user data to an array: Python floats become the default dtype, arrays keep theirs."""
    if isinstance(data, Tensor):
        data = data.data
    if dtype is not None:
        return np.asarray(data, dtype=dtype)
    if isinstance(data, np.ndarray):
        return data
    arr = np.asarray(data)
    if arr.dtype == np.float64 and not isinstance(data, np.generic):
        arr = arr.astype(backend.get_default_dtype())
    elif arr.dtype.kind == "i" and arr.dtype != np.int64:
        arr = arr.astype(np.int64)
    return arr


class Tensor:
    """An n-dimensional array that records the operations applied to it, for backward().

    >>> x = chainrule.tensor([1.0, 2.0, 3.0], requires_grad=True)
    >>> (x * x).sum().backward()
    >>> x.grad          # d(sum x^2)/dx = 2x
    tensor([2., 4., 6.])
    """

    __slots__ = ("data", "grad", "requires_grad", "_ctx", "_idx", "_retain", "__weakref__")
    # ndarray (op) Tensor must defer to Tensor's reflected operator instead of looping elementwise.
    __array_ufunc__ = None
    __array_priority__ = 1000

    def __init__(self, data, dtype=None, requires_grad=False):
        self.data = _as_array(data, dtype)
        if requires_grad and self.data.dtype.kind not in "fc":
            raise TypeError(
                f"only floating point tensors can require gradients, got dtype {self.data.dtype}")
        self.grad = None
        self.requires_grad = bool(requires_grad)
        self._ctx = None
        self._idx = 0
        self._retain = False

    # -- array-like facts ------------------------------------------------------------------------
    @property
    def shape(self):
        return self.data.shape

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def ndim(self):
        return self.data.ndim

    @property
    def is_leaf(self):
        return self._ctx is None

    @property
    def grad_fn(self):
        return self._ctx

    def size(self, dim=None):
        return self.data.shape if dim is None else self.data.shape[dim]

    def numel(self):
        return self.data.size

    def dim(self):
        return self.data.ndim

    def __len__(self):
        return len(self.data)

    def __array__(self, dtype=None, copy=None):
        if dtype is not None and dtype != self.data.dtype:
            return self.data.astype(dtype)
        return self.data.copy() if copy else self.data

    def numpy(self):
        """The underlying array (shares memory, like ``torch.Tensor.numpy``)."""
        return self.data

    def item(self):
        if self.data.size != 1:
            raise ValueError(
                f"item(): only a tensor with one element can be converted to a Python scalar, "
                f"got shape {self.data.shape}")
        return self.data.item()

    def tolist(self):
        return self.data.tolist()

    def __repr__(self):
        body = np.array2string(self.data, separator=", ", prefix="tensor(")
        extra = ""
        if self.data.dtype != backend.get_default_dtype() and self.data.dtype != np.int64:
            extra += f", dtype={self.data.dtype}"
        if self._ctx is not None:
            extra += f", grad_fn=<{type(self._ctx).__name__}>"
        elif self.requires_grad:
            extra += ", requires_grad=True"
        return f"tensor({body}{extra})"

    def __bool__(self):
        return bool(self.data)

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    __hash__ = object.__hash__

    # -- autograd ----------------------------------------------------------------------------------
    def detach(self):
        """The same data, cut from the graph (no gradient flows through the result)."""
        return _make(self.data, False, None, 0)

    def requires_grad_(self, requires_grad=True):
        if requires_grad and self.data.dtype.kind not in "fc":
            raise TypeError(
                f"only floating point tensors can require gradients, got dtype {self.data.dtype}")
        if not requires_grad and self._ctx is not None:
            raise RuntimeError("requires_grad_(False) is only allowed on leaf tensors; use detach()")
        self.requires_grad = requires_grad
        return self

    def retain_grad(self):
        """Keep ``.grad`` for this non-leaf tensor after backward (e.g. dL/dh_t of an RNN)."""
        if not self.requires_grad:
            raise RuntimeError("retain_grad() on a tensor that does not require grad")
        self._retain = True
        return self

    def zero_(self):
        self.data[...] = 0
        return self

    def backward(self, gradient=None, retain_graph=False):
        """Accumulate d(self)/d(leaf) into every leaf's ``.grad`` that requires grad.

        ``gradient`` is the upstream gradient dL/d(self); it may be left out only for a tensor
        with one element (a loss), as in PyTorch.
        """
        if not self.requires_grad:
            raise RuntimeError(
                "element 0 of tensors does not require grad and does not have a grad_fn")
        if gradient is None:
            if self.data.size != 1:
                raise RuntimeError(
                    f"grad can be implicitly created only for scalar outputs; this tensor has "
                    f"shape {self.data.shape}: pass backward(gradient) with that shape")
            gradient = np.ones_like(self.data)
        else:
            gradient = np.array(_as_array(gradient), dtype=self.data.dtype)  # a copy we own
            if gradient.shape != self.data.shape:
                raise RuntimeError(
                    f"backward: gradient has shape {gradient.shape}, expected {self.data.shape}")
        _run_backward(self, gradient, retain_graph)

    # -- conversions -------------------------------------------------------------------------------
    def astype(self, dtype):
        dtype = np.dtype(dtype)
        if dtype.kind not in "fc":               # integer / bool results carry no gradient
            return _make(self.data.astype(dtype), False, None, 0)
        return _b.Cast.apply(self, dtype=dtype)

    def to(self, dtype):
        return self.astype(dtype)

    def float(self):
        return self.astype(np.float32)

    def double(self):
        return self.astype(np.float64)

    def long(self):
        return _make(self.data.astype(np.int64), False, None, 0)

    def clone(self):
        return _b.Cast.apply(self, dtype=self.data.dtype, copy=True)

    # -- arithmetic --------------------------------------------------------------------------------
    def __add__(self, other):
        return _b.Add.apply(self, other)

    def __radd__(self, other):
        return _b.Add.apply(other, self)

    def __sub__(self, other):
        return _b.Sub.apply(self, other)

    def __rsub__(self, other):
        return _b.Sub.apply(other, self)

    def __mul__(self, other):
        return _b.Mul.apply(self, other)

    def __rmul__(self, other):
        return _b.Mul.apply(other, self)

    def __truediv__(self, other):
        return _b.Div.apply(self, other)

    def __rtruediv__(self, other):
        return _b.Div.apply(other, self)

    def __neg__(self):
        return _b.Neg.apply(self)

    def __pos__(self):
        return self

    def __pow__(self, exponent):
        return _b.Pow.apply(self, exponent)

    def __rpow__(self, base):
        return _b.Pow.apply(base, self)

    def __matmul__(self, other):
        return _b.MatMul.apply(self, other)

    def __rmatmul__(self, other):
        return _b.MatMul.apply(other, self)

    def __abs__(self):
        return _b.Abs.apply(self)

    # comparisons give boolean tensors and no gradient
    def __eq__(self, other):
        return _make(self.data == _raw(other), False, None, 0)

    def __ne__(self, other):
        return _make(self.data != _raw(other), False, None, 0)

    def __lt__(self, other):
        return _make(self.data < _raw(other), False, None, 0)

    def __le__(self, other):
        return _make(self.data <= _raw(other), False, None, 0)

    def __gt__(self, other):
        return _make(self.data > _raw(other), False, None, 0)

    def __ge__(self, other):
        return _make(self.data >= _raw(other), False, None, 0)

    # -- elementwise math --------------------------------------------------------------------------
    def exp(self):
        return _b.Exp.apply(self)

    def log(self):
        return _b.Log.apply(self)

    def sqrt(self):
        return _b.Sqrt.apply(self)

    def abs(self):
        return _b.Abs.apply(self)

    def pow(self, exponent):
        return _b.Pow.apply(self, exponent)

    def clip(self, min=None, max=None):
        return _b.Clip.apply(self, lo=min, hi=max)

    clamp = clip

    def sigmoid(self):
        return _a.Sigmoid.apply(self)

    def tanh(self):
        return _a.Tanh.apply(self)

    def relu(self):
        return _a.ReLU.apply(self)

    def softmax(self, axis=-1):
        return _a.Softmax.apply(self, axis=axis)

    def log_softmax(self, axis=-1):
        return _a.LogSoftmax.apply(self, axis=axis)

    # -- reductions --------------------------------------------------------------------------------
    def sum(self, axis=None, keepdims=False):
        return _b.Sum.apply(self, axis=axis, keepdims=keepdims)

    def mean(self, axis=None, keepdims=False):
        return _b.Mean.apply(self, axis=axis, keepdims=keepdims)

    def var(self, axis=None, keepdims=False, unbiased=True):
        n = self.data.size if axis is None else np.prod([self.data.shape[a] for a in np.atleast_1d(axis)])
        d = self - self.mean(axis=axis, keepdims=True)
        return (d * d).sum(axis=axis, keepdims=keepdims) / (n - 1 if unbiased else n)

    def max(self, axis=None, keepdims=False):
        """Largest values along ``axis`` (values only, as ``numpy.max``; see ``argmax``)."""
        return _b.Max.apply(self, axis=axis, keepdims=keepdims)

    def min(self, axis=None, keepdims=False):
        return _b.Min.apply(self, axis=axis, keepdims=keepdims)

    def argmax(self, axis=None, keepdims=False):
        return _make(np.argmax(self.data, axis=axis, keepdims=keepdims), False, None, 0)

    def argmin(self, axis=None, keepdims=False):
        return _make(np.argmin(self.data, axis=axis, keepdims=keepdims), False, None, 0)

    def norm(self):
        """The Euclidean (Frobenius) norm of all elements."""
        return (self * self).sum().sqrt()

    # -- shape -------------------------------------------------------------------------------------
    def reshape(self, *shape):
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return _b.Reshape.apply(self, shape=shape)

    view = reshape

    def flatten(self, start_dim=0, end_dim=-1):
        s = self.data.shape
        if not s:
            return self.reshape(1)
        end = end_dim % len(s)
        start = start_dim % len(s)
        return self.reshape(s[:start] + (-1,) + s[end + 1:])

    def transpose(self, *axes):
        """``t.transpose(a, b)`` swaps two axes (PyTorch); ``t.transpose((..))`` permutes; no
        arguments reverses the axes (NumPy)."""
        nd = self.data.ndim
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
        return _b.Transpose.apply(self, axes=perm)

    def permute(self, *axes):
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        return _b.Transpose.apply(self, axes=tuple(a % self.data.ndim for a in axes))

    @property
    def T(self):
        return self.transpose()

    def unsqueeze(self, axis):
        s = list(self.data.shape)
        s.insert(axis % (len(s) + 1), 1)
        return self.reshape(tuple(s))

    def squeeze(self, axis=None):
        s = self.data.shape
        if axis is None:
            return self.reshape(tuple(n for n in s if n != 1))
        axis = axis % len(s)
        if s[axis] != 1:
            return self
        return self.reshape(s[:axis] + s[axis + 1:])

    def __getitem__(self, index):
        return _b.GetItem.apply(self, index=_raw_index(index))

    def split(self, split_size_or_sections, axis=0):
        return split(self, split_size_or_sections, axis)


_TENSOR_TYPES = {Tensor}


# -- anomaly detection -----------------------------------------------------------------------------
_detect_anomaly = False


class AnomalyError(FloatingPointError):
    """A NaN or inf produced by an op while anomaly detection is on (see ``detect_anomaly``)."""


def is_anomaly_enabled():
    return _detect_anomaly


def set_detect_anomaly(mode):
    """Turn anomaly detection on (True) or off (False) globally; returns the previous mode."""
    global _detect_anomaly
    prev, _detect_anomaly = _detect_anomaly, bool(mode)
    return prev


class detect_anomaly:
    """Within ``with detect_anomaly():`` the first NaN or inf that an op produces, in forward or in
    backward, raises ``AnomalyError`` naming the op (its Function class), the shapes of its inputs
    and outputs and, for backward, the line of user code that built the op, as
    ``torch.autograd.detect_anomaly`` does. Costs a finiteness check per op: for debugging only.

    >>> with chainrule.autograd.detect_anomaly():
    ...     loss = F.cross_entropy(model(x), y); loss.backward()
    AnomalyError: Log produced nan in forward: inputs (32, 10) float32 -> output (32, 10) ...

    Also usable as a decorator, and ``set_detect_anomaly(True)`` switches it on for good.
    """

    def __init__(self, mode=True):
        self.mode = bool(mode)

    def __enter__(self):
        self._prev = set_detect_anomaly(self.mode)
        return self

    def __exit__(self, *exc):
        set_detect_anomaly(self._prev)
        return False

    def __call__(self, func):
        import functools

        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            with detect_anomaly(self.mode):
                return func(*args, **kwargs)

        return wrapper


def _describe(values):
    parts = []
    for v in values:
        a = v.data if type(v) in _TENSOR_TYPES else v
        if isinstance(a, (np.ndarray, np.generic)):
            parts.append(f"{tuple(a.shape)} {a.dtype}")
        elif a is None:
            parts.append("None")
        else:
            parts.append(type(a).__name__)
    return ", ".join(parts) if parts else "none"


def _bad(a):
    """'nan' / 'inf' if the floating array ``a`` holds one, else None."""
    if not isinstance(a, (np.ndarray, np.generic)) or a.dtype.kind not in "fc":
        return None
    if np.isfinite(a).all():
        return None
    return "nan" if np.isnan(a).any() else "inf"


def _user_frame():
    """'file:line in function' of the innermost caller outside chainrule, for error messages."""
    import os
    import sys
    pkg = os.path.dirname(os.path.abspath(__file__)) + os.sep
    f = sys._getframe(2)
    while f is not None and os.path.abspath(f.f_code.co_filename).startswith(pkg):
        f = f.f_back
    if f is None:
        return None
    return f"{f.f_code.co_filename}:{f.f_lineno} in {f.f_code.co_name}"


def _check_forward(fn, args, out, record):
    outs = out if type(out) is tuple else (out,)
    for i, o in enumerate(outs):
        kind = _bad(o)
        if kind is None:
            continue
        tainted = [j for j, a in enumerate(args)
                   if _bad(a.data if type(a) in _TENSOR_TYPES else a) is not None]
        where = _user_frame()
        raise AnomalyError(
            f"{type(fn).__name__} produced {kind} in forward (output {i} of shape "
            f"{tuple(o.shape)}): inputs {_describe(args)} -> outputs {_describe(outs)}"
            + (f"; input(s) {tainted} already held nan/inf" if tainted else
               "; its inputs were all finite")
            + (f"; called from {where}" if where else ""))
    if record:
        fn._anomaly_where = _user_frame()    # named again if its backward goes wrong


def _check_backward(fn, grads, in_grads):
    for i, g in enumerate(in_grads):
        kind = _bad(g)
        if kind is None:
            continue
        inputs = fn.inputs or ()
        up = [gg for gg in grads if gg is not None]
        tainted = any(_bad(gg) is not None for gg in up)
        where = fn.__dict__.get("_anomaly_where")
        raise AnomalyError(
            f"{type(fn).__name__}.backward returned {kind} in the gradient of input {i} (shape "
            f"{tuple(g.shape)}): inputs {_describe(inputs)}, upstream gradient(s) "
            f"{_describe(up)}"
            + ("; the upstream gradient already held nan/inf" if tainted else
               "; the upstream gradient was finite")
            + (f"; the op was created at {where}" if where else ""))


def _raw(x):
    return x.data if isinstance(x, Tensor) else x


def _raw_index(index):
    if isinstance(index, tuple):
        return tuple(_raw(i) for i in index)
    return _raw(index)


def _run_backward(root, root_grad, retain_graph):
    ctx = root._ctx
    if ctx is None:
        _accumulate_leaf(root, root_grad, set())
        return
    order = _toposort(ctx)
    ctx._grads = [None] * ctx.n_out
    ctx._grads[root._idx] = root_grad
    if root._retain:                             # accumulates across calls, like any .grad
        root.grad = _make(root_grad.copy() if root.grad is None else root.grad.data + root_grad,
                          False, None, 0)
    stored = set()
    anomaly = _detect_anomaly
    for fn in reversed(order):
        grads = fn._grads
        fn._grads = None
        if grads is None:
            continue
        if not retain_graph:
            fn.retain_saved = False
        if fn.n_out == 1:
            in_grads = fn.backward(grads[0])
        else:
            in_grads = fn.backward(*[g if g is not None else np.zeros(s, d)
                                     for g, (s, d) in zip(grads, fn._out_meta)])
        inputs = fn.inputs
        if type(in_grads) is not tuple:
            in_grads = (in_grads,)
        if anomaly:
            _check_backward(fn, grads, in_grads)
        for t, g in zip(inputs, in_grads):
            if t is None or g is None:
                continue
            if g.shape != t.data.shape:
                raise RuntimeError(
                    f"{type(fn).__name__}.backward returned a gradient of shape {g.shape} for an "
                    f"input of shape {t.data.shape}")
            parent = t._ctx
            if parent is None:
                _accumulate_leaf(t, g, stored)
                continue
            if t._retain:
                t.grad = _make(g.copy() if t.grad is None else t.grad.data + g, False, None, 0)
            pg = parent._grads
            if pg is None:
                pg = parent._grads = [None] * parent.n_out
            cur = pg[t._idx]
            pg[t._idx] = g if cur is None else cur + g
        if not retain_graph:
            # drop saved arrays and the links to the inputs: the graph is freed as in PyTorch
            n_out = fn.n_out
            fn.__dict__.clear()
            fn.n_out = n_out
            fn.inputs = None


def _accumulate_leaf(t, g, stored):
    if not t.requires_grad:
        return
    if g.dtype != t.data.dtype:
        g = g.astype(t.data.dtype)
    elif g.base is not None or id(g) in stored or not g.flags.writeable:
        # the same array may reach several leaves (a + b) or be a view of another's gradient;
        # each leaf must own its .grad, since optimizers and clipping update grads in place
        g = g.copy()
    stored.add(id(g))
    if t.grad is None:
        t.grad = _make(g, False, None, 0)
    else:
        t.grad.data = np.asarray(t.grad.data + g)      # (0-d + 0-d is a NumPy scalar)


def _toposort(root):
    """Functions reachable from ``root``, each after all the functions it depends on."""
    if root.__dict__.get("inputs", 0) is None:
        raise RuntimeError(
            "Trying to backward through the graph a second time; its saved values were freed "
            "after the first backward. Pass retain_graph=True to the first backward if needed.")
    order = []
    seen = {root}
    stack = [(root, 0)]
    while stack:
        fn, i = stack[-1]
        inputs = fn.inputs
        if inputs is None:
            raise RuntimeError(
                "Trying to backward through the graph a second time; its saved values were freed "
                "after the first backward. Pass retain_graph=True to the first backward if needed.")
        n = len(inputs)
        while i < n:
            t = inputs[i]
            i += 1
            if t is not None:
                p = t._ctx
                if p is not None and p not in seen:
                    seen.add(p)
                    stack[-1] = (fn, i)
                    stack.append((p, 0))
                    break
        else:
            stack.pop()
            order.append(fn)
    return order


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
        if sum(sizes) != n:
            raise ValueError(f"split: sections {sizes} sum to {sum(sizes)}, but axis {axis} has {n}")
    return list(_b.Split.apply(t, sizes=tuple(sizes), axis=axis))


from .ops import basic as _b  # noqa: E402  (ops need Tensor and Function defined first)
from .ops import activation as _a  # noqa: E402
