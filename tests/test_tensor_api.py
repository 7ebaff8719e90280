"""chainrule/tensor_api.py: factories (dtypes, shapes, seeding, copies) and free functions."""
import warnings

import numpy as np
import pytest
import torch

import chainrule as cr
from helpers import check_against_torch


def test_tensor_copies_and_keeps_dtypes():
    a = np.array([1.0, 2.0])
    t = cr.tensor(a)
    a[0] = 5
    assert t.data[0] == 1.0 and t.dtype == np.float64          # a copy, like torch.tensor
    assert cr.tensor([1.0, 2.0]).dtype == np.float32
    assert cr.tensor([[1, 2]]).dtype == np.int64
    assert cr.tensor(np.array([1, 2], dtype=np.int32)).dtype == np.int32
    assert cr.tensor([True, False]).dtype == np.bool_
    assert cr.tensor([1.0], dtype=np.float64).dtype == np.float64
    assert cr.tensor(3.5).shape == () and cr.tensor(3.5).item() == 3.5
    src = cr.tensor([1.0, 2.0], requires_grad=True)
    c = cr.tensor(src)
    assert not c.requires_grad and not np.shares_memory(c.data, src.data)
    assert cr.tensor([1.0], requires_grad=True).requires_grad


def test_from_numpy_shares_memory():
    a = np.arange(3.0)
    t = cr.from_numpy(a)
    a[0] = 7
    assert t.data[0] == 7 and t.dtype == np.float64


@pytest.mark.parametrize("factory", [cr.zeros, cr.ones, cr.randn, cr.rand])
def test_shape_factories(factory):
    assert factory(2, 3).shape == (2, 3)
    assert factory((2, 3)).shape == (2, 3)
    assert factory([4]).shape == (4,)
    assert factory(2, 3).dtype == np.float32
    assert factory(2, dtype=np.float64).dtype == np.float64
    t = factory(2, requires_grad=True)
    assert t.requires_grad and t.is_leaf


def test_values_of_constant_factories():
    assert (cr.zeros(2, 2).data == 0).all() and (cr.ones(3).data == 1).all()
    f = cr.full((2, 3), 1.5)
    assert f.shape == (2, 3) and (f.data == 1.5).all() and f.dtype == np.float32
    assert cr.full(4, 2.0).shape == (4,)
    x = cr.randn(2, 3, dtype=np.float64)
    z, o = cr.zeros_like(x), cr.ones_like(x)
    assert z.shape == o.shape == (2, 3) and z.dtype == o.dtype == np.float64
    assert not z.data.any() and (o.data == 1).all()
    assert cr.zeros_like(x, dtype=np.float32).dtype == np.float32


def test_random_factories_are_seeded_and_distributed():
    cr.manual_seed(5)
    a, u = cr.randn(1000), cr.rand(1000)
    cr.manual_seed(5)
    b, v = cr.randn(1000), cr.rand(1000)
    np.testing.assert_array_equal(a.data, b.data)
    np.testing.assert_array_equal(u.data, v.data)
    assert not np.array_equal(a.data, cr.randn(1000).data)
    big = cr.randn(100_000, dtype=np.float64).data
    assert abs(big.mean()) < 0.02 and abs(big.std() - 1) < 0.02
    r = cr.rand(100_000).data
    assert r.min() >= 0 and r.max() < 1 and abs(r.mean() - 0.5) < 0.01
    i = cr.randint(2, 5, (3, 4))
    assert i.shape == (3, 4) and i.dtype == np.int64 and i.data.min() >= 2 and i.data.max() < 5
    assert cr.randint(0, 3, 6).shape == (6,)


def test_rng_state_round_trip():
    state = cr.get_rng_state()
    a = cr.randn(5).data
    cr.set_rng_state(state)
    np.testing.assert_array_equal(cr.randn(5).data, a)


def test_arange_and_linspace_like_torch():
    for args in [(5,), (2, 7), (0, 10, 3), (1.0, 2.0, 0.25), (0, 1, 0.5)]:
        ours, theirs = cr.arange(*args), torch.arange(*args)
        np.testing.assert_array_equal(ours.data, theirs.numpy())
        expect = np.int64 if theirs.dtype == torch.int64 else np.float32
        assert ours.dtype == expect
    assert cr.arange(3, dtype=np.float64).dtype == np.float64
    ls = cr.linspace(0, 1, 5)
    np.testing.assert_allclose(ls.data, [0, 0.25, 0.5, 0.75, 1.0])
    assert ls.dtype == np.float32


# -- free functions (differentiable) ------------------------------------------------------------------------
@pytest.mark.parametrize("cr_f,t_f,shapes", [
    (lambda a, b: cr.cat([a, b], axis=1), lambda a, b: torch.cat([a, b], 1), [(2, 3), (2, 2)]),
    (lambda a, b: cr.concatenate([a, b]), lambda a, b: torch.cat([a, b]), [(2, 3), (1, 3)]),
    (lambda a, b: cr.stack([a, b], dim=1), lambda a, b: torch.stack([a, b], 1), [(2, 3), (2, 3)]),
    (lambda a: cr.split(a, 2), lambda a: torch.split(a, 2), [(5, 2)]),
    (lambda a, b: cr.matmul(a, b), torch.matmul, [(2, 3), (3, 4)]),
    (lambda a, b: cr.maximum(a, b), torch.maximum, [(2, 3), (3,)]),
    (lambda a, b: cr.minimum(a, b), torch.minimum, [(2, 3), (3,)]),
    (lambda a: cr.sum(a, axis=1, keepdims=True), lambda a: a.sum(1, keepdim=True), [(2, 3)]),
    (lambda a: cr.mean(a, axis=0), lambda a: a.mean(0), [(2, 3)]),
    (lambda a: cr.max(a, axis=1), lambda a: a.amax(1), [(2, 3)]),
    (lambda a: cr.min(a), lambda a: a.amin(), [(2, 3)]),
    (cr.exp, torch.exp, [(3,)]),
    (cr.tanh, torch.tanh, [(3,)]),
    (cr.sigmoid, torch.sigmoid, [(3,)]),
    (lambda a: cr.clip(a, -0.5, 0.5), lambda a: a.clamp(-0.5, 0.5), [(4,)]),
    (lambda a: cr.softmax(a, 0), lambda a: a.softmax(0), [(3, 2)]),
    (lambda a: cr.log_softmax(a, 0), lambda a: a.log_softmax(0), [(3, 2)]),
], ids=lambda v: "" if not callable(v) else getattr(v, "__name__", ""))
def test_free_functions(cr_f, t_f, shapes):
    check_against_torch(cr_f, t_f, shapes)


def test_where_and_argmax():
    c = np.array([[True, False], [False, True]])
    check_against_torch(lambda a, b: cr.where(c, a, b), lambda a, b: torch.where(torch.tensor(c), a, b),
                        [(2, 2), (2, 2)])
    x = cr.tensor(np.array([[1.0, 3.0], [4.0, 2.0]]))
    assert cr.argmax(x).item() == 2 and cr.argmax(x, axis=1).tolist() == [1, 0]
    assert cr.argmax(np.array([0, 5, 1])).item() == 1


def test_public_api():
    for name in ("Tensor", "tensor", "no_grad", "enable_grad", "manual_seed", "save", "load", "gradcheck",
                 "Function", "nn", "float32", "float64", "int64"):
        assert hasattr(cr, name), name


@pytest.mark.parametrize("values", [np.zeros(3), np.array([3.0, 4.0]),
                                    np.random.default_rng(3).standard_normal((2, 3))])
def test_norm_and_its_gradient_match_torch_also_at_zero(values):
    import torch
    x = cr.tensor(values, requires_grad=True)
    y = x.norm()
    y.backward()
    t = torch.tensor(values, requires_grad=True)
    u = t.norm()
    u.backward()
    np.testing.assert_allclose(y.item(), u.item(), rtol=1e-12)
    np.testing.assert_allclose(x.grad.data, t.grad.numpy(), rtol=1e-12, atol=0)
    if values.any():
        assert cr.gradcheck(lambda a: a.norm(), cr.tensor(values, requires_grad=True))


@pytest.mark.parametrize("shape,unbiased", [((0,), True), ((0,), False), ((1,), True),
                                            ((1,), False), ((3, 4), True)])
def test_var_of_too_few_elements_is_nan_as_in_torch(shape, unbiased):
    import torch
    values = np.random.default_rng(0).standard_normal(shape)
    ours = cr.tensor(values).var(unbiased=unbiased).item()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = torch.tensor(values).var(unbiased=unbiased).item()
    np.testing.assert_equal(np.isnan(ours), np.isnan(theirs))
    if not np.isnan(theirs):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12)
