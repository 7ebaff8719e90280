"""The fast path: CPU speed machinery kept apart from the reference ops, behind one switch.

The reference implementation of every op lives in ``chainrule.ops`` (one layout, readable). This
package holds what makes the NumPy CPU path fast, each piece replacing one reference piece and
tested against it in ``tests/fast``: bit for bit where the arithmetic is the same (pooling, the
fusions, pooled buffers), to rounding where the summation order must differ (the second conv
layout, the embedding fusion):

* ``fast.conv``: the batch-innermost convolution layout for small feature maps and the fused
  convolution + 2x2 max pooling op (``ConvMaxPool2d``);
* ``fast.pool``: 2x2 / stride-2 max pooling on the four window corners;
* ``fast.fusion``: the pass over an ``nn.Sequential``'s layers that runs ReLU -> max pool as
  pool -> ReLU and Conv2d (-> ReLU) -> MaxPool2d(2) as one op;
* ``fast.recurrent``: pooled buffers for the fused RNN/LSTM/GRU ops and the Embedding -> RNN
  fusion (the first layer projects the table rows instead of the looked-up vectors);
* ``fast.tuning``: BLAS threads (``chainrule.set_num_threads``) and glibc malloc thresholds.

How it plugs in. Reference code asks in one place which implementation to run::

    op = fast.use(ops.conv.Conv, x)      # ops.conv.Conv itself, or its registered replacement

``use`` returns the registered replacement only while the fast path is enabled and the data is a
plain ``numpy.ndarray`` (other array types, e.g. a CuPy array or a NumPy subclass, always get the
reference). Replacements register themselves with ``register`` when ``chainrule`` is imported
(``chainrule/fast/registry.py``). This module imports nothing from chainrule, so ops and nn can
consult it without knowing any fast piece.

The switch:

>>> import chainrule.fast
>>> prev = chainrule.fast.set_enabled(False)     # reference ops only from here on
>>> chainrule.fast.is_enabled()
False
>>> with chainrule.fast.disabled():              # or for a block
...     pass
>>> chainrule.fast.set_enabled(prev)
False

``CHAINRULE_FAST=0`` in the environment starts with the fast path disabled (and then also leaves
glibc's malloc settings alone). Results are the same either way up to floating-point rounding;
only speed differs.
"""
import contextlib
import os

import numpy as _np

_enabled = os.environ.get("CHAINRULE_FAST", "1").strip().lower() not in ("0", "false", "no", "off")
_table = {}          # reference object -> its fast replacement
_ndarray = _np.ndarray


def set_enabled(flag):
    """Turn the fast path on or off for this process; returns the previous setting."""
    global _enabled
    prev, _enabled = _enabled, bool(flag)
    return prev


def is_enabled():
    """Whether the fast path is on (the default, unless CHAINRULE_FAST=0 at import)."""
    return _enabled


@contextlib.contextmanager
def disabled():
    """``with chainrule.fast.disabled():`` runs the block on the reference ops only."""
    prev = set_enabled(False)
    try:
        yield
    finally:
        set_enabled(prev)


def register(reference, replacement):
    """Run ``replacement`` wherever reference code asks ``use(reference, ...)`` (fast path on)."""
    _table[reference] = replacement
    return replacement


def use(reference, data=None):
    """``reference`` or its registered replacement: the replacement while the fast path is on and
    ``data`` (an array or a Tensor; None: no check) is a plain numpy.ndarray."""
    if not _enabled:
        return reference
    if data is not None:
        d = data if type(data) is _ndarray else getattr(data, "data", None)   # a Tensor's array
        if type(d) is not _ndarray:
            return reference
    return _table.get(reference, reference)
