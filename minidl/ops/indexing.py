"""Indexing: `x[index]` with ints, slices, None, Ellipsis, integer arrays or
tensors, and boolean masks, as in NumPy.

out = a[index];  dL/da = zeros of a's shape with g added at `index`.
The adding is `np.add.at`, so an element picked twice (x[[0, 0]]) gets both
gradients. Without arrays in the index (only ints, slices, None, Ellipsis) no
element can be picked twice, and a plain assignment does the same faster.
"""
import numpy as np

from ..autograd.function import Function


class GetItem(Function):
    """out = a[index];  dL/da = scatter-add of g into zeros at index"""

    def forward(self, a, index):
        self.index, self.shape = index, a.shape
        try:
            return a[index]
        except IndexError as error:
            raise IndexError(f"getitem: {error} (indexing a tensor of shape {a.shape} "
                             f"with {_describe(index)})") from None

    def backward(self, grad):
        out = np.zeros(self.shape, dtype=grad.dtype)
        if _has_array(self.index):
            np.add.at(out, self.index, grad)
        else:
            out[self.index] = grad
        return out


def _has_array(index):
    return any(isinstance(i, np.ndarray) for i in index)


def _describe(index):
    return "[" + ", ".join(
        f"array of shape {i.shape} ({i.dtype})" if isinstance(i, np.ndarray) else repr(i) for i in index
    ) + "]"


def _normalize(index):
    """A tuple whose entries are ints, slices, None, Ellipsis or ndarrays."""
    from ..autograd.tensor import Tensor
    if not isinstance(index, tuple):
        index = (index,)
    parts = []
    for i in index:
        if isinstance(i, Tensor):
            i = i.data
        elif isinstance(i, (list, range)):
            i = np.asarray(i)
            if i.size == 0:
                i = i.astype(np.intp)              # x[[]] picks nothing
        if isinstance(i, np.ndarray):
            if i.dtype.kind == "i" or i.dtype.kind == "u":
                i = i.astype(np.intp, copy=False)
            elif i.dtype.kind != "b":
                raise TypeError(f"getitem: index arrays must hold integers or bools, got dtype {i.dtype}")
        elif isinstance(i, np.integer):
            i = int(i)
        elif not (i is None or i is Ellipsis or isinstance(i, (int, slice))) or isinstance(i, bool):
            raise TypeError(f"getitem: cannot index with {type(i).__name__} {i!r}; "
                            "use ints, slices, None, ..., integer arrays or bool masks")
        parts.append(i)
    return tuple(parts)


def getitem(input, index):
    return GetItem.apply(input, index=_normalize(index))
