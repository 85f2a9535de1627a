"""The fully connected layer as one op: out = x @ weight.T + bias.

    F.linear(x, weight, bias)     # x (..., in), weight (out, in), bias (out,) -> (..., out)

The weight is stored (out, in) like PyTorch, so row j of the weight holds the
input weights of output unit j. Any number of leading batch dimensions is
allowed; they are flattened into one for the matrix products.
"""
import math

import numpy as np
from scipy.linalg import blas

from ..autograd.function import Function

_GEMM = {np.dtype(np.float32): blas.sgemm, np.dtype(np.float64): blas.dgemm}


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


def _product_plus_bias(x2, weight, bias):
    """x2 (B, in) @ weight.T + bias -> a new (B, out) array.

    BLAS's gemm computes C = alpha op(A) op(B) + beta C: with C filled with
    the bias in every row and beta = 1, the bias is added inside the product,
    as PyTorch's addmm does, instead of in a second pass over the output
    (`out += bias` reads and writes the whole output once more, after the
    product has pushed it out of the cache). BLAS works on column-major arrays:
    the row-major (B, out) result is the column-major (out, B) matrix
    weight @ x2.T, and weight.T and x2.T are column-major views of the
    row-major arrays, so nothing is copied."""
    gemm = _GEMM.get(x2.dtype)
    usable = (gemm is not None and x2.size and weight.size and x2.flags.c_contiguous
              and weight.flags.c_contiguous and x2.dtype == weight.dtype == bias.dtype)
    if not usable:                                  # other dtypes, empty or strided arrays: two passes
        out = x2 @ weight.T                         # (B, out)
        out += bias
        return out
    out = np.empty((x2.shape[0], weight.shape[0]), x2.dtype)   # (B, out)
    out[...] = bias                                 # every row starts as the bias
    # column-major: out.T (out, B) = weight (out, in) @ x2.T (in, B) + out.T; written in place
    gemm(1.0, weight.T, x2.T, 1.0, out.T, trans_a=1, overwrite_c=1)
    return out


class Linear(Function):
    """out = x W^T + b
    dL/dx = g W,   dL/dW = g^T x (summed over batch dims),   dL/db = sum of g over batch dims"""

    def forward(self, x, weight, bias=None):
        _check(x, weight, bias)
        rows = math.prod(x.shape[:-1])                 # B = product of batch dims (-1 cannot be inferred at in = 0)
        x2 = x.reshape(rows, weight.shape[1])          # (B, in)
        if bias is None:
            out = x2 @ weight.T                        # (B, out)
        else:
            out = _product_plus_bias(x2, weight, bias)   # (B, out), the bias added inside the product
        self.save_for_backward(x2, weight)
        self.x_shape = x.shape
        self.has_bias = bias is not None
        return out.reshape(x.shape[:-1] + (weight.shape[0],))   # (..., out)

    def backward(self, grad):
        x2, weight = self.saved_tensors
        g2 = grad.reshape(math.prod(self.x_shape[:-1]), weight.shape[0])   # (B, out)
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
