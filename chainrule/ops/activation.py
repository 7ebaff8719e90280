"""Activation functions, each stable for large |x| (no overflow for x = +-1000)."""
from ..autograd import Function
from ..backend import array_namespace


class Sigmoid(Function):
    def forward(self, a):
        # 1 / (1 + e^-a) overflows e^-a for a << 0; the tanh form is exact and never overflows
        self.y = y = 0.5 * array_namespace(a).tanh(0.5 * a) + 0.5
        return y

    def backward(self, g):
        y = self.y
        return g * y * (1.0 - y)                 # ds/da = s (1 - s)


class Tanh(Function):
    def forward(self, a):
        self.y = y = array_namespace(a).tanh(a)
        return y

    def backward(self, g):
        y = self.y
        return g * (1.0 - y * y)                 # d tanh/da = 1 - tanh^2


class ReLU(Function):
    def forward(self, a):
        self.y = y = array_namespace(a).maximum(a, 0)
        return y

    def backward(self, g):
        return g * (self.y > 0)                  # slope 1 where a > 0, else 0


class LeakyReLU(Function):
    def forward(self, a, negative_slope=0.01):
        self.pos = pos = a > 0
        self.slope = negative_slope
        return array_namespace(a).where(pos, a, a * negative_slope)

    def backward(self, g):                       # slope 1 where a > 0, else negative_slope
        return array_namespace(g).where(self.pos, g, g * self.slope)


class Softmax(Function):
    def forward(self, a, axis=-1):
        e = array_namespace(a).exp(a - a.max(axis=axis, keepdims=True))   # shift: exp never overflows
        self.y = y = e / e.sum(axis=axis, keepdims=True)
        self.axis = axis
        return y

    def backward(self, g):                       # dL/da = y * (g - sum(g * y))
        y = self.y
        return y * (g - (g * y).sum(axis=self.axis, keepdims=True))


class LogSoftmax(Function):
    def forward(self, a, axis=-1):
        xp = array_namespace(a)
        shifted = a - a.max(axis=axis, keepdims=True)
        y = shifted - xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))
        self.y, self.axis = y, axis
        return y

    def backward(self, g):                       # dL/da = g - softmax * sum(g)
        return g - array_namespace(g).exp(self.y) * g.sum(axis=self.axis, keepdims=True)
