"""`Embedding`: a learned table of vectors, one row per token id.

    emb = nn.Embedding(65, 32)        # 65 characters, 32 numbers each
    emb(ids)                          # ids (B, T) int -> (B, T, 32)

Looking up row i is the same as multiplying a one-hot vector by the table,
without building the one-hot vectors. Rows start as N(0, 1) draws, as in PyTorch.
"""
import numpy as np

from .. import functional as F
from . import init
from .module import Module
from .parameter import Parameter


class Embedding(Module):
    """Embedding(num_embeddings, embedding_dim, padding_idx=None): integer ids
    (any shape) -> (*ids.shape, embedding_dim). Row `padding_idx`, if given,
    starts at zero and gets no gradient."""

    def __init__(self, num_embeddings, embedding_dim, padding_idx=None, dtype=None):
        super().__init__()
        if num_embeddings < 1 or embedding_dim < 1:
            raise ValueError(f"Embedding: num_embeddings and embedding_dim must be positive, "
                             f"got {num_embeddings} and {embedding_dim}")
        if padding_idx is not None:
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise ValueError(f"Embedding: padding_idx must be in [-{num_embeddings}, "
                                 f"{num_embeddings}), got {padding_idx}")
            padding_idx = padding_idx % num_embeddings
        self.num_embeddings, self.embedding_dim = int(num_embeddings), int(embedding_dim)
        self.padding_idx = padding_idx
        dtype = np.dtype(np.float32 if dtype is None else dtype)
        self.weight = Parameter(np.empty((num_embeddings, embedding_dim), dtype=dtype))  # (V, D)
        self.reset_parameters()

    def reset_parameters(self):
        init.normal_(self.weight)
        if self.padding_idx is not None:
            self.weight.data[self.padding_idx] = 0

    def forward(self, indices):                                   # (...) int
        return F.embedding(indices, self.weight, self.padding_idx)  # (..., D)

    def extra_repr(self):
        text = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.padding_idx is not None:
            text += f", padding_idx={self.padding_idx}"
        return text
