"""fast.conv.FastConv (batch-innermost layout for small maps) against the reference ops.conv.Conv it
replaces: outputs and every gradient, float32 and float64, over geometries with stride, padding,
dilation and groups, with and without bias, for any subset of inputs needing a gradient.

Not bit for bit, by construction: the second layout sums the same terms in another order (one
large matrix product against one per image, whose BLAS kernels accumulate differently; the
weight and bias gradients reduce over (positions, batch) against (batch, positions)), so every
result agrees to rounding: a few units in the last place of the sums, checked with tolerances
scaled by the number of terms. (The input gradient is most often bit-equal, but a 1x1 output
showed it is not always.) Where the layout is the reference's (large maps), results are bit for
bit the reference's."""
import itertools

import numpy as np
import pytest

import chainrule as cr
import chainrule.fast as fast
from chainrule.fast import conv as FC
from chainrule.nn import functional as F

# (x shape, w shape, stride, padding, dilation, groups)
GEOMETRIES = [
    ((3, 6, 14, 14), (16, 6, 5, 5), 1, 0, 1, 1),            # LeNet-5's second convolution
    ((2, 3, 7, 9), (4, 3, 3, 3), 1, 1, 1, 1),
    ((2, 4, 9, 8), (6, 2, 3, 2), 2, (1, 2), 1, 2),           # groups 2, non-square kernel
    ((1, 3, 10, 11), (3, 1, 3, 3), (2, 1), 2, (2, 1), 3),    # depthwise, dilation
    ((2, 2, 6, 7), (3, 2, 4, 2), 1, "same", 1, 1),            # asymmetric 'same' padding
    ((2, 6, 9, 7), (3, 2, 2, 2), 3, "full", 2, 3),
    ((3, 2, 5, 6), (2, 2, 5, 6), 1, 0, 1, 1),                 # 1x1 output
    ((2, 3, 13), (4, 3, 3), 2, 1, 1, 1),                      # 1-D
    ((2, 4, 11), (4, 2, 2), 1, "same", 3, 2),                 # 1-D, groups, dilation
]


def _run(xs, ws, bias, needs, g_up, opts):
    x = cr.tensor(xs, requires_grad=needs[0])
    w = cr.tensor(ws, requires_grad=needs[1])
    b = cr.tensor(bias, requires_grad=needs[2]) if bias is not None else None
    conv = F.conv1d if xs.ndim == 3 else F.conv2d
    y = conv(x, w, b, **opts)
    if any(needs[:2 + (bias is not None)]):
        (y * cr.tensor(g_up)).sum().backward()
    return y.data, [t.grad.data if t is not None and t.grad is not None else None for t in (x, w, b)]


def _tol(dtype, terms):
    eps = np.finfo(dtype).eps
    return dict(rtol=8 * eps * np.sqrt(terms), atol=8 * eps * terms)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("geom", GEOMETRIES, ids=lambda g: "x%s-w%s" % (g[0], g[1]))
def test_fast_conv_matches_the_reference(geom, dtype):
    xshape, wshape, stride, padding, dilation, groups = geom
    opts = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    rng = np.random.default_rng(sum(xshape) + len(wshape))
    xs = rng.standard_normal(xshape).astype(dtype)
    ws = rng.standard_normal(wshape).astype(dtype)
    with fast.disabled():
        out_shape = _run(xs, ws, None, (False,) * 3, None, opts)[0].shape
    fn = FC.FastConv()
    fn.needs_input_grad = (False, False)
    checked = 0
    for with_bias in (True, False):
        bias = rng.standard_normal(wshape[0]).astype(dtype) if with_bias else None
        g_up = rng.standard_normal(out_shape).astype(dtype)
        for needs in itertools.product((False, True), repeat=3):
            if not with_bias and needs[2]:
                continue
            with fast.disabled():
                y0, g0 = _run(xs, ws, bias, needs, g_up, opts)
            y1, g1 = _run(xs, ws, bias, needs, g_up, opts)
            assert y1.dtype == y0.dtype == dtype
            k = int(np.prod(wshape[1:]))
            np.testing.assert_allclose(y1, y0, **_tol(dtype, k))
            assert [a is None for a in g1] == [a is None for a in g0]
            reduction = int(np.prod(out_shape)) // wshape[0]
            for a, b, terms in zip(g1, g0, (wshape[0] * int(np.prod(wshape[2:])), reduction,
                                           reduction)):
                if b is not None:                       # dL/dx, dL/dW, dL/db
                    assert a.dtype == b.dtype == dtype and a.shape == b.shape
                    np.testing.assert_allclose(a, b, **_tol(dtype, terms))
            checked += 1
    assert checked == 12


def test_large_maps_keep_the_reference_layout():
    """At or above OUTER_MIN_POSITIONS output positions FastConv runs the reference layout: the
    reference code itself without a bias (bit for bit), and with a bias (groups 1) the bias folded
    into the product (to rounding: the bias is summed inside the product, dL/db comes from it)."""
    rng = np.random.default_rng(0)
    for dtype in (np.float32, np.float64):
        xs, ws, bs = (rng.standard_normal(s).astype(dtype) for s in ((4, 2, 28, 28), (6, 2, 5, 5), (6,)))
        g_up = rng.standard_normal((4, 6, 28, 28)).astype(dtype)
        for bias in (None, bs):
            for needs in ((True, True, True), (False, True, True), (True, False, False),
                          (False, False, True)):
                with fast.disabled():
                    y0, g0 = _run(xs, ws, bias, needs, g_up, dict(padding=2))
                y1, g1 = _run(xs, ws, bias, needs, g_up, dict(padding=2))
                if bias is None:
                    np.testing.assert_array_equal(y1, y0)
                else:
                    np.testing.assert_allclose(y1, y0, **_tol(dtype, 51))
                for a, b in zip(g1, g0):
                    assert (a is None) == (b is None)
                    if b is None:
                        continue
                    assert a.dtype == dtype
                    if bias is None:
                        np.testing.assert_array_equal(a, b)
                    else:
                        np.testing.assert_allclose(a, b, **_tol(dtype, 4 * 28 * 28))
    assert not FC.batch_innermost(28, 28) and FC.batch_innermost(10, 10)


def test_fast_conv_frees_its_buffer_on_a_last_backward_and_keeps_it_with_retain_graph():
    rng = np.random.default_rng(1)
    x = cr.tensor(rng.standard_normal((2, 3, 8, 8)), requires_grad=True)
    w = cr.tensor(rng.standard_normal((4, 3, 3, 3)), requires_grad=True)
    y = F.conv2d(x, w).sum()
    y.backward(retain_graph=True)
    first = (x.grad.data.copy(), w.grad.data.copy())
    y.backward()
    np.testing.assert_allclose(x.grad.data, 2 * first[0], rtol=1e-13)
    np.testing.assert_allclose(w.grad.data, 2 * first[1], rtol=1e-13)
