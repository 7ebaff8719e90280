"""Functional forms: lowercase wrappers over the ops, taking and returning Tensors.

A layer calls its functional form (``nn.Linear.forward`` is ``F.linear``), and both check their
input with the helpers of ``nn.checks``, passing ``name`` (the layer) for the messages.
"""
import numpy as np

from .. import backend, checks
from ..autograd import Tensor
from ..backend import array_namespace
from ..ops import activation as _act
from ..ops import basic as _basic
from ..ops import loss as _loss
from ..ops import norm as _norm
from ..tensor_api import log_softmax, relu, sigmoid, softmax, tanh  # noqa: F401  (Tensor methods too)
from .checks import check_dtype, check_features, check_probability


def _t(x):
    return x if isinstance(x, Tensor) else Tensor(x)


def _data(x):
    """The array of a Tensor, an array as it is, Python data as a NumPy array."""
    if isinstance(x, Tensor):
        return x.data
    return x if hasattr(x, "shape") else np.asarray(x)


# -- activations (sigmoid, tanh, relu, softmax, log_softmax: imported above from tensor_api) -------


def leaky_relu(x, negative_slope=0.01):
    if not (negative_slope.__class__ is float and -np.inf < negative_slope < np.inf):  # cheap: per step
        negative_slope = checks.real("leaky_relu", "negative_slope", negative_slope)
    return _act.LeakyReLU.apply(x, negative_slope=negative_slope)


# -- layers -----------------------------------------------------------------------------------------
def linear(x, weight, bias=None, name="linear"):
    """y = x W^T + b; x: (..., in), weight: (out, in), bias: (out,). ``name`` opens error messages
    (``nn.Linear`` passes itself)."""
    xd = x.data if isinstance(x, Tensor) else _data(x)          # (inline: W1/W4's hot path)
    check_features(name, xd, weight.data if isinstance(weight, Tensor) else weight)
    if bias is None:
        return _basic.Linear.apply(x, weight)
    return _basic.Linear.apply(x, weight, bias)


def dropout(x, p=0.5, training=True, generator=None):
    """Inverted dropout: in training, zero each element with probability ``p`` and scale the rest by
    1/(1-p); the identity when not training or p == 0."""
    check_probability("dropout", p)
    if not training or p == 0:
        return x
    x = _t(x)
    rng = generator if generator is not None else backend.get_rng()
    if p == 1:
        return x * 0
    # the mask is drawn by the seeded host generator (repeatable runs), then moved to x's module
    mask = rng.random(x.shape, dtype=np.float64 if x.dtype == np.float64 else np.float32) >= p
    return _norm.Dropout.apply(x, array_namespace(x.data).asarray(mask), 1.0 / (1.0 - p))


# -- losses -----------------------------------------------------------------------------------------
def _reduction(reduction, name):
    _loss.check_reduction(reduction, name)
    return reduction


def cross_entropy(input, target, reduction="mean", label_smoothing=0.0):
    """Softmax cross-entropy of logits (N, C) against integer labels (N,); fused and stable."""
    reduction, label_smoothing, _, _ = _loss.check_loss_options("cross_entropy", reduction, label_smoothing)
    return _loss.CrossEntropy.apply(input, _label_array(target), reduction=reduction,
                                    label_smoothing=label_smoothing)


def nll_loss(input, target, reduction="mean"):
    return _loss.NLLLoss.apply(input, _label_array(target), reduction=_reduction(reduction, "nll_loss"))


def l1_loss(input, target, reduction="mean"):
    return _loss.L1Loss.apply(input, target, reduction=_reduction(reduction, "l1_loss"))


def mse_loss(input, target, reduction="mean"):
    """Squared error (x - y)^2, averaged by default (PyTorch's mse_loss)."""
    return _loss.MSELoss.apply(input, target, reduction=_reduction(reduction, "mse_loss"))


def l2_loss(input, target, reduction="mean", half=False):
    """Squared error; ``half=True`` gives the course's 1/2 (y - y_hat)^2, whose gradient is y_hat - y."""
    reduction, _, _, half = _loss.check_loss_options("l2_loss", reduction, half=half)
    return _loss.MSELoss.apply(input, target, reduction=reduction, half=half)


def hinge_loss(input, target, reduction="mean"):
    """max(0, 1 - y * y_hat) with labels y in {-1, +1}."""
    return _loss.HingeLoss.apply(input, target, reduction=_reduction(reduction, "hinge_loss"))


def multiclass_hinge_loss(input, target, margin=1.0, reduction="mean"):
    """Multiclass SVM loss: sum over wrong classes j of max(0, s_j - s_y + margin)."""
    reduction, _, margin, _ = _loss.check_loss_options("multiclass_hinge_loss", reduction, margin=margin)
    return _loss.MultiClassHinge.apply(input, _label_array(target), margin=margin, reduction=reduction)


def binary_cross_entropy_with_logits(input, target, reduction="mean"):
    return _loss.BCEWithLogits.apply(input, target,
                                     reduction=_reduction(reduction, "binary_cross_entropy_with_logits"))


def zero_one_loss(input, target, reduction="mean"):
    """Fraction of wrong predictions (argmax of (N, C) scores, or the sign of (N,) scores against
    labels in {-1, +1}). A metric: backward through it raises."""
    return _loss.ZeroOneLoss.apply(input, _label_array(target), reduction=_reduction(reduction, "zero_one_loss"))


def _label_array(target):
    return _data(target)


# -- convolutions (chainrule/nn/conv.py holds them with their checks) ---------------------------------
from .conv import conv1d, conv2d, conv_transpose2d, locally_connected2d  # noqa: E402,F401


# -- pooling and normalisation (ops/pool.py, ops/norm.py) ----------------------------------------------
from .. import fast  # noqa: E402  (fast.use: the reference op or its fast replacement)
from ..ops import pool as _pool  # noqa: E402


def _pool_flags(fn, name, ceil_mode, count_include_pad=True, divisor_override=None):
    # one class test per flag on the ordinary path: the pooling layers call these per step
    where = name or fn
    if ceil_mode.__class__ is not bool:
        checks.flag(where, "ceil_mode", ceil_mode)
    if count_include_pad.__class__ is not bool:
        checks.flag(where, "count_include_pad", count_include_pad)
    if divisor_override is not None:
        checks.integer(where, "divisor_override", divisor_override, 1)


def max_pool1d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, name=None):
    """Max pooling of (N, C, L); stride defaults to kernel_size, padding pads with -inf."""
    _pool_flags("max_pool1d", name, ceil_mode)
    return fast.use(_pool.MaxPool1d, x).apply(x, kernel_size=kernel_size, stride=stride,
                                              padding=padding, dilation=dilation,
                                              ceil_mode=ceil_mode, name=name)


def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, name=None):
    """Max pooling of (N, C, H, W): ``max_pool2d(x, 2)`` halves H and W."""
    _pool_flags("max_pool2d", name, ceil_mode)
    return fast.use(_pool.MaxPool2d, x).apply(x, kernel_size=kernel_size, stride=stride,
                                              padding=padding, dilation=dilation,
                                              ceil_mode=ceil_mode, name=name)


def avg_pool1d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               name=None):
    """Average pooling of (N, C, L); zero padding counts in the divisor unless count_include_pad=False."""
    _pool_flags("avg_pool1d", name, ceil_mode, count_include_pad)
    return _pool.AvgPool1d.apply(x, kernel_size=kernel_size, stride=stride, padding=padding,
                                 ceil_mode=ceil_mode, count_include_pad=count_include_pad, name=name)


def avg_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None, name=None):
    """Average pooling of (N, C, H, W)."""
    _pool_flags("avg_pool2d", name, ceil_mode, count_include_pad, divisor_override)
    return _pool.AvgPool2d.apply(x, kernel_size=kernel_size, stride=stride, padding=padding,
                                 ceil_mode=ceil_mode, count_include_pad=count_include_pad,
                                 divisor_override=divisor_override, name=name)


def adaptive_avg_pool2d(x, output_size, name=None):
    """(N, C, H, W) -> (N, C, *output_size), PyTorch's window formula."""
    return _pool.AdaptiveAvgPool2d.apply(x, output_size=output_size, name=name)


def global_avg_pool2d(x, name=None):
    """(N, C, H, W) -> (N, C): the mean of each feature map."""
    return _pool.GlobalAvgPool2d.apply(x, name=name)


def batch_norm(x, running_mean=None, running_var=None, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5, name="batch_norm"):
    """Batch normalisation over every axis but 1 of (N, C, *), PyTorch's argument order. In
    training, batch statistics normalise and the running ones (arrays or Tensors, updated in place)
    move by ``momentum``; otherwise the running statistics normalise."""
    if not (eps.__class__ is float and 0.0 < eps < np.inf):         # cheap: BatchNorm calls this per step
        eps = checks.real(name, "eps", eps, 0, low_open=True)
    if momentum is not None and not (momentum.__class__ is float and 0.0 <= momentum <= 1.0):
        momentum = checks.real(name, "momentum", momentum, 0, 1)
    rm = running_mean.data if isinstance(running_mean, Tensor) else running_mean
    rv = running_var.data if isinstance(running_var, Tensor) else running_var
    ref = weight if weight is not None else running_mean
    if ref is not None:
        check_dtype(name, _data(x), _data(ref))
    return _norm.BatchNorm.apply(x, weight, bias, running_mean=rm, running_var=rv,
                                 training=training, momentum=momentum, eps=eps, name=name)


def local_response_norm(x, size, alpha=1e-4, beta=0.75, k=1.0, name=None):
    """AlexNet's local response normalisation across channels of (N, C, *), as PyTorch's."""
    where = name or "local_response_norm"
    alpha, beta, k = (checks.real(where, "alpha", alpha), checks.real(where, "beta", beta),
                      checks.real(where, "k", k))
    return _norm.LocalResponseNorm.apply(x, size=size, alpha=alpha, beta=beta, k=k, name=name)


def dropout2d(x, p=0.5, training=True, generator=None, name=None):
    """Channel dropout of (N, C, H, W) or (N, C, L): in training, zero whole channels with
    probability ``p`` and scale the rest by 1/(1-p); the identity when not training or p == 0."""
    label = name or f"dropout2d(p={p})"
    check_probability(label, p)
    shape = _data(x).shape
    if len(shape) not in (3, 4):
        raise ValueError(f"{label}: expected input (N, C, H, W) or (N, C, L), got {shape}")
    if not training or p == 0:
        return x
    x = _t(x)
    if p == 1:
        return x * 0
    rng = generator if generator is not None else backend.get_rng()
    keep = rng.random(shape[:2], dtype=np.float64 if x.dtype == np.float64 else np.float32) >= p
    keep = array_namespace(x.data).asarray(keep.reshape(shape[:2] + (1,) * (len(shape) - 2)))
    return _norm.Dropout.apply(x, keep, 1.0 / (1.0 - p))
