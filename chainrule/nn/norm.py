"""Normalisation layers: BatchNorm1d/2d (Ioffe & Szegedy 2015) and LocalResponseNorm (AlexNet).

Parameter and buffer names follow PyTorch (weight, bias, running_mean, running_var,
num_batches_tracked), so state dicts map one to one.
"""
import numpy as np

from .. import backend, checks
from ..autograd import Tensor
from ..ops import norm as _norm
from . import functional as F
from .module import Module
from .parameter import Parameter


class _BatchNorm(Module):
    _inputs = ""

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True,
                 track_running_stats=True, dtype=None):
        super().__init__()
        kind = type(self).__name__
        self.num_features = C = checks.integer(kind, "num_features", num_features, 1)
        self.eps = checks.real(kind, "eps", eps, 0, low_open=True)
        # None: a cumulative average of the batch statistics, as in PyTorch
        self.momentum = None if momentum is None else checks.real(kind, "momentum", momentum, 0, 1)
        self.affine = checks.flag(kind, "affine", affine)
        self.track_running_stats = checks.flag(kind, "track_running_stats", track_running_stats)
        dtype = dtype or backend.get_default_dtype()
        if self.affine:
            self.weight = Parameter(np.ones(C, dtype=dtype))
            self.bias = Parameter(np.zeros(C, dtype=dtype))
        else:
            self.weight = self.bias = None
        if self.track_running_stats:
            self.register_buffer("running_mean", Tensor(np.zeros(C, dtype=dtype)))
            self.register_buffer("running_var", Tensor(np.ones(C, dtype=dtype)))
            self.register_buffer("num_batches_tracked", Tensor(np.array(0, dtype=np.int64)))
        else:
            self.running_mean = self.running_var = self.num_batches_tracked = None
        self.__dict__["_name"] = f"{type(self).__name__}({C})"

    def reset_running_stats(self):
        if self.track_running_stats:
            self.running_mean.data[...] = 0
            self.running_var.data[...] = 1
            self.num_batches_tracked.data[...] = 0

    def reset_parameters(self):
        self.reset_running_stats()
        if self.affine:
            self.weight.data[...] = 1
            self.bias.data[...] = 0

    def _check(self, xd):
        raise TypeError(f"{type(self).__name__} must define _check(x), the input-shape check")

    def forward(self, x):
        self._check(F._data(x))
        momentum = self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked.data += 1
            if momentum is None:          # cumulative moving average over all batches so far
                momentum = 1.0 / float(self.num_batches_tracked.data)
        # running statistics are used in evaluation and updated in training; without them the
        # batch statistics are used in both modes (as PyTorch)
        use_batch = self.training or not self.track_running_stats
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                            training=use_batch, momentum=momentum if momentum is not None else 0.0,
                            eps=self.eps, name=self._name)

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, track_running_stats={self.track_running_stats}")

    def __repr__(self):
        return f"{type(self).__name__}({self.extra_repr()})"


class BatchNorm1d(_BatchNorm):
    """Batch normalisation of (N, C) or (N, C, L), per channel C.

    Training normalises with the batch's statistics and updates ``running_mean``/``running_var``
    (unbiased variance, ``momentum`` 0.1; ``momentum=None`` gives a cumulative average);
    evaluation (``model.eval()``) uses the running statistics.
    """

    def _check(self, xd):
        C = self.num_features
        if xd.ndim not in (2, 3) or xd.shape[1] != C:
            raise ValueError(f"{type(self).__name__}({C}): expected input (N, {C}) or "
                             f"(N, {C}, L), got {xd.shape}")


class BatchNorm2d(_BatchNorm):
    """Batch normalisation of (N, C, H, W), per channel C (statistics over N, H and W)."""

    def _check(self, xd):
        C = self.num_features
        if xd.ndim != 4 or xd.shape[1] != C:
            raise ValueError(f"{type(self).__name__}({C}): expected input (N, {C}, H, W), "
                             f"got {xd.shape}")


class LocalResponseNorm(Module):
    """Local response normalisation across neighbouring channels of (N, C, *) (AlexNet's "norm"),
    exactly as torch.nn.LocalResponseNorm:

        b_c = a_c / (k + alpha / size * sum of a_c'^2 over c' = c - size//2 .. c + (size-1)//2) ^ beta

    AlexNet used size=5, alpha=1e-4, beta=0.75, k=2.
    """

    def __init__(self, size, alpha=1e-4, beta=0.75, k=1.0):
        super().__init__()
        name = "LocalResponseNorm"
        self.size = checks.integer(name, "size", size, 1)
        self.alpha = checks.real(name, "alpha", alpha)
        self.beta = checks.real(name, "beta", beta)
        self.k = checks.real(name, "k", k)
        self.__dict__["_name"] = repr(self)

    def forward(self, x):
        return _norm.LocalResponseNorm.apply(x, size=self.size, alpha=self.alpha, beta=self.beta,
                                             k=self.k, name=self._name)

    def extra_repr(self):
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"

    def __repr__(self):
        return f"LocalResponseNorm({self.extra_repr()})"
