"""Normalisation ops: batch_norm and layer_norm, each one fused Function.

Both standardise values with a mean and a variance, then scale and shift:

    x_hat = (x - mean) / sqrt(var + eps)          y = x_hat * weight + bias

They differ in which values share a mean:
- batch_norm: one mean per channel, over the batch and the spatial positions
  (axes 0, 2, 3, ... of (N, C, ...)); in eval mode, the running averages.
- layer_norm: one mean per sample, over the last dims (`normalized_shape`).

Fusing the whole formula into one Function keeps a single small backward
instead of a graph of ~10 elementwise ops. With g = dL/dy, gh = g * weight and
M the number of values sharing one mean (statistics from the batch):

    dL/dx = (1 / M) * inv_std * (M * gh - sum(gh) - x_hat * sum(gh * x_hat))

(the two sums run over the values sharing a mean). When the statistics are
constants (batch_norm in eval mode) the mean and variance do not depend on x
and dL/dx = gh * inv_std.
"""
import numbers

import numpy as np

from ..autograd.function import Function
from ..autograd.tensor import Tensor
from ..kernels.backend import kernel_array
from ..kernels.batch_norm import (batch_norm_backward, batch_norm_forward, batch_norm_normalize,
                                  kernel_takes)
from ..kernels.geometry import DTYPES
from ..kernels.layer_norm import (layer_norm_backward, layer_norm_backward_numpy, layer_norm_forward,
                                  layer_norm_forward_numpy)


def _array_of(value):
    """The ndarray inside a Tensor (or the array itself); None stays None."""
    return value.data if isinstance(value, Tensor) else value


def _check_float(op_name, x):
    dtype = np.asarray(_array_of(x)).dtype
    if dtype.kind != "f":
        raise TypeError(f"{op_name}: expected a floating-point input, got dtype {dtype}")


# ---- batch_norm ---------------------------------------------------------------
class BatchNorm(Function):
    """y = (x - mean) / sqrt(var + eps) * weight + bias, per channel (axis 1).

    training: mean/var are the batch's (biased variance), and the running
    averages, when given, move towards them in place:
        running_mean = (1 - momentum) * running_mean + momentum * mean
        running_var  = (1 - momentum) * running_var  + momentum * var * M / (M - 1)
    eval: mean/var are the running averages, constants for backward.
    Backward: dL/dweight = sum(g * x_hat), dL/dbias = sum(g) over (N, *spatial);
    dL/dx as in the module docstring.

    The work runs on x viewed as (N, C, S), S = the product of the spatial
    dims, in minidl/kernels/batch_norm.py: one fused pass per channel forward
    (statistics, then the output), one backward (float32 and float64; other
    float dtypes, or a weight, bias or gradient of another dtype than x, take
    the kernels' NumPy twin)."""

    def forward(self, x, *affine, running_mean, running_var, training, momentum, eps,
                has_weight, has_bias):
        samples, channels = x.shape[0], x.shape[1]
        spatial = int(np.prod(x.shape[2:], dtype=np.int64))       # S: 1 for (N, C)
        weight = affine[0] if has_weight else np.ones(channels, x.dtype)    # (C,)
        bias = affine[-1] if has_bias else np.zeros(channels, x.dtype)      # (C,)
        x3 = x.reshape(samples, channels, spatial)                 # (N, C, S)
        if kernel_takes(x3, weight, bias):
            x3 = kernel_array(x3)                                  # kept for backward: contiguous once
        use_batch_stats = training or running_mean is None
        if use_batch_stats:
            out, mean, var, inv_std = batch_norm_forward(x3, weight, bias, eps)   # (N, C, S), 3 x (C,)
            if training and running_mean is not None:
                count = samples * spatial                          # M: values per channel
                unbiased = var.astype(x.dtype) * (count / (count - 1))
                running_mean *= 1 - momentum                       # in place: buffers move
                running_mean += momentum * mean.astype(x.dtype)
                running_var *= 1 - momentum
                running_var += momentum * unbiased
        else:
            mean = running_mean.astype(np.float64)                 # (C,) constants
            inv_std = 1.0 / np.sqrt(running_var.astype(np.float64) + eps)
            out = batch_norm_normalize(x3, weight, bias, mean, inv_std)
        self.save_for_backward(x3, weight, mean, inv_std)
        self.x_shape, self.batch_stats = x.shape, use_batch_stats
        self.has_weight, self.has_bias = has_weight, has_bias
        return out.reshape(x.shape)

    def backward(self, grad):
        x3, weight, mean, inv_std = self.saved_tensors            # (N, C, S), (C,), (C,), (C,)
        grad_x, grad_weight, grad_bias = batch_norm_backward(grad.reshape(x3.shape), x3, weight,
                                                             mean, inv_std, self.batch_stats)
        grads = [grad_x.reshape(self.x_shape)]
        if self.has_weight:
            grads.append(grad_weight)                              # (C,)
        if self.has_bias:
            grads.append(grad_bias)                                # (C,)
        return tuple(grads)


def _check_channel_vector(name, value, channels, x_shape):
    if value is not None and tuple(value.shape) != (channels,):
        raise ValueError(
            f"batch_norm: {name} must have shape ({channels},) for input of shape "
            f"{tuple(x_shape)} (C={channels}), got shape {tuple(value.shape)}"
        )


def batch_norm(x, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5):
    """Batch normalisation of x (N, C) / (N, C, L) / (N, C, H, W), PyTorch semantics.

    running_mean, running_var: (C,) arrays or Tensors (buffers) or None. With
    training=True they are updated in place; with training=False they are used
    to normalise (then they must be given).
    """
    shape = tuple(x.shape)
    if len(shape) < 2:
        raise ValueError(f"batch_norm: expected input of shape (N, C, ...) with at least 2 dims, "
                         f"got shape {shape}")
    channels = shape[1]
    mean_array, var_array = _array_of(running_mean), _array_of(running_var)
    if (mean_array is None) != (var_array is None):
        raise ValueError("batch_norm: give both running_mean and running_var, or neither")
    if mean_array is not None and not (isinstance(mean_array, np.ndarray)
                                       and isinstance(var_array, np.ndarray)):
        raise TypeError("batch_norm: running_mean and running_var must be ndarrays or Tensors")
    for name, value in (("running_mean", mean_array), ("running_var", var_array)):
        if value is not None and value.dtype.kind != "f":       # they are averaged in place
            raise TypeError(f"batch_norm: {name} must be floating point, got dtype {value.dtype}")
    for name, value in (("running_mean", mean_array), ("running_var", var_array),
                        ("weight", weight), ("bias", bias)):
        _check_channel_vector(name, value, channels, shape)
    if not training and mean_array is None:
        raise ValueError("batch_norm: training=False needs running_mean and running_var")
    _check_float("batch_norm", x)
    if training and int(np.prod(shape)) // max(channels, 1) <= 1:
        raise ValueError(f"batch_norm: training needs more than one value per channel, "
                         f"got input of shape {shape}")
    if momentum is None or not 0.0 <= momentum <= 1.0:
        raise ValueError(f"batch_norm: momentum must be a number in [0, 1], got {momentum!r}")
    affine = [t for t in (weight, bias) if t is not None]
    return BatchNorm.apply(x, *affine, running_mean=mean_array, running_var=var_array,
                           training=bool(training), momentum=float(momentum), eps=float(eps),
                           has_weight=weight is not None, has_bias=bias is not None)


# ---- layer_norm ---------------------------------------------------------------
class LayerNorm(Function):
    """y = (x - mean) / sqrt(var + eps) * weight + bias, mean/var (biased) over
    the last k dims. dL/dweight = sum(g * x_hat), dL/dbias = sum(g) over the
    leading dims; dL/dx as in the module docstring.

    The work runs on x viewed as a (rows, M) matrix, M = the values per mean,
    in minidl/kernels/layer_norm.py: one fused pass per row forward, one
    backward (float32 and float64; other float dtypes, or a weight or bias of
    another dtype than x, take the kernels' NumPy twin)."""

    def forward(self, x, *affine, num_dims, eps, has_weight, has_bias):
        weight = affine[0] if has_weight else None
        bias = affine[-1] if has_bias else None
        count = int(np.prod(x.shape[x.ndim - num_dims:]))          # M: values per mean
        x2 = x.reshape(-1, count)                                  # (rows, M)
        weight1 = np.ones(count, x.dtype) if weight is None else weight.reshape(count)    # (M,)
        bias1 = np.zeros(count, x.dtype) if bias is None else bias.reshape(count)         # (M,)
        use_kernel = x.dtype in DTYPES and weight1.dtype == bias1.dtype == x.dtype
        if use_kernel:
            x2 = kernel_array(x2)                                  # kept for backward: contiguous once
            out, mean, inv_std = layer_norm_forward(x2, weight1, bias1, eps)   # (rows, M), (rows,), (rows,)
        else:
            out, mean, inv_std = layer_norm_forward_numpy(x2, weight1, bias1, eps)
            out = out.astype(x.dtype, copy=False)
        self.save_for_backward(x2, weight1, mean, inv_std)
        self.x_shape, self.use_kernel = x.shape, use_kernel
        self.normalized_shape = x.shape[x.ndim - num_dims:]
        self.has_weight, self.has_bias = has_weight, has_bias
        return out.reshape(x.shape)

    def backward(self, grad):
        x2, weight1, mean, inv_std = self.saved_tensors            # (rows, M), (M,), (rows,), (rows,)
        g2 = grad.reshape(x2.shape)                                # (rows, M)
        if self.use_kernel and g2.dtype == x2.dtype:
            grad_x, grad_weight, grad_bias = layer_norm_backward(g2, x2, weight1, mean, inv_std)
        else:                                                      # mixed dtypes: NumPy's promotion decides
            grad_x, grad_weight, grad_bias = layer_norm_backward_numpy(g2, x2, weight1, mean, inv_std)
        grads = [grad_x.reshape(self.x_shape)]
        if self.has_weight:
            grads.append(grad_weight.reshape(self.normalized_shape))
        if self.has_bias:
            grads.append(grad_bias.reshape(self.normalized_shape))
        return tuple(grads)


def layer_norm(x, normalized_shape, weight=None, bias=None, eps=1e-5):
    """Layer normalisation over the last len(normalized_shape) dims of x."""
    if isinstance(normalized_shape, numbers.Integral):
        normalized_shape = (int(normalized_shape),)
    normalized_shape = tuple(int(n) for n in normalized_shape)
    shape = tuple(x.shape)
    k = len(normalized_shape)
    if k == 0 or len(shape) < k or shape[len(shape) - k:] != normalized_shape:
        raise ValueError(f"layer_norm: input of shape {shape} must end with "
                         f"normalized_shape {normalized_shape}")
    for name, value in (("weight", weight), ("bias", bias)):
        if value is not None and tuple(value.shape) != normalized_shape:
            raise ValueError(f"layer_norm: {name} must have shape {normalized_shape}, "
                             f"got {tuple(value.shape)}")
    _check_float("layer_norm", x)
    affine = [t for t in (weight, bias) if t is not None]
    return LayerNorm.apply(x, *affine, num_dims=k, eps=float(eps),
                           has_weight=weight is not None, has_bias=bias is not None)
