"""No op hard-codes NumPy: layers, losses and optimizers run forward, backward and a step on a
shim array type whose array module is not ``numpy`` (DESIGN rule 2, the door to CuPy).

``ShimArray`` is an ndarray subclass whose ``__array_namespace__`` is ``SHIM``, a module that
forwards to NumPy and counts each call. Like a CuPy array it refuses what only NumPy could do:
  * a ``numpy.<function>`` called on it directly (``np.einsum(x, ...)``, ``np.moveaxis``, ...),
  * a NumPy ufunc called directly (``np.exp(x)``, ``np.maximum.reduce(x)``); operators
    (``x + y``, ``x @ w``, ``abs(x)``) and array methods (``x.sum()``, ``x.reshape``) are fine,
  * a plain NumPy array mixed into its arithmetic (what ``np.zeros(...)`` or ``np.asarray(...)``
    inside an op would give),
and its results are never NumPy scalars (0-d arrays instead, as CuPy). Integer index arrays on the
host are accepted, as CuPy accepts them (it copies them to the device). Each workload is also run on
plain NumPy arrays, and outputs, gradients and updated parameters must agree.
"""
import collections
import os
import sys

import numpy as np
import pytest

import chainrule as cr
from chainrule import backend, nn, optim
from chainrule.autograd import Function, Tensor
from chainrule.nn import functional as F

_NUMPY_DIR = os.path.dirname(np.__file__) + os.sep
# the ufuncs that Python operators on arrays call (x ** 2 is square, x ** -1 reciprocal)
_OPERATOR_UFUNCS = {np.add, np.subtract, np.multiply, np.true_divide, np.floor_divide,
                    np.remainder, np.power, np.square, np.reciprocal, np.negative, np.positive,
                    np.absolute, np.matmul, np.equal, np.not_equal, np.less, np.less_equal,
                    np.greater, np.greater_equal, np.invert, np.bitwise_and, np.bitwise_or,
                    np.bitwise_xor}


class HardCodedNumpy(AssertionError):
    """Array code used ``numpy`` where it should have used the data's array module."""


def _caller(depth=2):
    f = sys._getframe(depth)
    return os.path.abspath(f.f_code.co_filename), f"{f.f_code.co_filename}:{f.f_lineno}"


def _numpy_internal(path):
    # NumPy's own Python code running for an array method (x.mean() -> numpy/_core/_methods.py)
    return path.startswith(_NUMPY_DIR)


def _plain(a):
    return isinstance(a, np.ndarray) and not isinstance(a, ShimArray)


def _unwrap(x):
    if isinstance(x, ShimArray):
        return x.view(np.ndarray)
    if isinstance(x, (list, tuple)):
        return type(x)(_unwrap(v) for v in x)
    return x


def _wrap(x):
    if isinstance(x, np.ndarray):
        return x.view(ShimArray)
    if isinstance(x, np.generic):
        return np.asarray(x).view(ShimArray)
    if isinstance(x, (list, tuple)) and any(isinstance(v, (np.ndarray, np.generic)) for v in x):
        return type(x)(_wrap(v) for v in x)
    return x


def _call(fn, args, kwargs):
    out = kwargs.get("out")
    result = fn(*_unwrap(args), **{k: _unwrap(v) for k, v in kwargs.items()})
    if out is not None:                     # in place: hand back the caller's own array(s)
        return out[0] if isinstance(out, tuple) and len(out) == 1 else out
    return _wrap(result)


class _ShimUfunc:
    def __init__(self, ns, ufunc):
        self._ns, self._ufunc = ns, ufunc

    def __call__(self, *args, **kwargs):
        self._ns.calls[self._ufunc.__name__] += 1
        return _call(self._ufunc, args, kwargs)

    def __getattr__(self, method):          # reduce, at, accumulate, outer
        self._ns.calls[f"{self._ufunc.__name__}.{method}"] += 1
        return lambda *args, **kwargs: _call(getattr(self._ufunc, method), args, kwargs)


class ShimNamespace:
    """An array module over NumPy that records every call, like a CuPy would be called."""

    def __init__(self):
        self.calls = collections.Counter()

    def __getattr__(self, name):
        obj = getattr(np, name)
        if isinstance(obj, np.ufunc):
            return _ShimUfunc(self, obj)
        if isinstance(obj, type) or not callable(obj):
            return obj                      # dtypes (xp.float32), constants, classes

        def function(*args, **kwargs):
            self.calls[name] += 1
            return _call(obj, args, kwargs)

        return function


SHIM = ShimNamespace()


class ShimArray(np.ndarray):
    """An array whose module is SHIM; refuses hard-coded NumPy (see the module docstring)."""

    def __array_namespace__(self, api_version=None):
        return SHIM

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        path, where = _caller()
        if not _numpy_internal(path):
            if method != "__call__" or ufunc not in _OPERATOR_UFUNCS:
                name = ufunc.__name__ + ("" if method == "__call__" else "." + method)
                raise HardCodedNumpy(f"numpy.{name} called on a shim array at {where}; "
                                     f"use xp = array_namespace(x) and xp.{name}")
            plain = [a for a in inputs + tuple(kwargs.get("out", ())) if _plain(a)]
            if plain:
                raise HardCodedNumpy(
                    f"a plain NumPy array {plain[0].shape} {plain[0].dtype} meets a shim array in "
                    f"numpy.{ufunc.__name__} at {where}: made by a hard-coded numpy call "
                    f"(np.zeros, np.asarray, np.arange ...)?")
        return _call(getattr(ufunc, method), inputs, kwargs)

    def __array_function__(self, func, types, args, kwargs):
        path, where = _caller()
        if not _numpy_internal(path):
            raise HardCodedNumpy(f"numpy.{func.__name__} called on a shim array at {where}; "
                                 f"use xp = array_namespace(x) and xp.{func.__name__}")
        return super().__array_function__(func, types, args, kwargs)

    def __getitem__(self, index):
        r = super().__getitem__(index)
        return np.asarray(r).view(ShimArray) if isinstance(r, np.generic) else r


def shim(a):
    return np.array(a).view(ShimArray)


# -- the array namespace itself ----------------------------------------------------------------------
def test_array_namespace_follows_the_data():
    assert backend.array_namespace(np.zeros(3)) is np
    assert backend.array_namespace(np.float32(1.0)) is np
    assert backend.array_namespace(2.0) is np and backend.array_namespace([1, 2]) is np
    assert backend.array_namespace(shim([1.0])) is SHIM                # __array_namespace__

    class Other:
        pass

    marker = object()
    backend.register_array_namespace(Other, marker)
    try:
        assert backend.array_namespace(Other()) is marker             # the registry
    finally:
        backend._NAMESPACES.pop(Other)


# -- the harness ------------------------------------------------------------------------------------
def _run(build, inputs, step, on_shim, seed=0):
    """Build the model (seeded), move its parameters, buffers and the inputs to shim arrays if
    asked, run ``step``; return every array it produced or updated, by name. (The fast path
    engages for plain ndarrays only, so on shim arrays the reference ops in ops/ run.)"""
    cr.manual_seed(seed)
    model = build()
    cr.manual_seed(seed + 1)
    conv = shim if on_shim else np.array
    for t in list(model.parameters()) + list(model.buffers()):
        t.data = conv(t.data)
    xs = [Tensor(conv(a), requires_grad=a.dtype.kind == "f") for a in inputs]
    out = step(model, *xs)
    arrays = {"out": out.data}
    for i, x in enumerate(xs):
        if x.grad is not None:
            arrays[f"input{i}.grad"] = x.grad.data
    for name, p in model.named_parameters():
        arrays[name] = p.data
        if p.grad is not None:
            arrays[name + ".grad"] = p.grad.data
    for name, b in model.named_buffers():
        arrays[name] = b.data
    return arrays


def _check(build, inputs, step, min_calls=1):
    SHIM.calls.clear()
    got = _run(build, inputs, step, on_shim=True)
    calls = sum(SHIM.calls.values())
    want = _run(build, inputs, step, on_shim=False)
    assert got.keys() == want.keys()
    for k, a in got.items():
        if want[k].dtype.kind == "f" or want[k].ndim:
            assert isinstance(a, ShimArray), f"{k} left the shim's array module: {type(a).__name__}"
        np.testing.assert_allclose(np.asarray(a), want[k], rtol=1e-6, atol=1e-7, err_msg=k)
    assert calls >= min_calls, "the shim namespace was never asked"
    return SHIM.calls


RNG = np.random.default_rng(0)
X = RNG.standard_normal((6, 5))
LABELS = RNG.integers(0, 3, 6)


def _train(loss_fn, opt=None):
    def step(model, x, *rest):
        model.train()
        y = model(x)
        loss = loss_fn(y, *rest)
        loss.backward()
        if opt is not None:
            o = opt(model.parameters())
            o.step()
            o.step()                          # a second step reads the optimizer's state
        return loss
    return step


def _mlp(act):
    return lambda: nn.Sequential(nn.Linear(5, 4, dtype=np.float64), act, nn.Linear(4, 3, dtype=np.float64))


@pytest.mark.parametrize("act", [nn.ReLU, nn.Tanh, nn.Sigmoid], ids=lambda a: a.__name__)
def test_linear_and_activations_with_cross_entropy(act):
    calls = _check(_mlp(act()), [X, LABELS], _train(F.cross_entropy))
    assert calls["arange"] and calls["exp"]          # the loss took its functions from the data


@pytest.mark.parametrize("act", [nn.Softmax, nn.LogSoftmax], ids=lambda a: a.__name__)
def test_softmax_layers_with_mse(act):
    target = RNG.random((6, 3))
    _check(_mlp(act(axis=1)), [X, target], _train(F.mse_loss))


def test_batchnorm_dropout_and_sgd_momentum():
    def build():
        return nn.Sequential(nn.Linear(5, 4, dtype=np.float64), nn.BatchNorm1d(4, dtype=np.float64),
                             nn.Dropout(0.3), nn.ReLU(), nn.Linear(4, 3, dtype=np.float64))
    _check(build, [X, LABELS],
           _train(F.cross_entropy, lambda p: optim.SGD(p, lr=0.1, momentum=0.9)))


def test_batchnorm_in_eval_mode_and_adam():
    def step(model, x, y):
        model.train()
        model(x)                                 # move the running statistics
        model.eval()
        loss = F.mse_loss(model(x), y)
        loss.backward()
        o = optim.Adam(model.parameters(), lr=0.01)
        o.step()
        o.step()
        return loss

    def build():
        return nn.Sequential(nn.Linear(5, 3, dtype=np.float64), nn.BatchNorm1d(3, dtype=np.float64))
    calls = _check(build, [X, RNG.random((6, 3))], step)
    assert calls["sqrt"] and calls["zeros_like"]


def test_tensor_methods_and_free_functions():
    def step(model, x):
        y = cr.cat([x.exp().log(), x.clip(-0.5, 0.5), abs(x)], axis=1)
        z = cr.stack([y.max(axis=1), y.min(axis=0)[:6], y.mean(axis=1)], axis=0)
        a, b = z.split(2, axis=0)
        w = cr.where(x.data > 0, x, x * 0.5).var(axis=0).sum()
        return (a.sum() * b.sum() + (x[1:3] ** 2).sum() + x.T.sqrt().relu().sum()
                + (x @ x.T).sum() / 7 + w + cr.maximum(x, 0.1).sum() + x[[0, 0, 2]].sum())

    def run(model, x):
        out = step(model, x)
        out.backward()
        return out

    _check(lambda: nn.Identity(), [np.abs(X) + 0.1], run)


def test_conv2d_and_max_pool2d():
    def build():
        return nn.Sequential(nn.Conv2d(2, 3, 3, padding=1, dtype=np.float64), nn.ReLU(),
                             nn.MaxPool2d(2), nn.Flatten(), nn.Linear(3 * 2 * 2, 3, dtype=np.float64))
    x = RNG.standard_normal((4, 2, 4, 4))
    _check(build, [x, LABELS[:4]], _train(F.cross_entropy))


@pytest.mark.parametrize("cell", ["LSTM", "GRU"])
def test_recurrent_layers(cell):
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = getattr(nn, cell)(5, 4, batch_first=True, dtype=np.float64)
            self.head = nn.Linear(4, 3, dtype=np.float64)

        def forward(self, x):
            out, _ = self.rnn(x)
            return self.head(out[:, -1])

    x = RNG.standard_normal((6, 3, 5))
    _check(Net, [x, LABELS], _train(F.cross_entropy, lambda p: optim.Adam(p, lr=0.01)))


# -- the shim can fail ------------------------------------------------------------------------------
class _ExpHardCoded(Function):
    def forward(self, a):
        self.y = y = np.exp(a)                   # the bug this test exists to catch
        return y

    def backward(self, g):
        return g * self.y


class _ZerosHardCoded(Function):
    def forward(self, a):
        self.shape = a.shape
        return a * 2

    def backward(self, g):
        out = np.zeros(self.shape, g.dtype)      # a NumPy array, whatever the data's module
        out += g * 2
        return out


def test_the_shim_catches_hard_coded_numpy():
    x = Tensor(shim(X), requires_grad=True)
    with pytest.raises(HardCodedNumpy, match="numpy.exp called on a shim array"):
        _ExpHardCoded.apply(x)
    with pytest.raises(HardCodedNumpy, match="numpy.einsum"):
        np.einsum("ij->j", x.data)
    with pytest.raises(HardCodedNumpy, match="plain NumPy array"):
        (_ZerosHardCoded.apply(x) * 1.0).sum().backward()
    with pytest.raises(HardCodedNumpy, match="plain NumPy array"):
        x.data + np.ones(X.shape)                 # what an np.ones inside an op would meet
    # and the same ops are fine on NumPy's own arrays
    _ExpHardCoded.apply(Tensor(X, requires_grad=True)).sum().backward()
