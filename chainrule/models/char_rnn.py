"""A character-level language model (Karpathy's char-rnn): Embedding -> LSTM -> Linear, the logits
of the next character at every step. Training (truncated BPTT) and sampling live in
``chainrule.applications.text_generation``.

>>> model = CharRNN(len(vocab), embedding_dim=64, hidden_size=128)
>>> logits, state = model(ids)          # ids (N, T) -> logits (N, T, V)
"""
from .. import nn

__all__ = ['CharRNN']

_CELLS = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}


class CharRNN(nn.Module):
    """Embedding (V, E) -> ``cell`` ('lstm', 'gru' or 'rnn'; ``num_layers`` layers of ``hidden_size``)
    -> Linear (H -> V): the logits of the next character at every step.

    forward(x (N, T) int ids, state=None) -> (logits (N, T, V), state); ``state`` is the recurrent
    layer's (h_n, (h_n, c_n) for an LSTM), to be carried into the next chunk.
    """

    def __init__(self, vocab_size, embedding_dim=64, hidden_size=128, num_layers=1, dropout=0.0,
                 cell="lstm"):
        super().__init__()
        if cell not in _CELLS:
            raise ValueError(f"CharRNN: cell must be one of {sorted(_CELLS)}, got {cell!r}")
        self.vocab_size, self.embedding_dim = int(vocab_size), int(embedding_dim)
        self.hidden_size, self.num_layers = int(hidden_size), int(num_layers)
        self.dropout, self.cell = float(dropout), cell
        self.embedding = nn.Embedding(vocab_size, embedding_dim)
        self.rnn = _CELLS[cell](embedding_dim, hidden_size, num_layers=num_layers, batch_first=True,
                                dropout=dropout if num_layers > 1 else 0.0)
        self.head = nn.Linear(hidden_size, vocab_size)

    def config(self):
        """The constructor's arguments (saved with the weights)."""
        return {"vocab_size": self.vocab_size, "embedding_dim": self.embedding_dim,
                "hidden_size": self.hidden_size, "num_layers": self.num_layers,
                "dropout": self.dropout, "cell": self.cell}

    def forward(self, x, state=None):
        out, state = self.rnn(self.embedding(x), state)
        return self.head(out), state
