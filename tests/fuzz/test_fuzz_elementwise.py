"""Fuzz: elementwise math, activations and reductions against PyTorch, values and gradients, with
values drawn around the special points (0 and -0 for relu/abs/leaky_relu, the bounds of clamp,
tiny positive numbers for log/sqrt, +-30 and +-1000 where sigmoid, tanh and softmax saturate,
ties for max/min)."""
import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from torch_compare import agree, fuzz_settings

import chainrule as cr
from chainrule.nn import functional as F

small_shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=4)


def values(shape, elements):
    return hnp.arrays(np.float64, shape, elements=elements)


def real(lo, hi, special=()):
    """Floats in [lo, hi], often one of the ``special`` points."""
    base = st.floats(lo, hi, allow_nan=False, allow_infinity=False)
    return st.one_of(base, st.sampled_from(special)) if special else base


KINKS = (0.0, -0.0, 1e-12, -1e-12, 1.0, -1.0)
SATURATING = (0.0, 30.0, -30.0, 1000.0, -1000.0, 1e-9)

UNARY = {   # name -> (chainrule, torch, elements)
    "exp": (cr.exp, torch.exp, real(-50, 50, (0.0, -0.0, 40.0))),
    "log": (cr.log, torch.log, real(1e-8, 1e6, (1e-300, 1.0))),
    "sqrt": (cr.sqrt, torch.sqrt, real(1e-8, 1e6, (1e-300, 1.0))),
    "abs": (cr.abs, torch.abs, real(-5, 5, KINKS)),
    "neg": (lambda x: -x, lambda x: -x, real(-5, 5, KINKS)),
    "relu": (cr.relu, torch.relu, real(-5, 5, KINKS)),
    "leaky_relu": (lambda x: F.leaky_relu(x, 0.1),
                   lambda x: torch.nn.functional.leaky_relu(x, 0.1), real(-5, 5, KINKS)),
    "sigmoid": (cr.sigmoid, torch.sigmoid, real(-1e3, 1e3, SATURATING)),
    "tanh": (cr.tanh, torch.tanh, real(-1e3, 1e3, SATURATING)),
    "clamp": (lambda x: x.clamp(-0.5, 1.0), lambda x: x.clamp(-0.5, 1.0),
              real(-3, 3, (-0.5, 1.0, 0.0))),
    "clamp_min": (lambda x: x.clamp(min=0.0), lambda x: x.clamp(min=0.0), real(-3, 3, KINKS)),
    "square": (lambda x: x ** 2, lambda x: x ** 2, real(-1e3, 1e3, KINKS)),
    "pow0": (lambda x: x ** 0, lambda x: x ** 0, real(-3, 3, KINKS)),
    "cube": (lambda x: x ** 3, lambda x: x ** 3, real(-10, 10, KINKS)),
    "rsqrt": (lambda x: x ** -0.5, lambda x: x ** -0.5, real(1e-6, 1e6, (1.0,))),
}


@pytest.mark.parametrize("name", list(UNARY))
@fuzz_settings(40)
@given(data=st.data(), shape=small_shapes)
def test_unary(name, data, shape):
    cr_fn, torch_fn, elements = UNARY[name]
    x = data.draw(values(shape, elements))
    # atol: the saturated tails (sigmoid(-30) ~ 1e-13) are compared in absolute terms
    agree(cr_fn, torch_fn, [x], rtol=1e-9, atol=1e-12)


BINARY = {
    "add": (lambda a, b: a + b, lambda a, b: a + b, real(-5, 5), real(-5, 5)),
    "mul": (lambda a, b: a * b, lambda a, b: a * b, real(-5, 5, KINKS), real(-5, 5, KINKS)),
    "div": (lambda a, b: a / b, lambda a, b: a / b, real(-5, 5, KINKS),
            st.one_of(real(0.1, 5), real(-5, -0.1))),
    "pow": (lambda a, b: a ** b, lambda a, b: a ** b, real(0.1, 5, (1.0,)), real(-3, 3, (0.0, 1.0))),
    "maximum": (cr.maximum, torch.maximum, real(-2, 2, (0.0, 1.0)), real(-2, 2, (0.0, 1.0))),
    "minimum": (cr.minimum, torch.minimum, real(-2, 2, (0.0, 1.0)), real(-2, 2, (0.0, 1.0))),
}


@pytest.mark.parametrize("name", list(BINARY))
@fuzz_settings(30)
@given(data=st.data(),
       pair=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, min_side=1,
                                              max_side=3))
def test_binary(name, data, pair):
    """(maximum/minimum at ties: both libraries split the gradient in halves)"""
    cr_fn, torch_fn, ea, eb = BINARY[name]
    sa, sb = pair.input_shapes
    agree(cr_fn, torch_fn, [data.draw(values(sa, ea)), data.draw(values(sb, eb))],
          rtol=1e-9, atol=1e-12)


# -- reductions and softmax ------------------------------------------------------------------------
@st.composite
def array_and_axis(draw, min_dims=1, elements=real(-5, 5)):
    shape = draw(hnp.array_shapes(min_dims=min_dims, max_dims=3, min_side=1, max_side=4))
    nd = len(shape)
    axis = draw(st.one_of(st.none(), st.integers(-nd, nd - 1),
                          st.lists(st.integers(0, nd - 1), min_size=1, max_size=nd, unique=True)
                          .map(tuple)))
    return draw(values(shape, elements)), axis


def _dims(axis, nd):
    return tuple(range(nd)) if axis is None else axis


TIES = st.sampled_from([-1.0, 0.0, 0.5, 2.0])   # few distinct values: many ties for max/min

REDUCE = {
    "sum": (lambda x, a, k: x.sum(axis=a, keepdims=k),
            lambda x, d, k: x.sum(dim=d, keepdim=k), real(-5, 5)),
    "mean": (lambda x, a, k: x.mean(axis=a, keepdims=k),
             lambda x, d, k: x.mean(dim=d, keepdim=k), real(-5, 5)),
    "max": (lambda x, a, k: x.max(axis=a, keepdims=k),
            lambda x, d, k: torch.amax(x, dim=d, keepdim=k), TIES),
    "min": (lambda x, a, k: x.min(axis=a, keepdims=k),
            lambda x, d, k: torch.amin(x, dim=d, keepdim=k), TIES),
    "var": (lambda x, a, k: x.var(axis=a, keepdims=k),
            lambda x, d, k: x.var(dim=d, keepdim=k), real(-5, 5)),
}


@pytest.mark.parametrize("name", list(REDUCE))
@fuzz_settings(40)
@given(case=array_and_axis(elements=st.one_of(real(-5, 5), TIES)), keepdims=st.booleans())
def test_reduction(name, case, keepdims):
    cr_fn, torch_fn, _ = REDUCE[name]
    x, axis = case
    nd = x.ndim
    if name == "var":                            # n - 1 = 0 is PyTorch's warning and nan: skip
        n = x.size if axis is None else int(np.prod([x.shape[a] for a in np.atleast_1d(axis)]))
        if n < 2:
            return
    agree(lambda t: cr_fn(t, axis, keepdims), lambda t: torch_fn(t, _dims(axis, nd), keepdims),
          [x], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@fuzz_settings(40)
@given(data=st.data(), shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=5))
def test_softmax(name, data, shape):
    """Large logits (+-1000) and equal ones: the max-shift keeps both stable."""
    x = data.draw(values(shape, real(-1e3, 1e3, (0.0, 1e3, -1e3, 1.0))))
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    agree(lambda t: getattr(t, name)(axis=axis), lambda t: getattr(torch, name)(t, dim=axis),
          [x], rtol=1e-9, atol=1e-12)
