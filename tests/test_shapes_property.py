"""Shapes, property-based: random shapes with size-0 and size-1 axes, against PyTorch in float64.

For each case chainrule and PyTorch must agree on whether it is an error; when it is not, on the
values and on every input's gradient (tests/fuzz/torch_compare.py). When it is, chainrule's
message names the op and the shapes (not NumPy's "operands could not be broadcast together").
Covered: elementwise binary ops with broadcasting, where, reductions with axis/keepdims (sum and
mean of nothing, max/argmax over an empty axis), softmax/log_softmax, reshape, permute, basic
indexing, matmul, cat and stack.

Deliberately outside the generated cases: PyTorch's legacy cat of 1-D empty tensors with tensors
of any shape (chainrule keeps NumPy's rule there).
"""
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import chainrule as cr
from fuzz.torch_compare import Raised, agree

# a fixed, database-free profile: the same cases on every run and every machine
# (and no explain phase: it would write patch files into the checkout)
SETTINGS = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                    phases=[Phase.explicit, Phase.generate, Phase.shrink],
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])

SIDE = 3
shapes = hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=SIDE)
seeds = st.integers(0, 2 ** 16)


def broadcastable(n):
    return hnp.mutually_broadcastable_shapes(num_shapes=n, min_dims=0, max_dims=4, min_side=0,
                                             max_side=SIDE).map(lambda r: r.input_shapes)


# half the cases broadcast by construction; the other half are drawn independently (mostly not)
pairs = st.one_of(broadcastable(2), st.tuples(shapes, shapes))
triples = st.one_of(broadcastable(3), st.tuples(shapes, shapes, shapes))


def normal(shape, seed, *, away=0.0, positive=False):
    x = np.random.default_rng(seed).standard_normal(shape)
    if positive:
        return np.abs(x) + 0.5
    return np.where(x >= 0, x + away, x - away)


# -- elementwise binary ops -------------------------------------------------------------------------
BINARY = {   # op class name -> (chainrule, torch, value options of the two operands)
    "Add": (lambda a, b: a + b, lambda a, b: a + b, {}, {}),
    "Sub": (lambda a, b: a - b, lambda a, b: a - b, {}, {}),
    "Mul": (lambda a, b: a * b, lambda a, b: a * b, {}, {}),
    "Div": (lambda a, b: a / b, lambda a, b: a / b, {}, {"away": 0.5}),
    "Pow": (lambda a, b: a ** b, lambda a, b: a ** b, {"positive": True}, {}),
    "Maximum": (cr.maximum, torch.maximum, {}, {}),
    "Minimum": (cr.minimum, torch.minimum, {}, {}),
}


@pytest.mark.parametrize("name", list(BINARY))
@SETTINGS
@given(pair=pairs, seed=seeds)
def test_binary_ops_broadcast_or_name_both_shapes(name, pair, seed):
    cr_fn, torch_fn, opt_a, opt_b = BINARY[name]
    sa, sb = pair
    out = agree(cr_fn, torch_fn, [normal(sa, seed, **opt_a), normal(sb, seed + 1, **opt_b)])
    if isinstance(out, Raised):
        assert f"{name}: shapes {sa} and {sb} do not broadcast" in str(out.error)


@SETTINGS
@given(triple=triples, seed=seeds)
def test_where_broadcasts_its_three_operands(triple, seed):
    sc, sa, sb = triple
    cond = np.random.default_rng(seed).random(sc) > 0.5
    out = agree(lambda c, a, b: cr.where(c, a, b), torch.where,
                [cond, normal(sa, seed), normal(sb, seed + 1)])
    if isinstance(out, Raised):
        assert f"Where: shapes {sc}, {sa} and {sb} do not broadcast" in str(out.error)


# -- reductions ---------------------------------------------------------------------------------------
@st.composite
def shape_and_axis(draw, single=False):
    """A shape and an axis for it: None, an int (also negative, sometimes out of range), or
    (not ``single``) a tuple of distinct axes."""
    shape = draw(shapes)
    nd = len(shape)
    one = st.integers(-max(nd, 1) - 1, max(nd, 1))   # (one out of range on either side)
    if nd == 0:                                  # PyTorch: dim 0 or -1 of a 0-d tensor is all of it
        tuples = [] if single else [st.sampled_from([(0,), (-1,)])]
        return shape, draw(st.one_of(st.none(), one, *tuples))
    options = [st.none(), one]
    if not single:
        options.append(st.lists(st.integers(0, nd - 1), min_size=1, max_size=nd, unique=True)
                       .map(tuple))
    return shape, draw(st.one_of(*options))


def _dims(axis, nd):
    return tuple(range(nd)) if axis is None else axis


REDUCTIONS = {   # name -> (chainrule method, torch function of (x, dims, keepdim))
    "sum": ("sum", lambda x, d, k: x.sum(dim=d, keepdim=k)),
    "mean": ("mean", lambda x, d, k: x.mean(dim=d, keepdim=k)),
    "max": ("max", lambda x, d, k: torch.amax(x, dim=d, keepdim=k)),
    "min": ("min", lambda x, d, k: torch.amin(x, dim=d, keepdim=k)),
}


@pytest.mark.parametrize("name", list(REDUCTIONS))
@SETTINGS
@given(case=shape_and_axis(), keepdims=st.booleans(), seed=seeds)
def test_reductions_with_axis_and_keepdims(name, case, keepdims, seed):
    """sum of nothing is 0, mean of nothing nan, max over an empty axis raises (as PyTorch)."""
    shape, axis = case
    method, torch_fn = REDUCTIONS[name]
    nd = len(shape)
    out = agree(lambda x: getattr(x, method)(axis=axis, keepdims=keepdims),
                lambda x: torch_fn(x, _dims(axis, nd), keepdims), [normal(shape, seed)])
    if isinstance(out, Raised):
        assert str(out.error).startswith(f"{name.capitalize()}: ")
        assert str(shape) in str(out.error)
        if "out of range" not in str(out.error):
            assert name in ("max", "min"), f"{name} has an identity and must not raise"


@pytest.mark.parametrize("name", ["argmax", "argmin"])
@SETTINGS
@given(case=shape_and_axis(single=True), keepdims=st.booleans(), seed=seeds)
def test_argmax_argmin_raise_over_an_empty_axis(name, case, keepdims, seed):
    shape, axis = case
    assume(axis is not None or not keepdims)     # (torch ignores keepdim without a dim)
    out = agree(lambda x: getattr(x, name)(axis=axis, keepdims=keepdims),
                lambda x: getattr(torch, name)(x, dim=axis, keepdim=keepdims),
                [normal(shape, seed)])
    if isinstance(out, Raised):
        assert str(out.error).startswith(f"Arg{name[3:].capitalize()}: ")


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@SETTINGS
@given(shape=hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=SIDE),
       data=st.data(), seed=seeds)
def test_softmax_over_any_axis_including_size_zero(name, shape, data, seed):
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    agree(lambda x: getattr(x, name)(axis=axis), lambda x: getattr(torch, name)(x, dim=axis),
          [normal(shape, seed)])


# -- shape ops ----------------------------------------------------------------------------------------
@st.composite
def reshape_targets(draw):
    """A shape and a target: the same elements regrouped (with 1s, maybe one -1), or any shape."""
    shape = draw(shapes)
    kind = draw(st.sampled_from(["regroup", "minus_one", "any"]))
    if kind == "any":
        return shape, draw(hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=4))
    sides = draw(st.permutations(list(shape)))
    target, k = [], 0
    while k < len(sides):                        # consecutive groups of the shuffled sides
        n = draw(st.integers(1, len(sides) - k))
        target.append(int(np.prod(sides[k:k + n])))
        k += n
    for _ in range(draw(st.integers(0, 2))):
        target.insert(draw(st.integers(0, len(target))), 1)
    if kind == "minus_one" and target:
        target[draw(st.integers(0, len(target) - 1))] = -1
    return shape, tuple(target)


@SETTINGS
@given(case=reshape_targets(), seed=seeds)
def test_reshape_keeps_elements_or_names_the_shapes(case, seed):
    shape, target = case
    out = agree(lambda x: x.reshape(target), lambda x: x.reshape(target), [normal(shape, seed)])
    if isinstance(out, Raised):
        assert str(out.error).startswith(f"Reshape: cannot reshape a tensor of shape {shape}")


@SETTINGS
@given(shape=shapes, data=st.data(), seed=seeds)
def test_permute(shape, data, seed):
    perm = tuple(data.draw(st.permutations(range(len(shape)))))
    agree(lambda x: x.permute(perm), lambda x: x.permute(perm), [normal(shape, seed)])


@st.composite
def basic_indices(draw, shape):
    """An index of ints (sometimes out of range), positive-step slices, None and one Ellipsis,
    maybe one more item than the tensor has axes, maybe an integer list (with repeats) first."""
    items = []
    n_items = draw(st.integers(0, len(shape) + 1))
    for k in range(n_items):
        n = shape[k] if k < len(shape) else 1
        items.append(draw(st.one_of(
            st.integers(-n - 1, n),
            st.builds(slice, st.none() | st.integers(-4, 4), st.none() | st.integers(-4, 4),
                      st.none() | st.integers(1, 3)),
            st.none())))
    if items and draw(st.booleans()):
        items.insert(draw(st.integers(0, len(items))), Ellipsis)
    if shape and shape[0] and draw(st.booleans()):
        picks = draw(st.lists(st.integers(0, shape[0] - 1), min_size=1, max_size=4))
        items = [np.array(picks, dtype=np.int64)] + items[1:]
    return tuple(items)


def _torch_index(index):
    return tuple(torch.from_numpy(i) if isinstance(i, np.ndarray) else i for i in index)


@SETTINGS
@given(shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=SIDE), data=st.data(),
       seed=seeds)
def test_indexing_basics(shape, data, seed):
    index = data.draw(basic_indices(shape))
    out = agree(lambda x: x[index], lambda x: x[_torch_index(index)], [normal(shape, seed)])
    if isinstance(out, Raised):
        assert str(shape) in str(out.error)


matmul_pairs = st.one_of(
    hnp.mutually_broadcastable_shapes(signature=np.matmul.signature, max_dims=2, min_side=0,
                                      max_side=SIDE).map(lambda r: r.input_shapes),
    st.tuples(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=SIDE),
              hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=SIDE)))


@SETTINGS
@given(pair=matmul_pairs, seed=seeds)
def test_matmul_shapes(pair, seed):
    sa, sb = pair
    out = agree(lambda a, b: a @ b, lambda a, b: a @ b, [normal(sa, seed), normal(sb, seed + 1)])
    if isinstance(out, Raised):
        msg = str(out.error)
        assert msg.startswith(f"MatMul: {sa} @ {sb}: ")
        if sa and sb and sa[-1] != (sb[-2] if len(sb) > 1 else sb[0]):
            assert f"inner sizes {sa[-1]} and {sb[-2] if len(sb) > 1 else sb[0]} differ" in msg


@st.composite
def join_cases(draw, name):
    """1-3 shapes that match except along the join axis (or, half the time, any shapes) and an
    axis (sometimes out of range)."""
    base = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=SIDE))
    n = draw(st.integers(1, 3))
    nd = len(base)
    axis = draw(st.integers(-nd - 1, nd))
    if draw(st.booleans()):
        ax = axis % nd if -nd <= axis < nd else 0
        found = [tuple(draw(st.integers(0, SIDE)) if k == ax else s for k, s in enumerate(base))
                 for _ in range(n)]
    else:
        found = [draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=SIDE))
                 for _ in range(n)]
    # PyTorch's legacy rule lets a 1-D empty tensor join anything along any axis: outside
    assume(name != "cat" or (0,) not in found)
    return found, axis


@SETTINGS
@given(case=join_cases("cat"), seed=seeds)
def test_cat(case, seed):
    _join("cat", *case, seed)


@SETTINGS
@given(case=join_cases("stack"), seed=seeds)
def test_stack(case, seed):
    _join("stack", *case, seed)


def _join(name, found, axis, seed):
    arrays = [normal(s, seed + i) for i, s in enumerate(found)]
    out = agree(lambda *xs: getattr(cr, name)(list(xs), axis=axis),
                lambda *ts: getattr(torch, name)(list(ts), dim=axis), arrays)
    if isinstance(out, Raised):
        assert str(out.error).startswith("Concat: " if name == "cat" else "Stack: ")


# -- the messages, one example each ------------------------------------------------------------------
def test_error_messages_name_the_op_and_the_shapes():
    z = cr.zeros
    cases = [
        (lambda: z(3, 4) + z(5), "Add: shapes (3, 4) and (5,) do not broadcast"),
        (lambda: z(3, 4) * z(2, 4), "Mul: shapes (3, 4) and (2, 4) do not broadcast (axis -2"),
        (lambda: z(3, 4) @ z(5, 2), "MatMul: (3, 4) @ (5, 2): inner sizes 4 and 5 differ"),
        (lambda: z(2, 3, 4) @ z(5, 4, 2), "MatMul: (2, 3, 4) @ (5, 4, 2): batch shapes (2,) and (5,)"),
        (lambda: cr.tensor(2.0) @ z(3), "MatMul: () @ (3,): both arguments to matmul need"),
        (lambda: cr.cat([z(3, 4), z(3, 5)]), "Concat: shapes [(3, 4), (3, 5)] must match except "
                                             "along axis 0, but axis 1 has sizes 4 and 5"),
        (lambda: cr.cat([z(3, 4), z(3)]), "Concat: tensors must have the same number of axes"),
        (lambda: cr.cat([]), "Concat: expected a non-empty list of tensors"),
        (lambda: cr.stack([z(3, 4), z(4, 3)]), "Stack: all tensors must have the same shape"),
        (lambda: z(3, 4).reshape(5, 2), "Reshape: cannot reshape a tensor of shape (3, 4) "
                                        "(12 elements) into (5, 2): the number of elements differs"),
        (lambda: z(3, 4).reshape(-1, -1), "only one size may be -1"),
        (lambda: z(0, 3).reshape(0, -1), "-1 is ambiguous for a tensor of 0 elements"),
        (lambda: z(0, 3).max(), "Max: empty tensor of shape (0, 3) has no maximum"),
        (lambda: z(0, 3).min(axis=0), "Min: cannot reduce over axis 0 of size 0"),
        (lambda: z(3, 0).argmax(axis=1), "ArgMax: cannot reduce over axis 1 of size 0"),
        (lambda: cr.where(z(3) > 0, z(3), z(2)), "Where: shapes (3,), (3,) and (2,) do not broadcast"),
    ]
    for fn, expected in cases:
        with pytest.raises((ValueError, IndexError)) as e:
            fn()
        assert expected in str(e.value)
    with pytest.raises(IndexError, match=r"Concat: axis 2 is out of range for 2-d tensors"):
        cr.cat([z(3, 4), z(3, 4)], axis=2)


def test_empty_inputs_as_pytorch_with_gradients():
    """The identities of sum and mean, empty (log) softmax, backward through each of them."""
    x = cr.zeros(0, 3, dtype=np.float64, requires_grad=True)
    assert x.sum().item() == 0.0 and np.isnan(x.mean().item())
    np.testing.assert_array_equal(x.mean(axis=0).data, [np.nan] * 3)
    assert x.max(axis=1).shape == (0,) and x.argmax(axis=1).shape == (0,)
    for fn in (lambda t: t.sum(), lambda t: t.mean(axis=0).sum(), lambda t: t.max(axis=1).sum(),
               lambda t: t.softmax(axis=0).sum(), lambda t: t.log_softmax(axis=1).sum()):
        x.grad = None
        fn(x).backward()
        assert x.grad.shape == (0, 3)
    w = cr.zeros(3, 0, dtype=np.float64, requires_grad=True)
    assert w.softmax(axis=1).shape == (3, 0) and w.log_softmax(axis=-1).shape == (3, 0)
