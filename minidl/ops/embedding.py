"""Embedding lookup: rows of a weight table picked by integer indices.

    out[i, j, :] = weight[indices[i, j], :]

Backward is a scatter-add: every time row r was picked, the gradient of that
output position flows back into row r, so rows picked twice get both
gradients added (`grad[idx] += g` would silently drop the repeats). It sorts
the positions by row, so each row's gradients sit next to each other, and
adds each run with one `np.add.reduceat`: several times faster than
`np.add.at`, which adds one position at a time.
"""
import numpy as np

from ..autograd.function import Function
from ..autograd.tensor import Tensor


class Embedding(Function):
    """out = weight[indices];  dL/dweight[r] = sum of g[p] over positions p with indices[p] == r
    (row padding_idx, when given, gets no gradient). Indices get no gradient."""

    def forward(self, indices, weight, padding_idx):
        self.save_for_backward(indices)
        self.weight_shape, self.weight_dtype = weight.shape, weight.dtype
        self.padding_idx = padding_idx
        return weight[indices]                                  # (*indices.shape, D)

    def backward(self, grad):
        (indices,) = self.saved_tensors
        grad_weight = scatter_add_rows(indices.reshape(-1), grad.reshape(-1, self.weight_shape[1]),
                                       self.weight_shape[0])                    # (V, D)
        if self.padding_idx is not None:
            grad_weight[self.padding_idx] = 0
        return None, grad_weight


def scatter_add_rows(rows, values, num_rows):
    """out (num_rows, D) with out[r] = sum of values[p] over positions p where
    rows[p] == r (zero for a row never picked). rows (P,) ints, values (P, D)."""
    out = np.zeros((num_rows, values.shape[1]), dtype=values.dtype)              # (V, D)
    if rows.size == 0:
        return out
    order = np.argsort(rows, kind="stable")                    # positions grouped by row
    sorted_rows = rows[order]                                  # (P,) non-decreasing
    starts = np.flatnonzero(np.concatenate(([True], sorted_rows[1:] != sorted_rows[:-1])))  # first of each run
    out[sorted_rows[starts]] = np.add.reduceat(values[order], starts, axis=0)   # one sum per distinct row
    return out


def embedding(indices, weight, padding_idx=None):
    """Look up rows of `weight` (num_embeddings, embedding_dim) at integer `indices`
    (any shape); returns shape (*indices.shape, embedding_dim)."""
    index_array = np.asarray(indices.data if isinstance(indices, Tensor) else indices)
    weight_shape = tuple(weight.shape)
    if len(weight_shape) != 2:
        raise ValueError(f"embedding: weight must have shape (num_embeddings, embedding_dim), "
                         f"got shape {weight_shape}")
    if index_array.dtype.kind not in "iu":
        raise TypeError(f"embedding: indices must be an integer array, got dtype {index_array.dtype} "
                        f"(shape {index_array.shape})")
    num = weight_shape[0]
    if index_array.size and (index_array.min() < 0 or index_array.max() >= num):
        bad = index_array.min() if index_array.min() < 0 else index_array.max()
        raise ValueError(f"embedding: index {int(bad)} is out of range for a weight of shape "
                         f"{weight_shape}; indices (shape {index_array.shape}) must be in [0, {num})")
    if padding_idx is not None:
        padding_idx = int(padding_idx)
        if padding_idx < 0:
            padding_idx += num
        if not 0 <= padding_idx < num:
            raise ValueError(f"embedding: padding_idx must be in [-{num}, {num}) for a weight of "
                             f"shape {weight_shape}, got {padding_idx}")
    return Embedding.apply(index_array.astype(np.int64, copy=False), weight,
                           padding_idx=padding_idx)
