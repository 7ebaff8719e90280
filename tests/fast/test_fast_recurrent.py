"""fast.recurrent (pooled buffers, the Embedding -> RNN fusion) against the reference ops it
replaces (ops.recurrent.RNNLayer, LSTMLayer, GRULayer): without an embedding in front the
arithmetic is the reference's, so outputs, final states and every gradient are bit for bit the
same; with the embedding fusion the table rows are projected before the gather and dZ is summed
per token before the products, so the results agree to rounding."""
import numpy as np
import pytest

import chainrule as cr
import chainrule.fast as fast
from chainrule import nn
from chainrule.fast import recurrent as FR

MAKERS = {
    "lstm-2layer-bidir-bf": lambda dt: nn.LSTM(4, 5, num_layers=2, bidirectional=True, batch_first=True, dtype=dt),
    "lstm-peephole": lambda dt: nn.LSTM(4, 5, peephole=True, dtype=dt),
    "lstm-coupled-bf": lambda dt: nn.LSTM(4, 5, coupled=True, batch_first=True, dtype=dt),
    "gru-bidir-bf": lambda dt: nn.GRU(4, 5, bidirectional=True, batch_first=True, dtype=dt),
    "gru-cho": lambda dt: nn.GRU(4, 5, variant="cho", dtype=dt),
    "rnn-relu-2layer": lambda dt: nn.RNN(4, 5, num_layers=2, nonlinearity="relu", dtype=dt),
    "rnn-bidir-nobias-bf": lambda dt: nn.RNN(4, 5, bidirectional=True, bias=False, batch_first=True, dtype=dt),
}


def _step(model, x, lengths, up, need_x):
    model.zero_grad()
    x = cr.tensor(x, requires_grad=need_x)
    out, state = model(x, lengths=lengths)
    states = state if isinstance(state, tuple) else (state,)
    loss = (out * cr.tensor(up[0])).sum()
    for s, u in zip(states, up[1:]):
        loss = loss + (s * cr.tensor(u)).sum()
    loss.backward()
    res = [out.data.copy()] + [s.data.copy() for s in states]
    res += [p.grad.data.copy() for p in model.parameters()]
    return res + ([x.grad.data.copy()] if need_x else [])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("lengths", [None, [7, 3, 5]])
@pytest.mark.parametrize("name", sorted(MAKERS))
def test_pooled_ops_are_bit_for_bit_the_reference(name, lengths, dtype):
    cr.manual_seed(0)
    model = MAKERS[name](dtype)
    rng = np.random.default_rng(1)
    shape = (3, 7, 4) if model.batch_first else (7, 3, 4)
    x = rng.standard_normal(shape).astype(dtype)
    with fast.disabled():
        out, state = model(cr.tensor(x), lengths=lengths)
    states = state if isinstance(state, tuple) else (state,)
    up = [rng.standard_normal(t.shape).astype(dtype) for t in (out,) + tuple(states)]
    for need_x in (False, True):
        with fast.disabled():
            ref = _step(model, x, lengths, up, need_x)
        for _ in range(2):                       # the second call reuses pooled buffers
            got = _step(model, x, lengths, up, need_x)
            assert len(got) == len(ref)
            for a, b in zip(got, ref):
                assert a.dtype == b.dtype == np.dtype(dtype)
                np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", sorted(MAKERS))
def test_embedding_fusion_matches_the_reference(name, dtype):
    cr.manual_seed(0)
    model = MAKERS[name](dtype)
    emb = nn.Embedding(6, 4, padding_idx=2, dtype=dtype)
    rng = np.random.default_rng(2)
    idx = rng.integers(0, 6, (3, 9) if model.batch_first else (9, 3))
    res = []
    for on in (False, True):
        with (fast.disabled() if not on else _nothing()):
            model.zero_grad()
            emb.zero_grad()
            out, state = model(emb(idx))
            h = state[0] if isinstance(state, tuple) else state
            up = np.random.default_rng(3)
            ((out * cr.tensor(up.standard_normal(out.shape).astype(dtype))).sum()
             + (h * cr.tensor(up.standard_normal(h.shape).astype(dtype))).sum()).backward()
            res.append([out.data, h.data, emb.weight.grad.data]
                       + [p.grad.data for p in model.parameters()])
    tol = dict(rtol=2e-5, atol=2e-6) if dtype == "float32" else dict(rtol=1e-12, atol=1e-13)
    for a, b in zip(*res):
        assert a.dtype == b.dtype == np.dtype(dtype)
        np.testing.assert_allclose(a, b, **tol)
    assert (res[1][2][2] == 0).all()             # the padding row gets no gradient


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_workspace_returns_buffers_to_the_pool_when_the_graph_is_freed():
    FR.clear_workspace()
    m = nn.LSTM(3, 4, batch_first=True, dtype="float64")
    x = cr.tensor(np.random.default_rng(0).standard_normal((2, 5, 3)), requires_grad=True)
    out, _ = m(x)
    assert FR.POOL.nbytes == 0                   # the call's buffers are in use
    out.sum().backward()                         # graph freed: buffers back in the pool
    assert FR.POOL.nbytes > 0
    FR.clear_workspace()
    assert FR.POOL.nbytes == 0 and not FR.POOL.free


def test_embedding_fusion_is_taken(monkeypatch):
    """The fast path's LSTM op (chainrule/fast/recurrent.py) gets the token ids for the first layer."""
    from chainrule.fast.recurrent import FastLSTMLayer
    seen = []
    orig = FastLSTMLayer.forward

    def spy(self, x, *a, **kw):
        seen.append(kw.get("tokens") is not None)
        return orig(self, x, *a, **kw)

    monkeypatch.setattr(FastLSTMLayer, "forward", spy)
    emb, lstm = nn.Embedding(10, 3), nn.LSTM(3, 4, num_layers=2, batch_first=True)
    lstm(emb(np.zeros((4, 16), dtype=np.int64)))
    assert seen == [True, False]                 # first layer only
    seen.clear()
    lstm(emb(np.zeros((2, 3), dtype=np.int64)))  # more table rows than tokens: not worth it
    assert seen == [False, False]
    seen.clear()
    with cr.no_grad():
        lstm(emb(np.zeros((4, 16), dtype=np.int64)))
    assert seen == [False, False]


def test_pooled_buffers_never_alias_results():
    """Outputs and carried states stay intact while later calls reuse the pooled buffers."""
    m = nn.LSTM(3, 4, batch_first=True, dtype="float64")
    x = cr.tensor(np.random.default_rng(0).standard_normal((2, 5, 3)), requires_grad=True)
    out1, (h1, c1) = m(x)
    keep = [out1.data.copy(), h1.data.copy(), c1.data.copy()]
    out1.sum().backward()                         # frees the first call's buffers to the pool
    for _ in range(3):
        o, (h, c) = m(x * 2.0, (h1.detach(), c1.detach()))
        o.sum().backward()
    for a, b in zip([out1, h1, c1], keep):
        np.testing.assert_array_equal(a.data, b)


