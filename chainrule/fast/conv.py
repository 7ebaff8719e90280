"""Convolution on a second, batch-innermost layout for small feature maps, and the convolution
fused with 2x2 max pooling. Replaces ``ops.conv.Conv`` (registered in ``fast/registry.py``).

Why: with the batch outermost (the reference layout) every im2col/col2im slice of a small map is a
run of only OW values; here the padded input is kept as (C, Hp, Wp, N) and the im2col buffer as
(C, kh, kw, OH, OW, N), a (C*kh*kw, OH*OW*N) matrix, so every shifted window is a run of OW*N
contiguous values and the copies run near memcpy speed (col2im 3x faster at LeNet-5's 10x10
outputs). One matrix product per direction, stacked over groups:

    forward     Y (O, OH*OW*N)    = W (O, C*kh*kw) @ cols
    backward    dW^T (C*kh*kw, O) = cols @ dY^T       (~2x faster than dY @ cols^T)
                dcols             = W^T @ dY, then col2im: kh*kw shifted-slice adds

Large maps (``OUTER_MIN_POSITIONS`` output positions or more) stay on the reference layout,
where a stack of per-image products wins. Results agree with the reference's to rounding, not
bit for bit: the same terms are summed in another order (one large product instead of one per
image; the weight gradient reduces over (positions, batch)), see tests/fast/test_fast_conv.py.

``ConvMaxPool2d`` runs ``max_pool2d(conv2d(x, w, b), 2)`` as one op on this layout: every window
corner is a run of N contiguous values, so pooling needs no strided gathers, and only the pooled
output (4x smaller) is transposed back to NCHW. Bit for bit the same as ``FastConv`` then
``MaxPool2d(2)``; ``fast.fusion`` runs it for Conv2d (-> ReLU) -> MaxPool2d(2) in a Sequential.
"""
import numpy as np
from numpy.lib.stride_tricks import as_strided

from ..ops import conv as _ref
from . import pool as _pool

# Below this many output positions per image the batch-innermost layout wins. Measured on
# LeNet-5's shapes (OpenBLAS): 28x28 outputs ran 2-3x faster batch-outermost, 10x10 outputs 1.7x
# faster batch-innermost; 16x16 was a tie.
OUTER_MIN_POSITIONS = 256


def batch_innermost(oh, ow):
    """Whether a convolution with (OH, OW) outputs runs on this module's layout."""
    return oh * ow < OUTER_MIN_POSITIONS


def pad_bi(x, pads):
    """(N, C, H, W) -> zero-padded (C, Hp, Wp, N): one copy that pads and transposes at once."""
    (pt, pb), (pl, pr) = pads
    n, c, h, w = x.shape
    if pt == pb == pl == pr == 0:
        return np.ascontiguousarray(x.transpose(1, 2, 3, 0))
    out = np.zeros((c, h + pt + pb, w + pl + pr, n), dtype=x.dtype)
    out[:, pt:pt + h, pl:pl + w] = x.transpose(1, 2, 3, 0)
    return out


def im2col_bi(xp, kernel, out_hw, stride, dilation):
    """(C, Hp, Wp, N) padded input -> contiguous (C, kh, kw, OH, OW, N) (one strided copy)."""
    sc, sh, sw, sn = xp.strides
    (kh, kw), (oh, ow), (st, sl), (dh, dw) = kernel, out_hw, stride, dilation
    win = as_strided(xp, (xp.shape[0], kh, kw, oh, ow, xp.shape[3]),
                     (sc, dh * sh, dw * sw, st * sh, sl * sw, sn), writeable=False)
    return np.ascontiguousarray(win)


def col2im_bi(cols, padded_hw, stride, dilation):
    """The adjoint of im2col_bi: (C, kh, kw, OH, OW, N) -> (C, Hp, Wp, N), one shifted-slice add
    per kernel offset."""
    c, kh, kw, oh, ow, n = cols.shape
    (st, sl), (dh, dw) = stride, dilation
    out = np.zeros((c, padded_hw[0], padded_hw[1], n), dtype=cols.dtype)
    for i in range(kh):
        rows = slice(i * dh, i * dh + st * (oh - 1) + 1, st)
        for j in range(kw):
            q = j * dw
            out[:, rows, q:q + sl * (ow - 1) + 1:sl] += cols[:, i, j]
    return out


def to_nchw(y, bias=None):
    """(O, OH, OW, N) -> contiguous (N, O, OH, OW), adding the bias in the same pass."""
    out = np.empty((y.shape[3], y.shape[0], y.shape[1], y.shape[2]), dtype=y.dtype)
    src = y.transpose(3, 0, 1, 2)
    if bias is None:
        np.copyto(out, src)
    else:
        np.add(src, bias.reshape(-1, 1, 1), out=out)
    return out


def from_nchw(g):
    """(N, O, OH, OW) -> contiguous (O, OH, OW, N)."""
    return np.ascontiguousarray(g.transpose(1, 2, 3, 0))


def im2col_bo(xp, kernel, out_hw, stride, dilation, out=None):
    """The reference layout's im2col, (N, C, Hp, Wp) -> (N, C, kh, kw, OH, OW), as one strided
    copy (into ``out`` when given) instead of one slice copy per kernel offset."""
    sn, sc, sh, sw = xp.strides
    (kh, kw), (oh, ow), (st, sl), (dh, dw) = kernel, out_hw, stride, dilation
    win = as_strided(xp, (xp.shape[0], xp.shape[1], kh, kw, oh, ow),
                     (sn, sc, dh * sh, dw * sw, st * sh, sl * sw), writeable=False)
    if out is None:
        return np.ascontiguousarray(win)
    np.copyto(out, win)
    return out


class FastConv(_ref.Conv):
    """``ops.conv.Conv`` with small outputs on the batch-innermost layout (see the module notes).
    Large 2-D outputs with a bias (groups 1) keep the reference layout with the bias folded into
    the product (a row of ones in the im2col buffer: no pass over the output to add it, and
    dL/db comes out of the weight-gradient product); other geometries run the reference."""

    inner = fold = False

    def forward(self, x, w, b=None, *, stride, padding, dilation, groups=1):
        one_d = w.ndim == 3
        x4, w4, st, pads, dil = _ref.as_2d(x, w, stride, padding, dilation)
        padded, out_hw = _ref.geometry(x4.shape, w4.shape, pads, st, dil)
        if not batch_innermost(*out_hw):
            if b is None or groups != 1 or one_d:
                return super().forward(x, w, b, stride=stride, padding=padding,
                                       dilation=dilation, groups=groups)
            return self._forward_folded(x4, w4, b, pads, st, dil, padded, out_hw)
        self.inner, self.one_d, self.out_hw = True, one_d, out_hw
        y, cols = self._product(x4, w4, pads, st, dil, groups, out_hw)
        self._save(x4, w4, cols, padded, pads, st, dil, groups)
        out = to_nchw(y, b)
        return out[:, :, 0] if one_d else out

    def _forward_folded(self, x, w, b, pads, stride, dilation, padded, out_hw):
        """Reference layout, bias folded: [W, b] (O, K + 1) @ [cols_n; 1] for every image n."""
        self.fold, self.one_d = True, False
        n, (o, c, kh, kw), (oh, ow) = x.shape[0], w.shape, out_hw
        k = c * kh * kw
        cols = np.empty((n, k + 1, oh * ow), x.dtype)
        cols[:, k] = 1
        im2col_bo(_ref.pad2d(x, pads), (kh, kw), out_hw, stride, dilation,
                  out=cols[:, :k].reshape(n, c, kh, kw, oh, ow))
        y = np.matmul(np.concatenate([w.reshape(o, k), b[:, None]], axis=1), cols)
        needs = self.needs_input_grad
        self.cols = cols if needs[1] or needs[2] else None
        self.w = w if needs[0] else None
        self.w_shape = w.shape
        self.geom = (x.shape, padded, pads, stride, dilation, 1)
        return y.reshape(n, o, oh, ow)

    def _backward_folded(self, g):
        xshape, padded, pads, stride, dilation, _ = self.geom
        needs = self.needs_input_grad
        n, o, oh, ow = g.shape
        g3 = g.reshape(n, o, oh * ow)
        gx = gw = gb = None
        if needs[1] or needs[2]:                          # [dL/dW, dL/db] = sum_n dY_n [cols_n; 1]^T
            cols = self.cols
            gwb = np.matmul(g3, cols.transpose(0, 2, 1)).sum(axis=0)
            if not self.retain_saved:
                self.cols = None
            k = cols.shape[1] - 1
            if needs[1]:
                gw = np.ascontiguousarray(gwb[:, :k]).reshape(self.w_shape)
            if needs[2]:
                gb = gwb[:, k].copy()
        if needs[0]:                                      # dL/dx = col2im(W^T dY)
            w = self.w
            dcols = np.matmul(w.reshape(o, -1).T, g3).reshape((n, xshape[1]) + w.shape[2:] + (oh, ow))
            gx = _ref.crop(_ref.col2im(dcols, padded, stride, dilation), pads, xshape[2:])
        return gx, gw, gb

    def _product(self, x, w, pads, stride, dilation, groups, out_hw):
        """Y (O, OH, OW, N) without the bias, and the im2col buffer (C, kh, kw, OH, OW, N)."""
        o, cg, kh, kw = w.shape
        k = cg * kh * kw
        cols = im2col_bi(pad_bi(x, pads), (kh, kw), out_hw, stride, dilation)
        if groups == 1:
            y = w.reshape(o, k) @ cols.reshape(k, -1)
        else:
            y = np.matmul(w.reshape(groups, o // groups, k),
                          cols.reshape(groups, k, -1)).reshape(o, -1)
        return y.reshape(o, out_hw[0], out_hw[1], x.shape[0]), cols

    def _save(self, x, w, cols, padded, pads, stride, dilation, groups):
        nx, nw = self.needs_input_grad[:2]
        self.w_shape = w.shape[:2] + w.shape[3 if self.one_d else 2:]
        self.cols = cols if nw else None
        self.w = w if nx else None
        self.geom = (x.shape, padded, pads, stride, dilation, groups)

    def backward(self, g):
        if self.fold:
            return self._backward_folded(g)
        if not self.inner:
            return super().backward(g)
        if self.one_d:
            g = g[:, :, None, :]
        return self._grads_bi(from_nchw(g).reshape(g.shape[1], -1))

    def _grads_bi(self, g2):
        """dL/dx, dL/dW, dL/db from the output gradient as (O, OH*OW*N)."""
        xshape, padded, pads, stride, dilation, groups = self.geom
        needs = self.needs_input_grad
        o = g2.shape[0]
        og = o // groups
        gx = gw = gb = None
        if len(needs) > 2 and needs[2]:
            gb = g2.sum(axis=1)
        if needs[1]:                                      # dL/dW = dY cols^T, as (cols dY^T)^T
            cols = self.cols
            k = cols.shape[0] * cols.shape[1] * cols.shape[2] // groups
            if groups == 1:
                gw = (cols.reshape(k, -1) @ g2.T).T
            else:
                gw = np.matmul(cols.reshape(groups, k, -1),
                               g2.reshape(groups, og, -1).transpose(0, 2, 1)).transpose(0, 2, 1)
            if not self.retain_saved:      # dcols can then reuse this memory while it is in cache
                self.cols = None
            gw = np.ascontiguousarray(gw).reshape(self.w_shape)
        if needs[0]:                                      # dL/dx = col2im(W^T dY)
            w = self.w
            _, cg, kh, kw = w.shape
            if groups == 1:
                dcols = w.reshape(o, -1).T @ g2
            else:
                dcols = np.matmul(w.reshape(groups, og, -1).transpose(0, 2, 1),
                                  g2.reshape(groups, og, -1))
            dcols = dcols.reshape((cg * groups, kh, kw) + self.out_hw + (xshape[0],))
            dxp = col2im_bi(dcols, padded, stride, dilation)
            (pt, _), (pl, _) = pads
            gx = np.ascontiguousarray(
                dxp[:, pt:pt + xshape[2], pl:pl + xshape[3]].transpose(3, 0, 1, 2))
            if self.one_d:
                gx = gx[:, :, 0]
        return gx, gw, gb


class ConvMaxPool2d(FastConv):
    """A 2-D convolution followed by 2x2 / stride-2 max pooling, in one op on the batch-innermost
    layout: ``max_pool2d(conv2d(x, w, b), 2)``, the same values and gradients bit for bit.
    ``applies(out_hw)`` tells where it can run (a small map holding at least one window)."""

    @staticmethod
    def applies(out_hw):
        return min(out_hw) >= 2 and batch_innermost(*out_hw)

    def forward(self, x, w, b=None, *, stride, padding, dilation, groups=1):
        padded, out_hw = _ref.geometry(x.shape, w.shape, padding, stride, dilation)
        self.inner, self.one_d, self.out_hw = True, False, out_hw
        y, cols = self._product(x, w, padding, stride, dilation, groups, out_hw)
        if b is not None:
            y += b.reshape(-1, 1, 1, 1)              # the addition Conv does, before pooling
        # every corner view has N contiguous values innermost: no gathering needed
        pooled, self.masks = _pool.max_pool_2x2(y, 1, True in self.needs_input_grad, gather=False)
        self.y_shape = y.shape
        self._save(x, w, cols, padded, padding, stride, dilation, groups)
        return np.ascontiguousarray(pooled.transpose(3, 0, 1, 2))

    def backward(self, g):
        gy = _pool.max_pool_2x2_backward(from_nchw(g), self.masks, self.y_shape, 1)
        return self._grads_bi(gy.reshape(self.y_shape[0], -1))
