"""Convolution ops: conv2d and its adjoint conv_transpose2d, PyTorch's semantics.

    F.conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1)
        x (N, Cin, H, W), weight (Cout, Cin/groups, kH, kW), bias (Cout,) -> (N, Cout, Ho, Wo)
        Ho = (H + 2*padding - dilation*(kH - 1) - 1) // stride + 1
    F.conv_transpose2d(x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1)
        x (N, Cin, H, W), weight (Cin, Cout/groups, kH, kW), bias (Cout,) -> (N, Cout, Ho, Wo)
        Ho = (H - 1)*stride - 2*padding + dilation*(kH - 1) + output_padding + 1

The arithmetic lives in `minidl.kernels.conv` (im2col + GEMM); here we check
the arguments, add the bias and route gradients. Like PyTorch, "convolution"
means cross-correlation: the kernel is not flipped.
"""
import numpy as np

from ..autograd import grad_mode
from ..autograd.function import Function
from ..autograd.tensor import Tensor
from ..kernels import conv as kernels
from .conv_checks import check_conv2d, check_conv_transpose2d


class Conv2d(Function):
    """out[n, o] = sum_c W[o, c] (cross-correlated with) x[n, g*Cg + c] + b[o]
    dL/dx = col2im(W^T gy),   dL/dW = gy cols^T,   dL/db = sum of gy over (N, Ho, Wo)"""

    def forward(self, x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, keep_columns=False):
        """keep_columns: the weight will need its gradient, so keep what the
        kernel can reuse for it (the column matrix, on some paths: more memory
        until backward, less work in it)."""
        self.params = check_conv2d(x, weight, bias, stride, padding, dilation, groups)
        x = np.ascontiguousarray(x)                    # (N, Cin, H, W); a copy only if needed
        weight = np.ascontiguousarray(weight)          # (Cout, Cin/groups, kH, kW)
        out = kernels.conv2d_forward(x, weight, *self.params, bias=bias,
                                     keep_columns=keep_columns)   # (N, Cout, Ho, Wo), a new array
        out, kept = out if keep_columns else (out, ())             # kept: () or arrays for backward
        self.has_bias = bias is not None
        self.save_for_backward(x, weight, *kept)
        return out

    def backward(self, grad):
        x, weight, *kept = self.saved_tensors
        need_x, need_w = self.needs_input_grad[0], self.needs_input_grad[1]
        need_b = self.has_bias and self.needs_input_grad[2]
        # (dL/dx, dL/dW) or, with need_b, (dL/dx, dL/dW, dL/db (Cout,)) in one pass over grad
        grads = kernels.conv2d_backward(grad, x, weight, *self.params, need_input=need_x,
                                        need_weight=need_w, need_bias=need_b, kept=tuple(kept))
        if self.has_bias and not need_b:
            return grads + (None,)
        return grads


class ConvTranspose2d(Function):
    """out = conv2d^T(x; W) + b, the adjoint of conv2d(., W)  (W read as conv2d's (Cout_conv, Cin_conv/groups, kH, kW))
    dL/dx = conv2d(gy, W),   dL/dW = conv2d's weight gradient with input gy and output gradient x,
    dL/db = sum of gy over (N, Ho, Wo)"""

    def forward(self, x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
        stride, padding, output_padding, dilation, groups, _ = check_conv_transpose2d(
            x, weight, bias, stride, padding, output_padding, groups, dilation)
        x = np.ascontiguousarray(x)                    # (N, Cin, H, W)
        weight = np.ascontiguousarray(weight)          # (Cin, Cout/groups, kH, kW)
        out = kernels.conv_transpose2d_forward(x, weight, stride, padding, output_padding,
                                               dilation, groups, bias=bias)   # (N, Cout, Ho, Wo), + bias
        self.params = stride, padding, dilation, groups
        self.has_bias = bias is not None
        self.save_for_backward(x, weight)
        return out

    def backward(self, grad):
        x, weight = self.saved_tensors
        need_x, need_w = self.needs_input_grad[0], self.needs_input_grad[1]
        need_b = self.has_bias and self.needs_input_grad[2]
        # (dL/dx, dL/dW) or, with need_b, (dL/dx, dL/dW, dL/db (Cout,)) in one pass over grad
        grads = kernels.conv_transpose2d_backward(grad, x, weight, *self.params, need_input=need_x,
                                                  need_weight=need_w, need_bias=need_b)
        if self.has_bias and not need_b:
            return grads + (None,)
        return grads


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D convolution (cross-correlation) over NCHW input; see the module docstring."""
    keep = grad_mode.is_grad_enabled() and isinstance(weight, Tensor) and weight.requires_grad
    options = dict(stride=stride, padding=padding, dilation=dilation, groups=groups, keep_columns=keep)
    if bias is None:
        return Conv2d.apply(x, weight, **options)
    return Conv2d.apply(x, weight, bias, **options)


def conv_transpose2d(x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """Transposed 2-D convolution (the adjoint of conv2d, "deconvolution"); see the module docstring."""
    options = dict(stride=stride, padding=padding, output_padding=output_padding,
                   groups=groups, dilation=dilation)
    if bias is None:
        return ConvTranspose2d.apply(x, weight, **options)
    return ConvTranspose2d.apply(x, weight, bias, **options)
