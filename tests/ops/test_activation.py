"""chainrule/ops/activation.py against PyTorch, finite differences, and stability at x = +-1000."""
import warnings

import numpy as np
import pytest
import torch

import chainrule as cr
from chainrule.nn import functional as F
from helpers import check_against_torch, randn

TF = torch.nn.functional
SHAPES = [(4, 5), (2, 3, 4), (1, 5), (5,), ()]

ELEMENTWISE = [
    ("sigmoid", lambda a: a.sigmoid(), torch.sigmoid),
    ("sigmoid_fn", cr.sigmoid, torch.sigmoid),
    ("sigmoid_F", F.sigmoid, torch.sigmoid),
    ("tanh", lambda a: a.tanh(), torch.tanh),
    ("tanh_fn", cr.tanh, torch.tanh),
    ("relu", lambda a: a.relu(), torch.relu),
    ("relu_F", F.relu, torch.relu),
    ("relu_fn", cr.relu, torch.relu),
    ("leaky_relu", F.leaky_relu, TF.leaky_relu),
    ("leaky_relu_0.2", lambda a: F.leaky_relu(a, 0.2), lambda a: TF.leaky_relu(a, 0.2)),
]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name,cr_f,t_f", ELEMENTWISE, ids=[e[0] for e in ELEMENTWISE])
def test_elementwise_activations(name, cr_f, t_f, shape):
    x = randn(shape, away_from_zero=0.05)         # relu's kink at 0 stays out of finite differences
    check_against_torch(cr_f, t_f, [x])


def test_relu_and_leaky_relu_at_zero_match_torch():
    x = np.array([0.0, -0.0, 1.0, -1.0])
    check_against_torch(F.relu, torch.relu, [x], fd=False)
    check_against_torch(F.leaky_relu, TF.leaky_relu, [x], fd=False)


AXIS_SHAPES = [((4, 5), 0), ((4, 5), 1), ((4, 5), -1), ((2, 3, 4), 1), ((2, 3, 4), -1),
               ((1, 5), -1), ((5,), 0)]


@pytest.mark.parametrize("shape,axis", AXIS_SHAPES)
def test_softmax_log_softmax(shape, axis):
    check_against_torch(lambda a: a.softmax(axis), lambda a: torch.softmax(a, axis), [shape])
    check_against_torch(lambda a: F.softmax(a, dim=axis), lambda a: torch.softmax(a, axis), [shape],
                        fd=False)
    check_against_torch(lambda a: cr.softmax(a, axis), lambda a: torch.softmax(a, axis), [shape],
                        fd=False)
    check_against_torch(lambda a: a.log_softmax(axis), lambda a: torch.log_softmax(a, axis), [shape])
    check_against_torch(lambda a: F.log_softmax(a, axis=axis), lambda a: torch.log_softmax(a, axis),
                        [shape], fd=False)
    check_against_torch(lambda a: cr.log_softmax(a, axis), lambda a: torch.log_softmax(a, axis),
                        [shape], fd=False)


EXTREME = np.array([[-1000.0, -50.0, 0.0, 50.0, 1000.0],
                    [1000.0, 1000.0, -1000.0, 999.0, 0.5]])

STABLE = [
    ("sigmoid", F.sigmoid, torch.sigmoid),
    ("tanh", F.tanh, torch.tanh),
    ("relu", F.relu, torch.relu),
    ("leaky_relu", F.leaky_relu, TF.leaky_relu),
    ("softmax", lambda a: F.softmax(a, -1), lambda a: torch.softmax(a, -1)),
    ("softmax0", lambda a: F.softmax(a, 0), lambda a: torch.softmax(a, 0)),
    ("log_softmax", lambda a: F.log_softmax(a, -1), lambda a: torch.log_softmax(a, -1)),
]


@pytest.mark.parametrize("name,cr_f,t_f", STABLE, ids=[s[0] for s in STABLE])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_stable_for_huge_inputs(name, cr_f, t_f, dtype):
    x = cr.tensor(EXTREME.astype(dtype), requires_grad=True)
    g = np.random.default_rng(0).standard_normal(EXTREME.shape).astype(dtype)
    # overflow, 0/0 and log(0) raise; underflow (e^-2000 -> 0) is the right answer, and NumPy
    # never warns about it by default
    with warnings.catch_warnings(), np.errstate(all="raise", under="ignore"):
        warnings.simplefilter("error")
        y = cr_f(x)
        y.backward(g)
    assert y.dtype == dtype and x.grad.dtype == dtype
    assert np.all(np.isfinite(y.data)) and np.all(np.isfinite(x.grad.data))
    tx = torch.tensor(EXTREME.astype(dtype), requires_grad=True)
    ty = t_f(tx)
    ty.backward(torch.tensor(g))
    tol = dict(rtol=1e-10, atol=1e-12) if dtype == np.float64 else dict(rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(y.data, ty.detach().numpy(), **tol)
    np.testing.assert_allclose(x.grad.data, tx.grad.numpy(), **tol)


def test_sigmoid_saturates_exactly():
    y = F.sigmoid(cr.tensor(np.array([-1000.0, 1000.0])))
    np.testing.assert_array_equal(y.data, [0.0, 1.0])


def test_float32_stays_float32():
    x = cr.randn(3, 4, requires_grad=True)
    for f in (F.sigmoid, F.tanh, F.relu, F.leaky_relu, F.softmax, F.log_softmax):
        x.grad = None
        y = f(x)
        assert y.dtype == np.float32
        y.sum().backward()
        assert x.grad.dtype == np.float32


def test_activations_of_plain_arrays_give_tensors_without_grad():
    a = randn((2, 3))
    for f in (F.sigmoid, F.tanh, F.relu, F.softmax, F.log_softmax):
        y = f(a)
        assert isinstance(y, cr.Tensor) and not y.requires_grad
