"""chainrule/ops/basic.py against PyTorch (forward and every gradient, float64) and finite differences."""
import numpy as np
import pytest
import torch

import chainrule as cr
from chainrule.ops.basic import unbroadcast
from helpers import Const, check_against_torch, randn

# -- arithmetic with broadcasting ---------------------------------------------------------------------
BROADCAST_PAIRS = [
    ((3, 4), (3, 4)),
    ((3, 4), (4,)),
    ((4,), (3, 4)),
    ((2, 1, 4), (3, 1)),
    ((1, 4), (3, 1)),
    ((), (3,)),
    ((2, 3), ()),
    ((1,), (1, 5)),        # batch size 1
    ((1, 3), (1, 3)),
]


@pytest.mark.parametrize("sa,sb", BROADCAST_PAIRS)
@pytest.mark.parametrize("op", ["add", "sub", "mul", "div"])
def test_binary_ops_broadcast(op, sa, sb):
    f = {"add": lambda a, b: a + b, "sub": lambda a, b: a - b,
         "mul": lambda a, b: a * b, "div": lambda a, b: a / b}[op]
    b = randn(sb, np.random.default_rng(1), away_from_zero=0.5)   # keep 1/b tame
    check_against_torch(f, f, [sa, b])


def _random_broadcast_pair(rng):
    """A random shape (0 to 4 axes of 1 to 4) and a partner that broadcasts against it: some axes
    set to 1, some leading axes dropped; sides swapped at random."""
    a = tuple(int(n) for n in rng.integers(1, 5, rng.integers(0, 5)))
    b = tuple(1 if rng.random() < 0.4 else n for n in a)[rng.integers(0, len(a) + 1):]
    return (a, b) if rng.random() < 0.5 else (b, a)


@pytest.mark.parametrize("seed", range(8))
def test_random_shapes(seed):
    rng = np.random.default_rng(100 + seed)
    sa, sb = _random_broadcast_pair(rng)
    b = randn(sb, rng, away_from_zero=0.5)
    check_against_torch(lambda x, y: (x * y + x) / y - y, lambda x, y: (x * y + x) / y - y, [sa, b])
    nd = len(sa)
    if nd:
        axis = int(rng.integers(-nd, nd))
        check_against_torch(lambda x: x.sum(axis=axis) * x.mean(axis=axis, keepdims=True).exp(),
                            lambda x: x.sum(dim=axis) * x.mean(dim=axis, keepdim=True).exp(), [sa])


@pytest.mark.parametrize("f", [
    lambda x: x + 2.0, lambda x: 2.0 + x, lambda x: x - 3.0, lambda x: 3.0 - x,
    lambda x: x * 1.5, lambda x: 1.5 * x, lambda x: x / 4.0, lambda x: 4.0 / x, lambda x: -x,
    lambda x: +x * 1.0,
], ids=["add", "radd", "sub", "rsub", "mul", "rmul", "div", "rdiv", "neg", "pos"])
def test_ops_with_python_scalars(f):
    check_against_torch(f, f, [randn((2, 3), away_from_zero=0.5)])


C = randn((3, 4), np.random.default_rng(5))
CT = torch.tensor(C)
CP = np.abs(C) + 0.5                     # a positive base for pow
CPT = torch.tensor(CP)


@pytest.mark.parametrize("cr_f,t_f", [
    (lambda x: C + x, lambda x: CT + x),
    (lambda x: C - x, lambda x: CT - x),
    (lambda x: C * x, lambda x: CT * x),
    (lambda x: C / x, lambda x: CT / x),
    (lambda x: C.T @ x, lambda x: CT.T @ x),
    (lambda x: CP ** x, lambda x: CPT ** x),
], ids=["add", "sub", "mul", "div", "matmul", "pow"])
def test_ndarray_on_the_left_gives_a_tensor(cr_f, t_f):
    # Tensor sets __array_ufunc__ = None: NumPy defers to the reflected Tensor operator instead of
    # looping over the tensor element by element
    xs, outs = check_against_torch(cr_f, t_f, [randn((3, 4), away_from_zero=0.5)])
    assert type(outs[0]) is cr.Tensor


# -- pow ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("p", [2, 3, 0.5, -1.5, 1, 2.5])
def test_pow_scalar_exponent(p):
    x = randn((3, 4), low=0.3)                       # positive: fractional powers are real
    check_against_torch(lambda a: a ** p, lambda a: a ** p, [x])
    check_against_torch(lambda a: a.pow(p), lambda a: a.pow(p), [x])


def test_pow_integer_exponent_negative_base():
    check_against_torch(lambda a: a ** 3, lambda a: a ** 3, [(4, 3)])


@pytest.mark.parametrize("sa,sp", [((3, 4), (3, 4)), ((3, 4), (4,)), ((2, 1), (1, 3)), ((3,), ())])
def test_pow_tensor_exponent(sa, sp):
    a = randn(sa, low=0.3)
    check_against_torch(lambda x, p: x ** p, lambda x, p: x ** p, [a, sp])


def test_scalar_base_tensor_exponent():
    check_against_torch(lambda p: 2.0 ** p, lambda p: 2.0 ** p, [(3, 2)])


def test_pow_zero_exponent_gives_zero_gradient_at_zero():
    # PyTorch defines d(x^0)/dx = 0 everywhere, also at x = 0 (no 0 * inf = nan)
    x = cr.tensor(np.array([0.0, 2.0, -1.0]), requires_grad=True)
    with np.errstate(all="raise"):
        (x ** 0).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [0.0, 0.0, 0.0])


def test_pow_tensor_exponent_at_zero_base_matches_torch():
    a = np.array([0.0, 0.0, 1.5])
    check_against_torch(lambda x, p: x ** p, lambda x, p: x ** p, [a, np.array([2.0, 1.0, 0.5])],
                        fd=False)


# -- matmul ---------------------------------------------------------------------------------------------
MATMUL_SHAPES = [
    ((3, 4), (4, 5)),
    ((1, 4), (4, 1)),                  # batch size 1
    ((4,), (4, 5)),                    # vector @ matrix
    ((3, 4), (4,)),                    # matrix @ vector
    ((4,), (4,)),                      # dot product
    ((2, 3, 4), (4, 5)),               # batched @ matrix
    ((2, 3, 4), (2, 4, 5)),            # batched @ batched
    ((2, 1, 3, 4), (3, 4, 5)),         # broadcast stacks
    ((4, 5), (2, 5, 3)),               # matrix @ batched
    ((4,), (2, 4, 5)),                 # vector @ batched
    ((2, 3, 4), (4,)),                 # batched @ vector
]


@pytest.mark.parametrize("sa,sb", MATMUL_SHAPES)
def test_matmul(sa, sb):
    check_against_torch(lambda a, b: a @ b, lambda a, b: a @ b, [sa, sb])
    check_against_torch(cr.matmul, torch.matmul, [sa, sb], fd=False)


def test_matmul_only_one_side_needs_grad():
    w = Const(randn((4, 5)))
    xs, _ = check_against_torch(lambda a, b: a @ b, lambda a, b: a @ b, [(3, 4), w])
    assert xs[1].grad is None


@pytest.mark.parametrize("sa,sb", [((3, 4), (5, 6)), ((4,), (3,)), ((2, 3, 4), (3, 4))])
def test_matmul_shape_mismatch_names_both_shapes(sa, sb):
    a, b = cr.zeros(*sa), cr.zeros(*sb)
    with pytest.raises(ValueError) as e:
        a @ b
    assert str(sa) in str(e.value) and str(sb) in str(e.value)


def test_matmul_scalar_operand_raises():
    with pytest.raises(ValueError, match="matmul"):
        cr.tensor(2.0) @ cr.zeros(3)


# -- fused linear -------------------------------------------------------------------------------------
@pytest.mark.parametrize("sx", [(5, 3), (1, 3), (2, 4, 3), (3,)])
@pytest.mark.parametrize("bias", [True, False])
def test_linear_op(sx, bias):
    from chainrule.nn import functional as F
    if bias:
        check_against_torch(F.linear, torch.nn.functional.linear, [sx, (4, 3), (4,)])
    else:
        check_against_torch(F.linear, torch.nn.functional.linear, [sx, (4, 3)])


def test_linear_op_input_without_grad():
    from chainrule.nn import functional as F
    xs, _ = check_against_torch(F.linear, torch.nn.functional.linear,
                                [Const(randn((5, 3))), (4, 3), (4,)])
    assert xs[0].grad is None


def test_linear_op_mismatch_names_shapes():
    from chainrule.nn import functional as F
    with pytest.raises(ValueError) as e:
        F.linear(cr.zeros(2, 5), cr.zeros(4, 3))
    assert "(2, 5)" in str(e.value) and "(4, 3)" in str(e.value)


# -- reductions ------------------------------------------------------------------------------------------
AXES = [None, 0, 1, -1, (0, 2), (0, 1, 2), (-1, 0)]


def _tdim(axis, nd):
    return tuple(range(nd)) if axis is None else axis


@pytest.mark.parametrize("axis", AXES)
@pytest.mark.parametrize("keepdims", [False, True])
def test_sum_mean(axis, keepdims):
    nd = 3
    check_against_torch(lambda a: a.sum(axis=axis, keepdims=keepdims),
                        lambda a: a.sum(dim=_tdim(axis, nd), keepdim=keepdims), [(2, 3, 4)])
    check_against_torch(lambda a: a.mean(axis=axis, keepdims=keepdims),
                        lambda a: a.mean(dim=_tdim(axis, nd), keepdim=keepdims), [(2, 3, 4)])


@pytest.mark.parametrize("axis", AXES)
@pytest.mark.parametrize("keepdims", [False, True])
def test_max_min(axis, keepdims):
    nd = 3
    check_against_torch(lambda a: a.max(axis=axis, keepdims=keepdims),
                        lambda a: torch.amax(a, dim=_tdim(axis, nd), keepdim=keepdims), [(2, 3, 4)])
    check_against_torch(lambda a: a.min(axis=axis, keepdims=keepdims),
                        lambda a: torch.amin(a, dim=_tdim(axis, nd), keepdim=keepdims), [(2, 3, 4)])


def test_reductions_on_vectors_and_free_functions():
    for shape in [(5,), (1,), (1, 1)]:
        check_against_torch(cr.sum, torch.sum, [shape])
        check_against_torch(cr.mean, torch.mean, [shape])
        check_against_torch(cr.max, torch.amax, [shape])
        check_against_torch(cr.min, torch.amin, [shape])


def test_max_ties_share_the_gradient_like_amax():
    a = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 0.0], [5.0, 5.0, 5.0]])
    for axis in (None, 0, 1):
        dim = (0, 1) if axis is None else axis
        check_against_torch(lambda x: x.max(axis=axis), lambda x: torch.amax(x, dim=dim), [a], fd=False)
        check_against_torch(lambda x: x.min(axis=axis), lambda x: torch.amin(x, dim=dim), [a], fd=False)


def test_max_of_empty_raises():
    with pytest.raises(ValueError, match="empty"):
        cr.zeros(0, 3).max()


def test_var_and_norm():
    check_against_torch(lambda a: a.var(), lambda a: a.var(), [(3, 4)])
    check_against_torch(lambda a: a.var(axis=1), lambda a: a.var(dim=1), [(3, 4)])
    check_against_torch(lambda a: a.var(axis=0, keepdims=True, unbiased=False),
                        lambda a: a.var(dim=0, keepdim=True, unbiased=False), [(3, 4)])
    check_against_torch(lambda a: a.norm(), lambda a: a.norm(), [(3, 4)])


# -- elementwise math -----------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(3, 4), (1,), (), (2, 1, 3)])
def test_exp_log_sqrt_abs(shape):
    check_against_torch(lambda a: a.exp(), torch.exp, [shape])
    check_against_torch(cr.exp, torch.exp, [shape])
    pos = randn(shape, low=0.2)
    check_against_torch(lambda a: a.log(), torch.log, [pos])
    check_against_torch(cr.log, torch.log, [pos])
    check_against_torch(lambda a: a.sqrt(), torch.sqrt, [pos])
    check_against_torch(cr.sqrt, torch.sqrt, [pos])
    away = randn(shape, away_from_zero=0.1)
    check_against_torch(lambda a: a.abs(), torch.abs, [away])
    check_against_torch(abs, torch.abs, [away])
    check_against_torch(cr.abs, torch.abs, [away])


def test_abs_gradient_at_zero_is_zero():
    check_against_torch(lambda a: a.abs(), torch.abs, [np.array([0.0, -1.0, 2.0])], fd=False)


@pytest.mark.parametrize("lo,hi", [(-0.5, 0.5), (-0.3, None), (None, 0.2), (0.0, 0.0)])
def test_clip_clamp(lo, hi):
    x = randn((4, 5), away_from_zero=0.01)
    check_against_torch(lambda a: a.clip(lo, hi), lambda a: torch.clamp(a, lo, hi), [x],
                        fd=lo != hi)
    check_against_torch(lambda a: a.clamp(min=lo, max=hi), lambda a: a.clamp(min=lo, max=hi), [x],
                        fd=False)
    check_against_torch(lambda a: cr.clamp(a, lo, hi), lambda a: torch.clamp(a, lo, hi), [x],
                        fd=False)


def test_clip_needs_a_bound():
    with pytest.raises(ValueError, match="clip"):
        cr.zeros(3).clip()


@pytest.mark.parametrize("shape", [(3, 4), (2, 1, 3)])
def test_maximum_minimum_with_broadcast(shape):
    check_against_torch(cr.maximum, torch.maximum, [shape, (shape[-1],)])
    check_against_torch(cr.minimum, torch.minimum, [shape, (shape[-1],)])


def test_maximum_minimum_ties_split_like_torch():
    a = np.array([1.0, 2.0, 3.0])
    b = np.array([1.0, 0.0, 3.0])
    check_against_torch(cr.maximum, torch.maximum, [a, b], fd=False)
    check_against_torch(cr.minimum, torch.minimum, [a, b], fd=False)


def test_maximum_keeps_float32_gradients():
    x = cr.randn(3, requires_grad=True)
    h = x * 1.0
    h.retain_grad()
    cr.maximum(h, cr.zeros(3)).sum().backward()
    assert h.grad.dtype == np.float32 and x.grad.dtype == np.float32


# -- dtype casts ------------------------------------------------------------------------------------------
def test_cast_gradients_return_in_the_input_dtype():
    x = cr.randn(2, 3, requires_grad=True)              # float32
    y = x.double()
    assert y.dtype == np.float64
    (y * y).sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_allclose(x.grad.data, 2 * x.data, rtol=1e-6)
    z = cr.randn(2, dtype="float64", requires_grad=True)
    assert z.float().dtype == np.float32 and z.to(np.float32).dtype == np.float32
    assert z.astype("float32").dtype == np.float32


def test_cast_to_integer_is_not_differentiable():
    x = cr.randn(3, requires_grad=True)
    for y in (x.astype(np.int64), x.long(), x.to("int32")):
        assert y.dtype.kind == "i" and not y.requires_grad and y.grad_fn is None


def test_clone_is_a_copy_with_gradient():
    check_against_torch(lambda a: a.clone() * 2, lambda a: a.clone() * 2, [(3,)])
    x = cr.tensor([1.0, 2.0])
    y = x.clone()
    y.data[0] = 5
    assert x.data[0] == 1


# -- shape ops --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("cr_f,t_f", [
    (lambda a: a.reshape(4, 6), lambda a: a.reshape(4, 6)),
    (lambda a: a.reshape((6, -1)), lambda a: a.reshape(6, -1)),
    (lambda a: a.reshape(-1), lambda a: a.reshape(-1)),
    (lambda a: a.view(2, 12), lambda a: a.view(2, 12)),
    (lambda a: a.flatten(), lambda a: a.flatten()),
    (lambda a: a.flatten(1), lambda a: a.flatten(1)),
    (lambda a: a.transpose(0, 2), lambda a: a.transpose(0, 2)),
    (lambda a: a.transpose(-1, 0), lambda a: a.transpose(-1, 0)),
    (lambda a: a.transpose((1, 2, 0)), lambda a: a.permute(1, 2, 0)),
    (lambda a: a.permute(2, 0, 1), lambda a: a.permute(2, 0, 1)),
    (lambda a: a.permute((1, 0, 2)), lambda a: a.permute((1, 0, 2))),
    (lambda a: a.T, lambda a: a.permute(2, 1, 0)),
    (lambda a: a.unsqueeze(1), lambda a: a.unsqueeze(1)),
    (lambda a: a.unsqueeze(-1), lambda a: a.unsqueeze(-1)),
    (lambda a: a.reshape(2, 1, 3, 4).squeeze(), lambda a: a.reshape(2, 1, 3, 4).squeeze()),
    (lambda a: a.reshape(2, 1, 12).squeeze(1), lambda a: a.reshape(2, 1, 12).squeeze(1)),
    (lambda a: a.squeeze(0), lambda a: a.squeeze(0)),
])
def test_shape_ops(cr_f, t_f):
    check_against_torch(cr_f, t_f, [(2, 3, 4)])


def test_shape_op_errors():
    with pytest.raises(ValueError, match=r"\(2, 3\)"):
        cr.zeros(2, 3).reshape(4, 2)
    with pytest.raises(ValueError, match="permutation"):
        cr.zeros(2, 3).permute(0, 0)


# -- indexing ----------------------------------------------------------------------------------------------
INDICES = [
    1, -1, (slice(None), 1), (slice(1, 3),), (slice(None), slice(None, None, 2)),
    (Ellipsis, 0), (None, 0), (0, slice(None), None), (1, 2, 3),
    (slice(None), slice(1, None), slice(None, 2)),
]


@pytest.mark.parametrize("index", INDICES, ids=[repr(i) for i in INDICES])
def test_basic_indexing(index):
    check_against_torch(lambda a: a[index], lambda a: a[index], [(3, 4, 5)])


@pytest.mark.parametrize("sl", [slice(None, None, -1), slice(None, None, -2), slice(3, 0, -1),
                                slice(-1, None, -3)])
def test_negative_step_slices(sl):
    # torch has no negative steps: the same elements picked by an index array
    idx = np.arange(5)[sl].copy()
    check_against_torch(lambda a: a[:, sl], lambda a: a[:, torch.tensor(idx)], [(3, 5)])
    check_against_torch(lambda a: a[sl], lambda a: a[torch.tensor(idx)], [(5, 2)])


@pytest.mark.parametrize("index", [
    np.array([0, 2, 0, 0]),                                   # repeated rows: scatter-add
    np.array([[1, 1], [0, 3]]),
    (np.array([0, 1, 0]), np.array([2, 2, 2])),               # the same element three times
    (slice(None), np.array([1, 1, 3])),
    (np.array([3, 3]), slice(1, None)),
    [0, 0, 1],
    np.array([-1, -1, 0]),
], ids=["rows", "2d", "pairs", "cols", "rows+slice", "list", "negative"])
def test_integer_array_indexing_accumulates(index):
    def t(i):
        return torch.tensor(i) if isinstance(i, np.ndarray) else i
    tindex = tuple(map(t, index)) if isinstance(index, tuple) else t(index)
    check_against_torch(lambda a: a[index], lambda a: a[tindex], [(4, 5)])


def test_repeated_index_gradient_counts_repeats():
    x = cr.tensor(np.arange(4.0), requires_grad=True)
    x[np.array([1, 1, 1, 3])].sum().backward()
    np.testing.assert_array_equal(x.grad.data, [0, 3, 0, 1])


def test_boolean_mask_indexing():
    a = randn((4, 5))
    mask = a > 0.2
    check_against_torch(lambda x: x[mask], lambda x: x[torch.tensor(mask)], [a])
    rows = np.array([True, False, True, True])
    check_against_torch(lambda x: x[rows], lambda x: x[torch.tensor(rows)], [a])
    check_against_torch(lambda x: x[:, mask[0]], lambda x: x[:, torch.tensor(mask[0])], [a])


def test_index_with_tensors():
    idx = cr.tensor(np.array([2, 0, 2]))
    check_against_torch(lambda a: a[idx], lambda a: a[torch.tensor(idx.data)], [(3, 2)])
    x = cr.tensor(randn((4,)), requires_grad=True)
    m = x > 0
    check_against_torch(lambda a: a[a > 0], lambda a: a[a > 0], [x.data])
    assert m.dtype == np.bool_


def test_index_out_of_range_names_shape():
    with pytest.raises(IndexError, match=r"\(3, 4\)"):
        cr.zeros(3, 4)[5]


# -- cat / stack / split ---------------------------------------------------------------------------------
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_cat(axis):
    shapes = {0: [(2, 3), (1, 3), (4, 3)], 1: [(2, 3), (2, 1), (2, 2)], -1: [(2, 3), (2, 1), (2, 2)]}[axis]
    check_against_torch(lambda *ts: cr.cat(ts, axis=axis), lambda *ts: torch.cat(ts, dim=axis), shapes)
    check_against_torch(lambda *ts: cr.cat(list(ts), dim=axis), lambda *ts: torch.cat(ts, dim=axis),
                        shapes, fd=False)


def test_cat_with_constant_part():
    xs, _ = check_against_torch(lambda a, b: cr.cat([a, b], axis=0), lambda a, b: torch.cat([a, b]),
                                [(2, 3), Const(randn((1, 3)))])
    assert xs[1].grad is None


def test_cat_shape_mismatch_names_shapes():
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(2, 4\)"):
        cr.cat([cr.zeros(2, 3), cr.zeros(2, 4)], axis=0)


@pytest.mark.parametrize("axis", [0, 1, 2, -1])
def test_stack(axis):
    check_against_torch(lambda *ts: cr.stack(ts, axis=axis), lambda *ts: torch.stack(ts, dim=axis),
                        [(2, 3), (2, 3), (2, 3)])


def test_stack_shape_mismatch():
    with pytest.raises(ValueError, match="same shape"):
        cr.stack([cr.zeros(2), cr.zeros(3)])


@pytest.mark.parametrize("sizes,axis", [(2, 0), (3, 0), ([1, 4], 0), ([2, 2, 1], 0), (1, 1), ([2, 1], -1)])
def test_split(sizes, axis):
    shape = (5, 3)
    check_against_torch(lambda a: cr.split(a, sizes, axis), lambda a: torch.split(a, sizes, dim=axis),
                        [shape])
    check_against_torch(lambda a: a.split(sizes, axis), lambda a: a.split(sizes, dim=axis), [shape],
                        fd=False)


def test_split_with_unused_pieces():
    # only one output of the multi-output op is used: the others contribute zero gradient
    check_against_torch(lambda a: cr.split(a, 2, 0)[1] * 3, lambda a: torch.split(a, 2, 0)[1] * 3,
                        [(5, 2)])
    check_against_torch(lambda a: cr.split(a, 2, 0)[0] * cr.split(a, 2, 0)[2].sum(),
                        lambda a: torch.split(a, 2, 0)[0] * torch.split(a, 2, 0)[2].sum(), [(5, 2)])


def test_split_errors():
    with pytest.raises(ValueError, match="sum to"):
        cr.split(cr.zeros(5), [2, 2])
    with pytest.raises(ValueError, match="positive"):
        cr.split(cr.zeros(5), 0)


# -- where and comparisons ---------------------------------------------------------------------------------
def test_where_with_broadcast():
    cond = randn((3, 4), np.random.default_rng(3)) > 0
    check_against_torch(lambda a, b: cr.where(cond, a, b),
                        lambda a, b: torch.where(torch.tensor(cond), a, b), [(3, 4), (4,)])
    check_against_torch(lambda a, b: cr.where(cr.tensor(cond), a, b),
                        lambda a, b: torch.where(torch.tensor(cond), a, b), [(1, 4), (3, 1)])
    check_against_torch(lambda a: cr.where(cond, a, 0.0),
                        lambda a: torch.where(torch.tensor(cond), a, 0.0), [(3, 4)])


@pytest.mark.parametrize("cmp", ["<", "<=", ">", ">=", "==", "!="])
def test_comparisons_give_boolean_tensors_without_gradient(cmp):
    x = cr.tensor(np.array([-1.0, 0.0, 2.0]), requires_grad=True)
    r = eval(f"x {cmp} 0.0")
    assert isinstance(r, cr.Tensor) and r.dtype == np.bool_
    assert not r.requires_grad and r.grad_fn is None
    np.testing.assert_array_equal(r.data, eval(f"x.data {cmp} 0.0"))
    # a mask made by a comparison passes no gradient through itself
    y = (x * r).sum()
    y.backward()
    np.testing.assert_array_equal(x.grad.data, r.data.astype(float))


# -- the broadcasting helper ------------------------------------------------------------------------------
@pytest.mark.parametrize("gshape,shape", [((3, 4), (4,)), ((2, 3, 4), (3, 1)), ((2, 3), ()),
                                          ((5, 1, 4), (1, 1, 4)), ((3,), (3,))])
def test_unbroadcast_sums_to_shape(gshape, shape):
    g = np.arange(np.prod(gshape), dtype=float).reshape(gshape)
    out = unbroadcast(g, shape)
    expect = torch.tensor(g).sum_to_size(shape) if shape else torch.tensor(g).sum()
    assert out.shape == shape
    np.testing.assert_allclose(out, expect.numpy())
