"""Embedding lookup: rows of a weight matrix picked by integer indices, and the scatter-add back."""
from .. import backend
from ..autograd import Function


def scatter_rows(idx, g, num_rows):
    """Sum the rows of g (M, E) into a (num_rows, E) array at rows idx (M,), without np.add.at
    (slow). Few distinct ids: sort, then one reduction per run of equal ids; many: one bincount
    over (id, column) pairs. (np.add.reduceat, the obvious tool, measured slower than both.)"""
    xp = backend.array_namespace(g)
    m, e = g.shape
    out = xp.zeros((num_rows, e), dtype=g.dtype)
    if m == 0:
        return out
    idx = xp.asarray(idx)
    order = xp.argsort(idx, kind="stable")
    s = idx[order]
    starts = xp.flatnonzero(xp.concatenate((xp.ones(1, bool), s[1:] != s[:-1])))
    if len(starts) < 0.003 * m * e:             # cost model measured on the dev machine
        ends = xp.append(starts[1:], m)
        for v, a, b in zip(s[starts].tolist(), starts.tolist(), ends.tolist()):
            g[order[a:b]].sum(axis=0, out=out[v])               # small gathers, no big copy
        return out
    flat = (idx[:, None] * e + xp.arange(e)).ravel()
    out[...] = xp.bincount(flat, weights=g.reshape(-1), minlength=num_rows * e).reshape(num_rows, e)
    return out


class EmbeddingLookup(Function):
    """y = W[idx]: weight (V, E), idx integer array of any shape -> (*idx.shape, E).

    dL/dW[v] = sum of dL/dy over the positions where idx == v; the padding row gets none.
    """
    saves = (1,)          # the indices

    def forward(self, weight, idx, padding_idx=None):
        self.idx, self.v, self.pad = idx, weight.shape[0], padding_idx
        return backend.array_namespace(weight).take(weight, idx, axis=0)

    def backward(self, g):
        e = g.shape[-1]
        gw = scatter_rows(self.idx.reshape(-1), g.reshape(-1, e), self.v)
        if self.pad is not None:
            gw[self.pad] = 0                    # the padding vector stays fixed
        return gw, None
