"""Tensor and the tape: reverse-mode automatic differentiation, define-by-run.

Every result of a differentiable operation keeps the ``Function`` that made it; the function keeps
its inputs. ``Tensor.backward()`` walks these functions in reverse topological order (iteratively,
so graphs thousands of steps deep, e.g. long unrolled RNNs, never hit Python's recursion limit),
hands each function the gradient of its outputs, accumulates gradients into the leaves' ``.grad``
and then lets go of the graph.

In-place safety is PyTorch's: every tensor has a version (``t._version``), bumped by each
in-place op (``add_``, item assignment, ``optimizer.step()``, ``load_state_dict`` ...) and shared
with its views; an op declares what its backward reads (``saves``), and backward raises, naming
the op and the shape, when one of those tensors was modified in place after forward.

Slightly over our ~600-line guide because the version checks stay beside the tape walk they
guard (reading one without the other hides when a saved tensor is checked).

This module imports no op: the ops (``chainrule.ops``) build on ``Function``, and
``chainrule.tensor_api`` attaches them to ``Tensor`` as methods. Anomaly detection lives in
``chainrule.anomaly`` (its names are re-exported here).
"""
import bisect
from collections import deque

import numpy as np

from . import anomaly as _anomaly
from . import backend
from .anomaly import AnomalyError, detect_anomaly, is_anomaly_enabled, set_detect_anomaly  # noqa: F401
from .backend import array_namespace

_grad_enabled = True

# In-place safety, as PyTorch's version counters. A tensor's counter is None until something
# modifies it in place (or a view of it is taken); then a list [version, epochs] shared by the
# tensor and its views, ``epochs`` (None before the first bump) being the values of ``_epoch`` at
# its last _HISTORY bumps. ``_epoch`` advances at every in-place change in the process (once per
# optimizer step), so an op records one int at forward (``fn._epoch``) and backward compares one
# int: only when something was bumped since forward are the saved tensors looked at.
_epoch = 0
_HISTORY = 256           # bumps remembered per tensor, for the exact "expected" version in errors


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

    ``Op.apply(*inputs, **options)`` runs the op on Tensors (or arrays and scalars) and records it.
    Each subclass gets its own ``apply``, a plain function (see ``_apply_for``), so that a Tensor
    method can be the op's ``apply`` itself: ``Tensor.__add__ is ops.basic.Add.apply``.
    """

    n_out = 1
    saves = ("inputs",)      # what backward reads: "inputs" (all), input positions (ints) and/or
                             # "output"; checked against in-place changes. Undeclared: all inputs
    is_view = False          # True: the output may share memory with input 0 (and its version)
    _epoch = None            # _epoch at forward, on ops that saved a tensor
    _grads = None            # output gradients gathered during backward
    retain_saved = True      # False while the last backward through this graph runs: backward may
                             # then drop saved arrays as soon as it is done with them

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "apply" not in cls.__dict__:
            cls.apply = _apply_for(cls)


def _apply_for(cls):
    """``cls.apply``: a plain function with ``cls`` in its closure, not a classmethod. Stored as a
    class attribute of Tensor it becomes a method (``t + u`` calls ``Add.apply(t, u)``) with no
    wrapper frame in between; a bound classmethod cannot, since it would not receive ``self``."""

    saves = cls.saves
    inputs_saved = "inputs" in saves or any(type(s) is int for s in saves)
    output_saved = "output" in saves
    is_view = cls.is_view

    def apply(*args, **kwargs):
        fn = cls()
        record = False
        if _grad_enabled:
            needs = tuple([type(a) in _TENSOR_TYPES and a.requires_grad for a in args])
            record = True in needs
        if not record:
            needs = (False,) * len(args)
        fn.needs_input_grad = needs
        arrays = [a.data if type(a) in _TENSOR_TYPES else a for a in args]
        out = fn.forward(*arrays, **kwargs)
        if _anomaly.enabled:                 # one attribute read when off: the hot path stays
            _anomaly.check_forward(fn, arrays, out, record)
        if type(out) is tuple:
            fn.n_out = len(out)
            if record:
                fn.inputs = tuple([a if n else None for a, n in zip(args, needs)])
                fn._out_meta = [(o.shape, o.dtype) for o in out]
                res = tuple([_make(o, True, fn, i) for i, o in enumerate(out)])
            else:
                res = tuple([_make(o, False, None, 0) for o in out])
            if is_view:
                for r in res:
                    _share_version(r, args[0])
            if record and (inputs_saved or output_saved):
                fn._epoch = _epoch
                if inputs_saved:
                    fn._saved = args
                if output_saved:
                    fn._out_vc = [_fresh_version(r) for r in res]
            return res
        if record:
            fn.inputs = tuple([a if n else None for a, n in zip(args, needs)])
            res = _make(out, True, fn, 0)
            if inputs_saved:
                fn._epoch = _epoch
                fn._saved = args
            if output_saved:
                fn._epoch = _epoch
                res._vc = c = [0, None]
                fn._out_vc = ((c, out.shape),)
        else:
            res = _make(out, False, None, 0)
        if is_view:                          # inline _share_version: Reshape is a hot op
            b = args[0]
            if type(b) in _TENSOR_TYPES and (out is b.data or out.base is not None):
                c = b._vc
                if c is None:
                    c = b._vc = [0, None]
                res._vc = c
        return res

    apply.__name__ = "apply"
    apply.__qualname__ = f"{cls.__qualname__}.apply"
    apply.__doc__ = (f"Run {cls.__name__} on Tensors (or arrays and scalars); record it for "
                     f"backward when grad mode is on and an input requires grad.")
    return staticmethod(apply)


Function.apply = _apply_for(Function)


def _fresh_version(t):
    t._vc = c = [0, None]
    return c, t.data.shape


def _share_version(view, base):
    """Give an op's output the version counter of input ``base`` when its array shares memory."""
    if type(base) in _TENSOR_TYPES:
        d, b = view.data, base.data
        if d is b or d.base is not None:
            c = base._vc
            if c is None:
                c = base._vc = [0, None]
            view._vc = c


def _bump(t):
    """Record an in-place change of ``t`` (and of the tensors sharing its memory)."""
    global _epoch
    _epoch += 1
    c = t._vc
    if c is None:
        t._vc = [1, deque((_epoch,), _HISTORY)]
        return
    c[0] += 1
    if c[1] is None:
        c[1] = deque((_epoch,), _HISTORY)
    else:
        c[1].append(_epoch)


def _bump_updated(param_lists):
    """``_bump`` for every tensor with a gradient in these lists (an optimizer step), in one
    pass and at one epoch: their changes happen together."""
    global _epoch
    _epoch += 1
    e = _epoch
    for ps in param_lists:
        for t in ps:
            if t.grad is not None:
                c = t._vc
                if c is None:
                    t._vc = [1, deque((e,), _HISTORY)]
                else:
                    c[0] += 1
                    if c[1] is None:
                        c[1] = deque((e,), _HISTORY)
                    else:
                        c[1].append(e)


def _version_error(fn, shape, version, expected):
    return RuntimeError(
        f"one of the variables needed for gradient computation has been modified by an inplace "
        f"operation: [Tensor of shape {tuple(shape)}] was modified in place after it was used by "
        f"{type(fn).__name__}; its version is {version}, expected {expected}")


def _check_saved(fn, ep):
    """Raise if a tensor that ``fn`` saved at forward (epoch ``ep``) was modified in place since."""
    saves = type(fn).saves
    args = fn.__dict__.get("_saved")
    if args is not None:
        positions = range(len(args)) if "inputs" in saves else [s for s in saves if type(s) is int]
        for i in positions:
            a = args[i] if i < len(args) else None
            if type(a) not in _TENSOR_TYPES:
                continue
            c = a._vc
            if c is None or c[1] is None or c[1][-1] <= ep:
                continue
            h = c[1]
            expected = c[0] - (len(h) - bisect.bisect_right(h, ep))
            if len(h) == _HISTORY and h[0] > ep:     # older bumps forgotten: a bound only
                expected = f"at most {expected}"
            raise _version_error(fn, a.data.shape, c[0], expected)
    for c, shape in fn.__dict__.get("_out_vc", ()):
        if c[0]:
            raise _version_error(fn, shape, c[0], 0)


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
    t._vc = None
    return t


_new = object.__new__


def _as_array(data, dtype=None):
    """Convert user data to an array: Python floats become the default dtype, arrays keep theirs
    (and their array module: a CuPy array stays a CuPy array)."""
    if isinstance(data, Tensor):
        data = data.data
    xp = array_namespace(data)
    if dtype is not None:
        return xp.asarray(data, dtype=dtype)
    if isinstance(data, np.ndarray) or xp is not np:
        return data
    arr = np.asarray(data)                   # Python data: lists, scalars, NumPy scalars
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

    This class holds the array facts (shape, dtype, item ...) and the autograd entry points
    (backward, detach, requires_grad_, retain_grad). The methods that compute (operators,
    elementwise math, reductions, shape changes, indexing, casts) are each defined once, as a
    function or an op's ``apply``, in ``chainrule/tensor_api.py``, and attached to this class by
    the table ``TENSOR_METHODS`` there: ``x.sum(axis=1)`` is ``chainrule.sum(x, axis=1)``, and
    ``x + y`` is ``ops.basic.Add.apply(x, y)``.
    """

    __slots__ = ("data", "grad", "requires_grad", "_ctx", "_idx", "_retain", "_vc", "__weakref__")
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
        self._vc = None                  # version counter, see _bump

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
    def _version(self):
        """How many times this tensor (or a view sharing its memory) was modified in place."""
        c = self._vc
        return 0 if c is None else c[0]

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

    # -- autograd ----------------------------------------------------------------------------------
    def detach(self):
        """The same data, cut from the graph (no gradient flows through the result); it shares the
        version counter, as in PyTorch, so modifying it in place is caught too."""
        d = _make(self.data, False, None, 0)
        c = self._vc
        if c is None:
            c = self._vc = [0, None]
        d._vc = c
        return d

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

    def backward(self, gradient=None, retain_graph=False):
        """Accumulate d(self)/d(leaf) into every leaf's ``.grad`` that requires grad.

        ``gradient`` is the upstream gradient dL/d(self); it may be left out only for a tensor
        with one element (a loss), as in PyTorch.
        """
        if not self.requires_grad:
            raise RuntimeError(
                "element 0 of tensors does not require grad and does not have a grad_fn")
        xp = array_namespace(self.data)
        if gradient is None:
            if self.data.size != 1:
                raise RuntimeError(
                    f"grad can be implicitly created only for scalar outputs; this tensor has "
                    f"shape {self.data.shape}: pass backward(gradient) with that shape")
            gradient = xp.ones_like(self.data)
        else:
            gradient = xp.array(_as_array(gradient), dtype=self.data.dtype)  # a copy we own
            if gradient.shape != self.data.shape:
                raise RuntimeError(
                    f"backward: gradient has shape {gradient.shape}, expected {self.data.shape}")
        _run_backward(self, gradient, retain_graph)


_TENSOR_TYPES = {Tensor}


def _raw(x):
    return x.data if isinstance(x, Tensor) else x


def _raw_index(index):
    if isinstance(index, tuple):
        return tuple(_raw(i) for i in index)
    return _raw(index)


# -- the tape --------------------------------------------------------------------------------------
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
    anomaly = _anomaly.enabled
    for fn in reversed(order):
        grads = fn._grads
        fn._grads = None
        if grads is None:
            continue
        if not retain_graph:
            fn.retain_saved = False
        ep = fn._epoch
        if ep is not None and ep != _epoch:
            _check_saved(fn, ep)
        if fn.n_out == 1:
            in_grads = fn.backward(grads[0])
        else:                                    # outputs that got no gradient get zeros
            xp = array_namespace(next(g for g in grads if g is not None))
            in_grads = fn.backward(*[g if g is not None else xp.zeros(s, d)
                                     for g, (s, d) in zip(grads, fn._out_meta)])
        inputs = fn.inputs
        if type(in_grads) is not tuple:
            in_grads = (in_grads,)
        if anomaly:
            _anomaly.check_backward(fn, [None if t is None else t.data for t in inputs],
                                    grads, in_grads)
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
        s = t.grad.data + g
        t.grad.data = np.asarray(s) if isinstance(s, np.generic) else s   # (0-d + 0-d: a scalar)


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
