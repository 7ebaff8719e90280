"""Recurrent layers: RNN (tanh / relu), LSTM (with peephole and coupled variants), GRU (PyTorch's
form and Cho et al.'s original), and their single-step cells.

Parameter names, shapes, gate order and initialisation follow PyTorch, so a PyTorch state dict
loads one to one:

    weight_ih_l{k}[_reverse]  (G*H, D_k)   D_0 = input_size, D_k = H * num_directions after
    weight_hh_l{k}[_reverse]  (G*H, H)
    bias_ih_l{k}[_reverse]    (G*H,)       G = 1 (RNN), 4 (LSTM: i, f, g, o), 3 (GRU: r, z, n)
    bias_hh_l{k}[_reverse]    (G*H,)

all drawn from U(-1/sqrt(H), 1/sqrt(H)). The variants add or drop rows (see LSTM and GRU).

Each layer direction runs as one fused op (``chainrule.ops.recurrent``) over the whole sequence.
The fast path plugs in where the layers pick that op (``fast.use``, chainrule/fast/__init__.py):
``chainrule/fast/recurrent.py`` adds pooled buffers and, when the input comes straight from an
``Embedding``, projects the table rows instead of the looked-up vectors.

>>> lstm = nn.LSTM(input_size=64, hidden_size=128, batch_first=True)
>>> out, (h_n, c_n) = lstm(x)                  # x (N, T, 64) -> out (N, T, 128), h_n (1, N, 128)
>>> out, (h_n, c_n) = lstm(x, lengths=lens)    # padded batch: h_n is each sequence's last real step
"""
import math

import numpy as np

from .. import backend, checks, fast
from ..autograd import Tensor
from ..ops import basic as _basic
from ..ops import recurrent as _rec
from . import functional as F
from . import init
from .module import Module
from .parameter import Parameter

__all__ = ["RNNBase", "RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell"]


def _as_tensor(x):
    return x if isinstance(x, Tensor) else Tensor(x)


def _take(h, k):
    """Row k of a stacked state (L*D, N, H): a graph op only when a gradient must flow back."""
    if h is None:
        return None
    if h.requires_grad:
        return h[k]
    return h.data[k]


class RNNBase(Module):
    """Shared machinery of RNN, LSTM and GRU: parameters, input checks, the layer/direction loop."""

    mode = "RNN_TANH"
    n_gates = 1

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, dtype=None):
        super().__init__()
        name = type(self).__name__
        self.input_size = checks.integer(name, "input_size", input_size, 1)
        self.hidden_size = checks.integer(name, "hidden_size", hidden_size, 1)
        self.num_layers = checks.integer(name, "num_layers", num_layers, 1)
        self.bias = checks.flag(name, "bias", bias)
        self.batch_first = checks.flag(name, "batch_first", batch_first)
        self.dropout = checks.probability(name, "dropout", dropout)
        self.bidirectional = checks.flag(name, "bidirectional", bidirectional)
        self.num_directions = 2 if bidirectional else 1
        dtype = dtype or backend.get_default_dtype()
        H, G = self.hidden_size, self.n_gates * self.hidden_size
        self._layer_params = []                   # per (layer, direction): [w_ih, w_hh, b_ih, b_hh, ...]
        for k in range(self.num_layers):
            d_in = self.input_size if k == 0 else H * self.num_directions
            for d in range(self.num_directions):
                sfx = f"_l{k}" + ("_reverse" if d else "")
                names = [f"weight_ih{sfx}", f"weight_hh{sfx}"]
                setattr(self, names[0], Parameter(np.empty((G, d_in), dtype=dtype)))
                setattr(self, names[1], Parameter(np.empty((G, H), dtype=dtype)))
                if bias:
                    names += [f"bias_ih{sfx}", f"bias_hh{sfx}"]
                    setattr(self, names[2], Parameter(np.empty(G, dtype=dtype)))
                    setattr(self, names[3], Parameter(np.empty(G, dtype=dtype)))
                names += self._extra_params(sfx, dtype)
                self._layer_params.append(names)
        self.reset_parameters()

    def _extra_params(self, sfx, dtype):
        return []

    def reset_parameters(self):
        """U(-1/sqrt(H), 1/sqrt(H)) for every parameter, as PyTorch."""
        stdv = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            init.uniform_(p, -stdv, stdv)

    def flatten_parameters(self):
        """Accepted for PyTorch compatibility; parameters are always used as they are."""

    # -- checks ------------------------------------------------------------------------------------
    def _name(self):
        return f"{type(self).__name__}(input_size={self.input_size}, hidden_size={self.hidden_size})"

    def _check_input(self, x):
        xd = x.data
        layout = "(N, T, D)" if self.batch_first else "(T, N, D)"
        if xd.ndim not in (2, 3):
            raise ValueError(f"{self._name()}: expected input {layout} or unbatched (T, D) with "
                             f"D = {self.input_size}, got shape {xd.shape}")
        if xd.shape[-1] != self.input_size:
            raise ValueError(f"{self._name()}: expected input {layout} with D = input_size = "
                             f"{self.input_size} features, got shape {xd.shape} "
                             f"({xd.shape[-1]} features)")
        if xd.dtype.kind != "f":
            raise TypeError(f"{self._name()}: expected a floating input, got dtype {xd.dtype}")
        w = self.weight_ih_l0.data
        if xd.dtype != w.dtype:
            raise TypeError(f"{self._name()}: input dtype {xd.dtype} does not match the weights' "
                            f"{w.dtype}; convert the input or the model (.to('{xd.dtype}'))")
        t_axis = 1 if (self.batch_first and xd.ndim == 3) else 0
        if xd.shape[t_axis] == 0:
            raise ValueError(f"{self._name()}: empty sequence: the input {xd.shape} has T = 0 "
                             f"time steps")
        if xd.ndim == 3 and xd.shape[1 - t_axis] == 0:
            raise ValueError(f"{self._name()}: empty batch: the input {xd.shape} has N = 0 sequences")

    def _check_state(self, h, n, what):
        if h is None:
            return None
        h = _as_tensor(h)
        want = (self.num_layers * self.num_directions, n, self.hidden_size)
        if h.shape != want:
            raise ValueError(f"{self._name()}: expected {what} of shape {want} "
                             f"(num_layers * num_directions, N, H), got {h.shape}")
        if h.dtype != self.weight_ih_l0.dtype:
            raise TypeError(f"{self._name()}: {what} has dtype {h.dtype}, the weights "
                            f"{self.weight_ih_l0.dtype}")
        return h

    # -- forward -----------------------------------------------------------------------------------
    def _split_hx(self, hx, n):
        """(h0, c0) stacked states or None."""
        return self._check_state(hx, n, "h0"), None

    def _call_op(self, x, h0, c0, params, reverse, batch_first, lengths):
        raise TypeError(f"{type(self).__name__} must define _call_op(), the fused op of one direction")

    def forward(self, x, hx=None, lengths=None):
        """x: (T, N, D) ((N, T, D) with batch_first) or unbatched (T, D); hx: initial state(s)
        (num_layers * num_directions, N, H) (LSTM: a tuple (h0, c0)) or None for zeros;
        lengths: optional (N,) ints, the real length of each padded sequence.

        Returns (output (T, N, D*H), h_n) (LSTM: (output, (h_n, c_n))), as PyTorch.
        """
        x = _as_tensor(x)
        self._check_input(x)
        unbatched = x.ndim == 2
        bf = self.batch_first
        if unbatched:
            x = x.reshape(x.shape[0], 1, x.shape[1])
            bf = False
            if hx is not None:
                hx = self._unsqueeze_state(hx)
            if lengths is not None:
                lengths = np.atleast_1d(np.asarray(lengths))
        n = x.shape[0] if bf else x.shape[1]
        t = x.shape[1] if bf else x.shape[0]
        lengths = _rec.check_lengths(lengths, n, t, self._name())
        h0, c0 = self._split_hx(hx, n)
        L, ndir = self.num_layers, self.num_directions
        hs, cs = [], []
        out = x
        for k in range(L):
            outs = []
            for d in range(ndir):
                i = k * ndir + d
                params = [getattr(self, p) for p in self._layer_params[i]]
                res = self._call_op(out, _take(h0, i), _take(c0, i), params, bool(d), bf, lengths)
                outs.append(res[0])
                hs.append(res[1])
                if len(res) > 2:
                    cs.append(res[2])
            out = outs[0] if ndir == 1 else _basic.Concat.apply(*outs, axis=2)
            if self.dropout and self.training and k < L - 1:
                out = F.dropout(out, self.dropout, True)
        h_n = _stack(hs)
        c_n = _stack(cs) if cs else None
        if unbatched:
            out = out.reshape(out.shape[0], out.shape[2])
            h_n = h_n.reshape(h_n.shape[0], h_n.shape[2])
            c_n = None if c_n is None else c_n.reshape(c_n.shape[0], c_n.shape[2])
        return self._pack_result(out, h_n, c_n)

    def _unsqueeze_state(self, hx):
        h = _as_tensor(hx)
        return h.reshape(h.shape[0], 1, h.shape[-1]) if h.ndim == 2 else h

    def _pack_result(self, out, h_n, c_n):
        return out, h_n

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if not self.bias:
            s += ", bias=False"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        if self.bidirectional:
            s += ", bidirectional=True"
        return s


def _stack(ts):
    if len(ts) == 1:
        t = ts[0]
        return t.reshape((1,) + t.shape)
    return _basic.Stack.apply(*ts, axis=0)


def _pad_params(params, n):
    """[w_ih, w_hh] or [w_ih, w_hh, b_ih, b_hh] (+ extras) -> always with bias slots (None)."""
    if len(params) < n:
        params = params[:2] + [None, None] + params[2:]
    return params


class RNN(RNNBase):
    """Elman RNN: h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh), act = 'tanh' or 'relu'.

    >>> rnn = nn.RNN(10, 20, num_layers=2, nonlinearity='relu')
    >>> out, h_n = rnn(x)             # x (T, N, 10) -> out (T, N, 20), h_n (2, N, 20)
    """

    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True,
                 batch_first=False, dropout=0.0, bidirectional=False, dtype=None):
        checks.choice("RNN", "nonlinearity", nonlinearity, ("tanh", "relu"))
        self.__dict__["nonlinearity"] = nonlinearity
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, dtype)
        self.nonlinearity = nonlinearity

    def _call_op(self, x, h0, c0, params, reverse, batch_first, lengths):
        w_ih, w_hh, b_ih, b_hh = _pad_params(params, 4)
        return fast.use(_rec.RNNLayer, x).apply(x, h0, w_ih, w_hh, b_ih, b_hh,
                                                nonlinearity=self.nonlinearity, reverse=reverse,
                                                batch_first=batch_first, lengths=lengths)

    def extra_repr(self):
        s = super().extra_repr()
        return s + (", nonlinearity='relu'" if self.nonlinearity == "relu" else "")


class LSTM(RNNBase):
    """Long short-term memory (Hochreiter & Schmidhuber 1997), gates i, f, g, o as PyTorch:

        i = s(W_ii x + b_ii + W_hi h + b_hi)   f = s(...)   g = tanh(...)   o = s(...)
        c' = f * c + i * g                     h' = o * tanh(c')

    Variants:
      ``peephole=True`` (Gers & Schmidhuber 2000): i and f also see c_{t-1}, o sees c_t, through
        diagonal weights ``weight_peephole_l{k}`` of shape (3, H) (rows i, f, o);
      ``coupled=True``: no input gate, c' = f * c + (1 - f) * g; the weights then have 3H rows in
        the order f, g, o (the peephole weights 2 rows, f, o).

    >>> lstm = nn.LSTM(10, 20, batch_first=True)
    >>> out, (h_n, c_n) = lstm(x, (h0, c0))    # x (N, T, 10)
    """

    mode = "LSTM"

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, peephole=False, coupled=False, dtype=None):
        self.__dict__["peephole"] = checks.flag(type(self).__name__, "peephole", peephole)
        self.__dict__["coupled"] = checks.flag(type(self).__name__, "coupled", coupled)
        self.__dict__["n_gates"] = 3 if coupled else 4
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, dtype)

    def _extra_params(self, sfx, dtype):
        if not self.peephole:
            return []
        name = f"weight_peephole{sfx}"
        rows = 2 if self.coupled else 3
        setattr(self, name, Parameter(np.empty((rows, self.hidden_size), dtype=dtype)))
        return [name]

    def _split_hx(self, hx, n):
        if hx is None:
            return None, None
        if not (isinstance(hx, (tuple, list)) and len(hx) == 2):
            raise TypeError(f"{self._name()}: the initial state must be a tuple (h0, c0), got "
                            f"{type(hx).__name__}")
        return self._check_state(hx[0], n, "h0"), self._check_state(hx[1], n, "c0")

    def _unsqueeze_state(self, hx):
        if isinstance(hx, (tuple, list)) and len(hx) == 2:
            return tuple(RNNBase._unsqueeze_state(self, h) for h in hx)
        return hx

    def _call_op(self, x, h0, c0, params, reverse, batch_first, lengths):
        p = _pad_params(params, 4 + self.peephole)
        w_peep = p[4] if self.peephole else None
        return fast.use(_rec.LSTMLayer, x).apply(x, h0, c0, p[0], p[1], p[2], p[3], w_peep,
                                                 reverse=reverse, batch_first=batch_first,
                                                 lengths=lengths, coupled=self.coupled)

    def _pack_result(self, out, h_n, c_n):
        return out, (h_n, c_n)

    def extra_repr(self):
        s = super().extra_repr()
        if self.peephole:
            s += ", peephole=True"
        if self.coupled:
            s += ", coupled=True"
        return s


class GRU(RNNBase):
    """Gated recurrent unit (Cho et al. 2014), gates r, z, n:

        r = s(W_ir x + b_ir + W_hr h + b_hr)      z = s(W_iz x + b_iz + W_hz h + b_hz)
        variant='pytorch':  n = tanh(W_in x + b_in + r * (W_hn h + b_hn))   (reset after the product)
        variant='cho':      n = tanh(W_in x + b_in + W_hn (r * h) + b_hn)   (original: reset before)
        h' = (1 - z) * n + z * h

    Both variants have the same parameters, so their state dicts are interchangeable.
    """

    mode = "GRU"
    n_gates = 3

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, variant="pytorch", dtype=None):
        checks.choice("GRU", "variant", variant, ("pytorch", "cho"))
        self.__dict__["variant"] = variant
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, dtype)

    def _call_op(self, x, h0, c0, params, reverse, batch_first, lengths):
        w_ih, w_hh, b_ih, b_hh = _pad_params(params, 4)
        return fast.use(_rec.GRULayer, x).apply(x, h0, w_ih, w_hh, b_ih, b_hh,
                                                variant=self.variant, reverse=reverse,
                                                batch_first=batch_first, lengths=lengths)

    def extra_repr(self):
        s = super().extra_repr()
        return s + (", variant='cho'" if self.variant == "cho" else "")


# -- cells ------------------------------------------------------------------------------------------
class _CellBase(Module):
    n_gates = 1

    def __init__(self, input_size, hidden_size, bias=True, dtype=None):
        super().__init__()
        name = type(self).__name__
        self.input_size = checks.integer(name, "input_size", input_size, 1)
        self.hidden_size = checks.integer(name, "hidden_size", hidden_size, 1)
        self.bias = checks.flag(name, "bias", bias)
        dtype = dtype or backend.get_default_dtype()
        G = self.n_gates * self.hidden_size
        self.weight_ih = Parameter(np.empty((G, self.input_size), dtype=dtype))
        self.weight_hh = Parameter(np.empty((G, self.hidden_size), dtype=dtype))
        if bias:
            self.bias_ih = Parameter(np.empty(G, dtype=dtype))
            self.bias_hh = Parameter(np.empty(G, dtype=dtype))
        else:
            self.bias_ih = self.bias_hh = None
        self._extra_params(dtype)
        stdv = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            init.uniform_(p, -stdv, stdv)

    def _extra_params(self, dtype):
        pass

    def _name(self):
        return f"{type(self).__name__}(input_size={self.input_size}, hidden_size={self.hidden_size})"

    def _prep(self, x, states):
        """x (N, D) or (D,) -> a (1, N, D) sequence; states (N, H) or (H,) or None."""
        x = _as_tensor(x)
        if x.ndim not in (1, 2) or x.shape[-1] != self.input_size:
            raise ValueError(f"{self._name()}: expected input (N, {self.input_size}) or "
                             f"({self.input_size},), got shape {x.shape}")
        if x.dtype != self.weight_ih.dtype:
            raise TypeError(f"{self._name()}: input dtype {x.dtype} does not match the weights' "
                            f"{self.weight_ih.dtype}")
        unbatched = x.ndim == 1
        n = 1 if unbatched else x.shape[0]
        if n == 0:
            raise ValueError(f"{self._name()}: empty batch: input shape {x.shape}")
        out = []
        for s in states:
            if s is not None:
                s = _as_tensor(s)
                want = (self.hidden_size,) if unbatched else (n, self.hidden_size)
                if s.shape != want:
                    raise ValueError(f"{self._name()}: expected a state of shape {want}, got {s.shape}")
                if unbatched:
                    s = s.reshape(1, self.hidden_size)
            out.append(s)
        return x.reshape(1, n, self.input_size), out, unbatched

    def extra_repr(self):
        return f"{self.input_size}, {self.hidden_size}" + ("" if self.bias else ", bias=False")


def _squeeze(t, unbatched):
    return t.reshape(t.shape[-1]) if unbatched else t


class RNNCell(_CellBase):
    """One step of an Elman RNN: h' = act(W_ih x + b_ih + W_hh h + b_hh). forward(x, h=None) -> h'."""

    def __init__(self, input_size, hidden_size, bias=True, nonlinearity="tanh", dtype=None):
        checks.choice("RNNCell", "nonlinearity", nonlinearity, ("tanh", "relu"))
        super().__init__(input_size, hidden_size, bias, dtype)
        self.nonlinearity = nonlinearity

    def forward(self, x, hx=None):
        x, (h,), ub = self._prep(x, [hx])
        _, h_n = _rec.RNNLayer.apply(x, h, self.weight_ih, self.weight_hh, self.bias_ih,
                                     self.bias_hh, nonlinearity=self.nonlinearity)
        return _squeeze(h_n, ub)


class LSTMCell(_CellBase):
    """One LSTM step. forward(x, (h, c)=None) -> (h', c'). ``peephole`` and ``coupled`` as in LSTM
    (peephole weights ``weight_peephole``)."""

    def __init__(self, input_size, hidden_size, bias=True, peephole=False, coupled=False, dtype=None):
        self.__dict__["peephole"] = checks.flag(type(self).__name__, "peephole", peephole)
        self.__dict__["coupled"] = checks.flag(type(self).__name__, "coupled", coupled)
        self.__dict__["n_gates"] = 3 if coupled else 4
        super().__init__(input_size, hidden_size, bias, dtype)

    def _extra_params(self, dtype):
        if self.peephole:
            rows = 2 if self.coupled else 3
            self.weight_peephole = Parameter(np.empty((rows, self.hidden_size), dtype=dtype))

    def forward(self, x, hx=None):
        if hx is not None and not (isinstance(hx, (tuple, list)) and len(hx) == 2):
            raise TypeError(f"{self._name()}: the state must be a tuple (h, c), got {type(hx).__name__}")
        x, (h, c), ub = self._prep(x, [None, None] if hx is None else list(hx))
        _, h_n, c_n = _rec.LSTMLayer.apply(
            x, h, c, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh,
            self.weight_peephole if self.peephole else None, coupled=self.coupled)
        return _squeeze(h_n, ub), _squeeze(c_n, ub)


class GRUCell(_CellBase):
    """One GRU step. forward(x, h=None) -> h'. ``variant`` 'pytorch' or 'cho' as in GRU."""

    n_gates = 3

    def __init__(self, input_size, hidden_size, bias=True, variant="pytorch", dtype=None):
        checks.choice("GRUCell", "variant", variant, ("pytorch", "cho"))
        super().__init__(input_size, hidden_size, bias, dtype)
        self.variant = variant

    def forward(self, x, hx=None):
        x, (h,), ub = self._prep(x, [hx])
        _, h_n = _rec.GRULayer.apply(x, h, self.weight_ih, self.weight_hh, self.bias_ih,
                                     self.bias_hh, variant=self.variant)
        return _squeeze(h_n, ub)
