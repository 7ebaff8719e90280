"""One helper for every op test: run a chainrule function and its PyTorch twin on the same float64
inputs, compare the forward values and every input gradient, then check chainrule's gradients by
finite differences (``chainrule.gradcheck``).

>>> check_against_torch(lambda a, b: a * b, lambda a, b: a * b, [(3, 4), (4,)])
"""
import warnings

import numpy as np
import torch

import chainrule as cr

RTOL = 1e-10       # float64 throughout: the two libraries agree to rounding, so keep this tight
ATOL = 1e-12


class Const:
    """An input passed to both functions as a constant: an array (a Tensor / torch tensor that
    needs no gradient) such as integer labels, a boolean mask or a fixed target."""

    def __init__(self, value):
        self.value = np.asarray(value)


def randn(shape, rng=None, low=None, away_from_zero=0.0):
    """Standard normal float64 values of ``shape``; ``away_from_zero=d`` pushes |x| >= d (for
    kinks such as abs and relu), ``low`` adds a floor (positive inputs for log and sqrt)."""
    rng = np.random.default_rng(0) if rng is None else rng
    x = rng.standard_normal(shape)
    if away_from_zero:
        x = np.where(x >= 0, x + away_from_zero, x - away_from_zero)
    if low is not None:
        x = np.abs(x) + low
    return np.asarray(x, dtype=np.float64)


def _to_arrays(inputs, rng):
    arrays, grads = [], []
    for spec in inputs:
        if isinstance(spec, Const):
            arrays.append(spec.value)
            grads.append(False)
        elif isinstance(spec, tuple):
            arrays.append(randn(spec, rng))
            grads.append(True)
        else:
            a = np.asarray(spec)
            arrays.append(a.copy())
            grads.append(a.dtype.kind == "f")
    return arrays, grads


def _outputs(out):
    return list(out) if isinstance(out, (tuple, list)) else [out]


def check_against_torch(cr_fn, torch_fn, inputs, *, rtol=RTOL, atol=ATOL, seed=0, fd=True,
                        fd_atol=1e-6, fd_rtol=1e-5, upstream=None):
    """Compare ``cr_fn(*tensors)`` with ``torch_fn(*torch_tensors)``: values, dtypes, shapes and the
    gradient of every floating input, then check chainrule's gradient by finite differences.

    ``inputs``: each a shape tuple (standard normal float64 values), an array (floating arrays are
    differentiated, integer/boolean ones passed as constants) or a ``Const``. Non-scalar outputs are
    contracted with a random upstream gradient (``upstream`` overrides it), so that every element of
    the Jacobian counts; scalar outputs get a random scalar too. Several outputs (split) are allowed.
    Returns (chainrule input tensors, chainrule outputs) for further checks.
    """
    rng = np.random.default_rng(seed)
    arrays, needs = _to_arrays(inputs, rng)
    xs = [cr.Tensor(a.copy(), requires_grad=n) for a, n in zip(arrays, needs)]
    ts = [torch.tensor(a.copy(), requires_grad=n) for a, n in zip(arrays, needs)]

    with warnings.catch_warnings():
        warnings.simplefilter("error")           # a NumPy RuntimeWarning (overflow, 0/0) is a bug
        outs = _outputs(cr_fn(*xs))
    touts = _outputs(torch_fn(*ts))
    assert len(outs) == len(touts), f"{len(outs)} outputs, torch gives {len(touts)}"
    for k, (o, t) in enumerate(zip(outs, touts)):
        assert isinstance(o, cr.Tensor), f"output {k} is a {type(o).__name__}, not a Tensor"
        tn = t.detach().numpy()
        assert o.shape == tn.shape, f"output {k}: shape {o.shape}, torch {tn.shape}"
        assert o.dtype == tn.dtype, f"output {k}: dtype {o.dtype}, torch {tn.dtype}"
        np.testing.assert_allclose(o.data, tn, rtol=rtol, atol=atol, err_msg=f"forward, output {k}")

    diff = [k for k, t in enumerate(touts) if t.requires_grad]
    if not any(needs) or not diff:
        return xs, outs
    if upstream is None:
        upstream = [rng.standard_normal(touts[k].shape) for k in diff]
    upstream = [np.asarray(u, dtype=np.float64) for u in upstream]

    # chainrule: one output takes the upstream gradient directly; several are summed first
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        if len(diff) == 1:
            outs[diff[0]].backward(upstream[0])
        else:
            total = None
            for k, u in zip(diff, upstream):
                term = (outs[k] * cr.Tensor(u)).sum()
                total = term if total is None else total + term
            total.backward()
    torch.autograd.backward([touts[k] for k in diff], [torch.tensor(u) for u in upstream])

    for i, (x, t) in enumerate(zip(xs, ts)):
        if not needs[i]:
            assert x.grad is None, f"input {i} needs no gradient but got one"
            continue
        tg = None if t.grad is None else t.grad.numpy()
        if tg is None:
            assert x.grad is None or not np.any(x.grad.data), f"input {i}: torch gives no gradient"
            continue
        assert x.grad is not None, f"input {i}: no gradient, torch gives one"
        assert x.grad.shape == x.shape, f"input {i}: gradient shape {x.grad.shape} != {x.shape}"
        assert x.grad.dtype == np.float64, f"input {i}: gradient dtype {x.grad.dtype}"
        np.testing.assert_allclose(x.grad.data, tg, rtol=rtol, atol=atol,
                                   err_msg=f"gradient of input {i}")

    if fd:
        fresh = [cr.Tensor(a.copy(), requires_grad=n) for a, n in zip(arrays, needs)]
        assert cr.gradcheck(cr_fn, fresh, atol=fd_atol, rtol=fd_rtol)
    return xs, outs


def to_torch(t, requires_grad=None):
    """A torch tensor with a copy of a chainrule Tensor's (or an array's) values."""
    a = np.array(t.data if isinstance(t, cr.Tensor) else t, copy=True)
    rg = a.dtype.kind == "f" if requires_grad is None else requires_grad
    return torch.tensor(a, requires_grad=rg)


def assert_close(a, b, rtol=RTOL, atol=ATOL, msg=""):
    """Compare chainrule Tensors / torch tensors / arrays by value."""
    def arr(v):
        if isinstance(v, cr.Tensor):
            return v.data
        if isinstance(v, torch.Tensor):
            return v.detach().numpy()
        return np.asarray(v)
    np.testing.assert_allclose(arr(a), arr(b), rtol=rtol, atol=atol, err_msg=msg)
