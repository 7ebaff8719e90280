"""The fused recurrent ops with pooled buffers and the Embedding -> RNN fusion. Replaces
``ops.recurrent.RNNLayer``, ``LSTMLayer`` and ``GRULayer`` (registered in ``fast/registry.py``).

* Pooled buffers. Fresh multi-megabyte arrays cost page faults on first touch (glibc maps and
  unmaps them around every training step: ~2500 faults, a fifth of the W3 LSTM step), so the
  gate, state and gradient buffers of a call go back to a pool once autograd frees the call's
  Function (``_Workspace.__del__``) and the next call reuses them. Only buffers that never leave
  the op are pooled (outputs are fresh arrays); with ``retain_graph`` the Function and its
  buffers stay alive, so a second backward is safe. Same arithmetic, so bit-identical results.
* Embedding fusion. When the first layer's input is the fresh output of an ``Embedding`` lookup
  (its ``grad_fn`` is ``EmbeddingLookup``) over fewer table rows than looked-up tokens, the op
  takes the table and the token ids instead: it projects the V table rows once and gathers,
  rather than projecting T * N rows, and backward sums dZ per token before the products. The
  gradients then sum the same terms in another order: equal to rounding, not bit for bit
  (tests/fast/test_fast_recurrent.py).
"""
import numpy as np

from ..ops import recurrent as _ref
from ..ops.embedding import EmbeddingLookup, scatter_rows


class _Pool:
    """Large buffers kept for reuse between calls of the recurrent ops. Bounded:
    ``max_per_shape`` arrays per (shape, dtype), ``max_bytes`` in all; ``clear()`` empties it."""

    max_per_shape = 8
    max_bytes = 256 << 20

    def __init__(self):
        self.free = {}
        self.nbytes = 0

    def get(self, shape, dtype):
        lst = self.free.get((shape, dtype))
        if lst:
            a = lst.pop()
            self.nbytes -= a.nbytes
            return a
        return np.empty(shape, dtype)

    def put(self, arrays):
        for a in arrays:
            key = (a.shape, a.dtype)
            lst = self.free.setdefault(key, [])
            if len(lst) < self.max_per_shape and self.nbytes + a.nbytes <= self.max_bytes:
                lst.append(a)
                self.nbytes += a.nbytes

    def clear(self):
        self.free.clear()
        self.nbytes = 0


POOL = _Pool()


def clear_workspace():
    """Free the buffers the recurrent ops keep for reuse."""
    POOL.clear()


class _Workspace:
    """The pooled buffers of one op call; they return to the pool when this object dies, i.e.
    when autograd frees the call's Function after backward (or at once if nothing was recorded)."""

    __slots__ = ("arrays",)

    def __init__(self):
        self.arrays = []

    def empty(self, shape, dtype):
        a = POOL.get(tuple(shape), np.dtype(dtype))
        self.arrays.append(a)
        return a

    def __del__(self):
        try:
            POOL.put(self.arrays)
        except Exception:                       # interpreter shutdown
            pass


def embedding_source(x):
    """(table, token ids, padding_idx) when x is the fresh output of an embedding lookup whose
    table has fewer rows than the batch has tokens (then the fusion pays); otherwise None."""
    fn = getattr(x, "grad_fn", None)
    if type(fn) is not EmbeddingLookup or not fn.__dict__.get("inputs") or fn.inputs[0] is None:
        return None
    idx, table = fn.__dict__.get("idx"), fn.inputs[0]
    if (idx is not None and idx.ndim == 2 and idx.shape == x.shape[:2]
            and 4 * table.shape[0] <= idx.size and type(table.data) is np.ndarray):
        return table, idx, fn.pad
    return None


def _embedding_fused(cls):
    """Give ``cls.apply`` the embedding fusion: an input that is the fresh output of a lookup is
    replaced by the lookup's table and token ids."""
    plain = cls.apply

    def apply(x, *args, **kwargs):
        src = embedding_source(x)
        if src is None:
            return plain(x, *args, **kwargs)
        table, idx, pad = src
        return plain(table, *args, tokens=idx, padding_idx=pad, **kwargs)

    apply.__doc__ = plain.__doc__
    cls.apply = staticmethod(apply)
    return cls


class _Fast:
    """Put before a reference layer op: pooled buffers, and the embedding fusion (module notes)."""

    def forward(self, x, *args, tokens=None, padding_idx=None, **kwargs):
        self.tokens, self.pad = tokens, padding_idx
        return super().forward(x, *args, **kwargs)

    def _buffers(self, xp):
        return _Workspace()

    def _project(self, ws, x, batch_first, w, b=None):
        """With token ids, x is the table (V, D) and the sequence is x[tokens]: project the V
        rows once, then gather the (T * N, G) projections."""
        if self.tokens is None:
            self.tok = None
            return super()._project(ws, x, batch_first, w, b)
        tok = self.tokens.T if batch_first else self.tokens
        T, N = tok.shape
        self.tok = tok = np.ascontiguousarray(tok).reshape(-1)
        self.x2 = x
        table = x @ w.T
        if b is not None:
            table += b
        A = ws.empty((T * N, w.shape[0]), x.dtype)
        return np.take(table, tok, axis=0, out=A, mode="clip"), T, N, x.shape[1]   # ids checked

    def _input_grads(self, dZ, w, nx, nwi, nb):
        if self.tok is None:
            return super()._input_grads(dZ, w, nx, nwi, nb)
        gx = gwi = gb = None
        if not (nx or nwi or nb):
            return gx, gwi, gb
        table = self.x2
        V = table.shape[0]
        if V <= 128:                             # small vocabulary: one one-hot product
            S = (np.arange(V)[:, None] == self.tok[None, :]).astype(dZ.dtype) @ dZ
        else:
            S = scatter_rows(self.tok, dZ, V)    # (V, G): dZ summed per token
        if nx:
            gx = S @ w
            if self.pad is not None:
                gx[self.pad] = 0                 # the padding row gets no gradient
        if nwi:
            gwi = S.T @ table
        if nb:
            gb = S.sum(axis=0)
        return gx, gwi, gb


@_embedding_fused
class FastRNNLayer(_Fast, _ref.RNNLayer):
    """``ops.recurrent.RNNLayer`` with pooled buffers and the embedding fusion."""


@_embedding_fused
class FastLSTMLayer(_Fast, _ref.LSTMLayer):
    """``ops.recurrent.LSTMLayer`` with pooled buffers and the embedding fusion."""


@_embedding_fused
class FastGRULayer(_Fast, _ref.GRULayer):
    """``ops.recurrent.GRULayer`` with pooled buffers and the embedding fusion."""
