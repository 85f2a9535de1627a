"""softmax and log_softmax along any dim (PyTorch's `F.softmax(x, dim=-1)`).

    p = F.softmax(logits, dim=-1)          # each slice along dim sums to 1
    logp = F.log_softmax(logits, dim=-1)   # log of the same, computed stably

The op moves `dim` last and makes the rows contiguous, so the kernels
(minidl/kernels/softmax.py) only ever see a (rows, n) array; the result is
moved back. Backward is fused per row (never an n x n Jacobian):

    softmax:      y = exp(x - lse(x))   dL/dx = y * (g - sum(g * y))
    log_softmax:  y = x - lse(x)        dL/dx = g - exp(y) * sum(g)

Special values, as in PyTorch: logits of +-1e4 are fine (the row max is
subtracted first); -inf entries get probability 0; a slice that is entirely
-inf (nothing to normalise) comes out as NaN, as does any slice holding a NaN.
"""
import numbers

import numpy as np

from ..autograd.function import Function
from ..kernels.geometry import DTYPES
from ..kernels.softmax import softmax_backward, softmax_forward


def _check(op, x, dim):
    """Validate dtype and dim; return dim as a non-negative axis of x (0 for 0-d)."""
    if x.dtype not in DTYPES:
        raise TypeError(f"{op}: expected a float32 or float64 input, got dtype {x.dtype} "
                        f"(shape {x.shape}); convert with .float()")
    if not isinstance(dim, numbers.Integral) or isinstance(dim, bool):
        raise TypeError(f"{op}: dim must be an int, got {dim!r} for input of shape {x.shape}")
    rank = max(x.ndim, 1)                                 # a 0-d tensor takes dim 0 or -1
    if not -rank <= dim < rank:
        raise ValueError(f"{op}: dim {dim} is out of range for input of shape {x.shape} "
                         f"(expected -{rank} <= dim < {rank})")
    return int(dim) % rank


class Softmax(Function):
    """y = exp(x - max) / sum exp(x - max) along dim (log=False), or
    y = x - logsumexp(x) (log=True); backward fused per row (module docstring)."""

    def forward(self, x, dim=-1, log=False):
        op = "log_softmax" if log else "softmax"
        axis = _check(op, x, dim)
        self.log, self.axis, self.dtype, self.shape = log, axis, x.dtype, x.shape
        if x.size == 0:                                   # nothing to normalise
            self.save_for_backward(None)
            return np.empty_like(x)
        moved = np.moveaxis(x.reshape(x.shape or (1,)), axis, -1)   # (..., n), dim last
        self.moved_shape = moved.shape
        rows = np.ascontiguousarray(moved).reshape(-1, moved.shape[-1])  # (rows, n)
        if self._dim_is_last():                           # the result in x's shape, written through a 2-D view
            out = np.empty(x.shape, x.dtype)
            y = softmax_forward(rows, log, out=out.reshape(rows.shape))   # (rows, n), a view of out
            self.save_for_backward(y)
            return out
        y = softmax_forward(rows, log)                    # (rows, n)
        self.save_for_backward(y)
        return np.moveaxis(y.reshape(moved.shape), -1, axis).reshape(x.shape)

    def _dim_is_last(self):
        """True when moving dim last changes nothing: the rows are x's own layout."""
        return len(self.shape) == 0 or self.axis == len(self.shape) - 1

    def backward(self, grad):
        (y,) = self.saved_tensors
        if y is None:
            return np.zeros(self.shape, self.dtype)
        g = np.moveaxis(grad.reshape(self.shape or (1,)), self.axis, -1)   # (..., n)
        g = np.ascontiguousarray(g, dtype=self.dtype).reshape(y.shape)     # (rows, n)
        if self._dim_is_last():
            # a new array in x's shape that owns its memory, written through a 2-D view:
            # autograd stores it as a leaf's gradient without copying it
            grad_x = np.empty(self.shape, self.dtype)
            softmax_backward(g, y, self.log, out=grad_x.reshape(y.shape))
            return grad_x
        grad_x = softmax_backward(g, y, self.log)         # (rows, n)
        return np.moveaxis(grad_x.reshape(self.moved_shape), -1, self.axis).reshape(self.shape)


def softmax(x, dim=-1):
    """Probabilities along `dim`: every slice is >= 0 and sums to 1."""
    return Softmax.apply(x, dim=dim, log=False)


def log_softmax(x, dim=-1):
    """Log-probabilities along `dim`, without computing log(softmax) (which underflows)."""
    return Softmax.apply(x, dim=dim, log=True)
