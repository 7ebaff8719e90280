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

Speed: sigmoid(z) = 0.5 tanh(z / 2) + 0.5, with the sigmoid gates' rows halved once per call (exact,
a power of two), so one tanh call covers all gates of a step; the gates are kept in the internal
order (g, i, f, o), the sigmoid gates contiguous for the forward and the gates driven by dL/dc for
the backward (gradients are permuted back); the backward factors (local derivatives) of all steps
are computed at once after the forward loop, and the weight gradients of all steps with one
product each after the backward loop. ``chainrule/fast/recurrent.py`` adds pooled buffers and the
fusion of an embedding lookup feeding the first layer.

Why one module over 600 lines: three hand-differentiated ops (RNN; LSTM with its peephole and
coupled variants; GRU in PyTorch's and Cho's forms) share the layout, length-mask and projection
helpers above them, each op with its forward and backward side by side.
"""
import numpy as np        # lengths checks and gate permutations; array math uses the data's xp

from .. import backend
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


def _masks(lengths, T, N, xp):
    """(T, N, 1) bool 'step is real' (None without lengths), and per step the (N, 1) mask of
    padded rows, or None where every sequence is still running (in the data's namespace xp)."""
    if lengths is None:
        return None, [None] * T
    valid = np.arange(T)[:, None] < lengths[None, :]           # from the lengths (NumPy ints)
    offs = [None if v.all() else xp.asarray(~v[:, None]) for v in valid]
    return xp.asarray(valid[:, :, None]), offs


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
    xp = backend.array_namespace(Hs)
    out = Hs[:T] if rev else Hs[1:]
    last = Hs[0] if rev else Hs[T]
    if not _out_is_copy(batch_first, valid):
        return out, last
    _, N, H = Hs.shape
    y = xp.empty((N, T, H) if batch_first else (T, N, H), Hs.dtype)
    yt = y.transpose(1, 0, 2) if batch_first else y
    if valid is not None:
        xp.multiply(out, valid, out=yt)         # padded steps output zero
    else:
        xp.copyto(yt, out)
    return y, last.copy()


def _prep_dy(dy, valid, batch_first):
    dyt = dy.transpose(1, 0, 2) if batch_first else dy
    if valid is not None:
        dyt = dyt * valid                       # padded outputs are constants
    return dyt


def _input_rows(x, batch_first, ws):
    """x as contiguous time-major rows (T * N, D), plus (T, N, D)."""
    xp = backend.array_namespace(x)
    xt = x.transpose(1, 0, 2) if batch_first else x
    T, N, D = xt.shape
    if xt.flags.c_contiguous:
        return xt.reshape(T * N, D), T, N, D
    x2 = ws.empty((T * N, D), x.dtype)
    xp.copyto(x2.reshape(T, N, D), xt)
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


class Buffers:
    """Where an op call's work buffers come from: fresh arrays of the data's namespace.
    (``chainrule/fast/recurrent.py`` hands out pooled ones instead.)"""

    __slots__ = ("empty",)

    def __init__(self, xp):
        self.empty = xp.empty


class _Recurrent(Function):
    """What the three layer ops share: where buffers come from, the input projections of all steps
    and the gradients on the input side. The fast path overrides these three methods."""
    saves = ("inputs",)

    def _buffers(self, xp):
        return Buffers(xp)

    def _project(self, ws, x, batch_first, w, b=None):
        """Input projections of all steps plus bias, (T * N, G) = rows of x times w^T (+ b),
        w (G, D), into a work buffer; returns it and T, N, D."""
        x2, T, N, D = _input_rows(x, batch_first, ws)
        self.x2 = x2
        A = self.xp.matmul(x2, w.T, out=ws.empty((T * N, w.shape[0]), x.dtype))
        if b is not None:
            A += b
        return A, T, N, D

    def _input_grads(self, dZ, w, nx, nwi, nb):
        """(dL/dx, dL/dw, dL/db) from dZ = dL/d(pre-activation) (T * N, G) of all steps, once the
        backward loop has filled it: one product each."""
        T, N, D, H = self.dims
        gx = gwi = gb = None
        if nwi:
            gwi = dZ.T @ self.x2                 # all steps' weight gradients at once
        if nb:
            gb = dZ.sum(axis=0)
        if nx:
            gx = (dZ @ w).reshape(T, N, D)
            if self.bf:
                gx = gx.transpose(1, 0, 2)
        return gx, gwi, gb


# ------------------------------------------------------------------------------------------------
# Elman RNN: h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh), act = tanh or relu
# ------------------------------------------------------------------------------------------------
class RNNLayer(_Recurrent):
    """One direction of one Elman RNN layer over the whole sequence.

    Inputs x (T, N, D) [or (N, T, D)], h0 (N, H) or None, w_ih (H, D), w_hh (H, H), b_ih, b_hh (H,)
    or None. Returns (y (T, N, H) [or (N, T, H)], h_n (N, H)).
    """

    def forward(self, x, h0, w_ih, w_hh, b_ih=None, b_hh=None, *, nonlinearity="tanh",
                reverse=False, batch_first=False, lengths=None):
        self.xp = xp = backend.array_namespace(x)
        ws = self._buffers(xp)
        A, T, N, D = self._project(ws, x, batch_first, w_ih, _bias(b_ih, b_hh))
        H = w_hh.shape[0]                        # (all steps' input projections at once)
        dt = x.dtype
        rev = 1 if reverse else 0
        relu = nonlinearity == "relu"
        A = A.reshape(T, N, H)
        Hs = (ws.empty if _out_is_copy(batch_first, lengths) else xp.empty)((T + 1, N, H), dt)
        _init_state(Hs, T if rev else 0, h0, dt)
        whT = w_hh.T
        gh = xp.empty((N, H), dt)
        valid, offs = _masks(lengths, T, N, xp)
        for t in _steps(T, rev):
            a = A[t]
            hp, hn = Hs[t + rev], Hs[t + 1 - rev]
            xp.matmul(hp, whT, out=gh)
            a += gh
            if relu:
                xp.maximum(a, 0, out=hn)
            else:
                xp.tanh(a, out=hn)
            if offs[t] is not None:
                xp.copyto(hn, hp, where=offs[t])
        if any(self.needs_input_grad):
            self.Hs, self.w_ih, self.w_hh = Hs, w_ih, w_hh
            self.dims, self.rev, self.relu, self.bf = (T, N, D, H), rev, relu, batch_first
            self.valid, self.offs, self.ws = valid, offs, ws
        return _finish_output(Hs, T, rev, valid, batch_first)

    def backward(self, dy, dhn):
        xp = self.xp
        T, N, D, H = self.dims
        rev, Hs = self.rev, self.Hs
        dt = Hs.dtype
        Y = Hs[1 - rev:T + 1 - rev]
        K = self.ws.empty((T, N, H), dt)
        if self.relu:                            # d relu(a)/da = [a > 0] = sign(y), as y >= 0
            xp.sign(Y, out=K)
        else:                                    # d tanh(a)/da = 1 - y^2
            xp.square(Y, out=K)
            xp.subtract(1, K, out=K)
        if self.valid is not None:
            K *= self.valid
        dyt = _prep_dy(dy, self.valid, self.bf)
        dA = self.ws.empty((T, N, H), dt)
        dh_c = xp.array(dhn, dtype=dt)
        dh = xp.empty((N, H), dt)
        wh, offs = self.w_hh, self.offs
        n = _needs(self, 6)
        dZ = dA.reshape(T * N, H)
        for t in _back_steps(T, rev):
            xp.add(dh_c, dyt[t], out=dh)
            xp.multiply(dh, K[t], out=dA[t])
            xp.matmul(dA[t], wh, out=dh_c)       # dL/dh_prev = dL/da W_hh
            if offs[t] is not None:
                xp.copyto(dh_c, dh, where=offs[t])   # padded step: the state passed through
        gx, gwi, gb = self._input_grads(dZ, self.w_ih, n[0], n[2], n[4] or n[5])
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


class LSTMLayer(_Recurrent):
    """One direction of one LSTM layer over the whole sequence.

    Inputs x (T, N, D) [or (N, T, D)], h0, c0 (N, H) or None, w_ih (4H, D), w_hh (4H, H),
    b_ih, b_hh (4H,) or None (gate order i, f, g, o; coupled: 3H rows f, g, o), w_peep (3, H)
    (rows i, f, o; coupled: (2, H), rows f, o) or None.
    Returns (y (T, N, H) [or (N, T, H)], h_n (N, H), c_n (N, H)).

    After the loop, the local derivative factors backward needs (K: dz/d(pre-activation) per
    gate, Kc = dh_t/dc_t) are computed for all steps at once.
    """

    def forward(self, x, h0, c0, w_ih, w_hh, b_ih=None, b_hh=None, w_peep=None, *,
                reverse=False, batch_first=False, lengths=None, coupled=False):
        self.xp = xp = backend.array_namespace(x)
        ws = self._buffers(xp)
        H = w_hh.shape[1]
        ng = 3 if coupled else 4
        nd = ng - 1                              # slot of o; slots before it are driven by dc
        G = ng * H
        dt = x.dtype
        rev = 1 if reverse else 0
        rec = any(self.needs_input_grad)
        perm = _lstm_perm(H, coupled)
        sc = xp.full((G, 1), 0.5, dtype=dt)      # halve the sigmoid gates' rows (exact)
        sc[:H] = 1
        wh = w_hh[perm]
        whs = xp.ascontiguousarray((wh * sc).T)  # (H, G)
        wi = w_ih[perm]
        b = _bias(b_ih, b_hh)
        A, T, N, D = self._project(ws, x, batch_first, wi * sc,
                              None if b is None else b[perm] * sc[:, 0])   # (T * N, G), all steps
        A = A.reshape(T, N, G)
        A4 = A.reshape(T, N, ng, H)              # becomes the gate activations, step by step
        Hs = (ws.empty if _out_is_copy(batch_first, lengths) else xp.empty)((T + 1, N, H), dt)
        Cs = ws.empty((T + 1, N, H), dt)
        s0 = T if rev else 0
        _init_state(Hs, s0, h0, dt)
        _init_state(Cs, s0, c0, dt)
        TC = ws.empty((T, N, H), dt)             # tanh(c_t)
        gh = xp.empty((N, G), dt)
        tmp = xp.empty((N, H), dt)
        peep = w_peep is not None
        if peep:
            ps = w_peep * xp.asarray(0.5, dt)
            p_in, p_o = ps[:-1], ps[-1]
        sc_row, sh_row = sc[:, 0], 1 - sc[:, 0]   # (0.5, 0.5) on sigmoid gates, (1, 0) on g
        valid, offs = _masks(lengths, T, N, xp)
        for t in _steps(T, rev):
            a = A[t]
            a4 = A4[t]
            hp, cp = Hs[t + rev], Cs[t + rev]
            hn, cn = Hs[t + 1 - rev], Cs[t + 1 - rev]
            xp.matmul(hp, whs, out=gh)       # all gates in one product
            a += gh
            if peep:                         # i, f look at c_{t-1}
                a4[:, 1:nd] += p_in * cp[:, None, :]
                s = a[:, :-H]
                xp.tanh(s, out=s)
                s = a[:, H:-H]
                s *= 0.5
                s += 0.5                     # sigmoid(z) = 0.5 tanh(z / 2) + 0.5
            else:
                xp.tanh(a, out=a)            # one tanh for all gates
                a *= sc_row                  # the same over whole rows (contiguous: faster;
                a += sh_row                  # g's entries are times 1 plus 0)
            g, f, o = a4[:, 0], a4[:, nd - 1], a4[:, nd]
            if coupled:                      # c = f c_prev + (1 - f) g = g + f (c_prev - g)
                xp.subtract(cp, g, out=tmp)
                tmp *= f
                xp.add(g, tmp, out=cn)
            else:                            # c = f c_prev + i g
                xp.multiply(f, cp, out=cn)
                xp.multiply(a4[:, 1], g, out=tmp)
                cn += tmp
            if peep:                         # o looks at c_t
                xp.multiply(cn, p_o, out=tmp)
                o += tmp
                xp.tanh(o, out=o)
                o *= 0.5
                o += 0.5
            tc = TC[t]
            xp.tanh(cn, out=tc)
            xp.multiply(o, tc, out=hn)       # h = o tanh(c)
            if offs[t] is not None:
                xp.copyto(hn, hp, where=offs[t])
                xp.copyto(cn, cp, where=offs[t])
        if rec:
            # the backward factors of all steps, on gate-major copies (ng, T, N, H): each gate's
            # values are then contiguous (per-gate slices of (T, N, ng, H) cost ~5x as much:
            # NumPy's per-row overhead on rows of H values; W3 shapes: 1.33-1.37 -> 0.84-1.04 ms
            # with the copy)
            AS = ws.empty((ng, T, N, H), dt)
            xp.copyto(AS, A4.transpose(2, 0, 1, 3))
            KS, Kc = ws.empty((ng, T, N, H), dt), ws.empty((T, N, H), dt)
            _lstm_factors(AS, KS, Kc, TC, Cs[rev:T + rev], coupled,
                          ws.empty((T, N, H), dt) if coupled else None)
            self.AS, self.KS, self.Kc, self.Hs, self.Cs = AS, KS, Kc, Hs, Cs
            self.wi, self.wh, self.perm, self.w_peep = wi, wh, perm, w_peep
            self.dims, self.rev, self.bf, self.coupled = (T, N, D, H), rev, batch_first, coupled
            self.valid, self.offs, self.ws = valid, offs, ws
        y, h_n = _finish_output(Hs, T, rev, valid, batch_first)
        return y, h_n, (Cs[0] if rev else Cs[T]).copy()

    def backward(self, dy, dhn, dcn):
        xp = self.xp
        T, N, D, H = self.dims
        rev, KS, Kc = self.rev, self.KS, self.Kc
        ng = KS.shape[0]
        nd = ng - 1
        dt = KS.dtype
        F = self.AS[nd - 1]                      # dc/dc_prev = f
        if self.valid is not None:               # padded steps: no gate gradient, state passes
            KS = KS * self.valid
            Kc = Kc * self.valid
            F = xp.where(self.valid, F, 1)
        K4 = KS.transpose(1, 2, 0, 3)            # (T, N, ng, H) view: a step's (N, ng, H)
        wh = self.wh
        peep = self.w_peep is not None
        if peep:
            p_in, p_o = self.w_peep[:-1], self.w_peep[-1]
        dyt = _prep_dy(dy, self.valid, self.bf)
        dG = self.ws.empty((T, N, ng * H), dt)
        dG4 = dG.reshape(T, N, ng, H)
        dh_c = xp.array(dhn, dtype=dt)
        dc_c = xp.array(dcn, dtype=dt)
        dh = xp.empty((N, H), dt)
        dc = xp.empty((N, H), dt)
        tmp = xp.empty((N, H), dt)
        offs = self.offs
        needs = _needs(self, 8)
        dZ = dG.reshape(T * N, ng * H)
        for t in _back_steps(T, rev):
            xp.add(dh_c, dyt[t], out=dh)
            xp.multiply(dh, Kc[t], out=dc)
            dc += dc_c                       # dL/dc_t
            d4 = dG4[t]
            k4 = K4[t]
            if peep:
                xp.multiply(dh, k4[:, nd], out=d4[:, nd])
                xp.multiply(d4[:, nd], p_o, out=tmp)
                dc += tmp                    # o looked at c_t
            if peep:
                xp.multiply(dc[:, None, :], k4[:, :nd], out=d4[:, :nd])
            else:                            # whole rows (contiguous, faster), then o's slot
                xp.multiply(dc[:, None, :], k4, out=d4)
                xp.multiply(dh, k4[:, nd], out=d4[:, nd])
            xp.multiply(dc, F[t], out=dc_c)  # dL/dc_{t-1}
            if peep:                         # i, f looked at c_prev
                for k in range(1, nd):
                    xp.multiply(d4[:, k], p_in[k - 1], out=tmp)
                    dc_c += tmp
            xp.matmul(dG[t], wh, out=dh_c)   # dL/dh_prev = dL/dz W_hh
            if offs[t] is not None:
                xp.copyto(dh_c, dh, where=offs[t])
        gx, gwi, gb = self._input_grads(dZ, self.wi, needs[0], needs[3], needs[5] or needs[6])
        perm = self.perm                         # back from the internal gate order
        gwi = None if gwi is None else _unpermute(gwi, perm)
        gwh = None
        if needs[4]:                             # all steps' dL/dW_hh in one product
            gwh = _unpermute(dZ.T @ self.Hs[rev:T + rev].reshape(T * N, H), perm)
        gb = None if gb is None else _unpermute(gb, perm)
        gp = None
        if peep and needs[7]:
            Cprev, Cnew = self.Cs[rev:T + rev], self.Cs[1 - rev:T + 1 - rev]
            gp = xp.empty_like(self.w_peep)
            for k in range(1, nd):
                gp[k - 1] = xp.einsum("tnh,tnh->h", dG4[:, :, k], Cprev)
            gp[-1] = xp.einsum("tnh,tnh->h", dG4[:, :, nd], Cnew)
        return (gx, dh_c if needs[1] else None, dc_c if needs[2] else None, gwi, gwh,
                gb if needs[5] else None, gb if needs[6] else None, gp)


def _lstm_factors(AS, KS, Kc, TC, Cprev, coupled, scratch=None):
    """The LSTM's backward factors of all steps, gate-major: AS, KS (ng, T, N, H) hold the gate
    activations and the factors (internal order g, i, f, o; coupled g, f, o); TC = tanh(c_t),
    Cprev = c_{t-1}, Kc (T, N, H). Slots: K = [dc/dg tanh'(g), dc/di sigmoid'(i),
    dc/df sigmoid'(f), dh/do sigmoid'(o)] = [i (1 - g^2), g i (1 - i), c_prev f (1 - f),
    tanh(c) o (1 - o)] (coupled: [(1 - f)(1 - g^2), (c_prev - g) f (1 - f), ...]), and
    Kc = dh/dc = o (1 - tanh^2 c)."""
    xp = backend.array_namespace(AS)
    nd = AS.shape[0] - 1
    sig, ksig = AS[1:], KS[1:]
    xp.subtract(1, sig, out=ksig)
    ksig *= sig                              # s (1 - s) in the sigmoid slots
    g, kg = AS[0], KS[0]
    xp.square(g, out=kg)
    xp.subtract(1, kg, out=kg)               # 1 - g^2
    if coupled:
        xp.subtract(1, AS[1], out=scratch)
        kg *= scratch                        # dc/dg = 1 - f
        xp.subtract(Cprev, g, out=scratch)
        KS[1] *= scratch                     # dc/df = c_prev - g
    else:
        kg *= AS[1]                          # dc/dg = i
        KS[1] *= g                           # dc/di = g
        KS[2] *= Cprev                       # dc/df = c_prev
    KS[nd] *= TC                             # dh/do = tanh(c)
    xp.square(TC, out=Kc)
    xp.subtract(1, Kc, out=Kc)
    Kc *= AS[nd]                             # dh/dc = o (1 - tanh^2 c)


def _gru_factors(AS, KS, Kr, Hprev, Ghn, tmp, cho):
    """The GRU's backward factors of all steps, gate-major: AS (3, T, N, H) holds r, z, n;
    KS (2, T, N, H) gets [dh'/dz sigmoid'(z), dh'/dn tanh'(n)] = [z (1 - z)(h_prev - n),
    (1 - z)(1 - n^2)]; Kr = r (1 - r) times d(pre_n)/dr: Ghn = W_hn h + b_hn in PyTorch's form,
    or with Cho's (Ghn None) the factor h_prev of d(r * h)/dr."""
    xp = backend.array_namespace(AS)
    r, z, n = AS
    kz, kn = KS
    xp.subtract(1, z, out=kz)
    xp.square(n, out=kn)
    xp.subtract(1, kn, out=kn)
    kn *= kz                                 # (1 - z)(1 - n^2)
    kz *= z
    xp.subtract(Hprev, n, out=tmp)
    kz *= tmp                                # z (1 - z)(h_prev - n)
    xp.subtract(1, r, out=Kr)
    Kr *= r
    Kr *= Hprev if cho else Ghn


def _unpermute(a, perm):
    xp = backend.array_namespace(a)
    out = xp.empty_like(a)
    out[perm] = a
    return out


# ------------------------------------------------------------------------------------------------
# GRU (Cho et al. 2014). PyTorch's form:  n = tanh(W_in x + b_in + r * (W_hn h + b_hn));
# the original ('cho'):                   n = tanh(W_in x + b_in + W_hn (r * h) + b_hn).
# Both: r = sigmoid(W_ir x + b_ir + W_hr h + b_hr), z likewise, h' = (1 - z) n + z h.
# ------------------------------------------------------------------------------------------------
class GRULayer(_Recurrent):
    """One direction of one GRU layer over the whole sequence.

    Inputs x (T, N, D) [or (N, T, D)], h0 (N, H) or None, w_ih (3H, D), w_hh (3H, H), b_ih, b_hh
    (3H,) or None, gate order r, z, n. Returns (y (T, N, H) [or (N, T, H)], h_n (N, H)).
    """

    def forward(self, x, h0, w_ih, w_hh, b_ih=None, b_hh=None, *, variant="pytorch",
                reverse=False, batch_first=False, lengths=None):
        self.xp = xp = backend.array_namespace(x)
        ws = self._buffers(xp)
        H = w_hh.shape[1]
        dt = x.dtype
        rev = 1 if reverse else 0
        cho = variant == "cho"
        sc = xp.full((3 * H, 1), 0.5, dtype=dt)  # halve r and z rows: sigmoid through tanh
        sc[2 * H:] = 1
        bx = None                                # the biases that simply add to the pre-activation
        if b_ih is not None:
            bx = b_ih.copy()
        if b_hh is not None:
            hb = b_hh.copy()
            if not cho:
                hb[2 * H:] = 0                   # b_hn sits inside r * (.) in PyTorch's form
            bx = hb if bx is None else bx + hb
        A, T, N, D = self._project(ws, x, batch_first, w_ih * sc,
                                   None if bx is None else bx * sc[:, 0])         # (T * N, 3H)
        A = A.reshape(T, N, 3 * H)
        A3 = A.reshape(T, N, 3, H)
        Hs = (ws.empty if _out_is_copy(batch_first, lengths) else xp.empty)((T + 1, N, H), dt)
        _init_state(Hs, T if rev else 0, h0, dt)
        tmp = xp.empty((N, H), dt)
        valid, offs = _masks(lengths, T, N, xp)
        H2 = 2 * H
        if cho:
            w_rz = xp.ascontiguousarray((w_hh[:H2] * 0.5).T)        # (H, 2H)
            w_n = w_hh[H2:].T
            gh = xp.empty((N, H2), dt)
            RH = ws.empty((T, N, H), dt)         # r * h_prev, the input of W_hn
        else:
            whs = xp.ascontiguousarray((w_hh * sc).T)               # (H, 3H)
            GH = ws.empty((T, N, 3 * H), dt)     # W_hh h_prev (+ b_hn in the n part)
            b_hn = None if b_hh is None else b_hh[H2:]
        rec = any(self.needs_input_grad)
        for t in _steps(T, rev):
            a = A[t]
            hp, hn = Hs[t + rev], Hs[t + 1 - rev]
            rz = a[:, :H2]
            r, z, n = A3[t, :, 0], A3[t, :, 1], A3[t, :, 2]
            if cho:
                xp.matmul(hp, w_rz, out=gh)
                rz += gh
            else:
                g = GH[t]
                xp.matmul(hp, whs, out=g)        # all three gates' hidden products at once
                rz += g[:, :H2]
            xp.tanh(rz, out=rz)
            rz *= 0.5
            rz += 0.5
            if cho:
                rh = RH[t]
                xp.multiply(r, hp, out=rh)
                xp.matmul(rh, w_n, out=tmp)
            else:
                ghn = g[:, H2:]
                if b_hn is not None:
                    ghn += b_hn
                xp.multiply(r, ghn, out=tmp)
            n += tmp
            xp.tanh(n, out=n)
            xp.subtract(hp, n, out=tmp)          # h' = n + z (h - n)
            tmp *= z
            xp.add(n, tmp, out=hn)
            if offs[t] is not None:
                xp.copyto(hn, hp, where=offs[t])
        if rec:
            # the backward factors of all steps, on gate-major copies (as the LSTM's; W3 shapes:
            # 1.0-1.3 -> 0.60-0.64 ms with the copy)
            AS = ws.empty((3, T, N, H), dt)
            xp.copyto(AS, A3.transpose(2, 0, 1, 3))
            KS, Kr = ws.empty((2, T, N, H), dt), ws.empty((T, N, H), dt)
            _gru_factors(AS, KS, Kr, Hs[rev:T + rev], None if cho else GH.reshape(T, N, 3, H)[:, :, 2],
                         ws.empty((T, N, H), dt), cho)
            self.AS, self.Hs, self.w_ih, self.w_hh = AS, Hs, w_ih, w_hh
            self.dims, self.rev, self.bf, self.cho = (T, N, D, H), rev, batch_first, cho
            self.valid, self.offs, self.ws = valid, offs, ws
            self.KS, self.Kr = KS, Kr
            if cho:
                self.RH = RH
        return _finish_output(Hs, T, rev, valid, batch_first)

    def backward(self, dy, dhn):
        xp = self.xp
        T, N, D, H = self.dims
        rev, AS, cho = self.rev, self.AS, self.cho
        dt = AS.dtype
        r, z = AS[0], AS[1]                      # gate-major: contiguous (T, N, H) each
        Hprev = self.Hs[rev:T + rev]
        KS, Kr = self.KS, self.Kr                # factors prepared during forward
        Z, R = z, r
        if self.valid is not None:               # padded steps: z = 1 passes the state through
            KS = KS * self.valid
            Kr = Kr * self.valid
            Z = xp.where(self.valid, z, 1)
        K2 = KS.transpose(1, 2, 0, 3)            # (T, N, 2, H) view: a step's (N, 2, H)
        dyt = _prep_dy(dy, self.valid, self.bf)
        dh_c = xp.array(dhn, dtype=dt)
        dh = xp.empty((N, H), dt)
        tmp = xp.empty((N, H), dt)
        H2 = 2 * H
        needs = _needs(self, 6)
        hp2 = Hprev.reshape(T * N, H)
        if cho:
            P = self.ws.empty((T, N, 3, H), dt)  # dL/d pre-activation of r, z, n
            P2 = P.reshape(T, N, 3 * H)
            dX = P2.reshape(T * N, 3 * H)
            w_rz, w_n = self.w_hh[:H2], self.w_hh[H2:]
            drh = xp.empty((N, H), dt)
        else:
            # slots: [n on the hidden side (= dpre_n * r), r, z, n on the input side (= dpre_n)];
            # [0:3] pairs with W_hh rows (n, r, z), [1:4] with W_ih rows (r, z, n)
            P = self.ws.empty((T, N, 4, H), dt)
            P2 = P.reshape(T, N, 4 * H)
            Pf = P2.reshape(T * N, 4 * H)
            dX = Pf[:, H:]
            w_nrz = xp.concatenate([self.w_hh[H2:], self.w_hh[:H2]])
        nb = needs[4] or (cho and needs[5])
        for t in _back_steps(T, rev):
            xp.add(dh_c, dyt[t], out=dh)
            p = P[t]
            if cho:
                xp.multiply(dh[:, None, :], K2[t], out=p[:, 1:])
                xp.matmul(p[:, 2], w_n, out=drh)            # dL/d(r * h)
                xp.multiply(drh, Kr[t], out=p[:, 0])
                xp.matmul(P2[t][:, :H2], w_rz, out=dh_c)
                xp.multiply(drh, R[t], out=tmp)
                dh_c += tmp
            else:
                xp.multiply(dh[:, None, :], K2[t], out=p[:, 2:])
                xp.multiply(p[:, 3], Kr[t], out=p[:, 1])
                xp.multiply(p[:, 3], R[t], out=p[:, 0])
                xp.matmul(P2[t][:, :3 * H], w_nrz, out=dh_c)
            xp.multiply(dh, Z[t], out=tmp)
            dh_c += tmp
        gx, gwi, gbi = self._input_grads(dX, self.w_ih, needs[0], needs[2], nb)
        gwh = gbh = None
        if cho:
            if needs[3]:
                gwh = xp.concatenate([dX[:, :H2].T @ hp2,
                                      dX[:, H2:].T @ self.RH.reshape(T * N, H)])
            if needs[5]:
                gbh = gbi                        # every hidden bias adds to a pre-activation
        else:
            if needs[3]:
                g = Pf[:, :3 * H].T @ hp2        # rows n, r, z
                gwh = xp.concatenate([g[H:], g[:H]])
            if needs[5]:
                sb = Pf[:, :3 * H].sum(axis=0)
                gbh = xp.concatenate([sb[H:], sb[:H]])
        return (gx, dh_c if needs[1] else None, gwi, gwh, gbi if needs[4] else None, gbh)
