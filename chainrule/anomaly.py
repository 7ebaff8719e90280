"""Anomaly detection: the first NaN or inf that an op produces, in forward or in backward, raises.

The tape (``chainrule.autograd``) reads one flag, ``enabled``, per op and calls ``check_forward`` /
``check_backward`` only while it is on, so the ordinary path stays as it is. It sees arrays only
(the tape unwraps Tensors first), so it needs nothing of chainrule but ``backend``;
``from chainrule.autograd import detect_anomaly`` keeps working (re-exported there).
"""
import functools
import os
import sys

from .backend import array_namespace

__all__ = ["AnomalyError", "detect_anomaly", "is_anomaly_enabled", "set_detect_anomaly"]

enabled = False

_PKG = os.path.dirname(os.path.abspath(__file__)) + os.sep


class AnomalyError(FloatingPointError):
    """A NaN or inf produced by an op while anomaly detection is on (see ``detect_anomaly``)."""


def is_anomaly_enabled():
    return enabled


def set_detect_anomaly(mode):
    """Turn anomaly detection on (True) or off (False) globally; returns the previous mode."""
    global enabled
    prev, enabled = enabled, bool(mode)
    return prev


class detect_anomaly:
    """Within ``with detect_anomaly():`` the first NaN or inf that an op produces, in forward or in
    backward, raises ``AnomalyError`` naming the op (its Function class), the shapes of its inputs
    and outputs and, for backward, the line of user code that built the op, as
    ``torch.autograd.detect_anomaly`` does. Costs a finiteness check per op: for debugging only.

    >>> with chainrule.autograd.detect_anomaly():
    ...     loss = F.cross_entropy(model(x), y); loss.backward()
    AnomalyError: Log produced nan in forward: inputs (32, 10) float32 -> output (32, 10) ...

    Also usable as a decorator, and ``set_detect_anomaly(True)`` switches it on for good.
    """

    def __init__(self, mode=True):
        self.mode = bool(mode)

    def __enter__(self):
        self._prev = set_detect_anomaly(self.mode)
        return self

    def __exit__(self, *exc):
        set_detect_anomaly(self._prev)
        return False

    def __call__(self, func):
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            with detect_anomaly(self.mode):
                return func(*args, **kwargs)

        return wrapper


def _is_array(a):
    return hasattr(a, "shape") and hasattr(a, "dtype")


def _describe(values):
    parts = []
    for a in values:
        if _is_array(a):
            parts.append(f"{tuple(a.shape)} {a.dtype}")
        elif a is None:
            parts.append("None")
        else:
            parts.append(type(a).__name__)
    return ", ".join(parts) if parts else "none"


def _bad(a):
    """'nan' / 'inf' if the floating array ``a`` holds one, else None."""
    if not _is_array(a) or a.dtype.kind not in "fc":
        return None
    xp = array_namespace(a)
    if xp.isfinite(a).all():
        return None
    return "nan" if xp.isnan(a).any() else "inf"


def _user_frame():
    """'file:line in function' of the innermost caller outside chainrule, for error messages."""
    f = sys._getframe(2)
    while f is not None and os.path.abspath(f.f_code.co_filename).startswith(_PKG):
        f = f.f_back
    if f is None:
        return None
    return f"{f.f_code.co_filename}:{f.f_lineno} in {f.f_code.co_name}"


def check_forward(fn, args, out, record):
    """Raise if an output array of ``fn`` holds nan/inf; ``args`` are the op's (unwrapped) inputs."""
    outs = out if type(out) is tuple else (out,)
    for i, o in enumerate(outs):
        kind = _bad(o)
        if kind is None:
            continue
        tainted = [j for j, a in enumerate(args) if _bad(a) is not None]
        where = _user_frame()
        raise AnomalyError(
            f"{type(fn).__name__} produced {kind} in forward (output {i} of shape "
            f"{tuple(o.shape)}): inputs {_describe(args)} -> outputs {_describe(outs)}"
            + (f"; input(s) {tainted} already held nan/inf" if tainted else
               "; its inputs were all finite")
            + (f"; called from {where}" if where else ""))
    if record:
        fn._anomaly_where = _user_frame()    # named again if its backward goes wrong


def check_backward(fn, inputs, grads, in_grads):
    """Raise if a gradient that ``fn.backward`` returned holds nan/inf; ``inputs`` are arrays."""
    for i, g in enumerate(in_grads):
        kind = _bad(g)
        if kind is None:
            continue
        up = [gg for gg in grads if gg is not None]
        tainted = any(_bad(gg) is not None for gg in up)
        where = fn.__dict__.get("_anomaly_where")
        raise AnomalyError(
            f"{type(fn).__name__}.backward returned {kind} in the gradient of input {i} (shape "
            f"{tuple(g.shape)}): inputs {_describe(inputs)}, upstream gradient(s) "
            f"{_describe(up)}"
            + ("; the upstream gradient already held nan/inf" if tainted else
               "; the upstream gradient was finite")
            + (f"; the op was created at {where}" if where else ""))
