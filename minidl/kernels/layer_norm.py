"""Layer normalisation over the last axis of a 2-D array, forward and fused
backward.

Contract (all backends):
    layer_norm_forward(x, weight, bias, eps) -> (out, mean, inv_std)
        x:       (rows, M) float32/float64, C-contiguous, M >= 1, never modified.
                 (The op flattens the leading dims into rows and the normalised
                 dims into M.)
        weight, bias: (M,) of x's dtype, never modified (the op passes ones and
                 zeros when the layer has none).
        mean:    (rows,) float64, the row means;  inv_std: (rows,) float64,
                 1 / sqrt(var + eps), var the biased row variance.
        out[r, j] = (x[r, j] - mean[r]) * inv_std[r] * weight[j] + bias[j]
    layer_norm_backward(grad, x, weight, mean, inv_std) -> (grad_x, grad_weight, grad_bias)
        grad: (rows, M), and the forward's x, weight, mean, inv_std; never modified.
        With x_hat = (x - mean) * inv_std and gh = grad * weight, per row:
        grad_x      = inv_std / M * (M gh - sum_j gh_j - x_hat sum_j gh_j x_hat_j)
        grad_weight = sum over rows of grad * x_hat     (M,)
        grad_bias   = sum over rows of grad             (M,)
        x_hat is recomputed from x, mean and inv_std (the forward does not store it).

Statistics and sums are accumulated in float64 for both dtypes (the mean by a
first pass, the variance by a second pass over x - mean: no cancellation of
E[x^2] - E[x]^2 when activations sit far from 0); each element's arithmetic
runs in the row's dtype, so float32 rows take twice the SIMD lanes. There the
mean is split in two float32 numbers, mean = high + low, and x - mean is
taken as (x - high) - low: the first difference is exact when x is near the
mean, so x_hat keeps float32 precision even for rows far from 0 (a float32
mean alone, rounded by up to 6e-5 at 1000, would shift every x_hat of a row
with standard deviation 0.4 by 1e-4).

Threads: rows are independent, so the forward's parallel loop runs over rows.
The backward's weight and bias gradients sum over rows: the rows are cut into
blocks of ROW_BLOCK, each block adds its rows into its own line of a
(blocks, M) float64 array (no two threads write the same line), and the lines
are added up at the end. The blocks do not depend on the thread count, so the
result is the same on any number of threads.

Every path (these loops compiled, the same loops interpreted, the NumPy twin)
is held equal by tests/test_layer_norm.py, and against PyTorch where installed.
"""
import numpy as np
from numba import njit, prange

from .backend import dispatch, kernel_array
from .fast_exp import cast_like
from ..threads import single_thread_if_small

ROW_BLOCK = 32           # rows per block of the backward's weight and bias sums
# reassoc lets the float64 sums use several SIMD accumulators; no nnan/ninf,
# so inf and NaN keep their IEEE meaning
_FLAGS = {"reassoc", "contract"}


# ---- loop kernels (compiled by Numba; interpreted by the "python" backend) -----------------------
@njit(parallel=True, cache=True, fastmath=_FLAGS)
def layer_norm_forward_loops(x, weight, bias, eps):
    rows, m = x.shape
    out = np.empty_like(x)                                   # (rows, M)
    mean = np.empty(rows)                                    # (rows,) float64
    inv_std = np.empty(rows)                                 # (rows,) float64
    for r in prange(rows):
        row, o = x[r], out[r]
        total = np.float64(0.0)                              # pass 1: the mean, float64 (also interpreted)
        for j in range(m):
            total += row[j]
        mu = total / m
        squares = np.float64(0.0)                            # pass 2: sum of (x - mean)^2, float64
        for j in range(m):
            d = row[j] - mu
            squares += d * d
        scale = 1.0 / np.sqrt(squares / m + eps)             # 1 / sqrt(var + eps)
        mean[r], inv_std[r] = mu, scale
        high = cast_like(mu, row[0])                         # mean = high + low, in the row's dtype
        low = cast_like(mu - high, row[0])
        scale_r = cast_like(scale, row[0])
        for j in range(m):                                   # pass 3: normalise, scale, shift
            o[j] = ((row[j] - high) - low) * scale_r * weight[j] + bias[j]
    return out, mean, inv_std


@njit(parallel=True, cache=True, fastmath=_FLAGS)
def layer_norm_backward_loops(grad, x, weight, mean, inv_std):
    rows, m = x.shape
    grad_x = np.empty_like(x)                                # (rows, M)
    blocks = (rows + ROW_BLOCK - 1) // ROW_BLOCK             # the last block may be shorter
    partial_weight = np.zeros((blocks, m))                   # (blocks, M) float64: block b's sums
    partial_bias = np.zeros((blocks, m))
    for b in prange(blocks):
        for r in range(b * ROW_BLOCK, min(rows, (b + 1) * ROW_BLOCK)):   # the rows of block b
            g, row, gx = grad[r], x[r], grad_x[r]
            pw, pb = partial_weight[b], partial_bias[b]
            high = cast_like(mean[r], row[0])                # mean = high + low, as in the forward
            low = cast_like(mean[r] - high, row[0])
            scale = cast_like(inv_std[r], row[0])            # in the row's dtype
            sum_gh = np.float64(0.0)                         # sum_j gh_j, float64
            sum_gh_xhat = np.float64(0.0)                    # sum_j gh_j x_hat_j, float64
            for j in range(m):
                x_hat = ((row[j] - high) - low) * scale
                gh = g[j] * weight[j]
                sum_gh += gh
                sum_gh_xhat += gh * x_hat
                pw[j] += g[j] * x_hat                        # this block's grad_weight
                pb[j] += g[j]                                # this block's grad_bias
            a = cast_like(sum_gh / m, scale)                 # mean of gh, in the row's dtype
            c = cast_like(sum_gh_xhat / m, scale)            # mean of gh x_hat
            for j in range(m):                               # inv_std (gh - mean(gh) - x_hat mean(gh x_hat))
                x_hat = ((row[j] - high) - low) * scale
                gx[j] = scale * (g[j] * weight[j] - a - x_hat * c)
    grad_weight = np.zeros(m, x.dtype)                       # (M,): the blocks' lines added up
    grad_bias = np.zeros(m, x.dtype)
    for j in range(m):
        total_weight = np.float64(0.0)
        total_bias = np.float64(0.0)
        for b in range(blocks):
            total_weight += partial_weight[b, j]
            total_bias += partial_bias[b, j]
        grad_weight[j] = total_weight
        grad_bias[j] = total_bias
    return grad_x, grad_weight, grad_bias


# ---- NumPy twin (vectorised) --------------------------------------------------------------
def layer_norm_forward_numpy(x, weight, bias, eps):
    x64 = x.astype(np.float64)
    mean = x64.mean(axis=1)                                  # (rows,)
    var = ((x64 - mean[:, None]) ** 2).mean(axis=1)          # (rows,) biased
    inv_std = 1.0 / np.sqrt(var + eps)
    x_hat = ((x64 - mean[:, None]) * inv_std[:, None]).astype(x.dtype)   # (rows, M)
    return x_hat * weight + bias, mean, inv_std


def layer_norm_backward_numpy(grad, x, weight, mean, inv_std):
    x_hat = ((x.astype(np.float64) - mean[:, None]) * inv_std[:, None]).astype(x.dtype)   # (rows, M)
    gh = grad * weight
    m = x.shape[1]
    grad_x = inv_std[:, None].astype(x.dtype) * (gh - gh.sum(axis=1, keepdims=True) / m
                                 - x_hat * (gh * x_hat).sum(axis=1, keepdims=True) / m)
    return grad_x.astype(x.dtype), (grad * x_hat).sum(axis=0), grad.sum(axis=0)


# ---- entry points: check, then pick the backend --------------------------------------------
def _check(name, x, *vectors, rows_like=()):
    """The contract's shapes and dtypes (the op guarantees them; this guards
    direct calls, so no kernel indexes past an array)."""
    if x.ndim != 2 or x.shape[1] < 1 or x.dtype not in (np.float32, np.float64):
        raise ValueError(f"{name}: expected x of shape (rows, M) with M >= 1, float32 or float64, "
                         f"got {x.shape} {x.dtype}")
    for label, array, shape, dtype in [(f"vector {i}", v, (x.shape[1],), x.dtype) for i, v in enumerate(vectors)] \
            + list(rows_like):
        if array.shape != shape or array.dtype != dtype:
            raise ValueError(f"{name}: {label} must have shape {shape} and dtype {np.dtype(dtype)} "
                             f"(x: {x.shape}), got {array.shape} {array.dtype}")


def layer_norm_forward(x, weight, bias, eps):
    """(out, mean, inv_std) of each row; see the module docstring."""
    _check("layer_norm_forward", x, weight, bias)
    fn = dispatch(layer_norm_forward_loops, layer_norm_forward_numpy)
    with single_thread_if_small(x.size):
        return fn(kernel_array(x), kernel_array(weight), kernel_array(bias), float(eps))


def layer_norm_backward(grad, x, weight, mean, inv_std):
    """(grad_x, grad_weight, grad_bias); see the module docstring."""
    rows = x.shape[0] if x.ndim == 2 else -1
    _check("layer_norm_backward", x, weight, rows_like=[("grad", grad, x.shape, x.dtype),
                                                         ("mean", mean, (rows,), np.float64),
                                                         ("inv_std", inv_std, (rows,), np.float64)])
    fn = dispatch(layer_norm_backward_loops, layer_norm_backward_numpy)
    with single_thread_if_small(x.size):
        return fn(kernel_array(grad), kernel_array(x), kernel_array(weight),
                  kernel_array(mean), kernel_array(inv_std))
