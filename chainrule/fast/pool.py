"""2x2 / stride-2 max pooling on the four window corners. Replaces ``ops.pool.MaxPool2d`` for that
geometry (LeNet's pools; registered in ``fast/registry.py``); other geometries run the
reference.

Why: the reference's separable passes run kernel-offset by kernel-offset over strided views; for
2x2 windows, copying out the four corners (a strided gather is ~2x cheaper than arithmetic on
strided views, whose inner loops are only W_out long) and taking element-wise maxima on
contiguous arrays is ~30x faster than reshape-then-max. The same values and the same first
maximum on ties (window order, as PyTorch) as the reference, so outputs and gradients are equal
(tests/fast/test_fast_pool.py); ``fast.conv.ConvMaxPool2d`` uses the two functions on its own
layout.
"""
import numpy as np

from ..ops import pool as _ref



def _corners(a, axis, ho, wo):
    """The four corner views (top-left, top-right, bottom-left, bottom-right) of the 2x2 /
    stride-2 windows of ``a``, whose spatial axes are ``axis`` and ``axis + 1``; (ho, wo) windows."""
    lead = (slice(None),) * axis
    r0, c0 = slice(0, 2 * ho, 2), slice(0, 2 * wo, 2)
    r1, c1 = slice(1, 2 * ho, 2), slice(1, 2 * wo, 2)
    return a[lead + (r0, c0)], a[lead + (r0, c1)], a[lead + (r1, c0)], a[lead + (r1, c1)]


def max_pool_2x2(x, axis, need, gather):
    """2x2 / stride-2 max pooling over the axes ``axis``, ``axis + 1`` of ``x`` (floor mode).

    Returns the maxima and, when ``need``, the masks ``max_pool_2x2_backward`` takes. ``gather``
    copies the corners out first (faster when their innermost axis is strided); without it the
    corner views of ``x`` are overwritten. Strict comparisons pick the first maximum in window
    order (top-left, top-right, bottom-left, bottom-right), as PyTorch does.
    """
    a, b, c, e = _corners(x, axis, x.shape[axis] // 2, x.shape[axis + 1] // 2)
    if gather:
        a, b, c, e = a.copy(), b.copy(), c.copy(), e.copy()
    masks = None
    if need:
        right, lower = b > a, e > c
    np.maximum(a, b, out=a)          # top row's maximum
    np.maximum(c, e, out=c)          # bottom row's maximum
    if need:
        masks = (right, lower, c > a)
    return np.maximum(a, c, out=a), masks


def max_pool_2x2_backward(g, masks, shape, axis):
    """The input gradient (``shape``) of ``max_pool_2x2``: each window's gradient ``g`` goes to
    the corner that held its maximum, zeros elsewhere. Arithmetic on contiguous arrays, then one
    copy per corner."""
    ho, wo = g.shape[axis], g.shape[axis + 1]
    exact = shape[axis] == 2 * ho and shape[axis + 1] == 2 * wo
    gx = (np.empty if exact else np.zeros)(shape, dtype=g.dtype)
    ga, gb, gc, ge = _corners(gx, axis, ho, wo)
    right, lower, bottom = masks
    low = g * bottom                 # windows whose maximum is in the bottom row
    top = g - low                    # exact: g - g = 0 and g - 0 = g
    t = top * right
    gb[...] = t
    ga[...] = np.subtract(top, t, out=top)
    np.multiply(low, lower, out=t)
    ge[...] = t
    gc[...] = np.subtract(low, t, out=low)
    return gx


class FastMaxPool2d(_ref.MaxPool2d):
    """``ops.pool.MaxPool2d`` with the 2x2 / stride-2 / unpadded case on the window corners."""

    corners = False

    def forward(self, x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                name=None):
        k, s, p, d = _ref.pool_params(name or self.fn, kernel_size, stride, padding, dilation, 2)
        windows_inside = False
        if k == s == (2, 2) and p == (0, 0) and d == (1, 1):
            _, _, _, hn, wn = _ref._setup(x, 2, self.fn, name, k, s, p, d, ceil_mode)   # checks
            windows_inside = hn <= x.shape[2] and wn <= x.shape[3]      # not so in ceil mode
        if not windows_inside:
            return super().forward(x, kernel_size, stride, padding, dilation, ceil_mode, name)
        self.corners, self.shape = True, x.shape
        out, self.masks = max_pool_2x2(x, 2, self.needs_input_grad[0], gather=True)
        return out

    def backward(self, g):
        if not self.corners:
            return super().backward(g)
        if not self.needs_input_grad[0]:
            return None
        return max_pool_2x2_backward(g, self.masks, self.shape, 2)
