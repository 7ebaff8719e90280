"""The fused recurrent ops (chainrule.ops.recurrent): the LSTM variants (peephole, coupled) and the
original Cho GRU against step-by-step references written from the equations (in PyTorch, whose
autograd then gives the reference gradients), finite differences, and variable lengths against
running each sequence alone."""
import warnings

import numpy as np
import pytest
import torch

import chainrule as cr
from chainrule import nn
from chainrule.ops import recurrent as R


# -- references written from the equations ----------------------------------------------------------
def ref_lstm_step(x, h, c, w_ih, w_hh, b, p, coupled):
    """Gers & Schmidhuber (2000) peepholes: i, f see c_{t-1}; o sees c_t; p = (i, f, o) rows
    (coupled: (f, o)). Coupled: no input gate, c_t = f c_{t-1} + (1 - f) g. Gate rows: i, f, g, o
    (coupled: f, g, o)."""
    z = x @ w_ih.T + h @ w_hh.T + b
    if coupled:
        zf, zg, zo = z.chunk(3, dim=1)
        pf, po = (p[0], p[1]) if p is not None else (0, 0)
        f = torch.sigmoid(zf + pf * c)
        g = torch.tanh(zg)
        c_new = f * c + (1 - f) * g
    else:
        zi, zf, zg, zo = z.chunk(4, dim=1)
        pi, pf, po = (p[0], p[1], p[2]) if p is not None else (0, 0, 0)
        i = torch.sigmoid(zi + pi * c)
        f = torch.sigmoid(zf + pf * c)
        g = torch.tanh(zg)
        c_new = f * c + i * g
    o = torch.sigmoid(zo + po * c_new)
    return o * torch.tanh(c_new), c_new


def ref_gru_step(x, h, w_ih, w_hh, b_ih, b_hh, variant):
    """r = s(W_ir x + b_ir + W_hr h + b_hr), z likewise; PyTorch: n = tanh(W_in x + b_in + r (W_hn h
    + b_hn)); Cho et al. 2014: n = tanh(W_in x + b_in + W_hn (r h) + b_hn); h' = (1 - z) n + z h."""
    H = h.shape[1]
    gx = x @ w_ih.T + b_ih
    r = torch.sigmoid(gx[:, :H] + h @ w_hh[:H].T + b_hh[:H])
    z = torch.sigmoid(gx[:, H:2 * H] + h @ w_hh[H:2 * H].T + b_hh[H:2 * H])
    if variant == "cho":
        n = torch.tanh(gx[:, 2 * H:] + (r * h) @ w_hh[2 * H:].T + b_hh[2 * H:])
    else:
        n = torch.tanh(gx[:, 2 * H:] + r * (h @ w_hh[2 * H:].T + b_hh[2 * H:]))
    return (1 - z) * n + z * h


def ref_model(cm, x, h0, c0, lengths, params):
    """Run the layers of chainrule model ``cm`` step by step in torch with the torch parameters
    ``params`` (name -> tensor). Time-major x (T, N, D). Returns out, h_n[, c_n]."""
    T, N, _ = x.shape
    lstm = isinstance(cm, nn.LSTM)
    ndir = cm.num_directions
    valid = None
    if lengths is not None:
        valid = torch.tensor(np.arange(T)[:, None] < np.asarray(lengths)[None, :])[..., None]
    hs, cs, inp = [], [], x
    for k in range(cm.num_layers):
        outs = []
        for d in range(ndir):
            sfx = f"_l{k}" + ("_reverse" if d else "")
            w_ih, w_hh = params["weight_ih" + sfx], params["weight_hh" + sfx]
            b_ih, b_hh = params["bias_ih" + sfx], params["bias_hh" + sfx]
            idx = k * ndir + d
            h = h0[idx] if h0 is not None else torch.zeros(N, cm.hidden_size, dtype=x.dtype)
            c = c0[idx] if c0 is not None else torch.zeros(N, cm.hidden_size, dtype=x.dtype)
            ys = [None] * T
            for t in (range(T - 1, -1, -1) if d else range(T)):
                if lstm:
                    p = params.get("weight_peephole" + sfx)
                    hn, cn = ref_lstm_step(inp[t], h, c, w_ih, w_hh, b_ih + b_hh, p, cm.coupled)
                else:
                    hn = ref_gru_step(inp[t], h, w_ih, w_hh, b_ih, b_hh, cm.variant)
                    cn = c
                if valid is not None:           # padded steps keep the state, output zero
                    hn = torch.where(valid[t], hn, h)
                    cn = torch.where(valid[t], cn, c)
                    ys[t] = torch.where(valid[t], hn, torch.zeros_like(hn))
                else:
                    ys[t] = hn
                h, c = hn, cn
            outs.append(torch.stack(ys))
            hs.append(h)
            cs.append(c)
        inp = torch.cat(outs, dim=2)
    if lstm:
        return inp, torch.stack(hs), torch.stack(cs)
    return inp, torch.stack(hs)


VARIANTS = [
    ("lstm", dict(peephole=True)),
    ("lstm", dict(coupled=True)),
    ("lstm", dict(peephole=True, coupled=True)),
    ("gru", dict(variant="cho")),
    ("lstm", dict()),                  # the references also reproduce the standard forms
    ("gru", dict()),
]


def _model(kind, D, H, **kw):
    cls = nn.LSTM if kind == "lstm" else nn.GRU
    return cls(D, H, dtype="float64", **kw)


@pytest.mark.parametrize("kind,opts", VARIANTS)
@pytest.mark.parametrize("layers,bidir,bf,use_lengths", [(1, False, False, False), (2, True, True, False),
                                                          (2, True, False, True)])
def test_variants_against_step_by_step_reference(kind, opts, layers, bidir, bf, use_lengths):
    T, N, D, H = 5, 3, 4, 3
    cm = _model(kind, D, H, num_layers=layers, bidirectional=bidir, batch_first=bf, **opts)
    rng = np.random.default_rng(7)
    for p in cm.parameters():                  # wider than the default init: exercise the gates
        p.data[...] = rng.uniform(-0.8, 0.8, p.shape)
    x = rng.standard_normal((N, T, D) if bf else (T, N, D))
    S = layers * (2 if bidir else 1)
    h0 = rng.standard_normal((S, N, H))
    c0 = rng.standard_normal((S, N, H))
    lengths = np.array([5, 2, 3]) if use_lengths else None
    lstm = kind == "lstm"

    xc = cr.tensor(x, requires_grad=True)
    hc, cc = cr.tensor(h0, requires_grad=True), cr.tensor(c0, requires_grad=True)
    outs_c = cm(xc, (hc, cc) if lstm else hc, lengths=lengths)
    outs_c = [outs_c[0], *outs_c[1]] if lstm else list(outs_c)

    params = {n: torch.tensor(p.data.copy(), requires_grad=True) for n, p in cm.named_parameters()}
    xt = torch.tensor(x, requires_grad=True)
    ht, ct = torch.tensor(h0, requires_grad=True), torch.tensor(c0, requires_grad=True)
    outs_t = list(ref_model(cm, xt.transpose(0, 1) if bf else xt, ht, ct if lstm else None,
                            lengths, params))
    if bf:
        outs_t[0] = outs_t[0].transpose(0, 1)

    lc = lt = 0
    for k, (a, b) in enumerate(zip(outs_c, outs_t)):
        np.testing.assert_allclose(a.data, b.detach().numpy(), rtol=1e-10, atol=1e-12,
                                   err_msg=f"output {k}")
        w = rng.standard_normal(a.shape)
        lc = lc + (a * cr.tensor(w)).sum()
        lt = lt + (b * torch.tensor(w)).sum()
    lc.backward()
    lt.backward()
    pairs = [("x", xc, xt), ("h0", hc, ht)] + ([("c0", cc, ct)] if lstm else [])
    pairs += [(n, p, params[n]) for n, p in cm.named_parameters()]
    for name, a, b in pairs:
        np.testing.assert_allclose(a.grad.data, b.grad.numpy(), rtol=1e-9, atol=1e-12,
                                   err_msg=f"dL/d{name}")


# -- finite differences on the ops directly ---------------------------------------------------------
def _t(rng, *shape):
    return cr.tensor(rng.uniform(-1, 1, shape), requires_grad=True)


@pytest.mark.parametrize("peephole,coupled", [(True, False), (False, True), (True, True), (False, False)])
@pytest.mark.parametrize("reverse,bf,use_lengths", [(False, False, False), (True, True, True)])
def test_lstm_op_gradcheck(peephole, coupled, reverse, bf, use_lengths):
    rng = np.random.default_rng(1)
    T, N, D, H = 3, 2, 2, 2
    G = (3 if coupled else 4) * H
    x = _t(rng, *((N, T, D) if bf else (T, N, D)))
    args = [x, _t(rng, N, H), _t(rng, N, H), _t(rng, G, D), _t(rng, G, H), _t(rng, G), _t(rng, G),
            _t(rng, 2 if coupled else 3, H) if peephole else None]
    lengths = np.array([3, 1]) if use_lengths else None
    assert cr.gradcheck(lambda *a: R.LSTMLayer.apply(*a, reverse=reverse, batch_first=bf,
                                                     lengths=lengths, coupled=coupled), args)


@pytest.mark.parametrize("variant", ["pytorch", "cho"])
@pytest.mark.parametrize("reverse,bf,use_lengths", [(False, False, False), (True, True, True),
                                                    (False, True, True)])
def test_gru_op_gradcheck(variant, reverse, bf, use_lengths):
    rng = np.random.default_rng(2)
    T, N, D, H = 3, 2, 2, 2
    x = _t(rng, *((N, T, D) if bf else (T, N, D)))
    args = [x, _t(rng, N, H), _t(rng, 3 * H, D), _t(rng, 3 * H, H), _t(rng, 3 * H), _t(rng, 3 * H)]
    lengths = np.array([2, 3]) if use_lengths else None
    assert cr.gradcheck(lambda *a: R.GRULayer.apply(*a, variant=variant, reverse=reverse,
                                                    batch_first=bf, lengths=lengths), args)


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_rnn_op_gradcheck(nonlinearity):
    rng = np.random.default_rng(3)
    T, N, D, H = 4, 2, 2, 3
    args = [_t(rng, T, N, D), _t(rng, N, H), _t(rng, H, D), _t(rng, H, H), _t(rng, H), _t(rng, H)]
    for reverse, lengths in ((False, None), (True, np.array([4, 2]))):
        assert cr.gradcheck(lambda *a: R.RNNLayer.apply(*a, nonlinearity=nonlinearity,
                                                        reverse=reverse, lengths=lengths), args)


def test_ops_without_bias_or_initial_state():
    rng = np.random.default_rng(4)
    T, N, D, H = 3, 2, 2, 2
    x = _t(rng, T, N, D)
    assert cr.gradcheck(lambda x, a, b: R.LSTMLayer.apply(x, None, None, a, b),
                        [x, _t(rng, 4 * H, D), _t(rng, 4 * H, H)])
    assert cr.gradcheck(lambda x, a, b: R.GRULayer.apply(x, None, a, b, variant="cho"),
                        [x, _t(rng, 3 * H, D), _t(rng, 3 * H, H)])
    assert cr.gradcheck(lambda x, a, b: R.RNNLayer.apply(x, None, a, b),
                        [x, _t(rng, H, D), _t(rng, H, H)])


# -- variable lengths: a padded batch equals each sequence alone ------------------------------------
MODELS = [
    lambda: nn.LSTM(3, 4, num_layers=2, bidirectional=True, batch_first=True, dtype="float64"),
    lambda: nn.LSTM(3, 4, peephole=True, coupled=True, batch_first=True, dtype="float64"),
    lambda: nn.GRU(3, 4, num_layers=2, batch_first=True, dtype="float64"),
    lambda: nn.GRU(3, 4, bidirectional=True, variant="cho", batch_first=True, dtype="float64"),
    lambda: nn.RNN(3, 4, nonlinearity="relu", bidirectional=True, batch_first=True, dtype="float64"),
]


@pytest.mark.parametrize("make", MODELS)
def test_lengths_equal_running_each_sequence_alone(make):
    m = make()
    rng = np.random.default_rng(8)
    lengths = np.array([5, 1, 3, 4])
    N, T = len(lengths), 6                   # padded beyond the longest sequence, too
    x = rng.standard_normal((N, T, 3))
    x[np.arange(T)[None, :] >= lengths[:, None]] = 7.0     # padding values must not matter
    xb = cr.tensor(x, requires_grad=True)
    out, state = m(xb, lengths=lengths)
    h_n = state[0] if isinstance(m, nn.LSTM) else state
    w = rng.standard_normal(out.shape)
    wh = rng.standard_normal(h_n.shape)
    ((out * cr.tensor(w)).sum() + (h_n * cr.tensor(wh)).sum()).backward()
    grads = {n: p.grad.data.copy() for n, p in m.named_parameters()}
    assert np.all(out.data[np.arange(T)[None, :] >= lengths[:, None]] == 0)
    m.zero_grad()
    for i, L in enumerate(lengths):
        xi = cr.tensor(x[i:i + 1, :L], requires_grad=True)
        oi, si = m(xi)
        hi = si[0] if isinstance(m, nn.LSTM) else si
        np.testing.assert_allclose(oi.data[0], out.data[i, :L], rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(hi.data[:, 0], h_n.data[:, i], rtol=1e-12, atol=1e-14)
        ((oi * cr.tensor(w[i:i + 1, :L])).sum() + (hi * cr.tensor(wh[:, i:i + 1])).sum()).backward()
        np.testing.assert_allclose(xi.grad.data[0], xb.grad.data[i, :L], rtol=1e-10, atol=1e-12)
        assert np.all(xb.grad.data[i, L:] == 0), "padded inputs get no gradient"
    for n, p in m.named_parameters():       # the per-sequence gradients add up to the batch's
        np.testing.assert_allclose(p.grad.data, grads[n], rtol=1e-9, atol=1e-12, err_msg=n)


def test_many_to_one_last_step_helper():
    from chainrule.nn.utils_rnn import last_step, pad_sequence
    rng = np.random.default_rng(0)
    seqs = [rng.standard_normal((L, 3)) for L in (4, 2, 5)]
    x, lengths = pad_sequence(seqs, batch_first=True)
    assert x.shape == (3, 5, 3) and list(lengths) == [4, 2, 5]
    m = nn.GRU(3, 4, batch_first=True, dtype="float64")
    out, h_n = m(x, lengths=lengths)
    last = last_step(out, lengths, batch_first=True)
    np.testing.assert_allclose(last.data, h_n.data[0], rtol=1e-14)
    last.sum().backward()
    xt, lt = pad_sequence(seqs)                 # time-major
    assert xt.shape == (5, 3, 3)
    np.testing.assert_array_equal(xt.data[:, 1], x.data[1])


# -- numerics ---------------------------------------------------------------------------------------
def test_saturated_gates_no_warnings_float32():
    """Huge pre-activations: sigmoid through tanh saturates cleanly, no overflow warnings."""
    m = nn.LSTM(2, 3)
    for p in m.parameters():
        p.data[...] = 1e4
    x = cr.tensor(np.full((4, 2, 2), 50.0, dtype=np.float32), requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out, (h, c) = m(x)
        out.sum().backward()
    assert np.all(np.isfinite(out.data)) and np.all(np.isfinite(x.grad.data))
    np.testing.assert_allclose(out.data, np.tanh(np.arange(1, 5, dtype=np.float32))[:, None, None]
                               * np.ones((4, 2, 3)), rtol=1e-6)


def test_long_sequence_no_recursion_and_float32_close_to_torch():
    """T = 600: one fused op per layer direction, so backward is shallow; float32 against torch
    (run on one torch thread: on a busy machine its spinning threads take seconds here)."""
    tm = torch.nn.LSTM(3, 8)
    cm = nn.LSTM(3, 8)
    cm.load_state_dict({k: v.detach().numpy() for k, v in tm.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((600, 2, 3)).astype(np.float32)
    xc, xt = cr.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    oc, _ = cm(xc)
    oc.sum().backward()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        ot, _ = tm(xt)
        ot.sum().backward()
    finally:
        torch.set_num_threads(threads)
    np.testing.assert_allclose(oc.data, ot.detach().numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(xc.grad.data, xt.grad.numpy(), rtol=1e-3, atol=1e-4)


# -- the machinery behind the speed: pooled buffers and the embedding-fused first layer ------------
def _grads_of(model, emb, idx, dense):
    model.zero_grad()
    emb.zero_grad()
    x = emb(idx)
    if dense:                                    # a plain tensor: no embedding fusion
        x = cr.tensor(x.data.copy(), requires_grad=True)
    out, state = model(x)
    h = state[0] if isinstance(state, tuple) else state
    rng = np.random.default_rng(3)
    ((out * cr.tensor(rng.standard_normal(out.shape))).sum()
     + (h * cr.tensor(rng.standard_normal(h.shape))).sum()).backward()
    gs = {n: p.grad.data.copy() for n, p in model.named_parameters()}
    gs["input"] = (x.grad if dense else emb.weight.grad).data.copy()
    return out.data.copy(), gs


@pytest.mark.parametrize("make", [
    lambda: nn.LSTM(4, 5, num_layers=2, bidirectional=True, batch_first=True, dtype="float64"),
    lambda: nn.LSTM(4, 5, peephole=True, dtype="float64"),
    lambda: nn.GRU(4, 5, bidirectional=True, batch_first=True, dtype="float64"),
    lambda: nn.GRU(4, 5, variant="cho", batch_first=True, dtype="float64"),
    lambda: nn.RNN(4, 5, bidirectional=True, dtype="float64"),
])
def test_fused_embedding_agrees_with_feeding_the_looked_up_vectors(make):
    """The embedding-fused first layer (``tokens=``) gives the outputs and gradients of feeding
    the looked-up vectors."""
    cr.manual_seed(0)
    m = make()
    emb = nn.Embedding(6, 4, dtype="float64")
    idx = np.random.default_rng(0).integers(0, 6, (3, 9) if m.batch_first else (9, 3))
    out0, g0 = _grads_of(m, emb, idx, dense=True)
    for dense in (True, False):
        out, g = _grads_of(m, emb, idx, dense)
        np.testing.assert_allclose(out, out0, rtol=1e-13, atol=1e-14)
        if not dense:                            # the table's gradient: scatter the dense one
            ref = np.zeros_like(g["input"])
            np.add.at(ref, idx, g0["input"])
            g0 = {**g0, "input": ref}
        for k in g0:
            np.testing.assert_allclose(g[k], g0[k], rtol=1e-10, atol=1e-12, err_msg=k)


@pytest.mark.parametrize("cls", [nn.LSTM, nn.GRU, nn.RNN])
def test_retain_graph_second_backward(cls):
    m = cls(3, 4, batch_first=True, dtype="float64")
    x = cr.tensor(np.random.default_rng(1).standard_normal((2, 40, 3)), requires_grad=True)
    out, _ = m(x)
    loss = (out * out).sum()
    loss.backward(retain_graph=True)
    g1 = {n: p.grad.data.copy() for n, p in m.named_parameters()}
    gx = x.grad.data.copy()
    loss.backward()
    for n, p in m.named_parameters():
        np.testing.assert_allclose(p.grad.data, 2 * g1[n], rtol=1e-13, err_msg=n)
    np.testing.assert_allclose(x.grad.data, 2 * gx, rtol=1e-13)


def test_no_grad_forward_equals_recorded_forward():
    m = nn.LSTM(3, 4, peephole=True, bidirectional=True, dtype="float64")
    x = cr.tensor(np.random.default_rng(2).standard_normal((6, 2, 3)))
    with cr.no_grad():
        a, (ha, ca) = m(x, lengths=[6, 3])
    b, (hb, cb) = m(x, lengths=[6, 3])
    for u, v in ((a, b), (ha, hb), (ca, cb)):
        np.testing.assert_array_equal(u.data, v.data)
