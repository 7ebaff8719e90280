"""Embedding against PyTorch: lookup, the scatter-add gradient with repeated ids, padding_idx."""
import numpy as np
import pytest
import torch

import chainrule as cr
from chainrule import nn
from chainrule.ops.embedding import scatter_rows


@pytest.mark.parametrize("padding_idx", [None, 0, 3, -1])
@pytest.mark.parametrize("shape", [(7,), (4, 9), (2, 3, 5)])
def test_embedding_matches_torch(padding_idx, shape):
    V, E = 6, 4
    tm = torch.nn.Embedding(V, E, padding_idx=padding_idx).double()
    cm = nn.Embedding(V, E, padding_idx=padding_idx, dtype="float64")
    cm.load_state_dict({k: v.detach().numpy() for k, v in tm.state_dict().items()})
    rng = np.random.default_rng(0)
    idx = rng.integers(0, V, shape)
    idx.flat[0] = idx.flat[-1] = V - 1 if padding_idx == -1 else (padding_idx or 0)   # repeats, padding
    oc, ot = cm(cr.tensor(idx)), tm(torch.from_numpy(idx))
    np.testing.assert_array_equal(oc.data, ot.detach().numpy())
    g = rng.standard_normal(oc.shape)
    oc.backward(g)
    ot.backward(torch.tensor(g))
    np.testing.assert_allclose(cm.weight.grad.data, tm.weight.grad.numpy(), rtol=1e-12, atol=1e-14)
    if padding_idx is not None:
        assert np.all(cm.weight.grad.data[padding_idx] == 0)


def test_padding_row_starts_at_zero_and_init_is_standard_normal():
    cr.manual_seed(0)
    m = nn.Embedding(1000, 20, padding_idx=2)
    assert np.all(m.weight.data[2] == 0)
    w = np.delete(m.weight.data, 2, axis=0)
    assert abs(w.mean()) < 0.02 and abs(w.std() - 1) < 0.02
    assert m.weight.dtype == np.float32


@pytest.mark.parametrize("V,M,E", [(50, 3000, 7), (5000, 2000, 8), (3, 4, 512)])
def test_scatter_rows_equals_add_at(V, M, E):
    """Both strategies: few distinct ids (sorted runs) and many (one bincount)."""
    rng = np.random.default_rng(1)
    idx = rng.integers(0, V, M)
    g = rng.standard_normal((M, E))
    ref = np.zeros((V + 10, E))
    np.add.at(ref, idx, g)
    np.testing.assert_allclose(scatter_rows(idx, g, V + 10), ref, rtol=1e-12, atol=1e-12)
    g32 = g.astype(np.float32)
    assert scatter_rows(idx, g32, V + 10).dtype == np.float32
    assert np.all(scatter_rows(np.array([], dtype=np.int64), np.zeros((0, 7)), 5) == 0)


def test_embedding_feeds_an_lstm_end_to_end():
    emb, lstm = nn.Embedding(10, 4, dtype="float64"), nn.LSTM(4, 5, batch_first=True, dtype="float64")
    idx = np.random.default_rng(2).integers(0, 10, (3, 6))
    out, _ = lstm(emb(idx))
    out.sum().backward()
    assert emb.weight.grad.shape == (10, 4)
    unused = np.setdiff1d(np.arange(10), idx)
    assert np.all(emb.weight.grad.data[unused] == 0)


def test_from_pretrained_and_freeze():
    w = np.arange(12, dtype=np.float64).reshape(4, 3)
    m = nn.Embedding.from_pretrained(w)
    assert not m.weight.requires_grad
    np.testing.assert_array_equal(m(np.array([3, 1])).data, w[[3, 1]])
    m2 = nn.Embedding.from_pretrained(w, freeze=False)
    m2(np.array([0, 0])).sum().backward()
    np.testing.assert_array_equal(m2.weight.grad.data[0], [2, 2, 2])


def test_errors():
    m = nn.Embedding(5, 3)
    with pytest.raises(IndexError, match=r"Embedding\(5, 3\): index 5 is out of range \[0, 5\)"):
        m(np.array([0, 5]))
    with pytest.raises(IndexError, match="index -1"):
        m(np.array([-1]))
    with pytest.raises(TypeError, match="integer"):
        m(np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match="padding_idx"):
        nn.Embedding(5, 3, padding_idx=5)
    with pytest.raises(ValueError, match="positive"):
        nn.Embedding(0, 3)
