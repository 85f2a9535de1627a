"""Undo broadcasting in backward.

When `a` of shape (3, 1) is added to `b` of shape (4,), NumPy broadcasts both
to (3, 4). Each element of `a` was used 4 times, so its gradient is the sum of
the 4 gradients it contributed to: `sum_to(grad, (3, 1))`.
"""
import numpy as np


def broadcast_shapes(op_name, *shapes):
    """The broadcast shape, or a ValueError naming the op and the shapes."""
    try:
        return np.broadcast_shapes(*shapes)
    except ValueError:
        listed = " and ".join(str(tuple(s)) for s in shapes)
        raise ValueError(f"{op_name}: shapes {listed} cannot be broadcast together") from None


def sum_to(grad, shape):
    """Sum `grad` over the axes that broadcasting added or stretched, so that the
    result has `shape`."""
    if grad.shape == tuple(shape):
        return grad
    extra = grad.ndim - len(shape)                      # leading axes broadcasting added
    stretched = tuple(extra + i for i, n in enumerate(shape) if n == 1 and grad.shape[extra + i] != 1)
    out = grad.sum(axis=tuple(range(extra)) + stretched, keepdims=True)
    return out.reshape(shape)
