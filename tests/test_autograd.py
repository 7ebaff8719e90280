"""chainrule/autograd.py: the tape's semantics, checked against PyTorch where PyTorch defines them."""
import sys
import weakref

import numpy as np
import pytest
import torch

import chainrule as cr
from chainrule import nn
from chainrule.autograd import Function
from helpers import assert_close, check_against_torch, randn, to_torch


def pair(shape=(3,), seed=0):
    """The same float64 leaf in chainrule and in torch."""
    a = randn(shape, np.random.default_rng(seed))
    return cr.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)


# -- accumulation -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("f", [lambda x: x * x, lambda x: x + x, lambda x: x * x * x - x / (x * x + 1),
                               lambda x: (x @ x) * x, lambda x: x.exp() * x.sum()],
                         ids=["x*x", "x+x", "poly", "dot", "exp*sum"])
def test_reused_tensor_accumulates(f):
    check_against_torch(f, f, [(4,)])


def test_diamond_with_shared_subexpressions():
    def f(x, w):
        a = x * w                 # used by both branches
        b = a.exp()
        c = a * a + a             # a used twice more
        d = (b * c).sum(axis=1)
        return d + a.mean(axis=1) * d
    check_against_torch(f, f, [(3, 4), (4,)])


def test_gradients_accumulate_across_backward_calls():
    x, tx = pair()
    for _ in range(2):
        (x * x).sum().backward()
        (tx * tx).sum().backward()
    assert_close(x.grad, tx.grad)
    assert_close(x.grad, 4 * x.data)


def test_backward_on_a_leaf_accumulates_into_its_grad():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    x.backward(np.array([1.0, 1.0], dtype=np.float32))
    x.backward(np.array([0.5, 2.0], dtype=np.float32))
    np.testing.assert_array_equal(x.grad.data, [1.5, 3.0])


# -- grad mode ----------------------------------------------------------------------------------------------
def test_no_grad_context_records_nothing():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    with cr.no_grad():
        assert not cr.is_grad_enabled()
        y = x * 2 + 1
        z = y.sum()
    assert cr.is_grad_enabled()
    for t in (y, z):
        assert not t.requires_grad and t.grad_fn is None and t.is_leaf
    with pytest.raises(RuntimeError):
        z.backward()


def test_no_grad_decorator_and_nesting():
    @cr.no_grad()
    def double(t):
        assert not cr.is_grad_enabled()
        return t * 2

    @cr.no_grad                                   # without parentheses too, as in PyTorch 2
    def triple(t):
        return t * 3

    x = cr.tensor([1.0], requires_grad=True)
    assert not double(x).requires_grad and not triple(x).requires_grad
    assert double.__name__ == "double" and triple.__name__ == "triple"
    assert cr.is_grad_enabled()
    with cr.no_grad():
        with cr.enable_grad():
            assert (x * 2).requires_grad
        with cr.no_grad():
            pass
        assert not cr.is_grad_enabled()      # the inner block restores the outer state
    assert cr.is_grad_enabled()


def test_no_grad_restores_mode_after_an_exception():
    with pytest.raises(ZeroDivisionError):
        with cr.no_grad():
            1 / 0
    assert cr.is_grad_enabled()


def test_parameter_update_under_no_grad_is_not_recorded():
    w = nn.Parameter(np.ones(3))
    (w * 3).sum().backward()
    with cr.no_grad():
        w2 = w - 0.1 * w.grad
    assert w2.grad_fn is None and not w2.requires_grad


# -- leaving the graph ----------------------------------------------------------------------------------------
def test_detach_shares_data_and_stops_gradient():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    d = (x * 2).detach()
    assert not d.requires_grad and d.grad_fn is None
    y = (x * d).sum()                        # d is a constant here
    y.backward()
    np.testing.assert_array_equal(x.grad.data, [2.0, 4.0])
    e = x.detach()
    e.data[0] = 10.0                         # shares memory, as in PyTorch
    assert x.data[0] == 10.0


def test_item_numpy_asarray_tolist():
    x = cr.tensor(np.array([[1.5, 2.0]]), requires_grad=True)
    s = x.sum()
    assert s.item() == 3.5 and isinstance(s.item(), float)
    assert float(s) == 3.5 and int(cr.tensor(2.0)) == 2
    with pytest.raises(ValueError, match=r"\(1, 2\)"):
        x.item()
    assert x.numpy() is x.data                           # shares memory
    a = np.asarray(x)
    assert a.dtype == np.float64 and np.shares_memory(a, x.data)
    assert np.asarray(x, dtype=np.float32).dtype == np.float32
    b = np.array(x)
    assert not np.shares_memory(b, x.data) and np.array_equal(b, x.data)
    assert x.tolist() == [[1.5, 2.0]]
    assert len(x) == 1 and x.numel() == 2 and x.size() == (1, 2) and x.size(1) == 2 and x.dim() == 2


def test_zero_dim_results_are_arrays():
    # NumPy returns scalars (not 0-d arrays) for ufuncs on 0-d arrays, x[i] and full reductions;
    # a Tensor's data and grad stay arrays so that np.asarray and in-place updates work
    a = cr.tensor(2.0, requires_grad=True)
    loss = a * cr.tensor(3.0) + 1.0
    for t in (loss, cr.tensor([1.0, 2.0])[0], cr.tensor([1.0, 2.0]).argmax(), cr.tensor(1.0) > 0,
              cr.tensor(np.arange(3.0)).sum() * 2, (a * a).exp()):
        assert type(t.data) is np.ndarray and t.shape == ()
        assert type(np.asarray(t)) is np.ndarray and type(t.numpy()) is np.ndarray
    assert np.asarray(loss) == 7.0
    loss.backward()
    (a * 2).backward()                                   # accumulate into a 0-d grad
    assert type(a.grad.data) is np.ndarray and a.grad.item() == 5.0
    a.grad.data[...] = 0                                 # what zero_grad(set_to_none=False) does
    w = nn.Parameter(np.array(0.5))                      # a 0-d parameter (a learnable scale)
    (w * cr.tensor(np.ones(3))).sum().backward()         # its gradient is a full sum
    assert type(w.grad.data) is np.ndarray and w.grad.item() == 3.0
    w.grad.data *= 0.5
    assert cr.tensor(np.float64(2.0)).dtype == np.float64   # NumPy scalars keep their dtype


# -- backward's arguments -----------------------------------------------------------------------------------
def test_backward_on_non_scalar_needs_a_gradient_like_torch():
    x, tx = pair((2, 3))
    with pytest.raises(RuntimeError, match="scalar outputs"):
        (x * 2).backward()
    with pytest.raises(RuntimeError, match="scalar outputs"):
        (tx * 2).backward()


def test_backward_with_explicit_gradient():
    x, tx = pair((2, 3))
    g = randn((2, 3), np.random.default_rng(9))
    (x.exp() * x).backward(g)
    (tx.exp() * tx).backward(torch.tensor(g))
    assert_close(x.grad, tx.grad)
    # a one-element tensor of any shape may omit the gradient
    y = cr.tensor(np.array([[2.0]]), requires_grad=True)
    (y * 3).backward()
    assert y.grad.data.tolist() == [[3.0]]


def test_explicit_gradient_is_copied():
    x = cr.tensor(np.ones(3), requires_grad=True)
    g = np.array([1.0, 2.0, 3.0])
    (x + 0).backward(g)
    g[:] = 0
    np.testing.assert_array_equal(x.grad.data, [1.0, 2.0, 3.0])
    assert x.grad.data is not g


def test_backward_errors():
    x = cr.tensor(np.ones(3), requires_grad=True)
    with pytest.raises(RuntimeError, match="shape"):
        (x * 2).backward(np.ones(4))
    with pytest.raises(RuntimeError, match="does not require grad"):
        cr.tensor([1.0]).backward()


def test_retain_grad_matches_torch():
    x, tx = pair((2, 3))

    def f(x, keep):
        h = x * 2
        s = h.exp()
        keep(h)
        keep(s)
        return (s * h).sum(), h, s

    y, h, s = f(x, lambda t: t.retain_grad())
    ty, th, ts = f(tx, lambda t: t.retain_grad())
    y.backward()
    ty.backward()
    assert_close(h.grad, th.grad)
    assert_close(s.grad, ts.grad)
    assert_close(x.grad, tx.grad)
    # without retain_grad a non-leaf keeps no gradient
    h2 = x * 3
    (h2 * h2).sum().backward()
    assert h2.grad is None


def test_retain_grad_on_the_root_accumulates_like_torch():
    x, tx = pair((3,))
    g = np.array([1.0, 2.0, 3.0])
    y, ty = x * 2, tx * 2
    y.retain_grad()
    ty.retain_grad()
    y.backward(g, retain_graph=True)
    y.backward(g)
    ty.backward(torch.tensor(g), retain_graph=True)
    ty.backward(torch.tensor(g))
    assert_close(y.grad, ty.grad)
    assert_close(x.grad, tx.grad)


def test_retain_grad_needs_requires_grad():
    with pytest.raises(RuntimeError):
        cr.tensor([1.0]).retain_grad()


def test_second_backward_raises_unless_retain_graph():
    x, tx = pair()
    y = (x.exp() * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="second time"):
        y.backward()
    # with retain_graph=True the second pass works and accumulates, as in torch
    x.grad = None
    y = (x.exp() * x).sum()
    ty = (tx.exp() * tx).sum()
    y.backward(retain_graph=True)
    y.backward()
    ty.backward(retain_graph=True)
    ty.backward()
    assert_close(x.grad, tx.grad)


def test_graph_is_freed_after_backward():
    x = cr.tensor(np.ones(3), requires_grad=True)
    h = x * 2
    ref = weakref.ref(h)
    y = (h * 3).sum()
    del h
    y.backward()
    assert ref() is None                     # the intermediate went with the graph (no cycles:
                                             # reference counting frees it at once)


# -- depth ------------------------------------------------------------------------------------------------
def test_deep_chain_does_not_hit_the_recursion_limit():
    n = 5000
    assert n > sys.getrecursionlimit()
    x = cr.tensor(np.array([1.0, -0.5]), requires_grad=True)
    y = x
    for _ in range(n):
        y = y * 1.0001 + 0.0
    y.sum().backward()
    np.testing.assert_allclose(x.grad.data, [1.0001 ** n] * 2, rtol=1e-9)


def test_deep_unrolled_recurrence_matches_torch():
    steps = 2000
    x, tx = pair((2,))
    w = randn((2, 2), np.random.default_rng(1)) * 0.5

    def run(x, W):
        h = x
        for _ in range(steps):
            h = (h @ W).tanh() + x * 0.01
        return h.sum()

    run(x, cr.tensor(w)).backward()
    run(tx, torch.tensor(w)).backward()
    assert_close(x.grad, tx.grad, rtol=1e-9, atol=1e-12)


def test_deep_graph_can_be_dropped_without_backward():
    x = cr.tensor([1.0], requires_grad=True)
    y = x
    for _ in range(10000):
        y = y + 1.0
    del y                                    # deallocating a long chain must not crash


# -- frozen parameters and leaf ownership ---------------------------------------------------------------------
def test_frozen_parameters_get_no_grad():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    model[0].requires_grad_(False)
    model(cr.randn(5, 3)).sum().backward()
    assert model[0].weight.grad is None and model[0].bias.grad is None
    assert model[2].weight.grad is not None and model[2].bias.grad is not None
    w = nn.Parameter(np.ones(2))
    w.requires_grad = False
    assert not (w * 2).requires_grad


@pytest.mark.parametrize("f", [
    lambda a, b: a + b,                        # Add hands the same array to both leaves
    lambda a, b: (a + b) * 1.0,
    lambda a, b: a - b * 1.0,
    lambda a, b: a + b.clone(),                # Cast (same dtype) passes its gradient through
    lambda a, b: a.reshape(2, 3) + b.reshape(2, 3),   # views of the gradient
    lambda a, b: cr.cat([a, b]).reshape(2, 6),
], ids=["add", "add-mul", "sub", "clone", "reshape", "cat"])
def test_each_leaf_owns_its_grad(f):
    a = cr.tensor(np.ones(6), requires_grad=True)
    b = cr.tensor(np.ones(6), requires_grad=True)
    out = f(a, b)
    out.backward(np.ones(out.shape))
    gb = b.grad.data.copy()
    a.grad.data *= 10.0                        # optimizers and clipping update grads in place
    np.testing.assert_array_equal(b.grad.data, gb)
    assert not np.shares_memory(a.grad.data, b.grad.data)
    b.grad.data *= 2.0                         # and grads are writeable
    np.testing.assert_array_equal(b.grad.data, 2 * gb)


def test_grad_of_a_broadcast_reduction_is_writeable():
    x = cr.tensor(np.ones((2, 3)), requires_grad=True)
    x.sum().backward()                         # Sum's backward is a read-only broadcast view
    x.grad.data *= 0.5
    np.testing.assert_array_equal(x.grad.data, np.full((2, 3), 0.5))


# -- operands and dtypes --------------------------------------------------------------------------------------
def test_ndarray_op_tensor_returns_tensor():
    t = cr.tensor([1.0, 2.0], requires_grad=True)
    a = np.array([3.0, 4.0], dtype=np.float32)
    for r in (a + t, a - t, a * t, a / t, a ** t, np.float32(2.0) * t, a @ t):
        assert type(r) is cr.Tensor and r.requires_grad
    (a * t).sum().backward()
    np.testing.assert_array_equal(t.grad.data, a)


def test_dtype_rules():
    assert cr.tensor([1.0, 2.0]).dtype == np.float32          # Python floats: the default dtype
    assert cr.tensor(1.5).dtype == np.float32
    assert cr.tensor(np.array([1.0])).dtype == np.float64     # arrays keep theirs
    assert cr.tensor([1, 2]).dtype == np.int64
    assert cr.Tensor([1.0]).dtype == np.float32
    x = cr.randn(3, requires_grad=True)
    assert x.dtype == np.float32
    assert (x * 2.5 + 1).dtype == np.float32                  # Python scalars do not promote
    assert (x / 3).dtype == np.float32 and (x ** 2).dtype == np.float32
    assert x.exp().sum().dtype == np.float32
    y = cr.randn(3, dtype=np.float64, requires_grad=True)
    assert (y * 2.5).dtype == np.float64
    (y * y).sum().backward()
    assert y.grad.dtype == np.float64
    with pytest.raises(TypeError, match="floating"):
        cr.tensor([1, 2], requires_grad=True)
    with pytest.raises(TypeError, match="floating"):
        cr.tensor([1, 2]).requires_grad_()


def test_set_default_dtype():
    try:
        cr.set_default_dtype("float64")
        assert cr.tensor([1.0]).dtype == np.float64
        assert cr.zeros(2).dtype == np.float64
        assert nn.Linear(2, 3).weight.dtype == np.float64
    finally:
        cr.set_default_dtype("float32")
    assert cr.tensor([1.0]).dtype == np.float32
    with pytest.raises(TypeError):
        cr.set_default_dtype("int64")


def test_module_dtype_conversion():
    m = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    params = list(m.parameters())
    assert all(p.dtype == np.float32 for p in params)
    m(cr.randn(2, 3)).sum().backward()
    assert m.double() is m
    assert all(p.dtype == np.float64 and p.grad.dtype == np.float64 for p in m.parameters())
    assert [id(p) for p in m.parameters()] == [id(p) for p in params]   # same objects
    out = m(cr.randn(2, 3, dtype=np.float64))
    assert out.dtype == np.float64
    m.float()
    assert all(p.dtype == np.float32 for p in m.parameters())
    m.to("float64")
    assert all(p.dtype == np.float64 for p in m.parameters())
    with pytest.raises(TypeError, match="dtype"):
        m(cr.randn(2, 3))                                   # float32 input into a float64 model


# -- graph facts ----------------------------------------------------------------------------------------------
def test_leaf_and_grad_fn():
    x = cr.tensor([1.0], requires_grad=True)
    y = x * 2
    assert x.is_leaf and x.grad_fn is None
    assert not y.is_leaf and type(y.grad_fn).__name__ == "Mul"
    assert "grad_fn=<Mul>" in repr(y) and "requires_grad=True" in repr(x)
    with pytest.raises(RuntimeError, match="leaf"):
        y.requires_grad_(False)
    c = cr.tensor([1.0]) * 2                     # nothing needs grad: nothing recorded
    assert c.grad_fn is None and not c.requires_grad


class _Square(Function):
    def forward(self, a):
        self.a = a
        return a * a

    def backward(self, g):
        return 2 * self.a * g


class _WrongShape(Function):
    def forward(self, a):
        return a.sum()

    def backward(self, g):
        return np.ones(3)


class _TwoInputs(Function):
    def forward(self, a, b):
        self.seen = self.needs_input_grad
        return a * b

    def backward(self, g):
        assert self.needs_input_grad == (False, True)
        return None, g * 2


def test_custom_function():
    x, tx = pair((4,))
    _Square.apply(x).sum().backward()
    (tx * tx).sum().backward()
    assert_close(x.grad, tx.grad)
    with pytest.raises(RuntimeError, match="_WrongShape.*shape"):
        _WrongShape.apply(cr.tensor(np.ones(2), requires_grad=True)).backward()
    b = cr.tensor(np.ones(2), requires_grad=True)
    _TwoInputs.apply(cr.tensor(np.ones(2)), b).sum().backward()
    np.testing.assert_array_equal(b.grad.data, [2.0, 2.0])


def test_tensor_helpers_var_norm_argmax():
    x = cr.tensor(np.array([[1.0, 5.0, 2.0], [7.0, 0.0, 3.0]]))
    assert x.argmax().item() == 3 and x.argmax(axis=1).tolist() == [1, 0]
    assert x.argmin(axis=0).tolist() == [0, 1, 0]
    np.testing.assert_allclose(x.norm().item(), np.linalg.norm(x.data))
    np.testing.assert_allclose(x.var(axis=1).data, x.data.var(axis=1, ddof=1))
    t = to_torch(x)
    assert_close(x.var(axis=(0, 1)), t.var())
