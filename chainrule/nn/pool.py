"""Pooling layers: max and average pooling (1-D, 2-D), adaptive and global average pooling.

They hold no parameters; each checks its arguments when built and calls one op (``ops/pool.py``).
"""
from .. import checks, fast
from ..ops import pool as _pool
from .module import Module


def _show(v):
    return tuple(v) if isinstance(v, (tuple, list)) else v


_SETTINGS = ("kernel_size", "stride", "padding", "dilation", "ceil_mode")


class _PoolNd(Module):
    op = None
    nd = 2

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
        super().__init__()
        self.kernel_size = _show(kernel_size)
        self.stride = self.kernel_size if stride is None else _show(stride)
        self.padding = _show(padding)
        self.dilation = _show(dilation)
        self.ceil_mode = checks.flag(type(self).__name__, "ceil_mode", ceil_mode)
        self._settle()                   # check now, so a wrong layer fails where it is built

    def __setattr__(self, name, value):
        super().__setattr__(name, value)
        if name in _SETTINGS and "_name" in self.__dict__:
            self._settle()               # a setting changed after construction: check it again

    def _settle(self):
        params = _pool.pool_params(self._label(), self.kernel_size, self.stride, self.padding,
                                   self.dilation, self.nd)
        self.__dict__["_name"] = self._label()
        # 2x2 windows, stride 2, no padding: what fast.fusion may fuse with a convolution
        self.__dict__["_2x2"] = (self.nd == 2 and not self.ceil_mode
                                 and params == ((2, 2), (2, 2), (0, 0), (1, 1)))

    def _label(self):
        s = f"{type(self).__name__}(kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding not in (0, (0, 0), (0,)):
            s += f", padding={self.padding}"
        if self.dilation not in (1, (1, 1), (1,)):
            s += f", dilation={self.dilation}"
        if self.ceil_mode:
            s += ", ceil_mode=True"
        return s + ")"

    def __repr__(self):
        return self._label()


class MaxPool2d(_PoolNd):
    """Max pooling over (N, C, H, W) -> (N, C, H_out, W_out); stride defaults to the kernel size,
    padding (at most half the kernel) pads with -inf. The gradient goes to the element that held
    each window's maximum.

    >>> nn.MaxPool2d(2)(x)          # (64, 6, 28, 28) -> (64, 6, 14, 14)
    """

    op = _pool.MaxPool2d
    nd = 2

    def forward(self, x):
        # the fast path plugs in here (chainrule/fast/__init__.py): the reference op or its
        # registered replacement
        return fast.use(self.op, x).apply(x, kernel_size=self.kernel_size, stride=self.stride,
                                          padding=self.padding, dilation=self.dilation,
                                          ceil_mode=self.ceil_mode, name=self._name)


class MaxPool1d(MaxPool2d):
    """Max pooling over (N, C, L) -> (N, C, L_out)."""

    op = _pool.MaxPool1d
    nd = 1


class AvgPool2d(_PoolNd):
    """Average pooling over (N, C, H, W) -> (N, C, H_out, W_out). Zero padding counts in the
    divisor unless ``count_include_pad=False``; ``divisor_override`` fixes the divisor."""

    op = _pool.AvgPool2d
    nd = 2

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False,
                 count_include_pad=True, divisor_override=None):
        kind = type(self).__name__
        self.__dict__["count_include_pad"] = checks.flag(kind, "count_include_pad", count_include_pad)
        if divisor_override is not None:
            divisor_override = checks.integer(kind, "divisor_override", divisor_override, 1)
        self.__dict__["divisor_override"] = divisor_override
        super().__init__(kernel_size, stride, padding, 1, ceil_mode)

    def _label(self):
        s = super()._label()[:-1]
        if not self.count_include_pad:
            s += ", count_include_pad=False"
        if self.divisor_override is not None:
            s += f", divisor_override={self.divisor_override}"
        return s + ")"

    def forward(self, x):
        return self.op.apply(x, kernel_size=self.kernel_size, stride=self.stride,
                             padding=self.padding, ceil_mode=self.ceil_mode,
                             count_include_pad=self.count_include_pad,
                             divisor_override=self.divisor_override, name=self._name)


class AvgPool1d(AvgPool2d):
    """Average pooling over (N, C, L) -> (N, C, L_out)."""

    op = _pool.AvgPool1d
    nd = 1

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False,
                 count_include_pad=True):
        super().__init__(kernel_size, stride, padding, ceil_mode, count_include_pad)


class AdaptiveAvgPool2d(Module):
    """(N, C, H, W) -> (N, C, *output_size) for any H, W: output row i averages input rows
    floor(i H / H_out) .. ceil((i + 1) H / H_out) - 1 (the same for columns). ``None`` in
    ``output_size`` keeps that size.

    >>> nn.AdaptiveAvgPool2d((6, 6))(x)     # (N, 256, 13, 13) -> (N, 256, 6, 6)
    """

    def __init__(self, output_size):
        super().__init__()
        self.output_size = _show(output_size)
        for v in (self.output_size if isinstance(self.output_size, tuple) else (self.output_size,)):
            if v is not None:
                checks.integer("AdaptiveAvgPool2d", "output_size", v)   # the type; the range below
        _pool.adaptive_output_size(self.output_size, 1, 1, repr(self))
        self.__dict__["_name"] = repr(self)

    def forward(self, x):
        return _pool.AdaptiveAvgPool2d.apply(x, output_size=self.output_size, name=self._name)

    def __repr__(self):
        return f"AdaptiveAvgPool2d(output_size={self.output_size})"


class GlobalAvgPool2d(Module):
    """Global average pooling: (N, C, H, W) -> (N, C), the mean of each feature map."""

    def forward(self, x):
        return _pool.GlobalAvgPool2d.apply(x, name="GlobalAvgPool2d()")
