"""Truncated BPTT: each chunk's gradients equal those of a graph built for that chunk alone, with
the carried state as a constant; the state is carried across chunks; the helper drives training."""
import numpy as np
import pytest

import chainrule as cr
from chainrule import nn, optim
from chainrule.nn import functional as F
from chainrule.train.bptt import TBPTT, detach_state, truncated_bptt, truncated_bptt_chunks

V, H = 7, 6


class CharModel(nn.Module):
    def __init__(self, cell="lstm"):
        super().__init__()
        self.emb = nn.Embedding(V, 5, dtype="float64")
        self.rnn = (nn.LSTM if cell == "lstm" else nn.GRU)(5, H, batch_first=True, dtype="float64")
        self.head = nn.Linear(H, V, dtype="float64")

    def forward(self, x, state=None):
        out, state = self.rnn(self.emb(x), state)
        return self.head(out), state


def _loss(out, y):
    return F.cross_entropy(out.reshape(-1, V), y.reshape(-1))


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_chunk_gradients_equal_a_fresh_graph_with_constant_state(cell):
    cr.manual_seed(0)
    model = CharModel(cell)
    rng = np.random.default_rng(0)
    x = rng.integers(0, V, (3, 23))
    y = rng.integers(0, V, (3, 23))
    k = 5
    seen = []

    def step(xc, yc, state):
        # the state handed in is cut from the graph
        for s in (state if isinstance(state, tuple) else (state,)):
            assert s is None or (not s.requires_grad and s.grad_fn is None)
        model.zero_grad()
        out, new_state = model(xc, state)
        loss = _loss(out, yc)
        loss.backward()
        seen.append(({n: p.grad.data.copy() for n, p in model.named_parameters()}, state, loss.item()))
        return loss.item(), new_state

    losses, final = truncated_bptt(step, x, k, targets=y)
    assert len(losses) == 5                      # 23 steps in chunks of 5: 5, 5, 5, 5, 3
    # rebuild every chunk alone: the carried state as a constant array
    state = None
    for i, (start, xc, yc) in enumerate(truncated_bptt_chunks(x, k, y)):
        grads, carried, loss = seen[i]
        if state is None:
            assert carried is None
        else:
            for a, b in zip(carried if isinstance(carried, tuple) else (carried,),
                            state if isinstance(state, tuple) else (state,)):
                np.testing.assert_array_equal(a.data, b.data)
        const = None if state is None else (
            tuple(cr.tensor(s.data.copy()) for s in state) if isinstance(state, tuple)
            else cr.tensor(state.data.copy()))
        model.zero_grad()
        out, state = model(xc, const)
        l2 = _loss(out, yc)
        l2.backward()
        assert l2.item() == pytest.approx(loss, rel=1e-14)
        for n, p in model.named_parameters():
            np.testing.assert_allclose(grads[n], p.grad.data, rtol=1e-12, atol=1e-15, err_msg=n)
    # the final state equals running the whole sequence in one go (the carry is exact)
    _, full_state = model(x)
    a = final[0] if isinstance(final, tuple) else final
    b = full_state[0] if isinstance(full_state, tuple) else full_state
    np.testing.assert_allclose(a.data, b.data, rtol=1e-12)


def test_chunk_gradients_differ_from_full_bptt():
    """Truncation is real: the first chunk's gradient ignores losses of later chunks."""
    model = CharModel()
    x = np.random.default_rng(1).integers(0, V, (2, 10))
    model.zero_grad()
    out, _ = model(x)
    out[:, 5:].sum().backward()               # a loss on the second half only
    full = model.rnn.weight_hh_l0.grad.data.copy()
    assert np.any(full != 0)
    model.zero_grad()
    out1, st = model(x[:, :5])
    out2, _ = model(x[:, 5:], detach_state(st))
    out2.sum().backward()
    trunc = model.rnn.weight_hh_l0.grad.data
    assert not np.allclose(full, trunc)


def test_tbptt_trainer_learns_a_periodic_sequence():
    cr.manual_seed(1)
    model = CharModel()
    seq = np.tile(np.arange(V), 40)[None, :]          # 0 1 2 ... 6 0 1 2 ...: next = (c + 1) % V
    x, y = seq[:, :-1], seq[:, 1:]
    opt = optim.Adam(model.parameters(), lr=0.05)
    tb = TBPTT(model, opt, _loss, k=20, clip_grad_norm=5.0)
    first, state = tb.train_sequence(x, y)
    for _ in range(4):
        last, state = tb.train_sequence(x, y)
    assert last < 0.1 < first
    assert not state[0].requires_grad


def test_chunks_and_errors():
    x = np.arange(2 * 7).reshape(2, 7)
    starts = [(s, c.shape) for s, c, _ in truncated_bptt_chunks(x, 3)]
    assert starts == [(0, (2, 3)), (3, (2, 3)), (6, (2, 1))]
    tm = [c.shape for _, c, _ in truncated_bptt_chunks(x.T, 4, time_axis=0)]
    assert tm == [(4, 2), (3, 2)]
    with pytest.raises(ValueError, match="k must be >= 1"):
        list(truncated_bptt_chunks(x, 0))
    with pytest.raises(ValueError, match="targets"):
        list(truncated_bptt_chunks(x, 2, targets=x[:, :3]))
    with pytest.raises(ValueError, match="empty"):
        list(truncated_bptt_chunks(x[:, :0], 2))
    assert detach_state(None) is None
    t = cr.tensor([1.0], requires_grad=True) * 2
    h, c = detach_state((t, t))
    assert not h.requires_grad and h.grad_fn is None
