"""Sequence to sequence (Sutskever et al. 2014; Cho et al. 2014): an encoder reads the source
(many-to-one) into its final state, a decoder started from that state writes the target
(one-to-many). Trained with teacher forcing (the decoder reads the true previous token), decoded
greedily (it reads its own previous prediction). The tasks, training and exact-match scoring live
in ``chainrule.applications.seq2seq``.

>>> model = Seq2Seq(len(src_vocab), len(tgt_vocab), bos_index=tgt_vocab.bos_index,
...                 eos_index=tgt_vocab.eos_index)
>>> logits = model(src, src_lengths, tgt_in)      # (N, T_src) ids, (N,), (N, T_tgt) -> (N, T_tgt, V)
"""

import numpy as np

from .. import nn
from ..autograd import Tensor, no_grad
from ..tensor_api import cat, zeros

__all__ = ['Seq2Seq', 'greedy_decode']

_CELLS = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}


def _arr(x):
    return x.data if isinstance(x, Tensor) else np.asarray(x)


class Seq2Seq(nn.Module):
    """Encoder-decoder.

    encoder: Embedding(src_vocab_size, E) -> ``cell`` (E -> H, ``num_layers``), many-to-one: its final
    state (each sequence's last real step, via lengths) summarises the source;
    decoder: Embedding(tgt_vocab_size, E) -> ``cell`` started from that state -> Linear(H, V).
    With ``feed_context`` (Cho et al. 2014) the decoder also reads the encoder's summary c (the last
    layer's final h) next to every input token, [embed(y_{t-1}), c], so it does not have to carry the
    whole source in its own state.

    forward(src (N, S), src_lengths (N,), tgt_in (N, T)) -> logits (N, T, V): teacher forcing, where
    tgt_in is <bos> followed by the target shifted right.
    """

    def __init__(self, src_vocab_size, tgt_vocab_size, embedding_dim=32, hidden_size=128,
                 num_layers=1, cell="gru", bos_index=2, eos_index=3, pad_index=0, feed_context=True,
                 dropout=0.0):
        super().__init__()
        if cell not in _CELLS:
            raise ValueError(f"Seq2Seq: cell must be one of {sorted(_CELLS)}, got {cell!r}")
        self.src_vocab_size, self.tgt_vocab_size = int(src_vocab_size), int(tgt_vocab_size)
        self.embedding_dim, self.hidden_size = int(embedding_dim), int(hidden_size)
        self.num_layers, self.cell, self.dropout = int(num_layers), cell, float(dropout)
        self.bos_index, self.eos_index, self.pad_index = int(bos_index), int(eos_index), int(pad_index)
        self.feed_context = bool(feed_context)
        rnn = _CELLS[cell]
        drop = dropout if num_layers > 1 else 0.0
        self.src_embedding = nn.Embedding(src_vocab_size, embedding_dim, padding_idx=pad_index)
        self.encoder = rnn(embedding_dim, hidden_size, num_layers=num_layers, batch_first=True,
                           dropout=drop)
        self.tgt_embedding = nn.Embedding(tgt_vocab_size, embedding_dim, padding_idx=pad_index)
        dec_in = embedding_dim + (hidden_size if feed_context else 0)
        self.decoder = rnn(dec_in, hidden_size, num_layers=num_layers, batch_first=True, dropout=drop)
        self.head = nn.Linear(hidden_size, tgt_vocab_size)

    def config(self):
        return {k: getattr(self, k) for k in (
            "src_vocab_size", "tgt_vocab_size", "embedding_dim", "hidden_size", "num_layers", "cell",
            "bos_index", "eos_index", "pad_index", "feed_context", "dropout")}

    def encode(self, src, src_lengths=None):
        """src (N, S) ids -> the encoder's final state (h_n, or (h_n, c_n) for an LSTM), each
        sequence's after its last real token when ``src_lengths`` is given."""
        _, state = self.encoder(self.src_embedding(src), lengths=src_lengths)
        return state

    def _context(self, state):
        h = state[0] if isinstance(state, tuple) else state
        return h[-1]                                     # (N, H): the last layer's summary

    def decode(self, tgt_in, state, context=None):
        """One or more decoder steps: tgt_in (N, T) ids, state -> (logits (N, T, V), new state)."""
        e = self.tgt_embedding(tgt_in)
        if self.feed_context:
            n, t = e.shape[0], e.shape[1]
            c = context.reshape(n, 1, self.hidden_size) + zeros(n, t, self.hidden_size, dtype=e.dtype)
            e = cat([e, c], axis=2)
        out, state = self.decoder(e, state)
        return self.head(out), state

    def forward(self, src, src_lengths, tgt_in):
        state = self.encode(src, src_lengths)
        ctx = self._context(state) if self.feed_context else None
        logits, _ = self.decode(tgt_in, state, ctx)
        return logits


def greedy_decode(model, src, src_lengths, max_len):
    """(N, max_len) ids: from <bos>, feed back the argmax at each step; positions after a
    sequence's <eos> are filled with padding. Eval mode, no gradients."""
    was = model.training
    model.eval()
    try:
        with no_grad():
            state = model.encode(src, src_lengths)
            ctx = model._context(state) if model.feed_context else None
            n = _arr(src).shape[0]
            tok = np.full((n, 1), model.bos_index, dtype=np.int64)
            out = np.full((n, max_len), model.pad_index, dtype=np.int64)
            done = np.zeros(n, dtype=bool)
            for t in range(max_len):
                logits, state = model.decode(tok, state, ctx)
                nxt = logits.data[:, -1].argmax(axis=1)
                out[:, t] = np.where(done, model.pad_index, nxt)
                done |= nxt == model.eos_index
                if done.all():
                    break
                tok = nxt[:, None].astype(np.int64)
    finally:
        model.train(was)
    return out
