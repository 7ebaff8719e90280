"""Convolution layers (Conv1d, Conv2d, ConvTranspose2d, LocallyConnected2d) and their functional
forms (conv1d, conv2d, conv_transpose2d, locally_connected2d, re-exported by ``nn.functional``).

Parameter names and layouts are PyTorch's, so state dicts map one to one:
Conv weight (out_channels, in_channels/groups, *kernel_size), ConvTranspose weight
(in_channels, out_channels/groups, *kernel_size), bias (out_channels,).

Conv1d/Conv2d and conv1d/conv2d run ``fast.use(ops.conv.Conv, x)``: the reference op, or while
the fast path is on (``chainrule.fast``) its faster replacement (``chainrule/fast/conv.py``).
"""
import math

import numpy as np

from .. import backend, checks, fast
from ..autograd import Tensor
from ..ops import conv as _conv
from . import init
from .checks import dtype_mismatch
from .module import Module
from .parameter import Parameter


def _data(x):
    if isinstance(x, Tensor):
        return x.data
    return x if hasattr(x, "__array_namespace__") or hasattr(x, "ndim") else np.asarray(x)


def _check_dtype(layer, xd, w):
    if xd.dtype != w.dtype:
        raise TypeError(dtype_mismatch(layer, xd.dtype, w.dtype))


# -- functional forms -------------------------------------------------------------------------------


def _conv_nd(n, name, input, weight, bias, stride, padding, dilation, groups):
    w = _data(weight)
    if w.ndim != n + 2:
        raise ValueError(f"{name}: expected a weight (out_channels, in_channels/groups, "
                         f"{'k' if n == 1 else 'kh, kw'}), got shape {w.shape}")
    groups = checks.integer(name, "groups", groups, 1)
    if padding is True or padding is False:
        checks.fail(name, "padding", "an int, a tuple or a mode string", padding, checks.ArgumentTypeError)
    kernel = w.shape[2:]
    stride = checks.int_tuple(name, "stride", stride, n)
    dilation = checks.int_tuple(name, "dilation", dilation, n)
    pads = _conv.resolve_padding(padding, kernel, stride, dilation, name)
    _conv.check_conv_args(name, np.shape(_data(input)), w.shape, stride, pads, dilation, groups)
    args = (input, weight) if bias is None else (input, weight, bias)
    return fast.use(_conv.Conv, input).apply(*args, stride=stride, padding=pads, dilation=dilation,
                                             groups=groups)


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D convolution (cross-correlation), as ``torch.nn.functional.conv2d``.

    input (N, C, H, W), weight (O, C/groups, kh, kw), bias (O,) -> (N, O, OH, OW) with
    OH = floor((H + 2p - d(kh - 1) - 1) / s) + 1. ``padding``: an int, a pair, per-side pairs
    ((top, bottom), (left, right)), or 'valid' / 'same' (stride 1) / 'full'.

    >>> y = conv2d(x, w, padding='same')        # x (64, 1, 28, 28), w (6, 1, 5, 5) -> (64, 6, 28, 28)
    """
    return _conv_nd(2, "conv2d", input, weight, bias, stride, padding, dilation, groups)


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """1-D convolution: input (N, C, L), weight (O, C/groups, k), bias (O,) -> (N, O, L_out)."""
    return _conv_nd(1, "conv1d", input, weight, bias, stride, padding, dilation, groups)


def _check_transpose(name, x_shape, w_shape, stride, padding, output_padding, dilation, groups):
    n = len(w_shape) - 2
    cin = w_shape[0]
    dims = "L" if n == 1 else "H, W"
    if len(x_shape) != n + 2 or x_shape[1] != cin:
        raise ValueError(f"{name}: expected input (N, {cin}, {dims}), got {tuple(x_shape)}")
    if groups < 1 or cin % groups:
        raise ValueError(f"{name}: in_channels={cin} is not divisible by groups={groups}")
    if any(s < 1 for s in stride) or any(d < 1 for d in dilation) or any(p < 0 for p in padding):
        raise ValueError(f"{name}: stride and dilation must be >= 1 and padding >= 0, got "
                         f"stride={stride}, padding={padding}, dilation={dilation}")
    for op, s, d in zip(output_padding, stride, dilation):
        if not 0 <= op < max(s, d):
            raise ValueError(f"{name}: output_padding {output_padding} must be smaller than either "
                             f"stride {stride} or dilation {dilation}")
    out = tuple(_conv.conv_transpose_output_size(sz, k, s, p, op, d) for sz, k, s, p, op, d in
                zip(x_shape[2:], w_shape[2:], stride, padding, output_padding, dilation))
    if any(o < 1 for o in out):
        raise ValueError(f"{name}: output size {out} is too small: input {tuple(x_shape[2:])}, "
                         f"kernel {tuple(w_shape[2:])}, padding {padding} removes everything")
    return out


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1):
    """Transposed 2-D convolution, as ``torch.nn.functional.conv_transpose2d``.

    input (N, C_in, H, W), weight (C_in, C_out/groups, kh, kw), bias (C_out,) -> (N, C_out, OH, OW)
    with OH = (H - 1) s - 2p + d(kh - 1) + output_padding + 1.
    """
    name = "conv_transpose2d"
    w = _data(weight)
    if w.ndim != 4:
        raise ValueError(f"{name}: expected a weight (in_channels, out_channels/groups, kh, kw), "
                         f"got shape {w.shape}")
    stride = checks.int_tuple(name, "stride", stride, 2)
    padding = checks.int_tuple(name, "padding", padding, 2, low=0)
    output_padding = checks.int_tuple(name, "output_padding", output_padding, 2, low=0)
    dilation = checks.int_tuple(name, "dilation", dilation, 2)
    groups = checks.integer(name, "groups", groups, 1)
    _check_transpose(name, np.shape(_data(input)), w.shape, stride, padding, output_padding,
                     dilation, groups)
    args = (input, weight) if bias is None else (input, weight, bias)
    return _conv.ConvTranspose.apply(*args, stride=stride, padding=padding,
                                     output_padding=output_padding, dilation=dilation, groups=groups)


def locally_connected2d(input, weight, bias=None, stride=1, padding=0):
    """Convolution without weight sharing: input (N, C, H, W), weight (OH, OW, O, C, kh, kw) (one
    filter bank per output position), bias (O, OH, OW) -> (N, O, OH, OW)."""
    name = "locally_connected2d"
    w = _data(weight)
    if w.ndim != 6:
        raise ValueError(f"{name}: expected a weight (out_h, out_w, out_channels, in_channels, kh, kw), "
                         f"got shape {w.shape}")
    stride = checks.int_tuple(name, "stride", stride, 2)
    pads = _conv.resolve_padding(padding, w.shape[4:], stride, (1, 1), name)
    return _locally_connected(name, input, weight, bias, stride, pads)


def _locally_connected(name, input, weight, bias, stride, pads):
    w = _data(weight)
    oh, ow, o, c, kh, kw = w.shape
    out = _conv.check_conv_args(name, np.shape(_data(input)), (o, c, kh, kw), stride, pads, (1, 1), 1)
    if out != (oh, ow):
        raise ValueError(f"{name}: input {np.shape(_data(input))} gives {out} output positions, "
                         f"but the weight has filters for {(oh, ow)}")
    if bias is not None and np.shape(_data(bias)) != (o, oh, ow):
        raise ValueError(f"{name}: expected a bias ({o}, {oh}, {ow}), got {np.shape(_data(bias))}")
    args = (input, weight) if bias is None else (input, weight, bias)
    return _conv.LocallyConnected.apply(*args, stride=stride, padding=pads)


# -- layers -----------------------------------------------------------------------------------------


class _ConvNd(Module):
    _n = 2
    _transposed = False

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, padding_mode="zeros", output_padding=0, dtype=None):
        super().__init__()
        n, kind = self._n, type(self).__name__
        self.in_channels = checks.integer(kind, "in_channels", in_channels, 1)
        self.out_channels = checks.integer(kind, "out_channels", out_channels, 1)
        self.groups = checks.integer(kind, "groups", groups, 1)
        self.kernel_size = checks.int_tuple(kind, "kernel_size", kernel_size, n)
        self.stride = checks.int_tuple(kind, "stride", stride, n)
        self.dilation = checks.int_tuple(kind, "dilation", dilation, n)
        self.output_padding = checks.int_tuple(kind, "output_padding", output_padding, n, low=0)
        checks.flag(kind, "bias", bias)
        if self.groups < 1:
            raise ValueError(f"{kind}: groups must be a positive integer, got {groups}")
        if self.in_channels % self.groups:
            raise ValueError(f"{kind}: in_channels={in_channels} must be divisible by groups={groups}")
        if self.out_channels % self.groups:
            raise ValueError(f"{kind}: out_channels={out_channels} must be divisible by groups={groups}")
        if min(self.kernel_size) < 1 or min(self.stride) < 1 or min(self.dilation) < 1:
            raise ValueError(f"{kind}: kernel_size, stride and dilation must be >= 1, got "
                             f"kernel_size={self.kernel_size}, stride={self.stride}, "
                             f"dilation={self.dilation}")
        if padding_mode != "zeros":
            raise ValueError(f"{kind}: padding_mode={padding_mode!r} is not supported; "
                             f"only 'zeros'")
        self.padding_mode = padding_mode
        if isinstance(padding, str):
            self.padding = padding
        else:
            self.padding = checks.int_tuple(kind, "padding", padding, n, low=0)
        if self._transposed:
            if isinstance(padding, str):
                raise ValueError(f"{kind}: padding must be an int or a tuple, got {padding!r}")
            self._pads = self.padding
            if min(self.padding) < 0:
                raise ValueError(f"{kind}: padding must be non-negative, got {padding!r}")
            for op, s, d in zip(self.output_padding, self.stride, self.dilation):
                if not 0 <= op < max(s, d):
                    raise ValueError(f"{kind}: output_padding {self.output_padding} must be smaller "
                                     f"than either stride {self.stride} or dilation {self.dilation}")
            wshape = (self.in_channels, self.out_channels // self.groups) + self.kernel_size
        else:
            self._pads = _conv.resolve_padding(padding, self.kernel_size, self.stride, self.dilation, kind)
            wshape = (self.out_channels, self.in_channels // self.groups) + self.kernel_size
        dtype = dtype or backend.get_default_dtype()
        self.weight = Parameter(np.empty(wshape, dtype=dtype))
        self.bias = Parameter(np.empty(self.out_channels, dtype=dtype)) if bias else None
        self.reset_parameters()
        self._checked = None          # the last input shape that passed the checks

    def reset_parameters(self):
        """PyTorch's default: kaiming_uniform(a=sqrt(5)), bias U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
        init.default_linear_init_(self.weight, self.bias)

    def _check(self, xd):
        _check_dtype(self, xd, self.weight.data)
        if xd.shape == self._checked:
            return
        _conv.check_conv_args(self, xd.shape, self.weight.shape, self.stride, self._pads,
                              self.dilation, self.groups)
        self._checked = xd.shape

    def forward(self, x):
        self._check(_data(x))
        args = (x, self.weight) if self.bias is None else (x, self.weight, self.bias)
        # the fast path plugs in here: fast.use gives the reference op or its registered
        # replacement (chainrule/fast/__init__.py); the arithmetic is the reference's
        return fast.use(_conv.Conv, x).apply(*args, stride=self.stride, padding=self._pads,
                                             dilation=self.dilation, groups=self.groups)

    def output_size(self, input_size):
        """The spatial output size for a spatial input size (H, W) / (L,), by the formula."""
        input_size = checks.int_tuple(f"{type(self).__name__}.output_size", "input_size", input_size, self._n)
        if self._transposed:
            return tuple(_conv.conv_transpose_output_size(*a) for a in zip(
                input_size, self.kernel_size, self.stride, self.padding, self.output_padding,
                self.dilation))
        return tuple(_conv.conv_output_size(*a) for a in zip(
            input_size, self.kernel_size, self.stride, self._pads, self.dilation))

    def extra_repr(self):
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if isinstance(self.padding, str) or any(self.padding):
            s += f", padding={self.padding}"
        if any(d != 1 for d in self.dilation):
            s += f", dilation={self.dilation}"
        if any(self.output_padding):
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s


class Conv2d(_ConvNd):
    """2-D convolution over (N, C, H, W) inputs -> (N, out_channels, OH, OW).

    weight (out_channels, in_channels/groups, kh, kw), bias (out_channels,), as PyTorch.
    ``padding``: an int, a pair, or 'valid' / 'same' (stride 1; asymmetric when d(k-1) is odd, the
    extra row/column after, as PyTorch) / 'full' (d(k-1) each side).
    OH = floor((H + 2p - d(kh - 1) - 1) / s) + 1.

    >>> conv = nn.Conv2d(1, 6, 5, padding=2)     # LeNet-5's first layer on 28x28 digits
    >>> conv(x).shape                            # x (64, 1, 28, 28)
    (64, 6, 28, 28)
    """

    _n = 2

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, padding_mode="zeros", dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups,
                         bias, padding_mode, dtype=dtype)


class Conv1d(_ConvNd):
    """1-D convolution over (N, C, L) signals -> (N, out_channels, L_out) (time-delay networks).

    weight (out_channels, in_channels/groups, k), bias (out_channels,); options as Conv2d.
    """

    _n = 1

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, padding_mode="zeros", dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups,
                         bias, padding_mode, dtype=dtype)


class ConvTranspose2d(_ConvNd):
    """Transposed 2-D convolution ("deconvolution"): the gradient of Conv2d with respect to its input.

    (N, in_channels, H, W) -> (N, out_channels, OH, OW), OH = (H - 1) s - 2p + d(kh - 1) +
    output_padding + 1. weight (in_channels, out_channels/groups, kh, kw), bias (out_channels,),
    as PyTorch. ``forward(x, output_size=None)``: ``output_size`` picks output_padding, as in PyTorch.

    >>> up = nn.ConvTranspose2d(16, 8, 3, stride=2, padding=1, output_padding=1)   # 7x7 -> 14x14
    """

    _n = 2
    _transposed = True

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0,
                 groups=1, bias=True, dilation=1, padding_mode="zeros", dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups,
                         bias, padding_mode, output_padding, dtype=dtype)

    def forward(self, x, output_size=None):
        xd = _data(x)
        _check_dtype(self, xd, self.weight.data)
        output_padding = self.output_padding
        if output_size is not None:
            output_padding = self._output_padding_for(xd.shape, output_size)
        if output_size is not None or xd.shape != self._checked:
            _check_transpose(self, xd.shape, self.weight.shape, self.stride, self.padding,
                             output_padding, self.dilation, self.groups)
            if output_size is None:
                self._checked = xd.shape
        args = (x, self.weight) if self.bias is None else (x, self.weight, self.bias)
        return _conv.ConvTranspose.apply(*args, stride=self.stride, padding=self.padding,
                                         output_padding=output_padding, dilation=self.dilation,
                                         groups=self.groups)

    def _output_padding_for(self, x_shape, output_size):
        size = tuple(output_size)[-2:]
        if len(size) != 2:
            raise ValueError(f"{self}: output_size must give (H, W), got {output_size!r}")
        pads = []
        for sz, want, k, s, p, d in zip(x_shape[2:], size, self.kernel_size, self.stride,
                                        self.padding, self.dilation):
            smallest = _conv.conv_transpose_output_size(sz, k, s, p, 0, d)
            if not smallest <= want < smallest + max(s, d):
                raise ValueError(f"{self}: requested output size {tuple(size)} is not reachable from "
                                 f"input {tuple(x_shape[2:])}: each side must lie in "
                                 f"[{smallest}, {smallest + max(s, d) - 1}]")
            pads.append(want - smallest)
        return tuple(pads)


class LocallyConnected2d(Module):
    """A convolution without weight sharing: every output position has its own filters and bias.

    (N, in_channels, H, W) -> (N, out_channels, OH, OW) for the fixed ``input_size`` (H, W).
    weight: (OH, OW, out_channels, in_channels, kh, kw) -- ``weight[i, j]`` is the ordinary conv
    filter bank used at output position (i, j); bias: (out_channels, OH, OW) (untied, one per
    position). Parameters: OH*OW times those of the Conv2d with the same kernel.
    Initialised like Conv2d: U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = in_channels*kh*kw.

    >>> lc = nn.LocallyConnected2d(1, 4, input_size=8, kernel_size=3)     # 8x8 -> 6x6, 6*6*4*9 weights
    """

    def __init__(self, in_channels, out_channels, input_size, kernel_size, stride=1, padding=0,
                 bias=True, dtype=None):
        super().__init__()
        kind = type(self).__name__
        self.in_channels = checks.integer(kind, "in_channels", in_channels, 1)
        self.out_channels = checks.integer(kind, "out_channels", out_channels, 1)
        self.input_size = checks.int_tuple(kind, "input_size", input_size, 2)
        self.kernel_size = checks.int_tuple(kind, "kernel_size", kernel_size, 2)
        self.stride = checks.int_tuple(kind, "stride", stride, 2)
        checks.flag(kind, "bias", bias)
        self.padding = padding if isinstance(padding, str) else checks.int_tuple(kind, "padding", padding, 2, low=0)
        self._pads = _conv.resolve_padding(padding, self.kernel_size, self.stride, (1, 1), kind)
        self.output_hw = _conv.check_conv_args(
            kind, (1, self.in_channels) + self.input_size,
            (self.out_channels, self.in_channels) + self.kernel_size, self.stride, self._pads, (1, 1), 1)
        dtype = dtype or backend.get_default_dtype()
        oh, ow = self.output_hw
        self.weight = Parameter(np.empty((oh, ow, self.out_channels, self.in_channels) + self.kernel_size,
                                         dtype=dtype))
        self.bias = Parameter(np.empty((self.out_channels, oh, ow), dtype=dtype)) if bias else None
        self.reset_parameters()

    def reset_parameters(self):
        bound = 1.0 / math.sqrt(self.in_channels * self.kernel_size[0] * self.kernel_size[1])
        init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            init.uniform_(self.bias, -bound, bound)

    def forward(self, x):
        xd = _data(x)
        _check_dtype(self, xd, self.weight.data)
        if xd.ndim != 4 or xd.shape[1:] != (self.in_channels,) + self.input_size:
            raise ValueError(f"{self}: expected input (N, {self.in_channels}, {self.input_size[0]}, "
                             f"{self.input_size[1]}), got {xd.shape}")
        args = (x, self.weight) if self.bias is None else (x, self.weight, self.bias)
        return _conv.LocallyConnected.apply(*args, stride=self.stride, padding=self._pads)

    def extra_repr(self):
        s = (f"{self.in_channels}, {self.out_channels}, input_size={self.input_size}, "
             f"kernel_size={self.kernel_size}, stride={self.stride}")
        if isinstance(self.padding, str) or any(self.padding):
            s += f", padding={self.padding}"
        if self.bias is None:
            s += ", bias=False"
        return s
