"""Convolutions: conv1d/conv2d (stride, padding, dilation, groups), conv_transpose2d and the locally
connected layer (a convolution without weight sharing), through im2col/col2im.

Interface layouts are PyTorch's: x (N, C, H, W) or (N, C, L); conv weight (O, C/groups, kh, kw);
transposed-conv weight (C_in, C_out/groups, kh, kw). Inside, the layout is the interface's, batch
outermost: im2col turns the padded input (N, C, Hp, Wp) into cols (N, C, kh, kw, OH, OW), one
shifted strided slice per kernel offset, and a convolution is one stacked matrix product per
image and group:

    forward     y_n   (O, OH*OW)    = W (O, C*kh*kw) @ cols_n (C*kh*kw, OH*OW)
    backward    dL/dW               = sum_n dY_n @ cols_n^T
                dcols_n             = W^T @ dY_n,  then col2im: kh*kw shifted-slice adds

No Python loop runs over the batch or over output positions (only over kernel offsets), and no
``np.add.at``. Gradients nobody needs are skipped. 1-D convolutions run as 2-D ones over a height
of 1. This is the reference; ``chainrule/fast/conv.py`` adds a batch-innermost layout for small
feature maps and a convolution fused with 2x2 max pooling.
"""
import numpy as np        # argument checks only; array math takes its namespace from the data

from .. import backend
from ..autograd import Function

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



# -- im2col / col2im ----------------------------------------------------------------------------------


def pad2d(x, pads):
    """(N, C, H, W) -> zero-padded (N, C, Hp, Wp); ``x`` itself when there is no padding."""
    (pt, pb), (pl, pr) = pads
    if pt == pb == pl == pr == 0:
        return x
    xp = backend.array_namespace(x)
    n, c, h, w = x.shape
    out = xp.zeros((n, c, h + pt + pb, w + pl + pr), dtype=x.dtype)
    out[:, :, pt:pt + h, pl:pl + w] = x
    return out


def _offsets(kernel, out_hw, stride, dilation):
    """Per kernel offset (i, j): the row and column slices of the padded input that it meets over
    all output positions (row y*s + i*d for output row y)."""
    (kh, kw), (oh, ow), (sh, sw), (dh, dw) = kernel, out_hw, stride, dilation
    for i in range(kh):
        rows = slice(i * dh, i * dh + sh * (oh - 1) + 1, sh)
        for j in range(kw):
            yield i, j, rows, slice(j * dw, j * dw + sw * (ow - 1) + 1, sw)


def im2col(x, kernel, out_hw, stride, dilation):
    """(N, C, Hp, Wp) padded input -> (N, C, kh, kw, OH, OW) with
    cols[n, c, i, j, y, x] = x[n, c, y*sh + i*dh, x*sw + j*dw] (one slice copy per offset)."""
    xp = backend.array_namespace(x)
    n, c = x.shape[:2]
    cols = xp.empty((n, c) + tuple(kernel) + tuple(out_hw), dtype=x.dtype)
    for i, j, rows, cs in _offsets(kernel, out_hw, stride, dilation):
        cols[:, :, i, j] = x[:, :, rows, cs]
    return cols


def col2im(cols, padded_hw, stride, dilation):
    """The adjoint of im2col: (N, C, kh, kw, OH, OW) -> (N, C, Hp, Wp), summing the overlaps."""
    xp = backend.array_namespace(cols)
    n, c, kh, kw, oh, ow = cols.shape
    out = xp.zeros((n, c) + tuple(padded_hw), dtype=cols.dtype)
    for i, j, rows, cs in _offsets((kh, kw), (oh, ow), stride, dilation):
        out[:, :, rows, cs] += cols[:, :, i, j]
    return out


def as_2d(x, w, stride, padding, dilation):
    """1-D convolutions run as 2-D ones over a height of 1: x (N, C, L) -> (N, C, 1, L) and the
    settings gain a first axis of stride 1, no padding, dilation 1."""
    if w.ndim == 4:
        return x, w, tuple(stride), tuple(padding), tuple(dilation)
    return (x[:, :, None, :], w[:, :, None, :], (1,) + tuple(stride), ((0, 0),) + tuple(padding),
            (1,) + tuple(dilation))


def geometry(x_shape, w_shape, padding, stride, dilation):
    """The padded input's (Hp, Wp) and the output's (OH, OW) of a 2-D convolution."""
    (pt, pb), (pl, pr) = padding
    hp, wp = x_shape[2] + pt + pb, x_shape[3] + pl + pr
    oh = (hp - dilation[0] * (w_shape[2] - 1) - 1) // stride[0] + 1
    ow = (wp - dilation[1] * (w_shape[3] - 1) - 1) // stride[1] + 1
    return (hp, wp), (oh, ow)


def crop(a, padding, hw):
    """The (H, W) input region of a padded (N, C, Hp, Wp) array (``a`` itself when unpadded)."""
    (pt, _), (pl, _) = padding
    if a.shape[2:] == tuple(hw):
        return a
    return backend.array_namespace(a).ascontiguousarray(a[:, :, pt:pt + hw[0], pl:pl + hw[1]])


# -- ops ------------------------------------------------------------------------------------------


class Conv(Function):
    """Cross-correlation (what deep learning calls convolution), 1-D or 2-D, fused with the bias.

    x (N, C, H, W), w (O, C/groups, kh, kw), b (O,) or None -> y (N, O, OH, OW);
    1-D: x (N, C, L), w (O, C/groups, k) -> y (N, O, L_out).
    ``stride``/``dilation``: one int per spatial axis; ``padding``: one (before, after) pair per
    axis (see ``resolve_padding``). Arguments are checked by the callers (``check_conv_args``).
    """
    saves = (0, 1)            # x (or its columns) and w; not the bias

    def forward(self, x, w, b=None, *, stride, padding, dilation, groups=1):
        xp = backend.array_namespace(x)
        self.one_d = w.ndim == 3
        x, w, stride, padding, dilation = as_2d(x, w, stride, padding, dilation)
        n, o, (cg, kh, kw) = x.shape[0], w.shape[0], w.shape[1:]
        padded, (oh, ow) = geometry(x.shape, w.shape, padding, stride, dilation)
        cols = im2col(pad2d(x, padding), (kh, kw), (oh, ow), stride, dilation)
        cols = cols.reshape(n, groups, cg * kh * kw, oh * ow)
        # y_n = W cols_n for every image n and group: (groups, O/g, K) @ (N, groups, K, OH*OW)
        y = xp.matmul(w.reshape(groups, o // groups, -1), cols).reshape(n, o, oh, ow)
        if b is not None:
            y += b.reshape(-1, 1, 1)
        nx, nw = self.needs_input_grad[:2]
        self.w_shape = w.shape[:2] + w.shape[3 if self.one_d else 2:]
        self.cols = cols if nw else None
        self.w = w if nx else None
        self.geom = (x.shape, padded, padding, stride, dilation, groups)
        return y[:, :, 0] if self.one_d else y

    def backward(self, g):
        xshape, padded, padding, stride, dilation, groups = self.geom
        needs = self.needs_input_grad
        xp = backend.array_namespace(g)
        if self.one_d:
            g = g[:, :, None, :]
        n, o, oh, ow = g.shape
        g4 = g.reshape(n, groups, o // groups, oh * ow)
        gx = gw = gb = None
        if len(needs) > 2 and needs[2]:                   # dL/db = sum of dL/dy over N, OH, OW
            gb = g.sum(axis=(0, 2, 3))
        if needs[1]:                                      # dL/dW = sum_n dY_n cols_n^T
            gw = xp.matmul(g4, self.cols.transpose(0, 1, 3, 2)).sum(axis=0)
            if not self.retain_saved:                     # a last backward: free it early
                self.cols = None
            gw = gw.reshape(self.w_shape)
        if needs[0]:                                      # dL/dx = col2im(W^T dY)
            w = self.w
            dcols = xp.matmul(w.reshape(groups, o // groups, -1).transpose(0, 2, 1), g4)
            dcols = dcols.reshape((n, xshape[1]) + w.shape[2:] + (oh, ow))
            gx = crop(col2im(dcols, padded, stride, dilation), padding, xshape[2:])
            gx = gx[:, :, 0] if self.one_d else gx
        return gx, gw, gb


class ConvTranspose(Function):
    """Transposed convolution (the gradient of conv with respect to its input), 1-D or 2-D.

    x (N, C_in, H, W), w (C_in, C_out/groups, kh, kw), b (C_out,) or None -> y (N, C_out, OH, OW)
    with OH = (H - 1) s - 2p + d(kh - 1) + output_padding + 1. ``padding`` and ``output_padding``:
    one int per axis; ``output_padding`` adds rows/columns at the end (bottom/right), as PyTorch.
    Forward is conv's input gradient: cols_n = W^T x_n, then col2im and a crop.
    """
    saves = (0, 1)

    def forward(self, x, w, b=None, *, stride, padding, output_padding, dilation, groups=1):
        xp = backend.array_namespace(x)
        self.one_d = w.ndim == 3
        if self.one_d:
            x, w = x[:, :, None, :], w[:, :, None, :]
            stride, padding = (1,) + tuple(stride), (0,) + tuple(padding)
            output_padding, dilation = (0,) + tuple(output_padding), (1,) + tuple(dilation)
        n, cin, h, wd = x.shape
        _, og, kh, kw = w.shape
        cout = og * groups
        oh, ow = (conv_transpose_output_size(sz, k, s, p, op, d) for sz, k, s, p, op, d in
                  zip((h, wd), (kh, kw), stride, padding, output_padding, dilation))
        # the uncropped result spans (in - 1) s + d (k - 1) + 1; output_padding may reach past it
        full = tuple(max((sz - 1) * s + d * (k - 1) + 1, p + o_)
                     for sz, k, s, d, p, o_ in zip((h, wd), (kh, kw), stride, dilation, padding, (oh, ow)))
        x4 = x.reshape(n, groups, cin // groups, h * wd)
        wg = w.reshape(groups, cin // groups, -1)                          # (groups, C_in/g, K)
        cols = xp.matmul(wg.transpose(0, 2, 1), x4)                       # cols_n = W^T x_n
        buf = col2im(cols.reshape(n, cout, kh, kw, h, wd), full, stride, dilation)
        pt, pl = padding
        y = buf[:, :, pt:pt + oh, pl:pl + ow]
        y = y + b.reshape(-1, 1, 1) if b is not None else xp.ascontiguousarray(y)
        nx, nw = self.needs_input_grad[:2]
        self.geom = (full, padding, stride, dilation, groups, (h, wd), (kh, kw), w.shape)
        self.x4 = x4 if nw else None
        self.w = w if nx else None
        return y[:, :, 0] if self.one_d else y

    def backward(self, g):
        full, padding, stride, dilation, groups, in_hw, kernel, wshape = self.geom
        needs = self.needs_input_grad
        xp = backend.array_namespace(g)
        if self.one_d:
            g = g[:, :, None, :]
        n, cout, oh, ow = g.shape
        cin = wshape[0]
        gx = gw = gb = None
        if len(needs) > 2 and needs[2]:
            gb = g.sum(axis=(0, 2, 3))
        if not (needs[0] or needs[1]):
            return gx, gw, gb
        # the adjoint of "col2im then crop" is "zero-pad then im2col"
        pt, pl = padding
        gp = xp.zeros((n, cout) + full, dtype=g.dtype)
        gp[:, :, pt:pt + oh, pl:pl + ow] = g
        dcols = im2col(gp, kernel, in_hw, stride, dilation).reshape(n, groups, -1, in_hw[0] * in_hw[1])
        if needs[0]:                                      # dL/dx_n = W dcols_n
            gx = xp.matmul(self.w.reshape(groups, cin // groups, -1), dcols)
            gx = gx.reshape((n, cin) + in_hw)
            gx = gx[:, :, 0] if self.one_d else gx
        if needs[1]:                                      # dL/dW = sum_n x_n dcols_n^T
            gw = xp.matmul(self.x4, dcols.transpose(0, 1, 3, 2)).sum(axis=0).reshape(wshape)
            gw = gw[:, :, 0] if self.one_d else gw
        return gx, gw, gb


class LocallyConnected(Function):
    """A convolution without weight sharing: one filter (and one bias) per output position.

    x (N, C, H, W), w (OH, OW, O, C, kh, kw), b (O, OH, OW) or None -> y (N, O, OH, OW), with
    y[n, o, i, j] = sum_{c,p,q} w[i, j, o, c, p, q] * x_pad[n, c, i*s + p, j*s + q] + b[o, i, j].
    ``w[i, j]`` is an ordinary conv filter bank (O, C, kh, kw) for output position (i, j), so the
    whole layer is one stacked matrix product over positions P = OH*OW:
    y_p (O, N) = W_p (O, K) @ cols_p (K, N).
    """
    saves = (0, 1)

    def forward(self, x, w, b=None, *, stride, padding):
        xp = backend.array_namespace(x)
        n = x.shape[0]
        oh, ow, o, c, kh, kw = w.shape
        cols = im2col(pad2d(x, padding), (kh, kw), (oh, ow), stride, (1, 1))
        cols = cols.reshape(n, c * kh * kw, oh * ow).transpose(2, 1, 0)   # (P, K, N)
        y = xp.matmul(w.reshape(oh * ow, o, -1), cols)                    # (P, O, N)
        y = y.transpose(2, 1, 0).reshape(n, o, oh, ow)
        y = y + b if b is not None else xp.ascontiguousarray(y)
        nx, nw = self.needs_input_grad[:2]
        (pt, pb), (pl, pr) = padding
        self.geom = ((x.shape[2] + pt + pb, x.shape[3] + pl + pr), padding, stride, x.shape, w.shape)
        self.cols = cols if nw else None
        self.w = w if nx else None
        return y

    def backward(self, g):
        padded, padding, stride, xshape, wshape = self.geom
        needs = self.needs_input_grad
        xp = backend.array_namespace(g)
        n, o, oh, ow = g.shape
        gt = g.reshape(n, o, oh * ow).transpose(2, 1, 0)                  # (P, O, N)
        gx = gw = gb = None
        if len(needs) > 2 and needs[2]:
            gb = g.sum(axis=0)                                            # (O, OH, OW)
        if needs[1]:                                                      # dL/dW_p = dY_p cols_p^T
            gw = xp.matmul(gt, self.cols.transpose(0, 2, 1)).reshape(wshape)
        if needs[0]:                                                      # dL/dx = col2im(W_p^T dY_p)
            c, kh, kw = wshape[3:]
            dcols = xp.matmul(self.w.reshape(oh * ow, o, -1).transpose(0, 2, 1), gt)   # (P, K, N)
            dcols = dcols.transpose(2, 1, 0).reshape(n, c, kh, kw, oh, ow)
            gx = crop(col2im(dcols, padded, stride, (1, 1)), padding, xshape[2:])
        return gx, gw, gb
