"""Fused recurrent layers: one Function runs one direction of one layer over a whole sequence.

Why fused: an LSTM unrolled from small ops costs ~25 NumPy calls and a dozen graph nodes per time
step. Here ``forward`` does one matrix product for the input projections of all T steps, then per
step one product for all gates and a few in-place element-wise calls into preallocated buffers;
``backward`` (back-propagation through time) first computes, for all steps at once, the local
derivative factors that do not depend on the recurrence, then walks the steps in reverse with
about seven calls each, and finally gets the weight gradients of all steps from one large product.

Layouts. ``x`` is (T, N, D), or (N, T, D) with ``batch_first``; the output has the same layout.
Inside, everything is time-major. States live in (T + 1, N, H) buffers ``Hs`` (and ``Cs``) that hold
the true recurrent state: slot 0 is the initial state of the forward direction and slot T that of
the reverse one, so step t reads slot t + rev and writes slot t + 1 - rev. The states every step
read are then one contiguous slice, and dL/dW_hh = sum_t dZ_t^T h_prev_t is a single product.

Variable lengths (``lengths``: (N,) ints, 1 <= length <= T): step t of sequence n is real when
t < lengths[n]. On padded steps the state is carried unchanged (so the forward direction ends with
the state of the last real step, and the reverse direction starts from h0 at the last real step)
and the output is zero, as PyTorch's packed sequences give after ``pad_packed_sequence``.

Sigmoid through tanh: sigmoid(z) = 0.5 tanh(z / 2) + 0.5. The rows of the sigmoid gates are
halved once per call (exact: a power of two), so one tanh call covers all gates of a step.
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
    each across threads costs a synchronisation per step, and on a busy machine (other processes on
    the cores) OpenBLAS' spinning threads make the loop an order of magnitude slower. The large
    products before and after the loop keep the library's thread count. Talks to the OpenBLAS that
    NumPy loaded, through ctypes; does nothing where none is found. ``loop_blas_threads`` (module
    attribute) sets the count used inside loops (None: leave the library alone).
    """

    def __init__(self):
        self.get = self.set = None
        self.searched = False

    def _find(self):
        self.searched = True
        try:
            import ctypes
            with open("/proc/self/maps") as f:
                paths = {line.split()[-1] for line in f if "openblas" in line.lower()}
        except (OSError, ImportError):
            return
        paths = sorted((p for p in paths if p.startswith("/")), key=lambda p: "numpy" not in p)
        for path in paths:
            try:
                lib = ctypes.CDLL(path)
            except OSError:
                continue
            for get_name, set_name in (
                    ("scipy_openblas_get_num_threads64_", "scipy_openblas_set_num_threads64_"),
                    ("scipy_openblas_get_num_threads", "scipy_openblas_set_num_threads"),
                    ("openblas_get_num_threads64_", "openblas_set_num_threads64_"),
                    ("openblas_get_num_threads", "openblas_set_num_threads")):
                get = getattr(lib, get_name, None)
                put = getattr(lib, set_name, None)
                if get is not None and put is not None:
                    get.restype, get.argtypes = ctypes.c_int, []
                    put.restype, put.argtypes = None, [ctypes.c_int]
                    self.get, self.set = get, put
                    return

    def __enter__(self):
        self.prev = None
        n = loop_blas_threads
        if n is None:
            return self
        if not self.searched:
            self._find()
        if self.get is not None:
            prev = self.get()
            if prev != n:
                self.set(n)
                self.prev = prev
        return self

    def __exit__(self, *exc):
        if self.prev is not None:
            self.set(self.prev)
        return False


loop_blas_threads = 1
_loop_blas = _LoopBlas()


def _project(fn, ws, x, tokens, batch_first, w):
    """Input projections of all steps, (T * N, G) = rows of x times w^T, w (G, D), into a
    workspace buffer.

    With ``tokens`` (token ids (T, N) or (N, T) with batch_first), x is an embedding table (V, D)
    and the sequence is x[tokens]: project the V table rows once and gather, instead of
    projecting T * N rows (backward likewise sums dZ per token first)."""
    if tokens is None:
        x2, T, N, D = _input_rows(x, batch_first, ws)
        fn.x2, fn.tok = x2, None
        return np.matmul(x2, w.T, out=ws.empty((T * N, w.shape[0]), x.dtype)), T, N, D
    tok = tokens.T if batch_first else tokens
    T, N = tok.shape
    tok = np.ascontiguousarray(tok).reshape(-1)
    fn.x2, fn.tok = x, tok
    A = ws.empty((T * N, w.shape[0]), x.dtype)
    return np.take(x @ w.T, tok, axis=0, out=A, mode="clip"), T, N, x.shape[1]   # ids checked by the caller


def _project_back(fn, dZ, w, nx, nwi, nb, padding_idx=None):
    """Gradients of the layer input (or embedding table), of w (G, D) and the bias from
    dZ = dL/d(pre-activation) stacked over all steps (T * N, G)."""
    T, N, D, H = fn.dims
    gx = gwi = gb = None
    if fn.tok is not None:
        from .embedding import scatter_rows
        table = fn.x2
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
        gx = (dZ @ w).reshape(T, N, D)
        if fn.bf:
            gx = gx.transpose(1, 0, 2)
    if nwi:
        gwi = dZ.T @ fn.x2                       # all steps' weight gradients in one product
    if nb:
        gb = dZ.sum(axis=0)
    return gx, gwi, gb


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
        A, T, N, D = _project(self, ws, x, tokens, batch_first, w_ih)   # all steps at once
        H = w_hh.shape[0]
        dt = x.dtype
        rev = 1 if reverse else 0
        relu = nonlinearity == "relu"
        b = _bias(b_ih, b_hh)
        if b is not None:
            A += b
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
        if self.relu:                            # d relu(a)/da = [a > 0] = [y > 0]
            K = (Y > 0).astype(dt)
        else:                                    # d tanh(a)/da = 1 - y^2
            K = np.square(Y)
            np.subtract(1, K, out=K)
        if self.valid is not None:
            K *= self.valid
        dyt = _prep_dy(dy, self.valid, self.bf)
        dA = self.ws.empty((T, N, H), dt)
        dh_c = np.array(dhn, dtype=dt)
        dh = np.empty((N, H), dt)
        wh, offs = self.w_hh, self.offs
        with _loop_blas:
            for t in _back_steps(T, rev):
                np.add(dh_c, dyt[t], out=dh)
                np.multiply(dh, K[t], out=dA[t])
                np.matmul(dA[t], wh, out=dh_c)       # dL/dh_prev = dL/da W_hh
                if offs[t] is not None:
                    np.copyto(dh_c, dh, where=offs[t])   # padded step: the state passed through
        n = _needs(self, 6)
        dZ = dA.reshape(T * N, H)
        gx, gwi, gb = _project_back(self, dZ, self.w_ih, n[0], n[2], n[4] or n[5], self.pad)
        gwh = dZ.T @ Hs[rev:T + rev].reshape(T * N, H) if n[3] else None
        return (gx, dh_c if n[1] else None, gwi, gwh, gb if n[4] else None, gb if n[5] else None)


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

    The forward loop also stores the local derivative factors each step will need in backward
    (while the step's values are in cache): K = dz-factors of the gates, Kc = dh_t/dc_t. With
    t = tanh(z/2), sigmoid'(z) = (1 - t^2) / 4: K holds 1 - t^2 for all gates at once, and the
    missing 1/4 of the sigmoid gates is folded into the weights the backward multiplies by.
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
        A, T, N, D = _project(self, ws, x, tokens, batch_first, wi * sc)   # (T * N, G), all steps
        b = _bias(b_ih, b_hh)
        if b is not None:
            A += b[perm] * sc[:, 0]
        A = A.reshape(T, N, G)
        A4 = A.reshape(T, N, ng, H)              # becomes the gate activations, step by step
        Hs = (ws.empty if _out_is_copy(batch_first, lengths) else np.empty)((T + 1, N, H), dt)
        Cs = ws.empty((T + 1, N, H), dt)
        s0 = T if rev else 0
        _init_state(Hs, s0, h0, dt)
        _init_state(Cs, s0, c0, dt)
        gh = np.empty((N, G), dt)
        tmp = np.empty((N, H), dt)
        tc = np.empty((N, H), dt)
        if rec:
            K = ws.empty((T, N, G), dt)
            K4 = K.reshape(T, N, ng, H)
            Kc = ws.empty((T, N, H), dt)
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
                if peep:
                    a4[:, 1:nd] += p_in * cp[:, None, :]
                    s = a[:, :-H]
                    np.tanh(s, out=s)
                    if rec:
                        k = K[t][:, :-H]
                        np.square(s, out=k)
                        np.subtract(1, k, out=k)
                    s = a[:, H:-H]
                else:
                    np.tanh(a, out=a)            # one tanh for all gates
                    if rec:
                        k = K[t]
                        np.square(a, out=k)
                        np.subtract(1, k, out=k)     # 1 - tanh^2: tanh' and 4 sigmoid'
                    s = a[:, H:]
                s *= 0.5
                s += 0.5
                g, f, o = a4[:, 0], a4[:, nd - 1], a4[:, nd]
                if rec:
                    k4 = K4[t]
                if coupled:                      # c = f c_prev + (1 - f) g = g + f (c_prev - g)
                    np.subtract(cp, g, out=tmp)
                    if rec:
                        k4[:, 1] *= tmp          # dc/df = c_prev - g
                    tmp *= f
                    np.add(g, tmp, out=cn)
                    if rec:
                        np.subtract(1, f, out=tmp)
                        k4[:, 0] *= tmp          # dc/dg = 1 - f
                else:                            # c = f c_prev + i g
                    i = a4[:, 1]
                    np.multiply(f, cp, out=cn)
                    np.multiply(i, g, out=tmp)
                    cn += tmp
                    if rec:
                        k4[:, 0] *= i            # dc/dg = i
                        k4[:, 1] *= g            # dc/di = g
                        k4[:, 2] *= cp           # dc/df = c_prev
                if peep:                         # o looks at c_t
                    np.multiply(cn, p_o, out=tmp)
                    o += tmp
                    np.tanh(o, out=o)
                    if rec:
                        np.square(o, out=k4[:, nd])
                        np.subtract(1, k4[:, nd], out=k4[:, nd])
                    o *= 0.5
                    o += 0.5
                np.tanh(cn, out=tc)
                np.multiply(o, tc, out=hn)       # h = o tanh(c)
                if rec:
                    k4[:, nd] *= tc              # dh/do = tanh(c)
                    kc = Kc[t]
                    np.square(tc, out=kc)
                    np.subtract(1, kc, out=kc)
                    kc *= o                      # dh/dc = o (1 - tanh^2 c)
                if offs[t] is not None:
                    np.copyto(hn, hp, where=offs[t])
                    np.copyto(cn, cp, where=offs[t])
        if rec:
            self.A4, self.K4, self.Kc, self.Hs, self.Cs = A4, K4, Kc, Hs, Cs
            self.wi, self.wh, self.perm, self.w_peep = wi, wh, perm, w_peep
            self.dims, self.rev, self.bf, self.coupled = (T, N, D, H), rev, batch_first, coupled
            self.valid, self.offs, self.pad, self.ws = valid, offs, padding_idx, ws
        y, h_n = _finish_output(Hs, T, rev, valid, batch_first)
        return y, h_n, (Cs[0] if rev else Cs[T]).copy()

    def backward(self, dy, dhn, dcn):
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
        # the sigmoid gates' dz computed below are 4x too large (K holds 1 - t^2 = 4 s (1 - s)):
        # every product that consumes dz uses weights with those rows quartered (exact)
        q = np.full((ng * H, 1), 0.25, dtype=dt)
        q[:H] = 1
        wq = self.wh * q
        peep = self.w_peep is not None
        if peep:
            pq = self.w_peep * np.asarray(0.25, dt)
            p_in, p_o = pq[:-1], pq[-1]
        dyt = _prep_dy(dy, self.valid, self.bf)
        dG = self.ws.empty((T, N, ng * H), dt)
        dG4 = dG.reshape(T, N, ng, H)
        dh_c = np.array(dhn, dtype=dt)
        dc_c = np.array(dcn, dtype=dt)
        dh = np.empty((N, H), dt)
        dc = np.empty((N, H), dt)
        tmp = np.empty((N, H), dt)
        offs = self.offs
        with _loop_blas:
            for t in _back_steps(T, rev):
                np.add(dh_c, dyt[t], out=dh)
                np.multiply(dh, Kc[t], out=dc)
                dc += dc_c
                d4 = dG4[t]
                k4 = K4[t]
                if peep:
                    np.multiply(dh, k4[:, nd], out=d4[:, nd])
                    np.multiply(d4[:, nd], p_o, out=tmp)
                    dc += tmp                    # o looked at c_t
                np.multiply(dc[:, None, :], k4[:, :nd], out=d4[:, :nd])
                if not peep:
                    np.multiply(dh, k4[:, nd], out=d4[:, nd])
                np.multiply(dc, F[t], out=dc_c)
                if peep:                         # i, f looked at c_prev
                    for k in range(1, nd):
                        np.multiply(d4[:, k], p_in[k - 1], out=tmp)
                        dc_c += tmp
                np.matmul(dG[t], wq, out=dh_c)   # dL/dh_prev = dL/dz W_hh
                if offs[t] is not None:
                    np.copyto(dh_c, dh, where=offs[t])
        needs = _needs(self, 8)
        dZ = dG.reshape(T * N, ng * H)
        gx, gwi, gb = _project_back(self, dZ, self.wi * q, needs[0], needs[3],
                                    needs[5] or needs[6], self.pad)
        perm = self.perm                         # back from the internal gate order
        gwi = None if gwi is None else _unpermute(gwi * q, perm)
        gwh = None
        if needs[4]:
            gwh = dZ.T @ self.Hs[rev:T + rev].reshape(T * N, H)
            gwh *= q
            gwh = _unpermute(gwh, perm)
        gb = None if gb is None else _unpermute(gb * q[:, 0], perm)
        gp = None
        if peep and needs[7]:
            Cprev, Cnew = self.Cs[rev:T + rev], self.Cs[1 - rev:T + 1 - rev]
            gp = np.empty_like(self.w_peep)
            for k in range(1, nd):
                gp[k - 1] = np.einsum("tnh,tnh->h", dG4[:, :, k], Cprev)
            gp[-1] = np.einsum("tnh,tnh->h", dG4[:, :, nd], Cnew)
            gp *= 0.25
        return (gx, dh_c if needs[1] else None, dc_c if needs[2] else None, gwi, gwh,
                gb if needs[5] else None, gb if needs[6] else None, gp)


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
        ws = _Workspace()
        A, T, N, D = _project(self, ws, x, tokens, batch_first, w_ih * sc)    # (T * N, 3H)
        bx = None                                # the biases that simply add to the pre-activation
        if b_ih is not None:
            bx = b_ih.copy()
        if b_hh is not None:
            hb = b_hh.copy()
            if not cho:
                hb[2 * H:] = 0                   # b_hn sits inside r * (.) in PyTorch's form
            bx = hb if bx is None else bx + hb
        if bx is not None:
            A += bx * sc[:, 0]
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
        if any(self.needs_input_grad):
            self.A3, self.Hs, self.w_ih, self.w_hh = A3, Hs, w_ih, w_hh
            self.dims, self.rev, self.bf, self.cho = (T, N, D, H), rev, batch_first, cho
            self.valid, self.offs, self.pad, self.ws = valid, offs, padding_idx, ws
            if cho:
                self.RH = RH
            else:
                self.GHn = GH.reshape(T, N, 3, H)[:, :, 2]
        return _finish_output(Hs, T, rev, valid, batch_first)

    def backward(self, dy, dhn):
        T, N, D, H = self.dims
        rev, A3, cho = self.rev, self.A3, self.cho
        dt = A3.dtype
        r, z, n = A3[:, :, 0], A3[:, :, 1], A3[:, :, 2]
        Hprev = self.Hs[rev:T + rev]
        # factors of all steps at once: K2 = [dh'/dz * dz/dpre_z, dh'/dn * dn/dpre_n]
        K2 = np.empty((T, N, 2, H), dt)
        Kz, Kn = K2[:, :, 0], K2[:, :, 1]
        np.subtract(1, z, out=Kz)
        np.multiply(Kz, 1 - np.square(n), out=Kn)          # (1 - z)(1 - n^2)
        Kz *= z
        Kz *= Hprev - n                                      # z (1 - z)(h - n)
        Kr = 1 - r
        Kr *= r                                              # r (1 - r) ...
        Kr *= Hprev if cho else self.GHn                    # ... times dpre_n/dr or d(rh)/dr
        Z, R = z, r
        if self.valid is not None:               # padded steps: z = 1 passes the state through
            K2 *= self.valid[..., None]
            Kr *= self.valid
            Z = np.where(self.valid, z, 1)
        dyt = _prep_dy(dy, self.valid, self.bf)
        dh_c = np.array(dhn, dtype=dt)
        dh = np.empty((N, H), dt)
        tmp = np.empty((N, H), dt)
        H2 = 2 * H
        if cho:
            P = self.ws.empty((T, N, 3, H), dt)  # dL/d pre-activation of r, z, n
            P2 = P.reshape(T, N, 3 * H)
            w_rz, w_n = self.w_hh[:H2], self.w_hh[H2:]
            drh = np.empty((N, H), dt)
            with _loop_blas:
                for t in _back_steps(T, rev):
                    np.add(dh_c, dyt[t], out=dh)
                    p = P[t]
                    np.multiply(dh[:, None, :], K2[t], out=p[:, 1:])
                    np.matmul(p[:, 2], w_n, out=drh)            # dL/d(r * h)
                    np.multiply(drh, Kr[t], out=p[:, 0])
                    np.matmul(P2[t][:, :H2], w_rz, out=dh_c)
                    np.multiply(drh, R[t], out=tmp)
                    dh_c += tmp
                    np.multiply(dh, Z[t], out=tmp)
                    dh_c += tmp
            dX = P2.reshape(T * N, 3 * H)
        else:
            # slots: [n on the hidden side (= dpre_n * r), r, z, n on the input side (= dpre_n)];
            # [0:3] pairs with W_hh rows (n, r, z), [1:4] with W_ih rows (r, z, n)
            P = self.ws.empty((T, N, 4, H), dt)
            P2 = P.reshape(T, N, 4 * H)
            w_nrz = np.concatenate([self.w_hh[H2:], self.w_hh[:H2]])
            with _loop_blas:
                for t in _back_steps(T, rev):
                    np.add(dh_c, dyt[t], out=dh)
                    p = P[t]
                    np.multiply(dh[:, None, :], K2[t], out=p[:, 2:])
                    np.multiply(p[:, 3], Kr[t], out=p[:, 1])
                    np.multiply(p[:, 3], R[t], out=p[:, 0])
                    np.matmul(P2[t][:, :3 * H], w_nrz, out=dh_c)
                    np.multiply(dh, Z[t], out=tmp)
                    dh_c += tmp
            Pf = P2.reshape(T * N, 4 * H)
            dX = Pf[:, H:]
        needs = _needs(self, 6)
        gwh = gbh = None
        gx, gwi, gbi = _project_back(self, dX, self.w_ih, needs[0], needs[2],
                                     needs[4] or (cho and needs[5]), self.pad)
        hp2 = Hprev.reshape(T * N, H)
        if cho:
            if needs[3]:
                gwh = np.empty_like(self.w_hh)
                gwh[:H2] = dX[:, :H2].T @ hp2
                gwh[H2:] = dX[:, H2:].T @ self.RH.reshape(T * N, H)
            if needs[5]:
                gbh = gbi                        # every hidden bias adds to a pre-activation
        else:
            if needs[3]:
                g = Pf[:, :3 * H].T @ hp2       # rows n, r, z
                gwh = np.concatenate([g[H:], g[:H]])
            if needs[5]:
                s = Pf[:, :3 * H].sum(axis=0)
                gbh = np.concatenate([s[H:], s[:H]])
        return (gx, dh_c if needs[1] else None, gwi, gwh, gbi if needs[4] else None, gbh)
