"""Losses, fused with their reduction: each one a single op with a hand-written backward.

``reduction`` follows PyTorch: 'mean' (average over elements / examples), 'sum', or 'none'.
"""
import numpy as np

from .. import checks
from ..autograd import Function
from ..backend import array_namespace

_REDUCTIONS = ("mean", "sum", "none")
_INF = float("inf")


def check_reduction(reduction, name):
    if reduction.__class__ is not str or reduction not in _REDUCTIONS:
        checks.fail(name, "reduction", "one of 'mean', 'sum', 'none'", reduction)


def check_loss_options(name, reduction="mean", label_smoothing=0.0, margin=1.0, half=False):
    """The one check of the loss options, shared by the loss modules (at construction) and the
    functional forms (each call: a few scalar tests, nothing per element). Returns the options
    as plain Python values."""
    check_reduction(reduction, name)
    if label_smoothing.__class__ is not float or not 0.0 <= label_smoothing <= 1.0:
        label_smoothing = checks.real(name, "label_smoothing", label_smoothing, 0, 1)
    if not (margin.__class__ is float and -_INF < margin < _INF):
        margin = checks.real(name, "margin", margin)
    if half.__class__ is not bool:
        half = checks.flag(name, "half", half)
    return reduction, label_smoothing, margin, half


def _reduce(per_elem, reduction):
    # ufunc reductions directly: ndarray.mean/sum go through Python wrappers (several calls each,
    # slow with a training step's cold caches); the results are the same
    if reduction == "mean":                      # of nothing: nan as PyTorch (0 / nan, no warning)
        xp = array_namespace(per_elem)
        return xp.asarray(xp.add.reduce(per_elem, axis=None) / (per_elem.size or xp.nan),
                          dtype=per_elem.dtype)
    if reduction == "sum":
        xp = array_namespace(per_elem)
        return xp.asarray(xp.add.reduce(per_elem, axis=None), dtype=per_elem.dtype)
    return per_elem


def _scale(g, reduction, n, shape):
    """Upstream gradient of the reduced loss, spread back to per-element shape."""
    if reduction == "none":
        return g
    return array_namespace(g).broadcast_to(g / (n or 1) if reduction == "mean" else g, shape)


def _check_same_shape(a, b, name):
    if a.shape != b.shape:
        raise ValueError(f"{name}: input has shape {a.shape} but target has shape {b.shape}; "
                         f"they must match")


class L1Loss(Function):
    saves = ()
    def forward(self, x, y, reduction="mean"):
        _check_same_shape(x, y, "l1_loss")
        self.d = d = x - y
        self.reduction = reduction
        return _reduce(abs(d), reduction)

    def backward(self, g):                       # d|x - y|/dx = sign(x - y)
        s = array_namespace(g).sign(self.d)
        gs = _scale(g, self.reduction, s.size, s.shape) * s
        nx, ny = self.needs_input_grad
        return (gs if nx else None, -gs if ny else None)


class MSELoss(Function):
    """(x - y)^2, or the course's 1/2 (x - y)^2 with ``half=True`` (its gradient is x - y)."""
    saves = ()

    def forward(self, x, y, reduction="mean", half=False):
        _check_same_shape(x, y, "mse_loss")
        self.d = d = x - y
        self.reduction, self.half = reduction, half
        sq = d * d
        return _reduce(sq * 0.5 if half else sq, reduction)

    def backward(self, g):                       # d(x - y)^2/dx = 2 (x - y)
        d = self.d
        gs = _scale(g, self.reduction, d.size, d.shape) * (d if self.half else 2 * d)
        nx, ny = self.needs_input_grad
        return (gs if nx else None, -gs if ny else None)


class HingeLoss(Function):
    """max(0, 1 - y * x) for labels y in {-1, +1} and real scores x."""
    saves = (1,)

    def forward(self, x, y, reduction="mean"):
        _check_same_shape(x, y, "hinge_loss")
        bad = (y != 1) & (y != -1)
        if bad.any():
            raise ValueError(f"hinge_loss: labels must be -1 or +1, got {y[bad].ravel()[0]!r}")
        self.y, self.reduction = y, reduction
        m = 1 - y * x
        self.active = m > 0
        return _reduce(array_namespace(m).maximum(m, 0).astype(x.dtype, copy=False), reduction)

    def backward(self, g):                       # slope -y where the margin is violated, else 0
        a = self.active
        return (_scale(g, self.reduction, a.size, a.shape)
                * array_namespace(g).where(a, -self.y, 0).astype(g.dtype), None)


def _check_labels(target, n_classes, name, n):
    if target.dtype.kind not in "iu":
        raise TypeError(f"{name}: target must hold integer class labels, got dtype {target.dtype}")
    if target.shape != (n,):
        raise ValueError(f"{name}: expected target of shape ({n},) to match the input's "
                         f"{n} rows, got {target.shape}")
    if n:
        xp = array_namespace(target)
        lo, hi = xp.minimum.reduce(target), xp.maximum.reduce(target)
        if lo < 0 or hi >= n_classes:
            bad = lo if lo < 0 else hi
            raise IndexError(f"{name}: label {bad} is out of range for {n_classes} classes "
                             f"(labels must be in 0..{n_classes - 1})")


def _to_rows(x, name):
    """(N, C) or (N, C, d1, ...) -> (M, C) rows plus a function that undoes it."""
    if x.ndim == 2:
        return x, None
    if x.ndim < 2:
        raise ValueError(f"{name}: expected input (N, C) or (N, C, d1, ...), got shape {x.shape}")
    moved = array_namespace(x).moveaxis(x, 1, -1)
    return moved.reshape(-1, x.shape[1]), moved.shape


class CrossEntropy(Function):
    """Softmax cross-entropy on logits, fused: -log softmax(x)[y], with gradient softmax(x) - onehot(y).

    x: (N, C) logits (or (N, C, d1, ...)), y: (N,) integer labels (or (N, d1, ...)).
    """
    saves = (1,)      # the targets

    def forward(self, x, y, reduction="mean", label_smoothing=0.0):
        xp = array_namespace(x)
        rows, moved_shape = _to_rows(x, "cross_entropy")
        y = xp.asarray(y)
        if moved_shape is not None and y.shape != x.shape[:1] + x.shape[2:]:
            raise ValueError(f"cross_entropy: input {x.shape} (N, C, d1, ...) needs target "
                             f"(N, d1, ...) = {x.shape[:1] + x.shape[2:]}, got {y.shape}")
        yr = y.reshape(-1) if moved_shape is not None else y
        n, c = rows.shape
        _check_labels(yr, c, "cross_entropy", n)
        shifted = rows - xp.maximum.reduce(rows, axis=1, keepdims=True)
        picked = shifted[xp.arange(n), yr]        # taken before exp overwrites ``shifted``
        mean = shifted.mean(axis=1) if label_smoothing else None
        e = xp.exp(shifted, out=shifted)
        s = xp.add.reduce(e, axis=1, keepdims=True)
        log_s = xp.log(s[:, 0])
        loss = log_s - picked                     # -log softmax(x)[y]
        if label_smoothing:
            loss = (1 - label_smoothing) * loss - label_smoothing * (mean - log_s)
        e /= s
        self.p = e                                # softmax(x), for backward
        self.y, self.reduction, self.ls = yr, reduction, label_smoothing
        self.x_shape, self.moved_shape = x.shape, moved_shape
        if moved_shape is not None and reduction == "none":
            return loss.reshape(y.shape).astype(x.dtype, copy=False)
        return _reduce(loss.astype(x.dtype, copy=False), reduction)

    def backward(self, g):
        p, y, n = self.p, self.y, self.y.shape[0]
        xp = array_namespace(p)
        grad = p.copy() if self.ls == 0 else p - self.ls / p.shape[1]
        grad[xp.arange(n), y] -= 1 - self.ls      # d(-log softmax_y)/dx = softmax - onehot(y)
        if self.reduction == "none":
            grad *= g.reshape(-1, 1)
        else:
            grad *= g / (n or 1) if self.reduction == "mean" else g   # (n = 0: grad is empty)
        if self.moved_shape is not None:
            grad = xp.moveaxis(grad.reshape(self.moved_shape), -1, 1)
        return grad, None


class NLLLoss(Function):
    """-x[y] for log-probabilities x (N, C): pair with log_softmax."""
    saves = (1,)

    def forward(self, x, y, reduction="mean"):
        if x.ndim != 2:
            raise ValueError(f"nll_loss: expected input (N, C), got shape {x.shape}")
        n, c = x.shape
        _check_labels(y, c, "nll_loss", n)
        self.shape, self.y, self.reduction, self.dtype = x.shape, y, reduction, x.dtype
        return _reduce(-x[array_namespace(x).arange(n), y], reduction)

    def backward(self, g):
        n = self.shape[0]
        xp = array_namespace(g)
        grad = xp.zeros(self.shape, self.dtype)
        gs = g if self.reduction == "none" else (g / (n or 1) if self.reduction == "mean" else g)
        grad[xp.arange(n), self.y] = -gs
        return grad, None


class BCEWithLogits(Function):
    """Binary cross-entropy on logits x with targets y in [0, 1], stable for large |x|:
    max(x, 0) - x y + log(1 + e^-|x|)."""
    saves = ("inputs",)

    def forward(self, x, y, reduction="mean"):
        _check_same_shape(x, y, "binary_cross_entropy_with_logits")
        self.x, self.y, self.reduction = x, y, reduction
        xp = array_namespace(x)
        loss = xp.maximum(x, 0) - x * y + xp.log1p(xp.exp(-abs(x)))
        return _reduce(loss, reduction)

    def backward(self, g):                       # dL/dx = sigmoid(x) - y
        x, y = self.x, self.y
        gs = _scale(g, self.reduction, x.size, x.shape)
        nx, ny = self.needs_input_grad
        gx = gs * (0.5 * array_namespace(x).tanh(0.5 * x) + 0.5 - y) if nx else None
        gy = gs * -x if ny else None             # dL/dy = -x
        return gx, gy


class MultiClassHinge(Function):
    """The multiclass SVM loss: sum over j != y of max(0, x_j - x_y + margin) for each row.

    (PyTorch's multi_margin_loss is this divided by the number of classes C.)
    """
    saves = (1,)

    def forward(self, x, y, margin=1.0, reduction="mean"):
        if x.ndim != 2:
            raise ValueError(f"multiclass_hinge_loss: expected scores (N, C), got shape {x.shape}")
        n, c = x.shape
        _check_labels(y, c, "multiclass_hinge_loss", n)
        xp = array_namespace(x)
        rows = xp.arange(n)
        m = x - x[rows, y][:, None] + margin
        m[rows, y] = 0
        self.active = active = m > 0
        self.y, self.reduction = y, reduction
        return _reduce(xp.where(active, m, 0).sum(axis=1).astype(x.dtype, copy=False), reduction)

    def backward(self, g):
        a, y = self.active, self.y
        n = a.shape[0]
        grad = a.astype(g.dtype)                 # +1 for each class that violates the margin
        grad[array_namespace(g).arange(n), y] = -a.sum(axis=1)   # -count at the true class
        if self.reduction == "none":
            grad *= g.reshape(-1, 1)
        else:
            grad *= g / (n or 1) if self.reduction == "mean" else g   # (n = 0: grad is empty)
        return grad, None


class ZeroOneLoss(Function):
    """1[prediction != label]: a metric, not a training loss (its gradient is zero almost
    everywhere); backward through it raises."""
    saves = ()

    def forward(self, x, y, reduction="mean"):
        xp = array_namespace(x)
        pred = x.argmax(axis=1) if x.ndim == 2 else xp.where(x >= 0, 1, -1)
        y = xp.asarray(y)
        if pred.shape != y.shape:
            raise ValueError(f"zero_one_loss: predictions have shape {pred.shape}, labels {y.shape}")
        wrong = (pred != y).astype(x.dtype if x.dtype.kind == "f" else np.float64)
        return _reduce(wrong, reduction)

    def backward(self, g):
        raise RuntimeError(
            "zero_one_loss has no useful gradient (it is piecewise constant: zero almost everywhere "
            "and undefined at the jumps); use it as a metric and train with hinge_loss or "
            "cross_entropy instead")
