"""Dropout: during training, zero each element with probability p and scale the
survivors by 1/(1-p) ("inverted" dropout), so that the expected value of every
element is unchanged and evaluation needs no rescaling.

    F.dropout(x, p=0.5, training=True)

The mask is drawn from `minidl.random.generator()`; `mdl.manual_seed` repeats it.
"""
import numpy as np

from .. import random
from ..autograd.function import Function


class Dropout(Function):
    """out = x * m,  m = keep / (1 - p),  keep ~ Bernoulli(1 - p);   dL/dx = g * m"""

    def forward(self, x, p=0.5):
        if p >= 1.0:
            scaled_mask = np.zeros_like(x)               # everything dropped
        else:
            keep = random.generator().random(x.shape, dtype=np.float32) >= p
            scaled_mask = keep.astype(x.dtype) * x.dtype.type(1.0 / (1.0 - p))
        self.save_for_backward(scaled_mask)
        return x * scaled_mask

    def backward(self, grad):
        (scaled_mask,) = self.saved_tensors
        return grad * scaled_mask


def dropout(x, p=0.5, training=True):
    """Inverted dropout; the input itself when not training or p == 0."""
    if not isinstance(p, (int, float, np.floating, np.integer)) or not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: probability p must be in [0, 1], got {p}")
    if not training or p == 0:
        return x
    dtype = getattr(x, "dtype", None)
    if dtype is not None and np.dtype(dtype).kind != "f":
        raise TypeError(f"dropout: expected a floating-point input, got dtype {dtype}")
    return Dropout.apply(x, p=float(p))
