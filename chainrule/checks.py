"""Argument checks shared by every public constructor and function (nn, optim, data), with one
message format: ``"<where>: <name> must be <rule>, got <value>"``, e.g.
``SGD: lr must be a finite number >= 0, got nan``.

A wrong type raises ``ArgumentTypeError`` (a TypeError that is also a ValueError, as NumPy's
AxisError is both, so code that caught ValueError for a bad argument still does); a value out of
range raises ValueError. Bools are refused where a number or a count is expected; NumPy integers
and floats are accepted and returned as Python ints and floats. This module imports nothing of
chainrule, so any module may use it without an import circle. The checks run once per call of a
constructor or user-facing function, never per element.
"""
import math
import numbers

import numpy as np

__all__ = ["ArgumentTypeError", "fail", "real", "integer", "flag", "choice", "probability",
           "int_tuple", "callable_arg", "show"]


class ArgumentTypeError(TypeError, ValueError):
    """An argument of the wrong type (both a TypeError and a ValueError)."""


def show(value):
    """The value as the message prints it: NumPy scalars as Python ones, strings quoted."""
    if hasattr(value, "item") and getattr(value, "shape", None) == ():
        value = value.item()
    return repr(value)


def fail(where, name, rule, value, exc=ValueError):
    raise exc(f"{where}: {name} must be {rule}, got {show(value)}")


def _range_text(low, high, low_open, high_open):
    if low is not None and high is not None:
        return f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    if low is not None:
        return f"{'>' if low_open else '>='} {low:g}"
    if high is not None:
        return f"{'<' if high_open else '<='} {high:g}"
    return ""


def real(where, name, value, low=None, high=None, low_open=False, high_open=False, finite=True):
    """``value`` as a float: a real number (not a bool), finite unless ``finite=False`` (then +inf
    is allowed, NaN never), within [low, high] (open ends with ``low_open``/``high_open``)."""
    ok = not isinstance(value, bool) and isinstance(value, numbers.Real)
    if ok:
        v = float(value)
        ok = not (math.isnan(v) or (finite and math.isinf(v))
                  or (low is not None and (v < low or (low_open and v == low)))
                  or (high is not None and (v > high or (high_open and v == high))))
        if ok:
            return v
    rng = _range_text(low, high, low_open, high_open)       # formatted only on failure
    rule = ("a finite number" if finite else "a number") + (f" {rng}" if rng else "")
    is_number = not isinstance(value, bool) and isinstance(value, numbers.Real)
    fail(where, name, rule, value, ValueError if is_number else ArgumentTypeError)


def integer(where, name, value, low=None, high=None, rule=None):
    """``value`` as an int: an integer (NumPy's too, never a bool) within [low, high]; ``rule``
    words the range differently in the message."""
    is_int = not isinstance(value, bool) and isinstance(value, numbers.Integral)
    if is_int:
        v = int(value)
        if not ((low is not None and v < low) or (high is not None and v > high)):
            return v
    if rule is not None:                                      # formatted only on failure
        pass
    elif high is None and low in (0, 1):
        rule = "a positive integer" if low == 1 else "a non-negative integer"
    else:
        rng = _range_text(low, high, False, False)
        rule = "an integer" + (f" {rng}" if rng else "")
    fail(where, name, rule, value, ValueError if is_int else ArgumentTypeError)


def flag(where, name, value):
    """``value`` as a bool: True or False (NumPy's bool too), not 0/1 or a string."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    fail(where, name, "True or False", value, ArgumentTypeError)


def choice(where, name, value, options):
    """``value`` itself, when it is one of ``options``."""
    try:
        ok = value in options
    except TypeError:                            # an unhashable value against a set
        ok = False
    if not ok or isinstance(value, bool) and not any(o is value for o in options):
        fail(where, name, "one of " + ", ".join(repr(o) for o in options), value)
    return value


def probability(where, name, value):
    """A probability in [0, 1] as a float (NaN refused)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        fail(where, name, "a number in [0, 1]", value, ArgumentTypeError)
    if not 0 <= value <= 1:
        fail(where, name, "in [0, 1]", value)
    return float(value)


def int_tuple(where, name, value, n, low=1):
    """An int or a sequence of ``n`` ints, each >= ``low`` (None: any), as a tuple of ``n`` ints
    (``kernel_size=3`` -> (3, 3)); ``low=1`` reads "positive ints", ``low=0`` "non-negative ints"."""
    # plain ints first, without formatting anything: pooling calls this on every forward
    if value.__class__ is int:
        if low is None or value >= low:
            return (value,) * n
    elif value.__class__ is tuple and len(value) == n and all(v.__class__ is int for v in value):
        if low is None or min(value) >= low:
            return value
    shape = f"an int or a tuple of {n} ints" if n > 1 else "an int"
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        items = (value,) * n
    elif isinstance(value, (tuple, list)) and len(value) == n:
        items = tuple(value)
    else:
        fail(where, name, shape, value, ArgumentTypeError if not isinstance(value, (tuple, list)) else ValueError)
    for v in items:
        if isinstance(v, bool) or not isinstance(v, numbers.Integral):
            fail(where, name, shape, value, ArgumentTypeError)
        if low is not None and v < low:
            fail(where, name, {1: "positive ints", 0: "non-negative ints"}.get(low, f"ints >= {low}"), value)
    return tuple(int(v) for v in items)


def callable_arg(where, name, value):
    if not callable(value):
        fail(where, name, "callable", value, ArgumentTypeError)
    return value
