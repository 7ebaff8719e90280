"""fast.pool.FastMaxPool2d (2x2 / stride-2 pooling on the window corners) against the reference
ops.pool.MaxPool2d it replaces: outputs and input gradients bit for bit (equal values; an exact
zero may differ in sign), float32 and float64, with ties, odd sizes and ceil mode."""
import numpy as np
import pytest

import chainrule as cr
import chainrule.fast as fast
from chainrule.fast import pool as FP
from chainrule.nn import functional as F
from chainrule.ops import pool as P


def _run(xs, g_up, needs, **kw):
    x = cr.tensor(xs, requires_grad=needs)
    y = P.MaxPool2d.apply(x, **kw) if not fast.is_enabled() else fast.use(P.MaxPool2d, x).apply(x, **kw)
    if needs:
        (y * cr.tensor(g_up)).sum().backward()
    return y.data, (x.grad.data if needs else None)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(2, 3, 8, 8), (1, 2, 7, 9), (3, 1, 2, 2), (2, 2, 1, 5)])
@pytest.mark.parametrize("ceil_mode", [False, True])
@pytest.mark.parametrize("ties", [False, True])
def test_2x2_pooling_matches_the_reference(shape, dtype, ceil_mode, ties):
    rng = np.random.default_rng(sum(shape))
    xs = (rng.integers(-2, 3, shape) if ties else rng.standard_normal(shape)).astype(dtype)
    kw = dict(kernel_size=2, stride=2, ceil_mode=ceil_mode)
    try:
        with fast.disabled():
            y0, _ = _run(xs, None, False, **kw)
    except ValueError:                                   # no whole window: both refuse
        with pytest.raises(ValueError):
            _run(xs, None, False, **kw)
        return
    g_up = rng.standard_normal(y0.shape).astype(dtype)
    for needs in (False, True):
        with fast.disabled():
            y0, g0 = _run(xs, g_up, needs, **kw)
        y1, g1 = _run(xs, g_up, needs, **kw)
        assert y1.dtype == dtype
        np.testing.assert_array_equal(y1, y0)
        if needs:
            assert g1.dtype == dtype
            np.testing.assert_array_equal(g1, g0)


def test_the_corner_path_is_taken_only_for_its_geometry():
    fn = FP.FastMaxPool2d()
    fn.needs_input_grad = (False,)
    fn.forward(np.zeros((1, 1, 4, 4)), 2)
    assert fn.corners
    for kw in (dict(kernel_size=3), dict(kernel_size=2, stride=1), dict(kernel_size=2, padding=1),
               dict(kernel_size=2, dilation=2), dict(kernel_size=2, ceil_mode=True)):
        fn = FP.FastMaxPool2d()
        fn.needs_input_grad = (False,)
        fn.forward(np.zeros((1, 1, 5, 5)), **kw)
        assert not fn.corners, kw


def test_layers_and_functional_agree_with_fast_on_and_off():
    x = cr.tensor(np.random.default_rng(0).standard_normal((2, 3, 6, 6)))
    y1 = cr.nn.MaxPool2d(2)(x).data
    with fast.disabled():
        y0 = cr.nn.MaxPool2d(2)(x).data
    np.testing.assert_array_equal(y1, y0)
    np.testing.assert_array_equal(F.max_pool2d(x, 2).data, y0)


def test_functional_max_pool_takes_the_fast_path_like_the_layer():
    x = cr.tensor(np.random.default_rng(1).standard_normal((2, 3, 6, 6)), requires_grad=True)
    assert type(F.max_pool2d(x, 2).grad_fn) is type(cr.nn.MaxPool2d(2)(x).grad_fn)
    assert type(F.max_pool2d(x, 2).grad_fn) is not P.MaxPool2d
    with fast.disabled():
        assert type(F.max_pool2d(x, 2).grad_fn) is P.MaxPool2d
