"""Convolutions: conv1d/conv2d (stride, padding, dilation, groups), conv_transpose2d and the locally
connected layer (a convolution without weight sharing), with im2col/col2im through stride tricks.

Interface layouts are PyTorch's: x (N, C, H, W) or (N, C, L); conv weight (O, C/groups, kh, kw);
transposed-conv weight (C_in, C_out/groups, kh, kw).

Layouts inside an op differ from the interface; Conv picks one of two by the number of output
positions OH*OW (``OUTER_MIN_POSITIONS``), measured on LeNet-5's shapes with OpenBLAS:

* batch-innermost, for small feature maps (LeNet's second conv, 10x10 outputs): the padded input
  is kept as (C, Hp, Wp, N) and the im2col buffer as (C, kh, kw, OH, OW, N), a (C*kh*kw, OH*OW*N)
  matrix. Every shifted window is a run of OW*N contiguous values (stride 1), so building the
  buffer and col2im's kh*kw shifted-slice adds run near memcpy speed (3x faster col2im than
  batch-outermost at 10x10). One matrix product per direction (stacked over groups):

      forward     Y (O, OH*OW*N)    = W (O, C*kh*kw) @ cols
      backward    dW^T (C*kh*kw, O) = cols @ dY^T       (~2x faster than dY @ cols^T)
                  dcols             = W^T @ dY, then col2im: kh*kw shifted-slice adds

* batch-outermost, for large feature maps (LeNet's first conv, 28x28 outputs): im2col straight
  from the padded NCHW input into (N, C, kh, kw, OH, OW), and one stacked ``np.matmul`` whose
  per-image products (O, K) x (K, OH*OW) land directly in the (N, O, OH*OW) output -- no
  transposes, and OpenBLAS runs these small products without packing the multi-megabyte buffer:
  forward 2.5x and weight gradient 3x faster than the single large product at 28x28.

No Python loop runs over the batch or over output positions; col2im loops over kernel offsets
only, never ``np.add.at``. Gradients nobody needs are skipped, and the im2col buffer is kept for
backward only when the weight (or, batch-outermost, the bias) needs a gradient, and dropped on a
graph's last backward as soon as the weight gradient is computed (the next large buffer then
reuses memory that is still in cache). Batch-outermost folds the bias into the product (a row of
ones in cols). ``ConvMaxPool2d`` is a convolution followed by 2x2 max pooling in one op, pooling
in the batch-innermost layout (see there; ``nn.Sequential`` uses it).

In a training step these ops run with cold caches: the step's buffers (LeNet-5: ~20 MB) do not
stay in L2/L3 between uses, and isolated timings with warm caches are 2-3x lower than in-step
ones. Measure changes inside a whole step.

Measured on LeNet-5's second conv and not used (2 threads, fwd + bwd ~1.8 ms here): im2col and
col2im split over two Python threads (im2col 0.29 -> 0.21 ms alone, but slower after a
two-thread BLAS product, whose waiting threads hold the second core); im2col along W only with
kh products over row offsets (weight gradient 0.30 -> 0.91 ms); dL/dx product and col2im fused
per kernel offset (no gain); batch chunks small enough for L2 with im2col recomputed in backward
(first conv, no gain). Batch-outermost im2col and product by chunks of 8 images whose columns
stay in L2 (im2col buffer kept for backward) made LeNet's first conv forward 1.3 -> 0.75 ms with
cold caches and the W2 step ~2% faster, but it is a Python loop over the batch, which issue 3
rules out: not used.
"""
import numpy as np
from numpy.lib.stride_tricks import as_strided

from ..autograd import Function
from . import pool as _pool

# -- geometry ---------------------------------------------------------------------------------------


def conv_output_size(size, kernel, stride=1, padding=0, dilation=1):
    """w_out = floor((w_in + 2p - d(k - 1) - 1) / s) + 1. ``padding`` is an int (each side) or a
    (before, after) pair.

    >>> conv_output_size(28, 5, padding=2)
    28
    """
    lo, hi = (padding, padding) if np.isscalar(padding) else padding
    return (size + lo + hi - dilation * (kernel - 1) - 1) // stride + 1


def conv_transpose_output_size(size, kernel, stride=1, padding=0, output_padding=0, dilation=1):
    """w_out = (w_in - 1) s - 2p + d(k - 1) + output_padding + 1 (the inverse of conv's formula)."""
    return (size - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1


def ntuple(value, n, what="value", name="conv"):
    """An int or a sequence of n ints -> a tuple of n ints."""
    if isinstance(value, (int, np.integer)):
        return (int(value),) * n
    try:
        t = tuple(int(v) for v in value)
    except TypeError:
        raise TypeError(f"{name}: {what} must be an int or a tuple of {n} ints, got {value!r}") from None
    if len(t) != n:
        raise ValueError(f"{name}: {what} must be an int or a tuple of {n} ints, got {value!r}")
    return t


def resolve_padding(padding, kernel, stride, dilation, name="conv"):
    """Padding as ((before, after), ...) per spatial axis.

    ``padding``: an int, one int per axis, ((before, after), ...) per axis, or a mode: 'valid' (none),
    'same' (output size = input size; stride 1 only, as in PyTorch; when d(k-1) is odd the extra
    row/column goes after, as PyTorch does) or 'full' (d(k-1) each side: every partial overlap).
    """
    n = len(kernel)
    if isinstance(padding, str):
        mode = padding.lower()
        if mode == "valid":
            return ((0, 0),) * n
        if mode == "same":
            if any(s != 1 for s in stride):
                raise ValueError(f"{name}: padding='same' is not supported for strided convolutions "
                                 f"(stride={stride}); give the padding as numbers")
            pads = []
            for k, d in zip(kernel, dilation):
                total = d * (k - 1)
                pads.append((total // 2, total - total // 2))
            return tuple(pads)
        if mode == "full":
            return tuple((d * (k - 1), d * (k - 1)) for k, d in zip(kernel, dilation))
        raise ValueError(f"{name}: padding must be an int, a tuple or one of 'valid', 'same', 'full'; "
                         f"got {padding!r}")
    if isinstance(padding, (int, np.integer)):
        pads = ((int(padding), int(padding)),) * n
    else:
        try:
            items = tuple(padding)
        except TypeError:
            raise TypeError(f"{name}: padding must be an int, a tuple or a mode string, "
                            f"got {padding!r}") from None
        if len(items) != n:
            raise ValueError(f"{name}: padding must have one entry per spatial axis ({n}), got {padding!r}")
        pads = tuple((int(p), int(p)) if isinstance(p, (int, np.integer)) else tuple(int(q) for q in p)
                     for p in items)
        if any(len(p) != 2 for p in pads):
            raise ValueError(f"{name}: padding entries must be ints or (before, after) pairs, "
                             f"got {padding!r}")
    if any(p < 0 for pair in pads for p in pair):
        raise ValueError(f"{name}: padding must be non-negative, got {padding!r}")
    return pads


def _spatial_names(n):
    return ("L",) if n == 1 else ("H", "W")


def check_conv_args(name, x_shape, w_shape, stride, pads, dilation, groups):
    """Validate a convolution's input against its weight; return the output's spatial sizes.

    Errors name the caller (a layer's repr or the function) and the sizes involved.
    """
    n = len(w_shape) - 2
    out_channels, cg = w_shape[0], w_shape[1]
    in_channels = cg * groups
    dims = ", ".join(_spatial_names(n))
    if len(x_shape) != n + 2 or x_shape[1] != in_channels:
        raise ValueError(f"{name}: expected input (N, {in_channels}, {dims}), got {tuple(x_shape)}")
    if out_channels % groups:
        raise ValueError(f"{name}: out_channels={out_channels} is not divisible by groups={groups}")
    if any(s < 1 for s in stride) or any(d < 1 for d in dilation):
        raise ValueError(f"{name}: stride and dilation must be >= 1, got stride={stride}, "
                         f"dilation={dilation}")
    out = []
    for size, k, s, (lo, hi), d in zip(x_shape[2:], w_shape[2:], stride, pads, dilation):
        eff = d * (k - 1) + 1
        if size + lo + hi < eff:
            raise ValueError(
                f"{name}: kernel size {tuple(w_shape[2:])} (dilated extent {eff}) is larger than the "
                f"padded input: input {dims} = {tuple(x_shape[2:])}, padding {pads}, "
                f"padded size {size + lo + hi}")
        out.append((size + lo + hi - eff) // s + 1)
    return tuple(out)


# -- im2col / col2im on the batch-innermost layout --------------------------------------------------


def _pad_bi(x, pads):
    """(N, C, H, W) -> zero-padded (C, Hp, Wp, N): one copy that pads and transposes at once."""
    (pt, pb), (pl, pr) = pads
    n, c, h, w = x.shape
    if pt == pb == pl == pr == 0:
        return np.ascontiguousarray(x.transpose(1, 2, 3, 0))
    xp = np.zeros((c, h + pt + pb, w + pl + pr, n), dtype=x.dtype)
    xp[:, pt:pt + h, pl:pl + w] = x.transpose(1, 2, 3, 0)
    return xp


def _windows(xp, kernel, out_hw, stride, dilation):
    """The view (C, kh, kw, OH, OW, N) of all receptive fields of a (C, Hp, Wp, N) array."""
    sc, sh, sw, sn = xp.strides
    (kh, kw), (oh, ow), (st, sl), (dh, dw) = kernel, out_hw, stride, dilation
    return as_strided(xp, (xp.shape[0], kh, kw, oh, ow, xp.shape[3]),
                      (sc, dh * sh, dw * sw, st * sh, sl * sw, sn), writeable=False)


def im2col(xp, kernel, out_hw, stride, dilation):
    """(C, Hp, Wp, N) padded input -> contiguous (C, kh, kw, OH, OW, N) buffer (one strided copy)."""
    return np.ascontiguousarray(_windows(xp, kernel, out_hw, stride, dilation))


def col2im(cols, padded_hw, stride, dilation):
    """The adjoint of im2col: (C, kh, kw, OH, OW, N) -> (C, Hp, Wp, N), summing overlaps with one
    shifted-slice add per kernel offset (never a Python loop over batch or positions)."""
    c, kh, kw, oh, ow, n = cols.shape
    (st, sl), (dh, dw) = stride, dilation
    out = np.zeros((c, padded_hw[0], padded_hw[1], n), dtype=cols.dtype)
    for i in range(kh):
        r = i * dh
        rows = slice(r, r + st * (oh - 1) + 1, st)
        for j in range(kw):
            q = j * dw
            out[:, rows, q:q + sl * (ow - 1) + 1:sl] += cols[:, i, j]
    return out


def _to_nchw(y, bias=None):
    """(O, OH, OW, N) -> contiguous (N, O, OH, OW), adding the bias in the same pass."""
    out = np.empty((y.shape[3], y.shape[0], y.shape[1], y.shape[2]), dtype=y.dtype)
    src = y.transpose(3, 0, 1, 2)
    if bias is None:
        np.copyto(out, src)
    else:
        np.add(src, bias.reshape(-1, 1, 1), out=out)
    return out


def _from_nchw(g):
    """(N, O, OH, OW) -> contiguous (O, OH, OW, N)."""
    return np.ascontiguousarray(g.transpose(1, 2, 3, 0))


def _pad_bo(x, pads):
    """(N, C, H, W) -> zero-padded (N, C, Hp, Wp); ``x`` itself when there is no padding."""
    (pt, pb), (pl, pr) = pads
    if pt == pb == pl == pr == 0:
        return x
    n, c, h, w = x.shape
    xp = np.zeros((n, c, h + pt + pb, w + pl + pr), dtype=x.dtype)
    xp[:, :, pt:pt + h, pl:pl + w] = x
    return xp


def _windows_bo(xp, kernel, out_hw, stride, dilation):
    """The view (N, C, kh, kw, OH, OW) of all receptive fields of a (N, C, Hp, Wp) array."""
    sn, sc, sh, sw = xp.strides
    (kh, kw), (oh, ow), (st, sl), (dh, dw) = kernel, out_hw, stride, dilation
    return as_strided(xp, (xp.shape[0], xp.shape[1], kh, kw, oh, ow),
                      (sn, sc, dh * sh, dw * sw, st * sh, sl * sw), writeable=False)


def im2col_bo(xp, kernel, out_hw, stride, dilation):
    """Batch-outermost im2col: (N, C, Hp, Wp) -> contiguous (N, C, kh, kw, OH, OW) (one copy)."""
    return np.ascontiguousarray(_windows_bo(xp, kernel, out_hw, stride, dilation))


def col2im_bo(cols, padded_hw, stride, dilation):
    """The adjoint of im2col_bo: (N, C, kh, kw, OH, OW) -> (N, C, Hp, Wp), one shifted-slice add per
    kernel offset."""
    n, c, kh, kw, oh, ow = cols.shape
    (st, sl), (dh, dw) = stride, dilation
    out = np.zeros((n, c, padded_hw[0], padded_hw[1]), dtype=cols.dtype)
    for i in range(kh):
        r = i * dh
        rows = slice(r, r + st * (oh - 1) + 1, st)
        for j in range(kw):
            q = j * dw
            out[:, :, rows, q:q + sl * (ow - 1) + 1:sl] += cols[:, :, i, j]
    return out


def _as_2d(x, w, n_spatial):
    """1-D convolutions run as 2-D ones over a height of 1."""
    if n_spatial == 1:
        return x[:, :, None, :], w[:, :, None, :]
    return x, w


def _pair2(t, n_spatial, fill):
    return (fill,) + tuple(t) if n_spatial == 1 else tuple(t)


# -- ops --------------------------------------------------------------------------------------------


# Below this many output positions per image, batch-innermost (one large product) wins; above it,
# batch-outermost (a stack of per-image products) does. Measured on LeNet-5's shapes (OpenBLAS):
# 28x28 outputs (784) ran 2-3x faster batch-outermost, 10x10 outputs (100) 1.7x faster
# batch-innermost; 16x16 (256) was a tie.
OUTER_MIN_POSITIONS = 256


def batch_outermost(oh, ow):
    """Whether a convolution with (OH, OW) outputs runs batch-outermost (else batch-innermost)."""
    return oh * ow >= OUTER_MIN_POSITIONS


def _geometry(x_shape, w_shape, padding, stride, dilation):
    """The padded input's (Hp, Wp) and the output's (OH, OW) of a 2-D convolution."""
    (pt, pb), (pl, pr) = padding
    hp, wp = x_shape[2] + pt + pb, x_shape[3] + pl + pr
    oh = (hp - dilation[0] * (w_shape[2] - 1) - 1) // stride[0] + 1
    ow = (wp - dilation[1] * (w_shape[3] - 1) - 1) // stride[1] + 1
    return (hp, wp), (oh, ow)


def _inner_product(x, w, padding, stride, dilation, groups, out_hw):
    """Batch-innermost forward product: returns Y (O, OH, OW, N) (no bias) and the im2col buffer
    (C, kh, kw, OH, OW, N)."""
    o, cg, kh, kw = w.shape
    k = cg * kh * kw
    xp = _pad_bi(x, padding)
    cols = im2col(xp, (kh, kw), out_hw, stride, dilation)
    if groups == 1:
        y = w.reshape(o, k) @ cols.reshape(k, -1)
    else:
        y = np.matmul(w.reshape(groups, o // groups, k),
                      cols.reshape(groups, k, -1)).reshape(o, -1)
    return y.reshape(o, out_hw[0], out_hw[1], x.shape[0]), cols


class Conv(Function):
    """Cross-correlation (what deep learning calls convolution), 1-D or 2-D, fused with the bias.

    x (N, C, H, W), w (O, C/groups, kh, kw), b (O,) or None -> y (N, O, OH, OW);
    1-D: x (N, C, L), w (O, C/groups, k) -> y (N, O, L_out).
    ``stride``/``dilation``: one int per spatial axis; ``padding``: one (before, after) pair per
    axis (see ``resolve_padding``). Arguments are checked by the callers (``check_conv_args``).

    Two internal layouts, picked by the number of output positions OH*OW (see the module notes):
    batch-innermost for small feature maps, batch-outermost for large ones.
    """

    def forward(self, x, w, b=None, *, stride, padding, dilation, groups=1):
        nsp = w.ndim - 2
        x, w = _as_2d(x, w, nsp)
        stride, dilation = _pair2(stride, nsp, 1), _pair2(dilation, nsp, 1)
        padding = _pair2(padding, nsp, (0, 0))
        n, c = x.shape[:2]
        o, cg, kh, kw = w.shape
        (hp, wp), (oh, ow) = _geometry(x.shape, w.shape, padding, stride, dilation)
        k = cg * kh * kw
        self.outer = outer = batch_outermost(oh, ow)
        if outer:
            # cols (N, C, kh, kw, OH, OW); y_n = W cols_n for every image n, written straight
            # into (N, O, OH*OW): no transposes, and OpenBLAS runs these small products without
            # packing the large buffer (2-3x faster than one (O, K) x (K, N*OH*OW) product)
            xp = _pad_bo(x, padding)
            self.fold = fold = b is not None and groups == 1
            if fold:
                # the bias as one more column of W against a row of ones in cols: no pass over
                # the output to add it, and backward gets dL/db from the weight-gradient product
                cols = np.empty((n, k + 1, oh * ow), x.dtype)
                cols[:, k] = 1
                np.copyto(cols[:, :k].reshape(n, c, kh, kw, oh, ow),
                          _windows_bo(xp, (kh, kw), (oh, ow), stride, dilation))
                y = np.matmul(np.concatenate([w.reshape(o, k), b[:, None]], axis=1), cols)
            else:
                cols = im2col_bo(xp, (kh, kw), (oh, ow), stride, dilation)
                if groups == 1:
                    y = np.matmul(w.reshape(o, k), cols.reshape(n, k, oh * ow))
                else:
                    y = np.matmul(w.reshape(groups, o // groups, k),
                                  cols.reshape(n, groups, k, oh * ow))
            out = y.reshape(n, o, oh, ow)
            if b is not None and not fold:
                out += b.reshape(-1, 1, 1)
        else:
            y, cols = _inner_product(x, w, padding, stride, dilation, groups, (oh, ow))
            out = _to_nchw(y, b)
        self._save(nsp, x, w, cols, (hp, wp), padding, stride, dilation, groups)
        return out[:, :, 0] if nsp == 1 else out

    def _save(self, nsp, x, w, cols, padded, padding, stride, dilation, groups):
        nx, nw = self.needs_input_grad[:2]
        self.geom = (nsp, x.shape, padded, padding, stride, dilation, groups)
        fold = self.outer and self.fold
        self.kshape = w.shape[2:]
        self.cols = cols if nw or (fold and self.needs_input_grad[2]) else None   # for dL/dW (dL/db)
        self.w = w if nx else None

    def backward(self, g):
        if self.geom[0] == 1:
            g = g[:, :, None, :]
        n, o, oh, ow = g.shape
        if self.outer:
            g3 = g.reshape(n, o, oh * ow)
        else:
            g3 = _from_nchw(g).reshape(o, -1)             # (O, OH*OW*N)
        return self._grads_from(g3, n, oh, ow)

    def _grads_from(self, g3, n, oh, ow):
        """dL/dx, dL/dW, dL/db from the output gradient in the internal layout: (N, O, OH*OW)
        batch-outermost, (O, OH*OW*N) batch-innermost."""
        nsp, xshape, padded, padding, stride, dilation, groups = self.geom
        needs = self.needs_input_grad
        nx, nw = needs[0], needs[1]
        nb = len(needs) > 2 and needs[2]
        o = g3.shape[-2 if self.outer else 0]
        og = o // groups
        outer = self.outer
        gx = gw = gb = None
        fold = outer and self.fold                        # bias folded into the product
        if fold and (nw or nb):                           # [dL/dW, dL/db] = sum_n dY_n [cols_n; 1]^T
            cols = self.cols
            gwb = np.matmul(g3, cols.transpose(0, 2, 1)).sum(axis=0)
            k = cols.shape[1] - 1
            if nw:
                gw = np.ascontiguousarray(gwb[:, :k]).reshape(o, -1, *self.kshape)
                if nsp == 1:
                    gw = gw[:, :, 0]
            gb = gwb[:, k].copy() if nb else None
        elif nb:                                          # dL/db = sum of dL/dy over N, OH, OW
            gb = g3.sum(axis=2).sum(axis=0) if outer else g3.sum(axis=1)
        if nw and not fold:
            cols = self.cols
            if outer:                                     # dL/dW = sum_n dY_n cols_n^T
                k = cols.shape[1] * cols.shape[2] * cols.shape[3] // groups
                if groups == 1:
                    gw = np.matmul(g3, cols.reshape(n, k, -1).transpose(0, 2, 1)).sum(axis=0)
                else:
                    gw = np.matmul(g3.reshape(n, groups, og, -1),
                                   cols.reshape(n, groups, k, -1).transpose(0, 1, 3, 2)).sum(axis=0)
                kshape = cols.shape[2:4]
            else:                                         # dL/dW = dY cols^T, as (cols dY^T)^T
                k = cols.shape[0] * cols.shape[1] * cols.shape[2] // groups
                if groups == 1:
                    gw = (cols.reshape(k, -1) @ g3.T).T
                else:
                    gw = np.matmul(cols.reshape(groups, k, -1),
                                   g3.reshape(groups, og, -1).transpose(0, 2, 1)).transpose(0, 2, 1)
                kshape = cols.shape[1:3]
            if not self.retain_saved:      # dcols can then reuse this memory while it is in cache
                self.cols = None
            cols = None
            gw = np.ascontiguousarray(gw).reshape(o, -1, *kshape)
            if nsp == 1:
                gw = gw[:, :, 0]
        if nx:                                            # dL/dx = col2im(W^T dY)
            w = self.w
            _, cg, kh, kw = w.shape
            k = cg * kh * kw
            (pt, _), (pl, _) = padding
            h, wd = xshape[2], xshape[3]
            if outer:
                if groups == 1:
                    dcols = np.matmul(w.reshape(o, k).T, g3)
                else:
                    dcols = np.matmul(w.reshape(groups, og, k).transpose(0, 2, 1),
                                      g3.reshape(n, groups, og, -1))
                dxp = col2im_bo(dcols.reshape(n, cg * groups, kh, kw, oh, ow), padded, stride, dilation)
                gx = dxp if dxp.shape == xshape else np.ascontiguousarray(dxp[:, :, pt:pt + h, pl:pl + wd])
            else:
                if groups == 1:
                    dcols = w.reshape(o, k).T @ g3
                else:
                    dcols = np.matmul(w.reshape(groups, og, k).transpose(0, 2, 1), g3.reshape(groups, og, -1))
                dxp = col2im(dcols.reshape(cg * groups, kh, kw, oh, ow, n), padded, stride, dilation)
                gx = np.ascontiguousarray(dxp[:, pt:pt + h, pl:pl + wd].transpose(3, 0, 1, 2))
            if nsp == 1:
                gx = gx[:, :, 0]
        return gx, gw, gb


class ConvMaxPool2d(Conv):
    """A 2-D convolution followed by 2x2 / stride-2 max pooling, in one op on the batch-innermost
    layout: ``max_pool2d(conv2d(x, w, b), 2)``, the same values and gradients bit for bit.

    ``nn.Sequential`` runs a ``Conv2d`` followed by ``MaxPool2d(2)`` through it (see there). In
    this layout every window corner is a run of N contiguous values, so pooling needs no strided
    gathers, and only the pooled output (4x smaller) is transposed to NCHW; backward builds the
    convolution's output gradient straight in its internal layout. LeNet-5's second convolution
    and pooling: forward 0.67 -> 0.56 ms, backward ~0.1 ms less (isolated, 2 threads).
    """

    def forward(self, x, w, b=None, *, stride, padding, dilation, groups=1):
        (hp, wp), (oh, ow) = _geometry(x.shape, w.shape, padding, stride, dilation)
        self.outer = self.fold = False
        y, cols = _inner_product(x, w, padding, stride, dilation, groups, (oh, ow))
        if b is not None:
            y += b.reshape(-1, 1, 1, 1)              # the addition Conv does, before pooling
        # every corner view has N contiguous values innermost: no gathering needed
        pooled, self.masks = _pool.max_pool_2x2(y, 1, True in self.needs_input_grad, gather=False)
        self.y_shape = y.shape
        self._save(2, x, w, cols, (hp, wp), padding, stride, dilation, groups)
        return np.ascontiguousarray(pooled.transpose(3, 0, 1, 2))

    def backward(self, g):
        o, oh, ow, n = self.y_shape
        gy = _pool.max_pool_2x2_backward(_from_nchw(g), self.masks, self.y_shape, 1)
        return self._grads_from(gy.reshape(o, -1), n, oh, ow)


class ConvTranspose(Function):
    """Transposed convolution (the gradient of conv with respect to its input), 1-D or 2-D.

    x (N, C_in, H, W), w (C_in, C_out/groups, kh, kw), b (C_out,) or None -> y (N, C_out, OH, OW)
    with OH = (H - 1) s - 2p + d(kh - 1) + output_padding + 1. ``padding`` and ``output_padding``:
    one int per axis; ``output_padding`` adds rows/columns at the end (bottom/right), as PyTorch.
    """

    def forward(self, x, w, b=None, *, stride, padding, output_padding, dilation, groups=1):
        nsp = w.ndim - 2
        x, w = _as_2d(x, w, nsp)
        stride, dilation = _pair2(stride, nsp, 1), _pair2(dilation, nsp, 1)
        padding, output_padding = _pair2(padding, nsp, 0), _pair2(output_padding, nsp, 0)
        n, cin, h, wd = x.shape
        _, og, kh, kw = w.shape
        cout = og * groups
        oh, ow = (conv_transpose_output_size(sz, k, s, p, op, d) for sz, k, s, p, op, d in
                  zip((h, wd), (kh, kw), stride, padding, output_padding, dilation))
        # the uncropped result spans (in - 1) s + d (k - 1) + 1; output_padding may reach past it
        full = tuple(max((sz - 1) * s + d * (k - 1) + 1, p + o_)
                     for sz, k, s, d, p, o_ in zip((h, wd), (kh, kw), stride, dilation, padding, (oh, ow)))
        xt = _from_nchw(x).reshape(cin, -1)               # (C_in, H*W*N)
        if groups == 1:                                   # cols = W^T x
            cols = w.reshape(cin, -1).T @ xt
        else:
            cols = np.matmul(w.reshape(groups, cin // groups, -1).transpose(0, 2, 1),
                             xt.reshape(groups, cin // groups, -1))
        buf = col2im(cols.reshape(cout, kh, kw, h, wd, n), full, stride, dilation)
        pt, pl = padding
        out = _to_nchw(buf[:, pt:pt + oh, pl:pl + ow], b)
        nx, nw = self.needs_input_grad[:2]
        self.geom = (nsp, full, padding, stride, dilation, groups, (h, wd), (kh, kw))
        self.xt = xt if nw else None
        self.w = w if nx else None
        return out[:, :, 0] if nsp == 1 else out

    def backward(self, g):
        nsp, full, padding, stride, dilation, groups, in_hw, (kh, kw) = self.geom
        needs = self.needs_input_grad
        nx, nw = needs[0], needs[1]
        nb = len(needs) > 2 and needs[2]
        if nsp == 1:
            g = g[:, :, None, :]
        n, cout, oh, ow = g.shape
        gx = gw = gb = None
        if nb:
            gb = g.sum(axis=(0, 2, 3))
        if not (nx or nw):
            return gx, gw, gb
        # the adjoint of "col2im then crop" is "zero-pad then im2col"
        pt, pl = padding
        gp = np.zeros((cout, full[0], full[1], n), dtype=g.dtype)
        gp[:, pt:pt + oh, pl:pl + ow] = g.transpose(1, 2, 3, 0)
        w = self.w
        dcols = im2col(gp, (kh, kw), in_hw, stride, dilation)
        k = cout * kh * kw
        dcols = dcols.reshape(k, -1)                      # (C_out*kh*kw, H*W*N)
        if nx:                                            # dL/dx = W dcols
            cin = w.shape[0]
            if groups == 1:
                gxt = w.reshape(cin, -1) @ dcols
            else:
                gxt = np.matmul(w.reshape(groups, cin // groups, -1), dcols.reshape(groups, k // groups, -1))
            gx = _to_nchw(gxt.reshape(cin, in_hw[0], in_hw[1], n))
            if nsp == 1:
                gx = gx[:, :, 0]
        if nw:                                            # dL/dW = x dcols^T
            xt = self.xt
            cin = xt.shape[0]
            if groups == 1:
                gw = (dcols @ xt.T).T
            else:
                gw = np.matmul(dcols.reshape(groups, k // groups, -1),
                               xt.reshape(groups, cin // groups, -1).transpose(0, 2, 1)).transpose(0, 2, 1)
            gw = np.ascontiguousarray(gw).reshape(cin, cout // groups, kh, kw)
            if nsp == 1:
                gw = gw[:, :, 0]
        return gx, gw, gb


class LocallyConnected(Function):
    """A convolution without weight sharing: one filter (and one bias) per output position.

    x (N, C, H, W), w (OH, OW, O, C, kh, kw), b (O, OH, OW) or None -> y (N, O, OH, OW), with
    y[n, o, i, j] = sum_{c,p,q} w[i, j, o, c, p, q] * x_pad[n, c, i*s + p, j*s + q] + b[o, i, j].
    ``w[i, j]`` is an ordinary conv filter bank (O, C, kh, kw) for output position (i, j).
    The windows are gathered position-major, (OH*OW, C*kh*kw, N), so the whole layer is one
    stacked matrix product over positions.
    """

    def forward(self, x, w, b=None, *, stride, padding):
        n, c, h, wd = x.shape
        oh, ow, o, _, kh, kw = w.shape
        xp = _pad_bi(x, padding)
        sc, sh, sw, sn = xp.strides
        st, sl = stride
        win = as_strided(xp, (oh, ow, c, kh, kw, n), (st * sh, sl * sw, sc, sh, sw, sn), writeable=False)
        cols = np.ascontiguousarray(win).reshape(oh * ow, c * kh * kw, n)
        y = np.matmul(w.reshape(oh * ow, o, -1), cols)               # (OH*OW, O, N)
        src = y.reshape(oh, ow, o, n).transpose(3, 2, 0, 1)
        out = np.empty((n, o, oh, ow), dtype=y.dtype)
        if b is None:
            np.copyto(out, src)
        else:
            np.add(src, b, out=out)
        nx, nw = self.needs_input_grad[:2]
        self.geom = (xp.shape[1:3], padding, stride, x.shape, w.shape)
        self.cols = cols if nw else None
        self.w = w if nx else None
        return out

    def backward(self, g):
        padded, padding, stride, xshape, wshape = self.geom
        needs = self.needs_input_grad
        nx, nw = needs[0], needs[1]
        nb = len(needs) > 2 and needs[2]
        n, o, oh, ow = g.shape
        gt = np.ascontiguousarray(g.transpose(2, 3, 1, 0)).reshape(oh * ow, o, n)
        gx = gw = gb = None
        if nb:
            gb = g.sum(axis=0)                                       # (O, OH, OW)
        if nw:                                                       # dL/dW_p = dY_p cols_p^T
            gw = np.matmul(gt, self.cols.transpose(0, 2, 1)).reshape(wshape)
        if nx:                                                       # dL/dx = col2im(W_p^T dY_p)
            w = self.w
            c, kh, kw = wshape[3:]
            dcols = np.matmul(w.reshape(oh * ow, o, -1).transpose(0, 2, 1), gt)
            dcols = dcols.reshape(oh, ow, c, kh, kw, n).transpose(2, 3, 4, 0, 1, 5)
            dxp = col2im(dcols, padded, stride, (1, 1))
            (pt, _), (pl, _) = padding
            gx = np.ascontiguousarray(dxp[:, pt:pt + xshape[2], pl:pl + xshape[3]].transpose(3, 0, 1, 2))
        return gx, gw, gb
