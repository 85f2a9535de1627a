"""Joining and splitting: cat, stack, split, chunk.

cat glues tensors end to end along an existing axis, stack along a new one;
their backward cuts the gradient back into the pieces. split returns several
tensors, each made by its own slicing op (a Function has one output).
"""
import numpy as np

from ..autograd.function import Function
from .dims import normalize_dim
from .indexing import GetItem


class Cat(Function):
    """out = [a1, a2, ...] along `dim`;  dL/da_i = the slice of g where a_i sits"""

    def forward(self, *arrays, dim):
        self.dim = dim
        self.sizes = [a.shape[dim] for a in arrays]
        return np.concatenate(arrays, axis=dim)

    def backward(self, grad):
        cuts = np.cumsum(self.sizes)[:-1]
        return tuple(np.split(grad, cuts, axis=self.dim))


class Stack(Function):
    """out[..., i, ...] = a_i (new axis `dim`);  dL/da_i = g[..., i, ...]"""

    def forward(self, *arrays, dim):
        self.dim = dim
        return np.stack(arrays, axis=dim)

    def backward(self, grad):
        return tuple(np.take(grad, i, axis=self.dim) for i in range(grad.shape[self.dim]))


def _tensors(op_name, tensors):
    from ..autograd.tensor import as_tensor
    if not isinstance(tensors, (list, tuple)) or len(tensors) == 0:
        raise ValueError(f"{op_name}: expected a non-empty list or tuple of tensors")
    return [as_tensor(t) for t in tensors]


def cat(tensors, dim=0):
    """Concatenate along an existing axis; all other sizes must match."""
    tensors = _tensors("cat", tensors)
    first = tensors[0]
    if first.ndim == 0:
        raise ValueError("cat: zero-dimensional tensors cannot be concatenated (use stack)")
    d = normalize_dim("cat", dim, first.ndim, first.shape)
    for t in tensors[1:]:
        if t.ndim != first.ndim or t.shape[:d] + t.shape[d + 1:] != first.shape[:d] + first.shape[d + 1:]:
            shapes = ", ".join(str(x.shape) for x in tensors)
            raise ValueError(f"cat: tensors must have the same shape except in dim {dim}, got {shapes}")
    return Cat.apply(*tensors, dim=d)


concatenate = cat


def stack(tensors, dim=0):
    """Join equal-shaped tensors along a new axis `dim`."""
    tensors = _tensors("stack", tensors)
    first = tensors[0]
    for t in tensors[1:]:
        if t.shape != first.shape:
            shapes = ", ".join(str(x.shape) for x in tensors)
            raise ValueError(f"stack: all tensors must have the same shape, got {shapes}")
    d = normalize_dim("stack", dim, first.ndim, first.shape, extra=1)
    return Stack.apply(*tensors, dim=d)


def split(tensor, split_size_or_sections, dim=0):
    """Cut along `dim` into pieces of `split_size` (the last may be smaller), or of
    the listed sizes. Returns a tuple of tensors, each a slicing op on `tensor`."""
    d = normalize_dim("split", dim, tensor.ndim, tensor.shape)
    length = tensor.shape[d]
    if isinstance(split_size_or_sections, (list, tuple)):
        sizes = [int(s) for s in split_size_or_sections]
        if any(s < 0 for s in sizes) or sum(sizes) != length:
            raise ValueError(f"split: sections {sizes} must be non-negative and add up to "
                             f"{length}, the size of dim {dim} of shape {tensor.shape}")
    else:
        size = int(split_size_or_sections)
        if size <= 0:
            raise ValueError(f"split: split_size must be positive, got {size}")
        sizes = [min(size, length - start) for start in range(0, length, size)] or [0]
    pieces, start = [], 0
    for s in sizes:
        index = (slice(None),) * d + (slice(start, start + s),)
        pieces.append(GetItem.apply(tensor, index=index))
        start += s
    return tuple(pieces)


def chunk(tensor, chunks, dim=0):
    """Split into `chunks` pieces of equal size (the last may be smaller), like PyTorch."""
    d = normalize_dim("chunk", dim, tensor.ndim, tensor.shape)
    if int(chunks) <= 0:
        raise ValueError(f"chunk: chunks must be positive, got {chunks}")
    if tensor.shape[d] == 0:                            # an empty dim: `chunks` empty pieces, as PyTorch
        return split(tensor, [0] * int(chunks), dim)
    size = -(-tensor.shape[d] // int(chunks))           # ceiling division
    return split(tensor, size, dim)
