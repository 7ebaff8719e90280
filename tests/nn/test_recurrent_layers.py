"""RNN / LSTM / GRU layers and cells against PyTorch (float64): outputs, final states and every
gradient (input, initial states, all parameters), for every option; state-dict loading; errors."""
import numpy as np
import pytest
import torch

import chainrule as cr
from chainrule import nn

RTOL, ATOL = 1e-10, 1e-12

KINDS = {
    "rnn_tanh": (nn.RNN, torch.nn.RNN, {}),
    "rnn_relu": (nn.RNN, torch.nn.RNN, {"nonlinearity": "relu"}),
    "lstm": (nn.LSTM, torch.nn.LSTM, {}),
    "gru": (nn.GRU, torch.nn.GRU, {}),
}


def _close(a, b, msg):
    a = a.data if isinstance(a, cr.Tensor) else a
    b = b.detach().numpy() if isinstance(b, torch.Tensor) else b
    np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL, err_msg=msg)


def make_pair(kind, D, H, **kw):
    cr_cls, t_cls, extra = KINDS[kind]
    kw = {**extra, **kw}
    tm = t_cls(D, H, **kw).double()
    cm = cr_cls(D, H, dtype="float64", **kw)
    cm.load_state_dict({k: v.detach().numpy() for k, v in tm.state_dict().items()})
    return cm, tm


def run_both(cm, tm, x, hx, lengths=None, rng=None):
    """Forward both with random upstream gradients on every output; returns the pieces to compare."""
    is_lstm = isinstance(cm, nn.LSTM)
    xc = cr.tensor(x.copy(), requires_grad=True)
    xt = torch.tensor(x.copy(), requires_grad=True)
    hc = ht = None
    if hx is not None:
        hc = [cr.tensor(h.copy(), requires_grad=True) for h in hx]
        ht = [torch.tensor(h.copy(), requires_grad=True) for h in hx]
    if lengths is None:
        oc = cm(xc, None if hc is None else (tuple(hc) if is_lstm else hc[0]))
        ot = tm(xt, None if ht is None else (tuple(ht) if is_lstm else ht[0]))
    else:
        oc = cm(xc, None if hc is None else (tuple(hc) if is_lstm else hc[0]), lengths=lengths)
        packed = torch.nn.utils.rnn.pack_padded_sequence(
            xt, torch.tensor(lengths), batch_first=tm.batch_first, enforce_sorted=False)
        po, st = tm(packed, None if ht is None else (tuple(ht) if is_lstm else ht[0]))
        out, _ = torch.nn.utils.rnn.pad_packed_sequence(po, batch_first=tm.batch_first,
                                                        total_length=x.shape[1 if tm.batch_first else 0])
        ot = (out, st)
    flat_c = [oc[0]] + (list(oc[1]) if is_lstm else [oc[1]])
    flat_t = [ot[0]] + (list(ot[1]) if is_lstm else [ot[1]])
    rng = rng or np.random.default_rng(5)
    lc = lt = 0
    for a, b in zip(flat_c, flat_t):
        assert a.shape == tuple(b.shape)
        w = rng.standard_normal(a.shape)
        lc = lc + (a * cr.tensor(w)).sum()
        lt = lt + (b * torch.tensor(w)).sum()
    lc.backward()
    lt.backward()
    return flat_c, flat_t, (xc, xt), (hc, ht)


def check_all(cm, tm, x, hx, lengths=None):
    flat_c, flat_t, (xc, xt), (hc, ht) = run_both(cm, tm, x, hx, lengths)
    for k, (a, b) in enumerate(zip(flat_c, flat_t)):
        _close(a, b, f"output {k}")
    _close(xc.grad, xt.grad, "dL/dx")
    if hc is not None:
        for k, (a, b) in enumerate(zip(hc, ht)):
            _close(a.grad, b.grad, f"dL/dh0 (state {k})")
    cp = dict(cm.named_parameters())
    tp = dict(tm.named_parameters())
    assert list(cp) == list(tp)
    for name, p in tp.items():
        assert cp[name].grad is not None, name
        _close(cp[name].grad, p.grad, f"dL/d{name}")


CONFIGS = [
    # num_layers, bidirectional, batch_first, bias, initial state
    (1, False, False, True, False),
    (1, False, True, True, True),
    (2, True, False, True, True),
    (2, True, True, False, False),
    (2, False, True, True, True),
    (1, True, False, False, True),
]


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("layers,bidir,bf,bias,with_hx", CONFIGS)
def test_layer_matches_torch(kind, layers, bidir, bf, bias, with_hx):
    T, N, D, H = 5, 3, 4, 6
    cm, tm = make_pair(kind, D, H, num_layers=layers, bidirectional=bidir, batch_first=bf, bias=bias)
    rng = np.random.default_rng(layers * 7 + bidir * 3 + bf)
    x = rng.standard_normal((N, T, D) if bf else (T, N, D))
    hx = None
    if with_hx:
        shape = (layers * (2 if bidir else 1), N, H)
        hx = [rng.standard_normal(shape) for _ in range(2 if kind == "lstm" else 1)]
    check_all(cm, tm, x, hx)


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("bidir,bf,with_hx",
                         [(False, True, True), (True, False, False), (True, True, True)])
def test_variable_lengths_match_torch_packed(kind, bidir, bf, with_hx):
    """lengths= gives what PyTorch gives for the packed batch: zero outputs past each length,
    h_n at each sequence's last real step (reverse direction started there), and all gradients."""
    T, N, D, H = 6, 4, 3, 5
    cm, tm = make_pair(kind, D, H, num_layers=2, bidirectional=bidir, batch_first=bf)
    rng = np.random.default_rng(11)
    x = rng.standard_normal((N, T, D) if bf else (T, N, D))
    lengths = np.array([6, 2, 4, 1])
    hx = None
    if with_hx:
        shape = (2 * (2 if bidir else 1), N, H)
        hx = [rng.standard_normal(shape) for _ in range(2 if kind == "lstm" else 1)]
    check_all(cm, tm, x, hx, lengths=lengths)


@pytest.mark.parametrize("kind", list(KINDS))
def test_unbatched_input(kind):
    T, D, H = 4, 3, 5
    cm, tm = make_pair(kind, D, H, num_layers=2)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((T, D))
    hx = [rng.standard_normal((2, H)) for _ in range(2 if kind == "lstm" else 1)]
    check_all(cm, tm, x, hx)


def test_dropout_between_layers_train_only():
    T, N, D, H = 5, 3, 4, 6
    cm, tm = make_pair("lstm", D, H, num_layers=2, dropout=0.5)
    x = np.random.default_rng(0).standard_normal((T, N, D))
    cm.eval()
    tm.eval()
    out_eval, _ = cm(cr.tensor(x))
    _close(out_eval, tm(torch.tensor(x))[0], "eval mode: no dropout")
    cm.train()
    cr.manual_seed(3)
    a, (ha, _) = cm(cr.tensor(x))
    cr.manual_seed(3)
    b, _ = cm(cr.tensor(x))
    assert np.array_equal(a.data, b.data), "seeded runs repeat bit for bit"
    assert not np.allclose(a.data, out_eval.data), "train mode drops between layers"
    # the first layer's final state sees no dropout (it is applied to the layer's output only)
    _, (h_eval, _) = cm.eval()(cr.tensor(x))
    np.testing.assert_allclose(ha.data[0], h_eval.data[0], rtol=1e-12)


def test_dropout_gradients_follow_the_mask():
    """With dropout active, gradients still equal a reference built from the same masks: compare
    against running layer by layer with the dropout mask applied by hand."""
    T, N, D, H = 4, 2, 3, 5
    cm = nn.GRU(D, H, num_layers=2, dropout=0.4, dtype="float64")
    x = cr.tensor(np.random.default_rng(1).standard_normal((T, N, D)), requires_grad=True)
    cr.manual_seed(9)
    out, _ = cm(x)
    out.sum().backward()
    g_full = x.grad.data.copy()
    # rebuild: the mask is drawn from the global generator right after layer 0
    l0 = nn.GRU(D, H, dtype="float64")
    l1 = nn.GRU(H, H, dtype="float64")
    l0.load_state_dict({k: v for k, v in cm.state_dict().items() if k.endswith("_l0")})
    sd1 = {k.replace("_l1", "_l0"): v for k, v in cm.state_dict().items() if "_l1" in k}
    l1.load_state_dict(sd1)
    x2 = cr.tensor(x.data.copy(), requires_grad=True)
    cr.manual_seed(9)
    y0, _ = l0(x2)
    y0 = cr.nn.functional.dropout(y0, 0.4, True)
    y1, _ = l1(y0)
    np.testing.assert_allclose(y1.data, out.data, rtol=1e-12)
    y1.sum().backward()
    np.testing.assert_allclose(x2.grad.data, g_full, rtol=1e-12)


# -- cells ------------------------------------------------------------------------------------------
CELLS = {
    "rnn_tanh": (nn.RNNCell, torch.nn.RNNCell, {}),
    "rnn_relu": (nn.RNNCell, torch.nn.RNNCell, {"nonlinearity": "relu"}),
    "lstm": (nn.LSTMCell, torch.nn.LSTMCell, {}),
    "gru": (nn.GRUCell, torch.nn.GRUCell, {}),
}


@pytest.mark.parametrize("kind", list(CELLS))
@pytest.mark.parametrize("batched,with_hx,bias",
                         [(True, True, True), (True, False, False), (False, True, True)])
def test_cell_matches_torch(kind, batched, with_hx, bias):
    cr_cls, t_cls, extra = CELLS[kind]
    N, D, H = 3, 4, 5
    tm = t_cls(D, H, bias=bias, **extra).double()
    cm = cr_cls(D, H, bias=bias, dtype="float64", **extra)
    cm.load_state_dict({k: v.detach().numpy() for k, v in tm.state_dict().items()})
    rng = np.random.default_rng(4)
    xs = (N, D) if batched else (D,)
    hs = (N, H) if batched else (H,)
    x = rng.standard_normal(xs)
    xc, xt = cr.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    n_states = 2 if kind == "lstm" else 1
    states = [rng.standard_normal(hs) for _ in range(n_states)]
    sc = [cr.tensor(s, requires_grad=True) for s in states]
    st = [torch.tensor(s, requires_grad=True) for s in states]
    if kind == "lstm":
        oc = cm(xc, tuple(sc) if with_hx else None)
        ot = tm(xt, tuple(st) if with_hx else None)
    else:
        oc = (cm(xc, sc[0] if with_hx else None),)
        ot = (tm(xt, st[0] if with_hx else None),)
    lc = lt = 0
    for a, b in zip(oc, ot):
        _close(a, b, "cell output")
        w = rng.standard_normal(a.shape)
        lc = lc + (a * cr.tensor(w)).sum()
        lt = lt + (b * torch.tensor(w)).sum()
    lc.backward()
    lt.backward()
    _close(xc.grad, xt.grad, "dL/dx")
    if with_hx:
        for a, b in zip(sc, st):
            _close(a.grad, b.grad, "dL/dstate")
    cp = dict(cm.named_parameters())
    for name, p in tm.named_parameters():
        _close(cp[name].grad, p.grad, f"dL/d{name}")


# -- state dicts, parameters, init ------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_torch_state_dict_loads_one_to_one_float32(kind):
    """A float32 PyTorch model's state dict, loaded as is, gives the same outputs."""
    cr_cls, t_cls, _ = KINDS[kind]
    tm = t_cls(8, 16, num_layers=2, bidirectional=True, batch_first=True)
    cm = cr_cls(8, 16, num_layers=2, bidirectional=True, batch_first=True)
    sd = tm.state_dict()
    assert list(cm.state_dict()) == list(sd)
    for k, v in cm.state_dict().items():
        assert v.shape == tuple(sd[k].shape) and v.dtype == np.float32, k
    cm.load_state_dict({k: v.numpy() for k, v in sd.items()})
    x = np.random.default_rng(0).standard_normal((3, 7, 8)).astype(np.float32)
    oc, sc = cm(cr.tensor(x))
    with torch.no_grad():
        ot, st = tm(torch.from_numpy(x))
    np.testing.assert_allclose(oc.data, ot.numpy(), rtol=1e-5, atol=1e-6)
    if kind == "lstm":
        for a, b in zip(sc, st):
            np.testing.assert_allclose(a.data, b.numpy(), rtol=1e-5, atol=1e-6)
    else:
        np.testing.assert_allclose(sc.data, st.numpy(), rtol=1e-5, atol=1e-6)
    # and back: chainrule's state dict loads into PyTorch
    tm2 = t_cls(8, 16, num_layers=2, bidirectional=True, batch_first=True)
    tm2.load_state_dict({k: torch.from_numpy(v) for k, v in cm.state_dict().items()})


def test_init_is_uniform_one_over_sqrt_h():
    m = nn.LSTM(10, 25, num_layers=2, bidirectional=True, peephole=True)
    for name, p in m.named_parameters():
        assert np.abs(p.data).max() <= 1 / 5 + 1e-7, name
        assert np.abs(p.data).max() > 0.15, name
    names = [n for n, _ in m.named_parameters()]
    assert "weight_peephole_l1_reverse" in names
    assert m.weight_peephole_l0.shape == (3, 25)
    assert nn.LSTM(4, 6, coupled=True, peephole=True).weight_peephole_l0.shape == (2, 6)
    assert nn.LSTM(4, 6, coupled=True).weight_ih_l0.shape == (18, 4)


def test_float32_default_and_dtype_follow_parameters():
    m = nn.GRU(3, 4)
    out, h = m(cr.randn(5, 2, 3))
    assert out.dtype == np.float32 and h.dtype == np.float32
    assert out.shape == (5, 2, 4) and h.shape == (1, 2, 4)


def test_repr():
    assert repr(nn.LSTM(3, 4, num_layers=2, batch_first=True)) == \
        "LSTM(3, 4, num_layers=2, batch_first=True)"
    assert "variant='cho'" in repr(nn.GRU(3, 4, variant="cho"))


def test_no_grad_inference_and_frozen_parameters():
    m = nn.LSTM(3, 4, dtype="float64")
    x = cr.tensor(np.ones((2, 1, 3)))
    with cr.no_grad():
        out, _ = m(x)
    assert not out.requires_grad
    m.requires_grad_(False)
    x.requires_grad_(True)
    out, _ = m(x)
    out.sum().backward()
    assert x.grad is not None and all(p.grad is None for p in m.parameters())


# -- errors -----------------------------------------------------------------------------------------
def test_wrong_feature_size_names_layer_expected_and_got():
    m = nn.LSTM(10, 20, batch_first=True)
    with pytest.raises(ValueError, match=r"LSTM\(input_size=10, hidden_size=20\).*10.*\(4, 7, 11\)"):
        m(cr.zeros(4, 7, 11))
    with pytest.raises(ValueError, match="GRUCell.*expected input"):
        nn.GRUCell(3, 4)(cr.zeros(2, 5))


@pytest.mark.parametrize("shape", [(0, 3, 4), (3, 0, 4)])
def test_empty_sequence_or_batch(shape):
    with pytest.raises(ValueError, match="empty"):
        nn.GRU(4, 5)(cr.zeros(*shape))


def test_bad_lengths():
    m = nn.RNN(4, 5, batch_first=True)
    x = cr.zeros(3, 6, 4)
    with pytest.raises(ValueError, match=r"empty sequence: lengths\[1\] = 0"):
        m(x, lengths=[6, 0, 2])
    with pytest.raises(ValueError, match=r"lengths\[2\] = 7 is longer than the padded length 6"):
        m(x, lengths=[6, 1, 7])
    with pytest.raises(ValueError, match=r"expected lengths of shape \(3,\)"):
        m(x, lengths=[6, 1])


def test_bad_states_and_dtype():
    m = nn.LSTM(4, 5, num_layers=2)
    x = cr.zeros(3, 2, 4)
    with pytest.raises(ValueError, match=r"h0 of shape \(2, 2, 5\)"):
        m(x, (cr.zeros(1, 2, 5), cr.zeros(2, 2, 5)))
    with pytest.raises(TypeError, match=r"tuple \(h0, c0\)"):
        m(x, cr.zeros(2, 2, 5))
    with pytest.raises(TypeError, match="dtype"):
        m(cr.zeros(3, 2, 4, dtype="float64"))
    with pytest.raises(ValueError, match="nonlinearity"):
        nn.RNN(3, 4, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match="variant"):
        nn.GRU(3, 4, variant="minimal")
