"""Gradient clipping, in place, between ``backward()`` and ``optimizer.step()`` (as torch.nn.utils).

>>> loss.backward()
>>> clip_grad_norm_(model.parameters(), max_norm=1.0)
>>> opt.step()
"""
import math

import numpy as np

from .. import checks
from ..autograd import Tensor
from ..backend import array_namespace

__all__ = ["clip_grad_norm_", "clip_grad_value_"]


def _grads(parameters):
    """The gradient arrays of a tensor or an iterable of tensors; parameters without a grad are skipped."""
    if isinstance(parameters, Tensor):
        parameters = (parameters,)
    return [p.grad.data for p in parameters if p.grad is not None]


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False):
    """Scale the gradients so that their joint norm is at most ``max_norm``; return the norm before.

    The norm is taken over all gradients as if they were one vector (``norm_type`` p > 0, or
    ``inf`` for the largest absolute entry). When it exceeds ``max_norm`` every gradient is
    multiplied by ``max_norm / (norm + 1e-6)``, as in PyTorch. A non-finite norm raises with
    ``error_if_nonfinite=True``; otherwise, as in PyTorch, it spreads into the gradients.
    """
    if isinstance(norm_type, str) and norm_type.lower() in ("inf", "infinity"):
        norm_type = math.inf                    # PyTorch takes the string 'inf' too
    norm_type = checks.real("clip_grad_norm_", "norm_type", norm_type, 0, low_open=True, finite=False)
    max_norm = checks.real("clip_grad_norm_", "max_norm", max_norm, 0, finite=False)  # inf: measure only
    error_if_nonfinite = checks.flag("clip_grad_norm_", "error_if_nonfinite", error_if_nonfinite)
    grads = _grads(parameters)
    if not grads:
        return 0.0
    xp = array_namespace(grads[0])
    if norm_type == math.inf:
        # np.max, not max(): it keeps a NaN wherever it is in the list
        total = float(np.max([float(abs(g).max()) if g.size else 0.0 for g in grads]))
    elif norm_type == 2.0:
        # one BLAS dot per gradient; the sum of squares of all of them is the square of the norm
        total = math.sqrt(sum(float(xp.dot(g.ravel(), g.ravel())) for g in grads))
    elif norm_type == 1.0:
        total = sum(float(abs(g).sum()) for g in grads)
    else:
        total = sum(float((abs(g) ** norm_type).sum()) for g in grads) ** (1.0 / norm_type)
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(
            f"clip_grad_norm_: the total norm of order {norm_type} of the gradients is {total}, so "
            f"they cannot be clipped; pass error_if_nonfinite=False to clip anyway")
    coef = max_norm / (total + 1e-6)
    if coef >= 1.0:
        return total
    if math.isfinite(total):
        for g in grads:
            g *= xp.asarray(coef, dtype=g.dtype)
    else:
        # as PyTorch: a NaN norm makes the grads NaN, an infinite one zeroes them (inf * 0 = NaN)
        with np.errstate(invalid="ignore"):
            for g in grads:
                g *= xp.asarray(coef, dtype=g.dtype)
    return total


def clip_grad_value_(parameters, clip_value):
    """Clip every gradient entry into [-clip_value, clip_value], in place."""
    clip_value = checks.real("clip_grad_value_", "clip_value", clip_value, 0)
    for g in _grads(parameters):
        array_namespace(g).clip(g, -clip_value, clip_value, out=g)


def backward_and_step(loss, optimizer, clip_norm=None):
    """The end of every training step: ``loss.backward()``, clip the gradient norm of the
    optimizer's parameters to ``clip_norm`` (when given), ``optimizer.step()``. Returns the loss
    as a float."""
    loss.backward()
    if clip_norm:
        clip_grad_norm_([p for g in optimizer.param_groups for p in g["params"]], clip_norm)
    optimizer.step()
    return float(loss.data)
