"""Sliding-window geometry shared by convolution and pooling: every output-size
formula, the int-or-pair arguments, and the dtypes the kernels accept.

A window of k taps, `dilation` d apart, slides over an axis of `size` inputs
padded with `padding` p on both sides, moving `stride` s at a time. Output
position o reads inputs o*s - p + i*d for taps i = 0 .. k-1, so the last
window must end inside the padded axis (PyTorch's floor formula):

    out = (size + 2p - d*(k - 1) - 1) // s + 1               conv2d, pooling (d = 1)

conv_transpose2d is conv2d's adjoint: it maps conv2d's output size back to an
input size, plus `output_padding` extra rows/columns at the end (to pick one
of the input sizes that stride s maps to the same output size):

    out = (size - 1)*s - 2p + d*(k - 1) + output_padding + 1

The two formulas are `register_jitable`: plain Python functions that compiled
kernels can call too.
"""
import numbers

import numpy as np
from numba.extending import register_jitable

DTYPES = (np.dtype(np.float32), np.dtype(np.float64))    # what every kernel accepts


@register_jitable
def conv_output_size(size, kernel, stride, padding, dilation=1):
    """Window positions along one axis: (size + 2p - d(k - 1) - 1) // s + 1."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


@register_jitable
def conv_transpose_output_size(size, kernel, stride, padding, output_padding, dilation=1):
    """conv_transpose2d's output length: (size - 1)s - 2p + d(k - 1) + output_padding + 1."""
    return (size - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1


def as_pair(op, name, value, minimum=None):
    """An int or a pair of ints -> a pair of Python ints (height, width).

    Raises TypeError (not an int, or a bool) or ValueError (not one or two
    values, or below `minimum`), naming the op and the argument."""
    items = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(items) != 2:
        raise ValueError(f"{op}: {name} must be an int or a pair of ints, got {value!r}")
    for item in items:
        if isinstance(item, (bool, np.bool_)) or not isinstance(item, numbers.Integral):
            raise TypeError(f"{op}: {name} must be an int or a pair of ints, got {value!r}")
        if minimum is not None and item < minimum:
            raise ValueError(f"{op}: {name} must be >= {minimum}, got {value!r}")
    return int(items[0]), int(items[1])
