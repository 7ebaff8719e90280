"""The course's gradient-flow picture: how far back through time a gradient reaches.

For a loss on the last state h_T of a recurrent network, dL/dh_t = dL/dh_T * prod_{s>t} dh_s/dh_{s-1}:
a product of T - t Jacobians, which shrinks (vanishing) or grows (exploding) geometrically with the
distance T - t unless each factor is close to the identity, which the LSTM's cell path
c_t = f_t * c_{t-1} + ... gives when its forget gates are near 1. Gradient clipping does not fix
vanishing, but it keeps an exploding gradient from throwing the weights away.

>>> data = plot_gradient_flow("gradient_flow.png")     # the three panels below, as a PNG
>>> norms = hidden_state_gradient_norms("lstm", seq_len=100, forget_bias=3.0)   # (100,) ||dL/dh_t||
"""
import os

import numpy as np

from .. import backend, nn, optim
from ..autograd import Tensor
from ..nn import functional as F

__all__ = ["hidden_state_gradient_norms", "clipping_experiment", "plot_gradient_flow",
           "DEFAULT_CURVES"]

# (label, keyword arguments of hidden_state_gradient_norms)
DEFAULT_CURVES = (
    ("vanilla RNN, tanh, default init", dict(cell="rnn")),
    ("vanilla RNN, tanh, W_hh = 3 x orthogonal", dict(cell="rnn", recurrent_scale=3.0)),
    ("LSTM, default init (forget bias 0)", dict(cell="lstm")),
    ("LSTM, forget-gate bias 3", dict(cell="lstm", forget_bias=3.0)),
)


def _orthogonal(rng, n):
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    return q * np.sign(np.diag(r))


def hidden_state_gradient_norms(cell="rnn", seq_len=100, hidden_size=32, input_size=8,
                                batch_size=16, nonlinearity="tanh", recurrent_scale=None,
                                forget_bias=None, seed=0):
    """||dL/dh_t|| for t = 1..seq_len (an array (seq_len,)), for L = <v, h_T> with a random v.

    The cell (``'rnn'``: nn.RNNCell with ``nonlinearity``; ``'lstm'``: nn.LSTMCell; ``'gru'``) runs
    step by step over random N(0, 1) inputs (batch_size, input_size), float64; every h_t keeps its
    gradient (``Tensor.retain_grad()``), and one backward pass from L fills them all.
    ``recurrent_scale``: set the recurrent matrix (the RNN's W_hh, or every gate block of the
    LSTM's / GRU's) to ``recurrent_scale`` times a random orthogonal matrix, so that its singular
    values all equal the scale. ``forget_bias``: the LSTM's forget-gate bias (b_ih; b_hh set to 0).
    """
    if seq_len < 1:
        raise ValueError(f"hidden_state_gradient_norms: seq_len must be >= 1, got {seq_len}")
    rng = np.random.default_rng(seed)
    state = backend.get_rng_state()
    backend.manual_seed(seed)
    try:
        if cell == "rnn":
            m = nn.RNNCell(input_size, hidden_size, nonlinearity=nonlinearity, dtype="float64")
        elif cell == "lstm":
            m = nn.LSTMCell(input_size, hidden_size, dtype="float64")
        elif cell == "gru":
            m = nn.GRUCell(input_size, hidden_size, dtype="float64")
        else:
            raise ValueError(f"hidden_state_gradient_norms: cell must be 'rnn', 'lstm' or 'gru', "
                             f"got {cell!r}")
    finally:
        backend.set_rng_state(state)
    H = hidden_size
    if recurrent_scale is not None:
        w = m.weight_hh.data
        for k in range(w.shape[0] // H):
            w[k * H:(k + 1) * H] = recurrent_scale * _orthogonal(rng, H)
    if forget_bias is not None:
        if cell != "lstm":
            raise ValueError("hidden_state_gradient_norms: forget_bias applies to the LSTM only")
        m.bias_ih.data[H:2 * H] = forget_bias            # gate order i, f, g, o
        m.bias_hh.data[H:2 * H] = 0.0
    x = rng.standard_normal((seq_len, batch_size, input_size))
    hs, state = [], None
    for t in range(seq_len):
        state = m(x[t], state)
        h = state[0] if isinstance(state, tuple) else state
        h.retain_grad()
        hs.append(h)
    v = Tensor(rng.standard_normal((batch_size, H)))
    (hs[-1] * v).sum().backward()
    return np.array([np.linalg.norm(h.grad.data) if h.grad is not None else 0.0 for h in hs])


def clipping_experiment(max_norm=1.0, steps=200, seq_len=40, hidden_size=32, lr=0.05,
                        recurrent_scale=1.5, batch_size=32, seed=0):
    """Train a tanh RNN whose W_hh is ``recurrent_scale`` x orthogonal (an exploding regime) to
    recall its first input after ``seq_len`` steps (MSE), with plain SGD, once with
    ``clip_grad_norm_(max_norm)`` and once without. Returns {'clipped': {...}, 'unclipped': {...}}
    with per-step 'loss' and 'grad_norm' (before clipping) arrays; NaN once a run has diverged.
    The same initial weights and batches are used in both runs."""
    out = {}
    for name, clip in (("unclipped", None), ("clipped", max_norm)):
        rng = np.random.default_rng(seed)
        state = backend.get_rng_state()
        backend.manual_seed(seed)
        try:
            rnn = nn.RNN(1, hidden_size, batch_first=True)
            head = nn.Linear(hidden_size, 1)
        finally:
            backend.set_rng_state(state)
        rnn.weight_hh_l0.data[...] = recurrent_scale * _orthogonal(rng, hidden_size)
        params = list(rnn.parameters()) + list(head.parameters())
        opt = optim.SGD(params, lr=lr)
        losses, norms = np.full(steps, np.nan), np.full(steps, np.nan)
        for s in range(steps):
            x = (0.1 * rng.standard_normal((batch_size, seq_len, 1))).astype(np.float32)
            y = 10.0 * x[:, 0, :]                          # recall the first input: target variance 1
            with np.errstate(all="ignore"):
                _, h = rnn(x)
                loss = F.mse_loss(head(h[-1]), y)
                lv = float(loss.item())
                if not np.isfinite(lv):
                    break                                   # diverged: the rest stays NaN
                opt.zero_grad()
                loss.backward()
                g = optim.clip_grad_norm_(params, clip if clip is not None else float("inf"))
                opt.step()
            losses[s], norms[s] = lv, g
        out[name] = {"loss": losses, "grad_norm": norms, "max_norm": clip}
    return out


def plot_gradient_flow(path, seq_len=100, hidden_size=32, curves=DEFAULT_CURVES, clip_steps=200,
                       max_norm=1.0, clip_recurrent_scale=1.5, clip_seq_len=40, seed=0, dpi=110):
    """Draw the gradient-flow figure and save it as a PNG at ``path`` (matplotlib Agg canvas):

    1. ||dL/dh_t|| / ||dL/dh_T|| against t (log scale) for each of ``curves``: the vanilla RNN's
       gradient vanishes (or, with a large W_hh, explodes) geometrically, the LSTM's with a
       forget-gate bias near 1 stays within a few factors of ten;
    2. the gradient norm per SGD step of an exploding RNN, with and without clipping;
    3. its training loss with and without clipping (the unclipped run diverges to inf/NaN).

    Returns the data: {'norms': {label: array}, 'clipping': clipping_experiment(...), 'path': path}.
    """
    from .plots import _figure           # Agg canvas, no pyplot: the user's backend is untouched

    norms = {}
    for label, kw in curves:
        kw = dict(kw)
        kw.setdefault("hidden_size", hidden_size)
        norms[label] = hidden_state_gradient_norms(seq_len=seq_len, seed=seed, **kw)
    clip = clipping_experiment(max_norm=max_norm, steps=clip_steps, seq_len=clip_seq_len,
                               recurrent_scale=clip_recurrent_scale, seed=seed)

    fig = _figure(figsize=(17, 4.8))
    axes = fig.subplots(1, 3)
    ax = axes[0]
    t = np.arange(1, seq_len + 1)
    for label, n in norms.items():
        with np.errstate(divide="ignore", invalid="ignore"):
            ax.semilogy(t, n / n[-1], label=label, lw=1.8)
    ax.set_xlabel("time step t  (the loss reads h_T at t = T = %d)" % seq_len)
    ax.set_ylabel("||dL/dh_t|| / ||dL/dh_T||")
    ax.set_title("Gradient flowing back through time")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8, loc="best")

    steps = np.arange(1, clip_steps + 1)
    colors = {"unclipped": "tab:red", "clipped": "tab:blue"}
    ax = axes[1]
    for name, r in clip.items():
        ax.semilogy(steps, r["grad_norm"], color=colors[name], lw=1.2,
                    label=f"{name} (norm before clipping)" if name == "clipped" else name)
    ax.axhline(max_norm, color="k", ls="--", lw=1, label=f"clip threshold {max_norm:g}")
    ax.set_xlabel("SGD step")
    ax.set_ylabel("gradient norm ||dL/dtheta||")
    ax.set_title(f"Exploding RNN (tanh, W_hh = {clip_recurrent_scale:g} x orthogonal, "
                 f"T = {clip_seq_len})")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)

    ax = axes[2]
    for name, r in clip.items():
        ls = r["loss"]
        label = name
        bad = np.flatnonzero(~np.isfinite(ls))
        if len(bad):
            label += f" (diverged at step {bad[0] + 1})"
        ax.semilogy(steps, ls, color=colors[name], lw=1.2, label=label)
        if len(bad):
            ax.axvline(bad[0] + 1, color=colors[name], ls=":", lw=1)
    ax.set_xlabel("SGD step")
    ax.set_ylabel("training loss (MSE)")
    ax.set_title(f"Effect of clip_grad_norm_(max_norm={max_norm:g})")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    path = os.fspath(path)
    if os.path.dirname(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
    fig.savefig(path, dpi=dpi, format="png")
    return {"norms": norms, "clipping": clip, "path": path}
