"""Fully connected layers and shape helpers."""
import numpy as np

from .. import backend, checks
from ..autograd import Tensor
from . import functional as F
from . import init
from .module import Module
from .parameter import Parameter


class Linear(Module):
    """y = x W^T + b. weight: (out_features, in_features), bias: (out_features,).

    Input (N, in_features) or (N, ..., in_features); output (N, ..., out_features).
    """

    def __init__(self, in_features, out_features, bias=True, dtype=None):
        super().__init__()
        self.in_features = checks.integer("Linear", "in_features", in_features, 1)
        self.out_features = checks.integer("Linear", "out_features", out_features, 1)
        checks.flag("Linear", "bias", bias)
        in_features, out_features = self.in_features, self.out_features
        dtype = dtype or backend.get_default_dtype()
        self.weight = Parameter(np.empty((out_features, in_features), dtype=dtype))
        self.bias = Parameter(np.empty(out_features, dtype=dtype)) if bias else None
        self.reset_parameters()

    def reset_parameters(self):
        """PyTorch's default: weight and bias from U(-1/sqrt(in_features), 1/sqrt(in_features))."""
        init.default_linear_init_(self.weight, self.bias)

    def forward(self, x):
        return F.linear(x, self.weight, self.bias, name=self)

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"

    def __repr__(self):
        return f"Linear({self.extra_repr()})"


class Identity(Module):
    def forward(self, x):
        return x


class Flatten(Module):
    """(N, d1, d2, ...) -> (N, d1 * d2 * ...)."""

    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim = checks.integer("Flatten", "start_dim", start_dim)
        self.end_dim = checks.integer("Flatten", "end_dim", end_dim)

    def forward(self, x):
        if not isinstance(x, Tensor):
            x = Tensor(x)
        return x.flatten(self.start_dim, self.end_dim)

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"
