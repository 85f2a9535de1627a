"""Pooling ops: max_pool2d and avg_pool2d, with PyTorch's arguments and semantics.

    F.max_pool2d(x, kernel_size, stride=None, padding=0)    # (N, C, H, W) -> (N, C, OH, OW)
    F.avg_pool2d(x, kernel_size, stride=None, padding=0)    # count_include_pad=True

kernel_size, stride and padding are an int or an (h, w) pair; stride defaults
to kernel_size. OH = (H + 2 pH - kH) // sH + 1 (floor; no ceil_mode), and
padding may be at most half the kernel (PyTorch's rule). A 3-D (C, H, W) input
is pooled as a batch of one. Everything is validated here, before any kernel
runs; the kernels live in minidl/kernels/pooling.py.
"""
import numpy as np

from ..autograd.function import Function
from ..kernels.geometry import DTYPES, as_pair
from ..kernels.pooling import avg_pool2d_backward, avg_pool2d_forward, max_pool2d_backward, max_pool2d_forward


def _check(op, x, kernel_size, stride, padding):
    """Validate the input and the window arguments; return the NCHW view of x
    and the three pairs. Raises TypeError/ValueError naming op and shapes."""
    if x.dtype not in DTYPES:
        raise TypeError(f"{op}: expected a float32 or float64 input, got dtype {x.dtype} "
                        f"(shape {x.shape}); convert with .float()")
    if x.ndim not in (3, 4):
        raise ValueError(f"{op}: expected a 3-D (C, H, W) or 4-D (N, C, H, W) input, "
                         f"got shape {x.shape}")
    kernel = as_pair(op, "kernel_size", kernel_size)
    no_stride = stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0)
    stride = kernel if no_stride else as_pair(op, "stride", stride)
    padding = as_pair(op, "padding", padding)
    if min(kernel) <= 0:
        raise ValueError(f"{op}: kernel_size must be positive, got {kernel} for input of shape {x.shape}")
    if min(stride) <= 0:
        raise ValueError(f"{op}: stride must be positive, got {stride} for input of shape {x.shape}")
    if min(padding) < 0:
        raise ValueError(f"{op}: padding must be non-negative, got {padding}")
    if padding[0] > kernel[0] // 2 or padding[1] > kernel[1] // 2:
        raise ValueError(f"{op}: padding {padding} must be at most half of kernel_size {kernel}")
    h, w = x.shape[-2:]
    if h == 0 or w == 0:
        raise ValueError(f"{op}: input of shape {x.shape} has an empty (H, W) plane")
    if h + 2 * padding[0] < kernel[0] or w + 2 * padding[1] < kernel[1]:
        raise ValueError(f"{op}: kernel_size {kernel} is larger than the padded input "
                         f"({h + 2 * padding[0]}, {w + 2 * padding[1]}) "
                         f"(input shape {x.shape}, padding {padding})")
    x4 = x if x.ndim == 4 else x[None]                    # (N, C, H, W)
    return np.ascontiguousarray(x4), kernel, stride, padding


class MaxPool2d(Function):
    """out[n,c,i,j] = max of window (i, j);  dL/dx = grad scattered to each
    window's argmax (added up where windows overlap; one element per tie)."""

    def forward(self, x, kernel_size, stride=None, padding=0):
        x4, k, s, p = _check("max_pool2d", x, kernel_size, stride, padding)
        out, argmax = max_pool2d_forward(x4, k, s, p)     # (N, C, OH, OW) twice
        self.save_for_backward(argmax)
        self.dtype = x.dtype
        self.input_shape, self.squeeze = x4.shape, x.ndim == 3
        return out[0] if self.squeeze else out

    def backward(self, grad):
        (argmax,) = self.saved_tensors
        g = np.ascontiguousarray(grad[None] if self.squeeze else grad,
                                 dtype=self.dtype)  # (N, C, OH, OW)
        grad_x = max_pool2d_backward(g, argmax, self.input_shape)  # (N, C, H, W)
        return grad_x[0] if self.squeeze else grad_x


class AvgPool2d(Function):
    """out[n,c,i,j] = sum(window (i, j)) / (kH kW);  dL/dx[window] += grad / (kH kW)."""

    def forward(self, x, kernel_size, stride=None, padding=0):
        x4, k, s, p = _check("avg_pool2d", x, kernel_size, stride, padding)
        self.geometry, self.dtype = (k, s, p), x.dtype
        self.input_shape, self.squeeze = x4.shape, x.ndim == 3
        out = avg_pool2d_forward(x4, k, s, p)              # (N, C, OH, OW)
        return out[0] if self.squeeze else out

    def backward(self, grad):
        g = np.ascontiguousarray(grad[None] if self.squeeze else grad,
                                 dtype=self.dtype)  # (N, C, OH, OW)
        grad_x = avg_pool2d_backward(g, self.input_shape, *self.geometry)  # (N, C, H, W)
        return grad_x[0] if self.squeeze else grad_x


def max_pool2d(x, kernel_size, stride=None, padding=0):
    """2-D max pooling over an (N, C, H, W) or (C, H, W) tensor (PyTorch semantics)."""
    return MaxPool2d.apply(x, kernel_size=kernel_size, stride=stride, padding=padding)


def avg_pool2d(x, kernel_size, stride=None, padding=0):
    """2-D average pooling, padding counted in the divisor (count_include_pad=True)."""
    return AvgPool2d.apply(x, kernel_size=kernel_size, stride=stride, padding=padding)

