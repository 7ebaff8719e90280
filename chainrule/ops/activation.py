"""Activation functions, each stable for large |x| (no overflow for x = +-1000)."""
from ..autograd import Function
from ..backend import array_namespace


class Sigmoid(Function):
    saves = ("output",)
    def forward(self, a):
        # 1 / (1 + e^-a) overflows e^-a for a << 0; the tanh form never overflows and is right to
        # rounding in absolute terms (relative precision fades below a = -20: sigmoid(-40) is 0)
        self.y = y = 0.5 * array_namespace(a).tanh(0.5 * a) + 0.5
        return y

    def backward(self, g):
        y = self.y
        return g * y * (1.0 - y)                 # ds/da = s (1 - s)


class Tanh(Function):
    saves = ("output",)
    def forward(self, a):
        self.y = y = array_namespace(a).tanh(a)
        return y

    def backward(self, g):
        y = self.y
        return g * (1.0 - y * y)                 # d tanh/da = 1 - tanh^2


class ReLU(Function):
    saves = ("output",)
    def forward(self, a):
        self.y = y = array_namespace(a).maximum(a, 0)
        return y

    def backward(self, g):
        return g * (self.y > 0)                  # slope 1 where a > 0, else 0


class LeakyReLU(Function):
    saves = ()
    def forward(self, a, negative_slope=0.01):
        self.pos = pos = a > 0
        self.slope = negative_slope
        return array_namespace(a).where(pos, a, a * negative_slope)

    def backward(self, g):                       # slope 1 where a > 0, else negative_slope
        return array_namespace(g).where(self.pos, g, g * self.slope)


def _row_max(a, axis):
    """``a.max(axis, keepdims=True)``, the shift of (log) softmax; None for an empty ``a``, whose
    (log) softmax is empty, as in PyTorch, even over an axis of size 0 (caught, not checked
    first: a try costs nothing)."""
    try:
        return a.max(axis=axis, keepdims=True)
    except ValueError:
        if a.size:                               # not an empty axis: the library's own error
            raise
        return None


class Softmax(Function):
    saves = ("output",)
    def forward(self, a, axis=-1):
        self.axis = axis
        m = _row_max(a, axis)
        if m is None:
            self.y = y = a.copy()
            return y
        e = array_namespace(a).exp(a - m)        # the shift: exp never overflows
        self.y = y = e / e.sum(axis=axis, keepdims=True)
        return y

    def backward(self, g):                       # dL/da = y * (g - sum(g * y))
        y = self.y
        return y * (g - (g * y).sum(axis=self.axis, keepdims=True))


class LogSoftmax(Function):
    saves = ("output",)
    def forward(self, a, axis=-1):
        xp = array_namespace(a)
        self.axis = axis
        m = _row_max(a, axis)
        if m is None:
            self.y = y = a.copy()
            return y
        shifted = a - m
        y = shifted - xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))
        self.y = y
        return y

    def backward(self, g):                       # dL/da = g - softmax * sum(g)
        return g - array_namespace(g).exp(self.y) * g.sum(axis=self.axis, keepdims=True)
