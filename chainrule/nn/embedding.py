"""Embedding: a learnable lookup table from integer ids (tokens, characters) to vectors."""
import numpy as np

from .. import backend, checks
from ..autograd import Tensor
from ..ops.embedding import EmbeddingLookup
from . import init
from .module import Module
from .parameter import Parameter

__all__ = ["Embedding"]


class Embedding(Module):
    """weight (num_embeddings, embedding_dim), drawn from N(0, 1) as in PyTorch; the row
    ``padding_idx`` (if given) starts at zero and receives no gradient.

    Input: integer ids of any shape (N, T) -> output (N, T, embedding_dim).

    >>> emb = nn.Embedding(65, 64)
    >>> emb(tokens).shape      # tokens (32, 64) -> (32, 64, 64)
    """

    def __init__(self, num_embeddings, embedding_dim, padding_idx=None, dtype=None, _weight=None):
        super().__init__()
        num_embeddings = checks.integer("Embedding", "num_embeddings", num_embeddings, 1)
        embedding_dim = checks.integer("Embedding", "embedding_dim", embedding_dim, 1)
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        if padding_idx is not None:
            checks.integer("Embedding", "padding_idx", padding_idx)
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise ValueError(f"Embedding({num_embeddings}, {embedding_dim}): padding_idx "
                                 f"{padding_idx} is outside [-{num_embeddings}, {num_embeddings})")
            padding_idx = int(padding_idx) % num_embeddings
        self.padding_idx = padding_idx
        dtype = dtype or backend.get_default_dtype()
        if _weight is not None:
            w = np.array(_weight.data if isinstance(_weight, Tensor) else _weight, dtype=dtype)
            if w.shape != (num_embeddings, embedding_dim):
                raise ValueError(f"Embedding: weight of shape {w.shape}, expected "
                                 f"{(num_embeddings, embedding_dim)}")
            self.weight = Parameter(w)
        else:
            self.weight = Parameter(np.empty((num_embeddings, embedding_dim), dtype=dtype))
            self.reset_parameters()

    def reset_parameters(self):
        init.normal_(self.weight)
        if self.padding_idx is not None:
            self.weight.data[self.padding_idx] = 0

    @classmethod
    def from_pretrained(cls, embeddings, freeze=True, padding_idx=None):
        """An Embedding holding a copy of ``embeddings`` (V, E); frozen unless ``freeze=False``."""
        w = np.asarray(embeddings.data if isinstance(embeddings, Tensor) else embeddings)
        if w.ndim != 2:
            raise ValueError(f"Embedding.from_pretrained: expected a (V, E) matrix, got {w.shape}")
        dtype = w.dtype if w.dtype.kind == "f" else None
        m = cls(w.shape[0], w.shape[1], padding_idx=padding_idx, dtype=dtype, _weight=w)
        m.weight.requires_grad = not checks.flag("Embedding.from_pretrained", "freeze", freeze)
        return m

    def forward(self, idx):
        a = idx.data if isinstance(idx, Tensor) else np.asarray(idx)
        if a.dtype.kind not in "iu":
            raise TypeError(f"{self}: expected integer indices, got dtype {a.dtype}")
        if a.size:
            lo, hi = a.min(), a.max()
            if lo < 0 or hi >= self.num_embeddings:
                bad = lo if lo < 0 else hi
                raise IndexError(f"{self}: index {int(bad)} is out of range [0, "
                                 f"{self.num_embeddings})")
        return EmbeddingLookup.apply(self.weight, a, padding_idx=self.padding_idx)

    def extra_repr(self):
        s = f"{self.num_embeddings}, {self.embedding_dim}"
        return s + (f", padding_idx={self.padding_idx}" if self.padding_idx is not None else "")
