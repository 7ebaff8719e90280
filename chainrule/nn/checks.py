"""Input checks shared by the layers and their functional forms: one helper per check, so that a
layer and its function (``nn.Linear`` and ``F.linear``) raise the same message.

Each helper takes ``where``, the name that opens the message: a layer (its repr, e.g.
``Linear(in_features=784, out_features=256, bias=True)``) or a function name (``"linear"``). It is
formatted only when the check fails, so passing a layer costs nothing on the ordinary path.

These check inputs (shapes, dtypes); the arguments of constructors and functions (sizes, rates,
flags) are checked by ``chainrule.checks``, shared with optim and data.
"""

from .. import checks

__all__ = ["DTYPE_MISMATCH", "dtype_mismatch", "check_dtype", "check_features",
           "check_probability"]

# The one dtype-mismatch message of the library (layers, their functions, recurrent and conv layers).
DTYPE_MISMATCH = ("{where}: input dtype {got} does not match the weights' {want}; convert the input "
                  "(x.astype('{want}')) or the model (.to('{got}'))")


def dtype_mismatch(where, got, want):
    """The dtype-mismatch message; a model converts only to a floating dtype, so for integer or
    bool input the advice is to convert the input (or, for class indices, to use an Embedding)."""
    if getattr(got, "kind", "f") == "f":
        return DTYPE_MISMATCH.format(where=where, got=got, want=want)
    return (f"{where}: input dtype {got} is not floating (the weights are {want}); convert the "
            f"input (x.astype('{want}')), or, if it holds class indices or tokens, feed it to an "
            f"Embedding first")


def check_dtype(where, x, weight):
    """Raise TypeError when the array ``x`` and ``weight`` have different dtypes."""
    if x.dtype != weight.dtype:
        raise TypeError(dtype_mismatch(where, x.dtype, weight.dtype))


def check_features(where, x, weight):
    """Raise unless ``x`` is (..., in_features) for a weight (out_features, in_features) and has
    the weight's dtype (ValueError, TypeError): the input check of Linear and ``F.linear``."""
    shape = x.shape
    if not shape or shape[-1] != weight.shape[1]:
        raise ValueError(f"{where}: expected input (N, {weight.shape[1]}) for weight "
                         f"{tuple(weight.shape)}, got {tuple(shape)}")
    if x.dtype != weight.dtype:
        raise TypeError(dtype_mismatch(where, x.dtype, weight.dtype))


def check_probability(where, p):
    """Raise unless ``p`` is a probability (dropout rates): a real number (not a bool, not NaN) in
    [0, 1]; ``where`` opens the message, as every check of ``chainrule.checks``."""
    if p.__class__ is float and 0.0 <= p <= 1.0:     # the common case, first: F.dropout calls this per step
        return
    checks.real(where, "p, the drop probability", p)        # the type and NaN checks
    if not 0 <= p <= 1:
        checks.fail(where, "p, the drop probability", "in [0, 1]", p)
