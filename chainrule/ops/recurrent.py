"""Fused recurrent layers: one Function runs one direction of one layer over a whole sequence.

Why fused: an LSTM unrolled from small ops costs ~25 NumPy calls and a dozen graph nodes per time
step. Here ``forward`` does one matrix product for the input projections of all T steps, then per
step one product for all gates and ~8 in-place element-wise calls into preallocated buffers;
``backward`` (back-propagation through time) walks the steps in reverse with ~7 calls each, using
local derivative factors prepared during forward, and gets the weight gradients of all steps
from a few large products.

Layouts. ``x`` is (T, N, D), or (N, T, D) with ``batch_first``; the output has the same layout.
Inside, everything is time-major. States live in (T + 1, N, H) buffers ``Hs`` (and ``Cs``) that hold
the true recurrent state: slot 0 is the initial state of the forward direction and slot T that of
the reverse one, so step t reads slot t + rev and writes slot t + 1 - rev. The states every step
read are then one contiguous slice, and dL/dW_hh = sum_t dZ_t^T h_prev_t is one product.

Variable lengths (``lengths``: (N,) ints, 1 <= length <= T): step t of sequence n is real when
t < lengths[n]. On padded steps the state is carried unchanged (so the forward direction ends with
the state of the last real step, and the reverse direction starts from h0 at the last real step)
and the output is zero, as PyTorch's packed sequences give after ``pad_packed_sequence``.

Speed, measured on the 2-core development machine (W3, ``benchmarks/w3_lstm.py``):
- sigmoid(z) = 0.5 tanh(z / 2) + 0.5: the sigmoid gates' rows are halved once per call (exact, a
  power of two), so one tanh call covers all gates of a step;
- the gates are kept in the internal order (g, i, f, o): the sigmoid gates are contiguous for
  the forward, the gates driven by dL/dc contiguous for the backward; gradients are permuted back;
- an embedding lookup feeding the first layer is fused: the V table rows are projected instead of
  the T * N looked-up rows, and backward sums dZ per token first (``tokens=``);
- the in-loop products run on one BLAS thread (``_LoopBlas``): splitting such small products
  costs a synchronisation per step, and with other processes on the cores OpenBLAS' spinning
  threads made the loop ten times slower;
- products that only need finished steps (the backward factors in forward; dL/dW_hh, dL/dW_ih,
  dL/dx in backward) are computed per chunk of steps on a worker thread while the Python-bound
  loop goes on (``_ChunkWork``);
- large buffers are pooled (``_Pool``): fresh multi-megabyte arrays cost ~2500 page faults a step.
"""
import numpy as np

from ..autograd import Function

__all__ = ["RNNLayer", "LSTMLayer", "GRULayer", "check_lengths"]


def check_lengths(lengths, n, t, where):
    """Validate per-sequence lengths for a padded batch of n sequences of t steps; returns an int
    array (n,). Raise a clear error for empty sequences or lengths beyond the padded length."""
    if lengths is None:
        return None
    a = np.asarray(lengths.data if hasattr(lengths, "data") and not isinstance(lengths, np.ndarray)
                   else lengths)
    if a.dtype.kind not in "iu":
        if a.dtype.kind == "f" and a.size and np.all(a == np.round(a)):
            a = a.astype(np.int64)
        else:
            raise TypeError(f"{where}: lengths must be integers, got dtype {a.dtype}")
    if a.shape != (n,):
        raise ValueError(f"{where}: expected lengths of shape ({n},) (one per sequence), got {a.shape}")
    if n and a.min() < 1:
        k = int(np.argmin(a))
        raise ValueError(f"{where}: empty sequence: lengths[{k}] = {int(a[k])}; every sequence "
                         f"needs at least one step")
    if n and a.max() > t:
        k = int(np.argmax(a))
        raise ValueError(f"{where}: lengths[{k}] = {int(a[k])} is longer than the padded length "
                         f"{t} of the input")
    return a.astype(np.int64, copy=False)


def _masks(lengths, T, N):
    """(T, N, 1) bool 'step is real' (None without lengths), and per step the (N, 1) mask of
    padded rows, or None where every sequence is still running."""
    if lengths is None:
        return None, [None] * T
    valid = np.arange(T)[:, None] < lengths[None, :]
    offs = [None if v.all() else ~v[:, None] for v in valid]
    return valid[:, :, None], offs


def _needs(fn, n):
    """needs_input_grad padded to n entries (optional trailing inputs may be left out)."""
    nd = fn.needs_input_grad
    return tuple(nd) + (False,) * (n - len(nd))


def _steps(T, rev):
    return range(T - 1, -1, -1) if rev else range(T)


def _back_steps(T, rev):
    return range(T) if rev else range(T - 1, -1, -1)


def _out_is_copy(batch_first, lengths):
    """Whether the output is a fresh array (then the state buffer may be pooled) rather than a
    view of the states (time-major without lengths: no copy at all)."""
    return batch_first or lengths is not None


def _finish_output(Hs, T, rev, valid, batch_first):
    """The per-step outputs in the caller's layout, and the final state (both fresh arrays when
    ``_out_is_copy``; views of Hs otherwise)."""
    out = Hs[:T] if rev else Hs[1:]
    last = Hs[0] if rev else Hs[T]
    if not _out_is_copy(batch_first, valid):
        return out, last
    _, N, H = Hs.shape
    y = np.empty((N, T, H) if batch_first else (T, N, H), Hs.dtype)
    yt = y.transpose(1, 0, 2) if batch_first else y
    if valid is not None:
        np.multiply(out, valid, out=yt)         # padded steps output zero
    else:
        np.copyto(yt, out)
    return y, last.copy()


def _prep_dy(dy, valid, batch_first):
    dyt = dy.transpose(1, 0, 2) if batch_first else dy
    if valid is not None:
        dyt = dyt * valid                       # padded outputs are constants
    return dyt


def _input_rows(x, batch_first, ws):
    """x as contiguous time-major rows (T * N, D), plus (T, N, D)."""
    xt = x.transpose(1, 0, 2) if batch_first else x
    T, N, D = xt.shape
    if xt.flags.c_contiguous:
        return xt.reshape(T * N, D), T, N, D
    x2 = ws.empty((T * N, D), x.dtype)
    np.copyto(x2.reshape(T, N, D), xt)
    return x2, T, N, D


def _bias(b_ih, b_hh):
    if b_ih is None:
        return b_hh
    if b_hh is None:
        return b_ih
    return b_ih + b_hh


def _init_state(buf, slot, s, dtype):
    if s is None:
        buf[slot] = 0
    else:
        buf[slot] = s


class _Pool:
    """Large buffers kept for reuse between calls of the recurrent ops.

    Fresh multi-megabyte arrays cost page faults on first touch (glibc maps and unmaps them
    around every training step: measured ~2500 faults, a fifth of the LSTM step's CPU time), so
    the gate, state and gradient buffers of a call go back here once the call's graph is freed.
    Only buffers that never leave the op are pooled (outputs are fresh arrays). Bounded:
    ``max_per_shape`` arrays per (shape, dtype), ``max_bytes`` in all; ``clear()`` empties it.
    """

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


_POOL = _Pool()


def clear_workspace():
    """Free the buffers the recurrent ops keep for reuse."""
    _POOL.clear()


class _Workspace:
    """The pooled buffers of one op call; they return to the pool when this object dies, i.e.
    when autograd frees the call's Function after backward (or at once if nothing was recorded).
    With retain_graph the Function, and so its buffers, stay alive: a second backward is safe."""

    __slots__ = ("arrays",)

    def __init__(self):
        self.arrays = []

    def empty(self, shape, dtype):
        a = _POOL.get(tuple(shape), np.dtype(dtype))
        self.arrays.append(a)
        return a

    def __del__(self):
        try:
            _POOL.put(self.arrays)
        except Exception:                       # interpreter shutdown
            pass


class _LoopBlas:
    """Run the per-step matrix products of a recurrence on one BLAS thread.

    The in-loop products are small (e.g. (32, 128) x (128, 512)) and strictly sequential: splitting
    each across threads costs a synchronisation per step (measured slower even at best), and on a
    busy machine (other processes on the cores) OpenBLAS' spinning threads make the loop an order
    of magnitude slower. The second core does the chunked products instead (``_ChunkWork``).
    Talks to the OpenBLAS that NumPy loaded, through ctypes; does nothing where none is found.
    ``loop_blas_threads`` (module attribute) sets the count used inside loops (None: leave the
    library alone). The count is global to the process while a loop runs.
    """

    def __init__(self):
        import threading
        self.get = self.set = None
        self.searched = False
        self.depth = 0                           # nested / concurrent users: the outermost restores
        self.prev = None
        self.lock = threading.Lock()

    def _find(self):
        from ..backend import blas_controls
        self.searched = True
        self.get, self.set = blas_controls()

    def __enter__(self):
        n = loop_blas_threads
        with self.lock:
            self.depth += 1
            if self.depth == 1 and n is not None:
                if not self.searched:
                    self._find()
                if self.get is not None:
                    prev = self.get()
                    if prev != n:
                        self.set(n)
                        self.prev = prev
        return self

    def __exit__(self, *exc):
        with self.lock:
            self.depth -= 1
            if self.depth == 0 and self.prev is not None:
                self.set(self.prev)
                self.prev = None
        return False


loop_blas_threads = 1
_loop_blas = _LoopBlas()


def _project(fn, ws, x, tokens, batch_first, w, b=None):
    """Input projections of all steps plus bias, (T * N, G) = rows of x times w^T (+ b), w (G, D),
    into a workspace buffer.

    With ``tokens`` (token ids (T, N) or (N, T) with batch_first), x is an embedding table (V, D)
    and the sequence is x[tokens]: project the V table rows once and gather, instead of
    projecting T * N rows (backward likewise sums dZ per token first)."""
    if tokens is None:
        x2, T, N, D = _input_rows(x, batch_first, ws)
        fn.x2, fn.tok = x2, None
        A = np.matmul(x2, w.T, out=ws.empty((T * N, w.shape[0]), x.dtype))
        if b is not None:
            A += b
        return A, T, N, D
    tok = tokens.T if batch_first else tokens
    T, N = tok.shape
    tok = np.ascontiguousarray(tok).reshape(-1)
    fn.x2, fn.tok = x, tok
    table = x @ w.T
    if b is not None:
        table += b
    A = ws.empty((T * N, w.shape[0]), x.dtype)
    return np.take(table, tok, axis=0, out=A, mode="clip"), T, N, x.shape[1]   # ids checked


# -- products over the finished steps of backward, on a worker thread -----------------------------
overlap_backward = True     # chunked products of backward on the worker thread
overlap_forward = True      # forward's backward-factors on the worker, ready by backward
_chunk_steps = 16
_EXECUTOR = []


def _executor():
    if not _EXECUTOR:
        from concurrent.futures import ThreadPoolExecutor
        _EXECUTOR.append(ThreadPoolExecutor(max_workers=1, thread_name_prefix="chainrule-bptt"))
    return _EXECUTOR[0]


class _ChunkWork:
    """The large products of backward that only need finished steps: dL/dW_hh = sum_t dz_t^T
    h_prev_t, and the input side (dL/dx rows, dL/dW_ih; or, for token inputs, dz summed per
    token). The loop reports each finished step; every ``_chunk_steps`` steps the rows of the
    finished chunk go to a worker thread, whose BLAS calls run while the (Python-bound) loop
    continues on the other core. ``finish()`` does the rest and adds up the parts.

    ``sums``: name -> f(rows) -> array, summed over chunks; ``fills``: f(rows) writing rows."""

    def __init__(self, T, N, rev, sums, fills):
        self.T, self.N, self.rev = T, N, rev
        self.sums, self.fills = sums, fills
        self.done = self.sent = 0
        self.futures = []
        self.parallel = bool(overlap_backward and T >= 2 * _chunk_steps and (sums or fills))

    def _rows(self, lo, hi):                     # rows of the steps finished as lo .. hi - 1
        N = self.N
        if self.rev:
            return slice(lo * N, hi * N)
        return slice((self.T - hi) * N, (self.T - lo) * N)

    def _work(self, rows):
        for f in self.fills:
            f(rows)
        return {k: f(rows) for k, f in self.sums.items()}

    def step_done(self):
        self.done = done = self.done + 1
        # chunks shrink towards the end (16, ..., 8, 4, 2, 1 steps), so that the worker finishes
        # soon after the loop; the very last steps stay for the calling thread, free by then
        if (self.parallel and done < self.T
                and done - self.sent >= min(_chunk_steps, self.T - done)):
            self.futures.append(_executor().submit(self._work, self._rows(self.sent, done)))
            self.sent = done

    def finish(self):
        parts = [self._work(self._rows(self.sent, self.T))] if self.sent < self.T else []
        parts += [f.result() for f in self.futures]
        out = {}
        for k in self.sums:
            total = parts[0][k]
            for p in parts[1:]:
                total = total + p[k]
            out[k] = total
        return out


def _deferred(fill, rows, ws):
    """Run ``fill`` over all rows on the worker thread, to overlap with whatever the caller does
    between forward and backward (the layers above, the loss); returns the function backward
    calls to wait for it. The task keeps the workspace alive, so its buffers cannot return to the
    pool (and be handed to another call) while the worker still writes them."""
    if not overlap_forward:
        fill(slice(0, rows))
        return _noop
    future = _executor().submit(lambda: fill(slice(0, rows)) or ws)
    return future.result


def _noop():
    pass


def _input_side(fn, dZ, w, nx, nwi, nb, sums, fills):
    """Register the products for the gradients of the layer input (or embedding table), of w
    (G, D) and the bias, from dZ = dL/d(pre-activation) (T * N, G); ``_input_grads`` finishes."""
    T, N, D, H = fn.dims
    state = {}
    if fn.tok is not None:
        V = fn.x2.shape[0]
        if (nx or nwi or nb) and V <= 128:        # small vocabulary: a one-hot product per chunk
            oh = (np.arange(V)[:, None] == fn.tok[None, :]).astype(dZ.dtype)
            sums["S"] = lambda r: oh[:, r] @ dZ[r]
        return state
    if nwi:
        x2 = fn.x2
        sums["gwi"] = lambda r: dZ[r].T @ x2[r]     # all steps' weight gradients, by chunks
    if nb:
        sums["gb"] = lambda r: dZ[r].sum(axis=0)
    if nx:
        gx = state["gx"] = np.empty((T * N, D), dZ.dtype)
        fills.append(lambda r: np.matmul(dZ[r], w, out=gx[r]))
    return state


def _input_grads(fn, dZ, w, nx, nwi, nb, done, state, padding_idx=None):
    """(dL/dx or dL/d table, dL/dw, dL/db) from the finished products (see ``_input_side``)."""
    T, N, D, H = fn.dims
    gx = gwi = gb = None
    if fn.tok is not None:
        if not (nx or nwi or nb):
            return None, None, None
        table = fn.x2
        S = done.get("S")
        if S is None:
            from .embedding import scatter_rows
            S = scatter_rows(fn.tok, dZ, table.shape[0])   # (V, G): dZ summed per token
        if nx:
            gx = S @ w
            if padding_idx is not None:
                gx[padding_idx] = 0
        if nwi:
            gwi = S.T @ table
        if nb:
            gb = S.sum(axis=0)
        return gx, gwi, gb
    if nx:
        gx = state["gx"].reshape(T, N, D)
        if fn.bf:
            gx = gx.transpose(1, 0, 2)
    return gx, done.get("gwi"), done.get("gb")


# ------------------------------------------------------------------------------------------------
# Elman RNN: h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh), act = tanh or relu
# ------------------------------------------------------------------------------------------------
class RNNLayer(Function):
    """One direction of one Elman RNN layer over the whole sequence.

    Inputs x (T, N, D) [or (N, T, D)], h0 (N, H) or None, w_ih (H, D), w_hh (H, H), b_ih, b_hh (H,)
    or None. Returns (y (T, N, H) [or (N, T, H)], h_n (N, H)).
    """

    def forward(self, x, h0, w_ih, w_hh, b_ih=None, b_hh=None, *, nonlinearity="tanh",
                reverse=False, batch_first=False, lengths=None, tokens=None, padding_idx=None):
        ws = _Workspace()
        A, T, N, D = _project(self, ws, x, tokens, batch_first, w_ih, _bias(b_ih, b_hh))
        H = w_hh.shape[0]                        # (all steps' input projections at once)
        dt = x.dtype
        rev = 1 if reverse else 0
        relu = nonlinearity == "relu"
        A = A.reshape(T, N, H)
        Hs = (ws.empty if _out_is_copy(batch_first, lengths) else np.empty)((T + 1, N, H), dt)
        _init_state(Hs, T if rev else 0, h0, dt)
        whT = w_hh.T
        gh = np.empty((N, H), dt)
        valid, offs = _masks(lengths, T, N)
        with _loop_blas:
            for t in _steps(T, rev):
                a = A[t]
                hp, hn = Hs[t + rev], Hs[t + 1 - rev]
                np.matmul(hp, whT, out=gh)
                a += gh
                if relu:
                    np.maximum(a, 0, out=hn)
                else:
                    np.tanh(a, out=hn)
                if offs[t] is not None:
                    np.copyto(hn, hp, where=offs[t])
        if any(self.needs_input_grad):
            self.Hs, self.w_ih, self.w_hh, self.pad = Hs, w_ih, w_hh, padding_idx
            self.dims, self.rev, self.relu, self.bf = (T, N, D, H), rev, relu, batch_first
            self.valid, self.offs, self.ws = valid, offs, ws
        return _finish_output(Hs, T, rev, valid, batch_first)

    def backward(self, dy, dhn):
        T, N, D, H = self.dims
        rev, Hs = self.rev, self.Hs
        dt = Hs.dtype
        Y = Hs[1 - rev:T + 1 - rev]
        K = self.ws.empty((T, N, H), dt)
        if self.relu:                            # d relu(a)/da = [a > 0] = sign(y), as y >= 0
            np.sign(Y, out=K)
        else:                                    # d tanh(a)/da = 1 - y^2
            np.square(Y, out=K)
            np.subtract(1, K, out=K)
        if self.valid is not None:
            K *= self.valid
        dyt = _prep_dy(dy, self.valid, self.bf)
        dA = self.ws.empty((T, N, H), dt)
        dh_c = np.array(dhn, dtype=dt)
        dh = np.empty((N, H), dt)
        wh, offs = self.w_hh, self.offs
        n = _needs(self, 6)
        dZ = dA.reshape(T * N, H)
        sums, fills = {}, []
        if n[3]:
            Hp = Hs[rev:T + rev].reshape(T * N, H)
            sums["gwh"] = lambda r: dZ[r].T @ Hp[r]
        state = _input_side(self, dZ, self.w_ih, n[0], n[2], n[4] or n[5], sums, fills)
        work = _ChunkWork(T, N, rev, sums, fills)
        with _loop_blas:
            for t in _back_steps(T, rev):
                np.add(dh_c, dyt[t], out=dh)
                np.multiply(dh, K[t], out=dA[t])
                np.matmul(dA[t], wh, out=dh_c)       # dL/dh_prev = dL/da W_hh
                if offs[t] is not None:
                    np.copyto(dh_c, dh, where=offs[t])   # padded step: the state passed through
                work.step_done()
            done = work.finish()
        gx, gwi, gb = _input_grads(self, dZ, self.w_ih, n[0], n[2], n[4] or n[5], done, state,
                                   self.pad)
        return (gx, dh_c if n[1] else None, gwi, done.get("gwh"), gb if n[4] else None,
                gb if n[5] else None)


# ------------------------------------------------------------------------------------------------
# LSTM (Hochreiter & Schmidhuber 1997; forget gate Gers et al. 2000), with the variants
#   peephole (Gers & Schmidhuber 2000): i, f look at c_{t-1}, o at c_t through diagonal weights
#   coupled: no input gate, c_t = f c_{t-1} + (1 - f) g
# ------------------------------------------------------------------------------------------------
_PERMS = {}


def _lstm_perm(H, coupled):
    """Rows of PyTorch's gate order (i, f, g, o; coupled: f, g, o) in the internal order
    (g, i, f, o; coupled: g, f, o): the sigmoid gates contiguous after g for the forward tanh,
    and the gates driven by dc (g, i, f) contiguous before o for the backward."""
    key = (H, coupled)
    p = _PERMS.get(key)
    if p is None:
        blocks = (1, 0, 2) if coupled else (2, 0, 1, 3)
        p = _PERMS[key] = np.concatenate([np.arange(k * H, (k + 1) * H) for k in blocks])
    return p


class LSTMLayer(Function):
    """One direction of one LSTM layer over the whole sequence.

    Inputs x (T, N, D) [or (N, T, D)], h0, c0 (N, H) or None, w_ih (4H, D), w_hh (4H, H),
    b_ih, b_hh (4H,) or None (gate order i, f, g, o; coupled: 3H rows f, g, o), w_peep (3, H)
    (rows i, f, o; coupled: (2, H), rows f, o) or None. With ``tokens``, x is an embedding table
    (V, D) and the input sequence is x[tokens] (see ``_project``).
    Returns (y (T, N, H) [or (N, T, H)], h_n (N, H), c_n (N, H)).

    While the loop runs, the local derivative factors backward needs (K: dz/d(pre-activation) per
    gate, Kc = dh_t/dc_t) are computed for each finished chunk of steps at once, on the worker
    thread (see ``_ChunkWork``).
    """

    def forward(self, x, h0, c0, w_ih, w_hh, b_ih=None, b_hh=None, w_peep=None, *,
                reverse=False, batch_first=False, lengths=None, coupled=False, tokens=None,
                padding_idx=None):
        H = w_hh.shape[1]
        ng = 3 if coupled else 4
        nd = ng - 1                              # slot of o; slots before it are driven by dc
        G = ng * H
        dt = x.dtype
        rev = 1 if reverse else 0
        rec = any(self.needs_input_grad)
        perm = _lstm_perm(H, coupled)
        sc = np.full((G, 1), 0.5, dtype=dt)      # halve the sigmoid gates' rows (exact)
        sc[:H] = 1
        wh = w_hh[perm]
        whs = np.ascontiguousarray((wh * sc).T)  # (H, G)
        wi = w_ih[perm]
        ws = _Workspace()
        b = _bias(b_ih, b_hh)
        A, T, N, D = _project(self, ws, x, tokens, batch_first, wi * sc,
                              None if b is None else b[perm] * sc[:, 0])   # (T * N, G), all steps
        A = A.reshape(T, N, G)
        A4 = A.reshape(T, N, ng, H)              # becomes the gate activations, step by step
        Hs = (ws.empty if _out_is_copy(batch_first, lengths) else np.empty)((T + 1, N, H), dt)
        Cs = ws.empty((T + 1, N, H), dt)
        s0 = T if rev else 0
        _init_state(Hs, s0, h0, dt)
        _init_state(Cs, s0, c0, dt)
        TC = ws.empty((T, N, H), dt)             # tanh(c_t)
        gh = np.empty((N, G), dt)
        tmp = np.empty((N, H), dt)
        fills = []
        if rec:
            K4 = ws.empty((T, N, ng, H), dt)
            Kc = ws.empty((T, N, H), dt)
            fills.append(_lstm_factors(A4, K4, Kc, TC, Cs, ws.empty((T, N, H), dt), N, rev,
                                       coupled))
        peep = w_peep is not None
        if peep:
            ps = w_peep * np.asarray(0.5, dt)
            p_in, p_o = ps[:-1], ps[-1]
        valid, offs = _masks(lengths, T, N)
        with _loop_blas:
            for t in _steps(T, rev):
                a = A[t]
                a4 = A4[t]
                hp, cp = Hs[t + rev], Cs[t + rev]
                hn, cn = Hs[t + 1 - rev], Cs[t + 1 - rev]
                np.matmul(hp, whs, out=gh)       # all gates in one product
                a += gh
                if peep:                         # i, f look at c_{t-1}
                    a4[:, 1:nd] += p_in * cp[:, None, :]
                    s = a[:, :-H]
                    np.tanh(s, out=s)
                    s = a[:, H:-H]
                else:
                    np.tanh(a, out=a)            # one tanh for all gates
                    s = a[:, H:]
                s *= 0.5
                s += 0.5                         # sigmoid(z) = 0.5 tanh(z / 2) + 0.5
                g, f, o = a4[:, 0], a4[:, nd - 1], a4[:, nd]
                if coupled:                      # c = f c_prev + (1 - f) g = g + f (c_prev - g)
                    np.subtract(cp, g, out=tmp)
                    tmp *= f
                    np.add(g, tmp, out=cn)
                else:                            # c = f c_prev + i g
                    np.multiply(f, cp, out=cn)
                    np.multiply(a4[:, 1], g, out=tmp)
                    cn += tmp
                if peep:                         # o looks at c_t
                    np.multiply(cn, p_o, out=tmp)
                    o += tmp
                    np.tanh(o, out=o)
                    o *= 0.5
                    o += 0.5
                tc = TC[t]
                np.tanh(cn, out=tc)
                np.multiply(o, tc, out=hn)       # h = o tanh(c)
                if offs[t] is not None:
                    np.copyto(hn, hp, where=offs[t])
                    np.copyto(cn, cp, where=offs[t])
        if rec:
            self.factors = _deferred(fills[0], T * N, ws)
            self.A4, self.K4, self.Kc, self.Hs, self.Cs = A4, K4, Kc, Hs, Cs
            self.wi, self.wh, self.perm, self.w_peep = wi, wh, perm, w_peep
            self.dims, self.rev, self.bf, self.coupled = (T, N, D, H), rev, batch_first, coupled
            self.valid, self.offs, self.pad, self.ws = valid, offs, padding_idx, ws
        y, h_n = _finish_output(Hs, T, rev, valid, batch_first)
        return y, h_n, (Cs[0] if rev else Cs[T]).copy()

    def backward(self, dy, dhn, dcn):
        self.factors()
        T, N, D, H = self.dims
        rev, K4, Kc = self.rev, self.K4, self.Kc
        ng = K4.shape[2]
        nd = ng - 1
        dt = K4.dtype
        F = self.A4[:, :, nd - 1]                # dc/dc_prev = f
        if self.valid is not None:               # padded steps: no gate gradient, state passes
            K4 = K4 * self.valid[..., None]
            Kc = Kc * self.valid
            F = np.where(self.valid, F, 1)
        wh = self.wh
        peep = self.w_peep is not None
        if peep:
            p_in, p_o = self.w_peep[:-1], self.w_peep[-1]
        dyt = _prep_dy(dy, self.valid, self.bf)
        dG = self.ws.empty((T, N, ng * H), dt)
        dG4 = dG.reshape(T, N, ng, H)
        dh_c = np.array(dhn, dtype=dt)
        dc_c = np.array(dcn, dtype=dt)
        dh = np.empty((N, H), dt)
        dc = np.empty((N, H), dt)
        tmp = np.empty((N, H), dt)
        offs = self.offs
        needs = _needs(self, 8)
        dZ = dG.reshape(T * N, ng * H)
        sums, fills = {}, []
        if needs[4]:
            Hp = self.Hs[rev:T + rev].reshape(T * N, H)
            sums["gwh"] = lambda r: dZ[r].T @ Hp[r]
        state = _input_side(self, dZ, self.wi, needs[0], needs[3], needs[5] or needs[6], sums,
                            fills)
        work = _ChunkWork(T, N, rev, sums, fills)
        with _loop_blas:
            for t in _back_steps(T, rev):
                np.add(dh_c, dyt[t], out=dh)
                np.multiply(dh, Kc[t], out=dc)
                dc += dc_c                       # dL/dc_t
                d4 = dG4[t]
                k4 = K4[t]
                if peep:
                    np.multiply(dh, k4[:, nd], out=d4[:, nd])
                    np.multiply(d4[:, nd], p_o, out=tmp)
                    dc += tmp                    # o looked at c_t
                np.multiply(dc[:, None, :], k4[:, :nd], out=d4[:, :nd])
                if not peep:
                    np.multiply(dh, k4[:, nd], out=d4[:, nd])
                np.multiply(dc, F[t], out=dc_c)  # dL/dc_{t-1}
                if peep:                         # i, f looked at c_prev
                    for k in range(1, nd):
                        np.multiply(d4[:, k], p_in[k - 1], out=tmp)
                        dc_c += tmp
                np.matmul(dG[t], wh, out=dh_c)   # dL/dh_prev = dL/dz W_hh
                if offs[t] is not None:
                    np.copyto(dh_c, dh, where=offs[t])
                work.step_done()
            done = work.finish()
        gx, gwi, gb = _input_grads(self, dZ, self.wi, needs[0], needs[3], needs[5] or needs[6],
                                   done, state, self.pad)
        perm = self.perm                         # back from the internal gate order
        gwi = None if gwi is None else _unpermute(gwi, perm)
        gwh = None if "gwh" not in done else _unpermute(done["gwh"], perm)
        gb = None if gb is None else _unpermute(gb, perm)
        gp = None
        if peep and needs[7]:
            Cprev, Cnew = self.Cs[rev:T + rev], self.Cs[1 - rev:T + 1 - rev]
            gp = np.empty_like(self.w_peep)
            for k in range(1, nd):
                gp[k - 1] = np.einsum("tnh,tnh->h", dG4[:, :, k], Cprev)
            gp[-1] = np.einsum("tnh,tnh->h", dG4[:, :, nd], Cnew)
        return (gx, dh_c if needs[1] else None, dc_c if needs[2] else None, gwi, gwh,
                gb if needs[5] else None, gb if needs[6] else None, gp)


def _lstm_factors(A4, K4, Kc, TC, Cs, scratch, N, rev, coupled):
    """A fill for ``_ChunkWork``: the backward factors of a chunk of finished forward steps.

    Slots (internal order g, i, f, o; coupled g, f, o): K = [dc/dg tanh'(g), dc/di sigmoid'(i),
    dc/df sigmoid'(f), dh/do sigmoid'(o)] = [i (1 - g^2), g i (1 - i), c_prev f (1 - f),
    tanh(c) o (1 - o)] (coupled: [(1 - f)(1 - g^2), (c_prev - g) f (1 - f), ...]), and
    Kc = dh/dc = o (1 - tanh^2 c)."""
    nd = A4.shape[2] - 1

    def fill(rows):
        a = slice(rows.start // N, rows.stop // N)
        A, K, tc, kc = A4[a], K4[a], TC[a], Kc[a]
        cprev = Cs[a.start + rev:a.stop + rev]
        np.subtract(1, A, out=K)
        K *= A                                   # s (1 - s) in the sigmoid slots
        g, kg = A[:, :, 0], K[:, :, 0]
        np.square(g, out=kg)
        np.subtract(1, kg, out=kg)               # 1 - g^2
        if coupled:
            tmp = scratch[a]
            np.subtract(1, A[:, :, 1], out=tmp)
            kg *= tmp                            # dc/dg = 1 - f
            np.subtract(cprev, g, out=tmp)
            K[:, :, 1] *= tmp                    # dc/df = c_prev - g
        else:
            kg *= A[:, :, 1]                     # dc/dg = i
            K[:, :, 1] *= g                      # dc/di = g
            K[:, :, 2] *= cprev                  # dc/df = c_prev
        K[:, :, nd] *= tc                        # dh/do = tanh(c)
        np.square(tc, out=kc)
        np.subtract(1, kc, out=kc)
        kc *= A[:, :, nd]                        # dh/dc = o (1 - tanh^2 c)

    return fill


def _gru_factors(A3, K2, Kr, Hs, G, scratch, N, rev, cho):
    """A fill for ``_ChunkWork``: the GRU's backward factors for a chunk of finished steps.
    K2 = [dh'/dz sigmoid'(z), dh'/dn tanh'(n)] = [z (1 - z)(h_prev - n), (1 - z)(1 - n^2)];
    Kr = r (1 - r) times d(pre_n)/dr: (W_hn h + b_hn) in PyTorch's form (G = the stored hidden
    products, slot n), or with Cho's, the factor h_prev of d(r * h)/dr (G = r * h, unused)."""

    def fill(rows):
        a = slice(rows.start // N, rows.stop // N)
        r, z, n = A3[a, :, 0], A3[a, :, 1], A3[a, :, 2]
        hprev = Hs[a.start + rev:a.stop + rev]
        kz, kn, kr, tmp = K2[a, :, 0], K2[a, :, 1], Kr[a], scratch[a]
        np.subtract(1, z, out=kz)
        np.square(n, out=kn)
        np.subtract(1, kn, out=kn)
        kn *= kz                                 # (1 - z)(1 - n^2)
        kz *= z
        np.subtract(hprev, n, out=tmp)
        kz *= tmp                                # z (1 - z)(h_prev - n)
        np.subtract(1, r, out=kr)
        kr *= r
        kr *= hprev if cho else G[a, :, 2]

    return fill


def _unpermute(a, perm):
    out = np.empty_like(a)
    out[perm] = a
    return out


# ------------------------------------------------------------------------------------------------
# GRU (Cho et al. 2014). PyTorch's form:  n = tanh(W_in x + b_in + r * (W_hn h + b_hn));
# the original ('cho'):                   n = tanh(W_in x + b_in + W_hn (r * h) + b_hn).
# Both: r = sigmoid(W_ir x + b_ir + W_hr h + b_hr), z likewise, h' = (1 - z) n + z h.
# ------------------------------------------------------------------------------------------------
class GRULayer(Function):
    """One direction of one GRU layer over the whole sequence.

    Inputs x (T, N, D) [or (N, T, D)], h0 (N, H) or None, w_ih (3H, D), w_hh (3H, H), b_ih, b_hh
    (3H,) or None, gate order r, z, n. Returns (y (T, N, H) [or (N, T, H)], h_n (N, H)).
    """

    def forward(self, x, h0, w_ih, w_hh, b_ih=None, b_hh=None, *, variant="pytorch",
                reverse=False, batch_first=False, lengths=None, tokens=None, padding_idx=None):
        H = w_hh.shape[1]
        dt = x.dtype
        rev = 1 if reverse else 0
        cho = variant == "cho"
        sc = np.full((3 * H, 1), 0.5, dtype=dt)  # halve r and z rows: sigmoid through tanh
        sc[2 * H:] = 1
        bx = None                                # the biases that simply add to the pre-activation
        if b_ih is not None:
            bx = b_ih.copy()
        if b_hh is not None:
            hb = b_hh.copy()
            if not cho:
                hb[2 * H:] = 0                   # b_hn sits inside r * (.) in PyTorch's form
            bx = hb if bx is None else bx + hb
        ws = _Workspace()
        A, T, N, D = _project(self, ws, x, tokens, batch_first, w_ih * sc,
                              None if bx is None else bx * sc[:, 0])         # (T * N, 3H)
        A = A.reshape(T, N, 3 * H)
        A3 = A.reshape(T, N, 3, H)
        Hs = (ws.empty if _out_is_copy(batch_first, lengths) else np.empty)((T + 1, N, H), dt)
        _init_state(Hs, T if rev else 0, h0, dt)
        tmp = np.empty((N, H), dt)
        valid, offs = _masks(lengths, T, N)
        H2 = 2 * H
        if cho:
            w_rz = np.ascontiguousarray((w_hh[:H2] * 0.5).T)        # (H, 2H)
            w_n = w_hh[H2:].T
            gh = np.empty((N, H2), dt)
            RH = ws.empty((T, N, H), dt)         # r * h_prev, the input of W_hn
        else:
            whs = np.ascontiguousarray((w_hh * sc).T)               # (H, 3H)
            GH = ws.empty((T, N, 3 * H), dt)     # W_hh h_prev (+ b_hn in the n part)
            b_hn = None if b_hh is None else b_hh[H2:]
        rec = any(self.needs_input_grad)
        fills = []
        if rec:
            K2 = ws.empty((T, N, 2, H), dt)
            Kr = ws.empty((T, N, H), dt)
            fills.append(_gru_factors(A3, K2, Kr, Hs, RH if cho else GH.reshape(T, N, 3, H),
                                      ws.empty((T, N, H), dt), N, rev, cho))
        with _loop_blas:
            for t in _steps(T, rev):
                a = A[t]
                hp, hn = Hs[t + rev], Hs[t + 1 - rev]
                rz = a[:, :H2]
                r, z, n = A3[t, :, 0], A3[t, :, 1], A3[t, :, 2]
                if cho:
                    np.matmul(hp, w_rz, out=gh)
                    rz += gh
                else:
                    g = GH[t]
                    np.matmul(hp, whs, out=g)        # all three gates' hidden products at once
                    rz += g[:, :H2]
                np.tanh(rz, out=rz)
                rz *= 0.5
                rz += 0.5
                if cho:
                    rh = RH[t]
                    np.multiply(r, hp, out=rh)
                    np.matmul(rh, w_n, out=tmp)
                else:
                    ghn = g[:, H2:]
                    if b_hn is not None:
                        ghn += b_hn
                    np.multiply(r, ghn, out=tmp)
                n += tmp
                np.tanh(n, out=n)
                np.subtract(hp, n, out=tmp)          # h' = n + z (h - n)
                tmp *= z
                np.add(n, tmp, out=hn)
                if offs[t] is not None:
                    np.copyto(hn, hp, where=offs[t])
        if rec:
            self.factors = _deferred(fills[0], T * N, ws)
            self.A3, self.Hs, self.w_ih, self.w_hh = A3, Hs, w_ih, w_hh
            self.dims, self.rev, self.bf, self.cho = (T, N, D, H), rev, batch_first, cho
            self.valid, self.offs, self.pad, self.ws = valid, offs, padding_idx, ws
            self.K2, self.Kr = K2, Kr
            if cho:
                self.RH = RH
        return _finish_output(Hs, T, rev, valid, batch_first)

    def backward(self, dy, dhn):
        self.factors()
        T, N, D, H = self.dims
        rev, A3, cho = self.rev, self.A3, self.cho
        dt = A3.dtype
        r, z = A3[:, :, 0], A3[:, :, 1]
        Hprev = self.Hs[rev:T + rev]
        K2, Kr = self.K2, self.Kr                # factors prepared during forward
        Z, R = z, r
        if self.valid is not None:               # padded steps: z = 1 passes the state through
            K2 = K2 * self.valid[..., None]
            Kr = Kr * self.valid
            Z = np.where(self.valid, z, 1)
        dyt = _prep_dy(dy, self.valid, self.bf)
        dh_c = np.array(dhn, dtype=dt)
        dh = np.empty((N, H), dt)
        tmp = np.empty((N, H), dt)
        H2 = 2 * H
        needs = _needs(self, 6)
        hp2 = Hprev.reshape(T * N, H)
        sums, fills = {}, []
        if cho:
            P = self.ws.empty((T, N, 3, H), dt)  # dL/d pre-activation of r, z, n
            P2 = P.reshape(T, N, 3 * H)
            dX = P2.reshape(T * N, 3 * H)
            w_rz, w_n = self.w_hh[:H2], self.w_hh[H2:]
            drh = np.empty((N, H), dt)
            if needs[3]:
                rh2 = self.RH.reshape(T * N, H)
                sums["gwh_rz"] = lambda r: dX[r, :H2].T @ hp2[r]
                sums["gwh_n"] = lambda r: dX[r, H2:].T @ rh2[r]
        else:
            # slots: [n on the hidden side (= dpre_n * r), r, z, n on the input side (= dpre_n)];
            # [0:3] pairs with W_hh rows (n, r, z), [1:4] with W_ih rows (r, z, n)
            P = self.ws.empty((T, N, 4, H), dt)
            P2 = P.reshape(T, N, 4 * H)
            Pf = P2.reshape(T * N, 4 * H)
            dX = Pf[:, H:]
            w_nrz = np.concatenate([self.w_hh[H2:], self.w_hh[:H2]])
            if needs[3]:
                sums["gwh"] = lambda r: Pf[r, :3 * H].T @ hp2[r]      # rows n, r, z
            if needs[5]:
                sums["gbh"] = lambda r: Pf[r, :3 * H].sum(axis=0)
        nb = needs[4] or (cho and needs[5])
        state = _input_side(self, dX, self.w_ih, needs[0], needs[2], nb, sums, fills)
        work = _ChunkWork(T, N, rev, sums, fills)
        with _loop_blas:
            for t in _back_steps(T, rev):
                np.add(dh_c, dyt[t], out=dh)
                p = P[t]
                if cho:
                    np.multiply(dh[:, None, :], K2[t], out=p[:, 1:])
                    np.matmul(p[:, 2], w_n, out=drh)            # dL/d(r * h)
                    np.multiply(drh, Kr[t], out=p[:, 0])
                    np.matmul(P2[t][:, :H2], w_rz, out=dh_c)
                    np.multiply(drh, R[t], out=tmp)
                    dh_c += tmp
                else:
                    np.multiply(dh[:, None, :], K2[t], out=p[:, 2:])
                    np.multiply(p[:, 3], Kr[t], out=p[:, 1])
                    np.multiply(p[:, 3], R[t], out=p[:, 0])
                    np.matmul(P2[t][:, :3 * H], w_nrz, out=dh_c)
                np.multiply(dh, Z[t], out=tmp)
                dh_c += tmp
                work.step_done()
            done = work.finish()
        gx, gwi, gbi = _input_grads(self, dX, self.w_ih, needs[0], needs[2], nb, done, state,
                                    self.pad)
        gwh = gbh = None
        if cho:
            if needs[3]:
                gwh = np.concatenate([done["gwh_rz"], done["gwh_n"]])
            if needs[5]:
                gbh = gbi                        # every hidden bias adds to a pre-activation
        else:
            if needs[3]:
                g = done["gwh"]
                gwh = np.concatenate([g[H:], g[:H]])
            if needs[5]:
                sb = done["gbh"]
                gbh = np.concatenate([sb[H:], sb[:H]])
        return (gx, dh_c if needs[1] else None, gwi, gwh, gbi if needs[4] else None, gbh)
