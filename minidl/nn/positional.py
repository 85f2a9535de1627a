"""Positional embeddings: attention alone does not know token order, so each
position gets a vector added to its token's embedding.

- `LearnedPositionalEmbedding(max_len, dim)`: a trainable table, one row per
  position (GPT-2, ViT).
- `SinusoidalPositionalEncoding(dim, max_len)`: the fixed waves of the original
  Transformer: PE[p, 2i] = sin(p / 10000^(2i/dim)), PE[p, 2i+1] = cos(same).

Both take x (N, T, dim) and return x + PE[:T].
"""
import numpy as np

from ..autograd.tensor import Tensor
from . import init
from .module import Module
from .parameter import Parameter


def _check_length(name, x, max_len, dim):
    if x.ndim != 3 or x.shape[-1] != dim:
        raise ValueError(f"{name}: expected input (N, T, {dim}), got shape {x.shape}")
    if x.shape[1] > max_len:
        raise ValueError(f"{name}: sequence length {x.shape[1]} exceeds max_len {max_len}")


class LearnedPositionalEmbedding(Module):
    def __init__(self, max_len, dim, std=0.02):
        super().__init__()
        self.max_len, self.dim = max_len, dim
        self.weight = Parameter(np.empty((max_len, dim), dtype=np.float32))
        init.normal_(self.weight, std=std)

    def extra_repr(self):
        return f"max_len={self.max_len}, dim={self.dim}"

    def forward(self, x):
        _check_length("LearnedPositionalEmbedding", x, self.max_len, self.dim)
        return x + self.weight[: x.shape[1]]                 # (N, T, dim) + (T, dim)


def sinusoidal_table(max_len, dim):
    """The (max_len, dim) table of sines and cosines."""
    position = np.arange(max_len)[:, None]                     # (max_len, 1)
    frequency = 10000.0 ** (-np.arange(0, dim, 2) / dim)       # (ceil(dim/2),)
    table = np.zeros((max_len, dim))
    table[:, 0::2] = np.sin(position * frequency)
    table[:, 1::2] = np.cos(position * frequency[: dim // 2])
    return table


class SinusoidalPositionalEncoding(Module):
    def __init__(self, dim, max_len=5000):
        super().__init__()
        self.max_len, self.dim = max_len, dim
        self.register_buffer("table", sinusoidal_table(max_len, dim).astype(np.float32),
                             persistent=False)

    def extra_repr(self):
        return f"dim={self.dim}, max_len={self.max_len}"

    def forward(self, x):
        _check_length("SinusoidalPositionalEncoding", x, self.max_len, self.dim)
        table = self.table.data[: x.shape[1]].astype(x.dtype)
        return x + Tensor(table)                             # (N, T, dim) + (T, dim)
