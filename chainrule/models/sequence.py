"""Sequence models for classification and tagging.

- :class:`SequenceClassifier` (many-to-one): token ids -> Embedding -> LSTM/GRU/RNN -> the state at
  each sequence's last real token -> Linear: one label per sequence (sentiment).
- :class:`SequenceTagger` (many-to-many): the same layers, a label at every time step (tagging).
- :class:`GRUClassifier`: a GRU reading a real-valued signal (N, T) or (N, T, D) step by step
  (mnist1d as a sequence of 40 samples).
- :class:`TDNN`: a time-delay neural network (Waibel et al. 1989): Conv1d layers over time with
  growing dilations, global average over time, Linear.

>>> model = SequenceClassifier(len(vocab), 2, embedding_dim=32, hidden_size=64)
>>> logits = model(ids, lengths)      # ids (N, T) padded with 0, lengths (N,) -> (N, 2)
>>> logits = model(ids)               # lengths read from the padding (padding at the end)
"""

import numpy as np

from .. import nn
from ..autograd import Tensor
from ..tensor_api import cat

__all__ = ['SequenceClassifier', 'SequenceTagger', 'GRUClassifier', 'TDNN', 'lengths_from_padding']

_CELLS = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}


def _ids(x):
    a = x.data if isinstance(x, Tensor) else np.asarray(x)
    if a.ndim != 2:
        raise ValueError(f"expected token ids (N, T), got shape {a.shape}")
    if a.dtype.kind not in "iu":
        raise TypeError(f"expected integer token ids, got dtype {a.dtype}")
    return a


def lengths_from_padding(ids, padding_idx=0):
    """(N,) lengths of right-padded id rows: one past the last non-padding id (at least 1)."""
    a = _ids(ids)
    real = a != padding_idx
    last = np.where(real.any(axis=1), a.shape[1] - np.argmax(real[:, ::-1], axis=1), 1)
    return last.astype(np.int64)


def _rnn(cell, embedding_dim, hidden_size, num_layers, bidirectional, dropout, who):
    if cell not in _CELLS:
        raise ValueError(f"{who}: cell must be one of {sorted(_CELLS)}, got {cell!r}")
    return _CELLS[cell](embedding_dim, hidden_size, num_layers=num_layers, batch_first=True,
                        bidirectional=bidirectional, dropout=dropout if num_layers > 1 else 0.0)


def _summary(h_n, bidirectional):
    """The last layer's final state: (N, H), or both directions' (N, 2H)."""
    h = h_n[0] if isinstance(h_n, tuple) else h_n
    if bidirectional:
        return cat([h[-2], h[-1]], axis=1)
    return h[-1]


class SequenceClassifier(nn.Module):
    """Many-to-one: Embedding(V, E, padding_idx) -> ``cell`` (LSTM by default) -> dropout -> Linear.

    forward(ids (N, T), lengths=None) -> logits (N, num_classes). The recurrent layer reads each
    sequence up to its length, so its final state is the one after the last real token (the
    padding is never read); without ``lengths`` they are taken from the padding at the end of
    each row. A bidirectional layer contributes both directions' final states.
    """

    def __init__(self, vocab_size, num_classes, embedding_dim=64, hidden_size=128, num_layers=1,
                 cell="lstm", bidirectional=False, dropout=0.0, padding_idx=0):
        super().__init__()
        self.padding_idx = padding_idx
        self.bidirectional = bool(bidirectional)
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=padding_idx)
        self.rnn = _rnn(cell, embedding_dim, hidden_size, num_layers, bidirectional, dropout,
                        "SequenceClassifier")
        self.drop = nn.Dropout(dropout) if dropout else None
        self.head = nn.Linear(hidden_size * (2 if bidirectional else 1), num_classes)
        self._config = dict(vocab_size=vocab_size, num_classes=num_classes,
                            embedding_dim=embedding_dim, hidden_size=hidden_size,
                            num_layers=num_layers, cell=cell, bidirectional=bool(bidirectional),
                            dropout=dropout, padding_idx=padding_idx)

    def config(self):
        return dict(self._config)

    def forward(self, ids, lengths=None):
        a = _ids(ids)
        if lengths is None:
            lengths = lengths_from_padding(a, self.padding_idx)
        _, h_n = self.rnn(self.embedding(a), lengths=lengths)
        z = _summary(h_n, self.bidirectional)
        if self.drop is not None:
            z = self.drop(z)
        return self.head(z)


class SequenceTagger(nn.Module):
    """Many-to-many: Embedding -> ``cell`` (bidirectional by default: a tag may depend on the words
    after it) -> Linear at every step. forward(ids (N, T), lengths=None) -> logits (N, T, num_tags).
    Outputs at padding positions are meaningless; mask them in the loss (masked_cross_entropy)."""

    def __init__(self, vocab_size, num_tags, embedding_dim=32, hidden_size=64, num_layers=1,
                 cell="lstm", bidirectional=True, dropout=0.0, padding_idx=0):
        super().__init__()
        self.padding_idx = padding_idx
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=padding_idx)
        self.rnn = _rnn(cell, embedding_dim, hidden_size, num_layers, bidirectional, dropout,
                        "SequenceTagger")
        self.head = nn.Linear(hidden_size * (2 if bidirectional else 1), num_tags)

    def forward(self, ids, lengths=None):
        a = _ids(ids)
        if lengths is None:
            lengths = lengths_from_padding(a, self.padding_idx)
        out, _ = self.rnn(self.embedding(a), lengths=lengths)
        return self.head(out)


# -- signals: mnist1d ---------------------------------------------------------------------------------

class GRUClassifier(nn.Module):
    """A recurrent classifier of real-valued sequences: x (N, T) (one feature per step) or (N, T, D)
    -> ``cell`` (GRU by default) -> the last layer's final state -> Linear -> (N, num_classes)."""

    def __init__(self, input_size=1, hidden_size=64, num_classes=10, num_layers=1, cell="gru",
                 bidirectional=False, dropout=0.0):
        super().__init__()
        self.input_size, self.bidirectional = int(input_size), bool(bidirectional)
        self.rnn = _rnn(cell, input_size, hidden_size, num_layers, bidirectional, dropout,
                        "GRUClassifier")
        self.head = nn.Linear(hidden_size * (2 if bidirectional else 1), num_classes)

    def forward(self, x):
        if not isinstance(x, Tensor):
            x = Tensor(np.asarray(x))
        if x.ndim == 2:
            x = x.reshape(x.shape[0], x.shape[1], 1)
        if x.ndim != 3 or x.shape[2] != self.input_size:
            raise ValueError(f"GRUClassifier(input_size={self.input_size}): expected (N, T) or "
                             f"(N, T, {self.input_size}), got {tuple(x.shape)}")
        _, h_n = self.rnn(x)
        return self.head(_summary(h_n, self.bidirectional))


class TDNN(nn.Module):
    """Time-delay neural network: ``len(dilations)`` Conv1d layers (kernel ``kernel_size``, 'same'
    padding, dilation d_i, ReLU) over time, so each output sees a window that doubles layer by layer
    (1 + (k - 1) * sum(d) steps: 31 for k = 3 and dilations 1, 2, 4, 8), then the average over
    time and a Linear layer. Input (N, T) or (N, C, T) -> (N, num_classes)."""

    def __init__(self, in_channels=1, num_classes=10, channels=32, kernel_size=3,
                 dilations=(1, 2, 4, 8), dropout=0.0):
        super().__init__()
        if not dilations:
            raise ValueError("TDNN: dilations must name at least one layer")
        self.in_channels = int(in_channels)
        layers, c = [], in_channels
        for d in dilations:
            layers += [nn.Conv1d(c, channels, kernel_size, dilation=int(d), padding="same"), nn.ReLU()]
            c = channels
        self.features = nn.Sequential(*layers)
        self.drop = nn.Dropout(dropout) if dropout else None
        self.head = nn.Linear(channels, num_classes)
        self.receptive_field = 1 + (kernel_size - 1) * sum(int(d) for d in dilations)

    def forward(self, x):
        if not isinstance(x, Tensor):
            x = Tensor(np.asarray(x))
        if x.ndim == 2:
            x = x.reshape(x.shape[0], 1, x.shape[1])
        if x.ndim != 3 or x.shape[1] != self.in_channels:
            raise ValueError(f"TDNN(in_channels={self.in_channels}): expected (N, T) or "
                             f"(N, {self.in_channels}, T), got {tuple(x.shape)}")
        z = self.features(x).mean(axis=2)
        if self.drop is not None:
            z = self.drop(z)
        return self.head(z)
