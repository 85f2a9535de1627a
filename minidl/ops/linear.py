"""The fully connected layer as one op: out = x @ weight.T + bias.

    F.linear(x, weight, bias)     # x (..., in), weight (out, in), bias (out,) -> (..., out)

The weight is stored (out, in) like PyTorch, so row j of the weight holds the
input weights of output unit j. Any number of leading batch dimensions is
allowed; they are flattened into one for the matrix products.
"""
import numpy as np

from ..autograd.function import Function


def _check(x, weight, bias):
    if weight.ndim != 2:
        raise ValueError(f"linear: weight must be 2-D (out_features, in_features), got shape {weight.shape}")
    if x.ndim < 1 or x.shape[-1] != weight.shape[1]:
        raise ValueError(
            f"linear: input of shape {x.shape} has last dimension {x.shape[-1] if x.ndim else None}, "
            f"but weight of shape {weight.shape} expects in_features={weight.shape[1]}"
        )
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ValueError(f"linear: bias of shape {bias.shape} does not match "
                         f"out_features={weight.shape[0]} (expected ({weight.shape[0]},))")
    for name, array in (("input", x), ("weight", weight), ("bias", bias)):
        if array is not None and array.dtype != weight.dtype:
            raise TypeError(
                f"linear: {name} has dtype {array.dtype} but weight has dtype {weight.dtype}; "
                "convert the input (x.float() / x.double()) or the module (.to(dtype))"
            )
    if weight.dtype.kind != "f":
        raise TypeError(f"linear: expected floating-point arrays, got {weight.dtype}")


class Linear(Function):
    """out = x W^T + b
    dL/dx = g W,   dL/dW = g^T x (summed over batch dims),   dL/db = sum of g over batch dims"""

    def forward(self, x, weight, bias=None):
        _check(x, weight, bias)
        x2 = x.reshape(-1, weight.shape[1])            # (B, in), B = product of batch dims
        out = x2 @ weight.T                            # (B, out)
        if bias is not None:
            out += bias
        self.save_for_backward(x2, weight)
        self.x_shape = x.shape
        self.has_bias = bias is not None
        return out.reshape(x.shape[:-1] + (weight.shape[0],))   # (..., out)

    def backward(self, grad):
        x2, weight = self.saved_tensors
        g2 = grad.reshape(-1, weight.shape[0])         # (B, out)
        grad_x = (g2 @ weight).reshape(self.x_shape)   # (..., in)
        grad_w = g2.T @ x2                             # (out, in)
        if self.has_bias:
            ones = np.ones(g2.shape[0], g2.dtype)      # (B,)
            return grad_x, grad_w, ones @ g2           # (out,): column sums as one BLAS product
        return grad_x, grad_w


def linear(x, weight, bias=None):
    """x (..., in) @ weight (out, in).T + bias (out,) -> (..., out)."""
    if bias is None:
        return Linear.apply(x, weight)
    return Linear.apply(x, weight, bias)
