"""Finite-difference checks of autograd (``chainrule.gradcheck``)."""
import numpy as np

from .autograd import Tensor


class GradcheckError(AssertionError):
    pass


def _outputs(f, inputs):
    out = f(*inputs)
    return out if isinstance(out, (tuple, list)) else (out,)


def gradcheck(f, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True, seed=0):
    """Compare autograd's gradients of ``f(*inputs)`` with central finite differences, in float64.

    ``inputs`` is a Tensor or a sequence of Tensors (and other arguments passed through); those
    with ``requires_grad`` are checked. Each output is contracted with a fixed random vector, so
    every element of the Jacobian contributes. Returns True, or raises ``GradcheckError`` naming the
    input, the element and both values (or returns False with ``raise_exception=False``).

    >>> x = chainrule.randn(3, 4, dtype='float64', requires_grad=True)
    >>> chainrule.gradcheck(lambda t: (t.exp() * t).sum(axis=1), x)
    True
    """
    if isinstance(inputs, Tensor):
        inputs = (inputs,)
    inputs = tuple(inputs)
    checked = [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input requires grad; mark the inputs to check with requires_grad=True")
    for i in checked:
        if inputs[i].dtype != np.float64:
            raise TypeError(f"gradcheck: input {i} is {inputs[i].dtype}; finite differences need "
                            f"float64 inputs (use .double())")
    rng = np.random.default_rng(seed)
    outs = _outputs(f, inputs)
    weights = [rng.standard_normal(o.shape) for o in outs]

    def scalar():
        return float(sum(np.sum(np.asarray(o.data, dtype=np.float64) * w)
                         for o, w in zip(_outputs(f, inputs), weights)))

    for i in checked:
        inputs[i].grad = None
    total = None
    for o, w in zip(outs, weights):
        if not o.requires_grad:
            continue
        term = (o * Tensor(w.astype(o.dtype))).sum()
        total = term if total is None else total + term
    if total is None:
        raise ValueError("gradcheck: no output depends on the inputs that require grad")
    total.backward()
    for i in checked:
        t = inputs[i]
        analytic = np.zeros(t.shape) if t.grad is None else t.grad.data
        numeric = np.zeros(t.shape)
        data = t.data
        # perturb in place through a flat view: a transposed or read-only array has none (reshape
        # would copy, and the perturbation would never reach f), so work on a C-ordered copy
        if not (data.flags.c_contiguous and data.flags.writeable):
            t.data = np.array(data, order="C", copy=True)
        flat = t.data.reshape(-1)
        try:
            for k in range(flat.size):
                orig = flat[k]
                flat[k] = orig + eps
                plus = scalar()
                flat[k] = orig - eps
                minus = scalar()
                flat[k] = orig
                numeric.reshape(-1)[k] = (plus - minus) / (2 * eps)
        finally:
            t.data = data
        bad = ~np.isclose(analytic, numeric, atol=atol, rtol=rtol)
        if bad.any():
            k = np.unravel_index(np.argmax(bad), t.shape)
            msg = (f"gradcheck: gradient of input {i} (shape {t.shape}) differs at index {tuple(map(int, k))}: "
                   f"autograd {analytic[k]:.8g}, finite differences {numeric[k]:.8g} "
                   f"({int(bad.sum())} of {bad.size} elements differ)")
            if raise_exception:
                raise GradcheckError(msg)
            return False
    return True
