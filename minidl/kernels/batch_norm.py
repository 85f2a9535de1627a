"""Batch normalisation over the channels of an (N, C, S) array, forward and
fused backward.

Contract (all backends):
    batch_norm_forward(x, weight, bias, eps) -> (out, mean, var, inv_std)
        x:       (N, C, S) float32/float64, C-contiguous, never modified. (The op
                 views (N, C), (N, C, L) and (N, C, H, W) inputs as (N, C, S),
                 S = the product of the spatial dims, 1 for (N, C).)
        weight, bias: (C,) of x's dtype, never modified (the op passes ones and
                 zeros when the layer has none).
        mean, var: (C,) float64, the batch mean and biased variance of each
                 channel over its M = N * S values;  inv_std: (C,) float64,
                 1 / sqrt(var + eps).
        out[n, c, s] = (x[n, c, s] - mean[c]) * inv_std[c] * weight[c] + bias[c]
    batch_norm_normalize(x, weight, bias, mean, inv_std) -> out
        The same out with given statistics (eval mode: the running averages).
    batch_norm_backward(grad, x, weight, mean, inv_std, batch_stats)
            -> (grad_x, grad_weight, grad_bias)
        grad: (N, C, S), and the forward's x, weight, mean, inv_std; never modified.
        With x_hat = (x - mean) * inv_std, per channel (sums over its M values):
        grad_weight = sum grad * x_hat,  grad_bias = sum grad      (C,) of x's dtype
        grad_x = weight inv_std (grad - sum grad / M - x_hat sum grad x_hat / M)
                 when the statistics came from the batch (batch_stats True), and
        grad_x = weight inv_std grad when they were constants.
        x_hat is recomputed from x, mean and inv_std (the forward does not store it).

Statistics and sums are accumulated in float64 for both dtypes: the mean by a
first pass, the variance by a second pass over x - mean (no cancellation of
E[x^2] - E[x]^2). Each element's own arithmetic runs in x's dtype, with the
mean split in two numbers of that dtype, mean = high + low, and x - mean taken
as (x - high) - low, as in layer_norm.py: x_hat keeps float32 precision even
for channels far from 0.

Layout and threads: each sample's values form one contiguous row of C * S
numbers, channel after channel (x viewed as (N, C * S)), and every loop runs
along those rows, so it compiles to SIMD code whatever S is (a loop along
one channel's runs of S would end each short run of a 2x2 or 4x4 map in a
horizontal sum). The sums are first made per position of a row: the
positions are cut into chunks of CHUNK, a chunk's float64 sums stay in the
L1 cache while the samples' rows stream past, and the parallel loop runs over
chunks; the per-position sums are then added up per channel. The output and
the input gradient run in parallel over samples. Each sum is added in one
fixed order, so the result is the same on any number of threads.

Every path (these loops compiled, the same loops interpreted, the NumPy twin)
is held equal by tests/test_batch_norm_kernel.py.
"""
import numpy as np
from numba import njit, prange

from .backend import dispatch, kernel_array
from .fast_exp import cast_like
from .geometry import DTYPES
from ..threads import single_thread_if_small

# reassoc lets the float64 sums use several SIMD accumulators; no nnan/ninf,
# so inf and NaN keep their IEEE meaning
_FLAGS = {"reassoc", "contract"}
CHUNK = 512              # positions per chunk of the sums: a chunk's float64 sums stay in L1


# ---- loop kernels (compiled by Numba; interpreted by the "python" backend) -----------------------
# Per-channel numbers are spread along a row first (`_along_row`: value c
# repeated S times), so the element loops index every array by position j.
@njit(cache=True)
def _along_row(values, spatial):
    """(C,) -> (C * S,) of values' dtype: values[c] at positions
    c * S ... c * S + S - 1 (the positions of channel c in a row)."""
    row = np.empty(values.shape[0] * spatial, values.dtype)
    for c in range(values.shape[0]):
        for s in range(spatial):
            row[c * spatial + s] = values[c]             # position of (channel c, spatial s)
    return row


@njit(cache=True, fastmath=_FLAGS)
def _channel_totals(sums, channels, spatial):
    """(C * S,) float64 sums by position -> (C,) float64 per-channel totals."""
    totals = np.zeros(channels)
    for c in range(channels):
        for s in range(spatial):
            totals[c] += sums[c * spatial + s]           # the sum at (channel c, spatial s)
    return totals


@njit(parallel=True, cache=True, fastmath=_FLAGS)
def _column_sums(rows, centre, squared):
    """(C * S,) float64: for each position j, the sum over samples of
    rows[n, j] - centre[j], or of its square (squared True).

    The positions are cut into chunks of CHUNK; one chunk's sums stay in the
    L1 cache while the samples' rows stream past (sample after sample, so
    each position's sum is added in the same order on any thread count)."""
    samples, width = rows.shape
    sums = np.zeros(width)
    chunks = (width + CHUNK - 1) // CHUNK                # the last chunk may be shorter
    for k in prange(chunks):
        start, stop = k * CHUNK, min(width, (k + 1) * CHUNK)   # chunk k's positions
        line, middle = sums[start:stop], centre[start:stop]
        for n in range(samples):
            row = rows[n, start:stop]
            if squared:
                for j in range(stop - start):
                    d = row[j] - middle[j]
                    line[j] += d * d
            else:
                for j in range(stop - start):
                    line[j] += row[j] - middle[j]
    return sums


@njit(parallel=True, cache=True, fastmath=_FLAGS)
def _normalize_rows(rows, high, low, scale, shift):
    """out[n, j] = ((rows[n, j] - high[j]) - low[j]) * scale[j] + shift[j], in the rows' dtype."""
    out = np.empty_like(rows)                            # (N, C * S)
    for n in prange(rows.shape[0]):
        row, o = rows[n], out[n]
        for j in range(rows.shape[1]):
            o[j] = ((row[j] - high[j]) - low[j]) * scale[j] + shift[j]
    return out


@njit(cache=True)
def _normalize(x, weight, bias, mean, inv_std):
    """out of the contract from (C,) float64 mean and inv_std."""
    samples, channels, spatial = x.shape
    first = np.zeros(1, x.dtype)[0]                      # a scalar of x's dtype
    high = np.empty(channels, x.dtype)                   # mean = high + low, in x's dtype
    low = np.empty(channels, x.dtype)
    scale = np.empty(channels, x.dtype)                  # inv_std * weight, in x's dtype
    for c in range(channels):
        high[c] = cast_like(mean[c], first)
        low[c] = cast_like(mean[c] - high[c], first)
        scale[c] = cast_like(inv_std[c], first) * weight[c]
    out = _normalize_rows(x.reshape(samples, channels * spatial), _along_row(high, spatial),
                          _along_row(low, spatial), _along_row(scale, spatial),
                          _along_row(bias, spatial))
    return out.reshape(samples, channels, spatial)


@njit(cache=True)
def batch_norm_forward_loops(x, weight, bias, eps):
    samples, channels, spatial = x.shape
    count = samples * spatial                            # M: values per channel
    rows = x.reshape(samples, channels * spatial)        # (N, C * S)
    zero = np.zeros(channels * spatial)                  # (C * S,) float64
    mean = _channel_totals(_column_sums(rows, zero, False), channels, spatial) / count    # pass 1
    centre = _along_row(mean, spatial)                   # (C * S,) float64
    var = _channel_totals(_column_sums(rows, centre, True), channels, spatial) / count    # pass 2
    inv_std = 1.0 / np.sqrt(var + eps)                   # (C,) float64
    return _normalize(x, weight, bias, mean, inv_std), mean, var, inv_std                    # pass 3


@njit(cache=True)
def batch_norm_normalize_loops(x, weight, bias, mean, inv_std):
    return _normalize(x, weight, bias, mean, inv_std)


@njit(parallel=True, cache=True, fastmath=_FLAGS)
def _gradient_sums(grad_rows, rows, high, low, scale):
    """Two (C * S,) float64 arrays: for each position, the sums over samples
    of grad and of grad * x_hat, x_hat = ((x - high) - low) * scale in x's
    dtype; by chunks of positions, as `_column_sums`."""
    samples, width = rows.shape
    sums_g = np.zeros(width)
    sums_g_xhat = np.zeros(width)
    chunks = (width + CHUNK - 1) // CHUNK
    for k in prange(chunks):
        start, stop = k * CHUNK, min(width, (k + 1) * CHUNK)   # chunk k's positions
        line_g, line_g_xhat = sums_g[start:stop], sums_g_xhat[start:stop]
        chunk_high, chunk_low, chunk_scale = high[start:stop], low[start:stop], scale[start:stop]
        for n in range(samples):
            g, row = grad_rows[n, start:stop], rows[n, start:stop]
            for j in range(stop - start):
                x_hat = ((row[j] - chunk_high[j]) - chunk_low[j]) * chunk_scale[j]
                line_g[j] += g[j]
                line_g_xhat[j] += g[j] * x_hat
    return sums_g, sums_g_xhat


@njit(parallel=True, cache=True, fastmath=_FLAGS)
def _input_gradient_rows(grad_rows, rows, high, low, scale, factor, mean_g, mean_g_xhat):
    """grad_x[n, j] = factor[j] * (g - mean_g[j] - x_hat * mean_g_xhat[j]), in x's dtype."""
    grad_x = np.empty_like(rows)                         # (N, C * S)
    for n in prange(rows.shape[0]):
        g, row, gx = grad_rows[n], rows[n], grad_x[n]
        for j in range(rows.shape[1]):
            x_hat = ((row[j] - high[j]) - low[j]) * scale[j]
            gx[j] = factor[j] * (g[j] - mean_g[j] - x_hat * mean_g_xhat[j])
    return grad_x


@njit(cache=True)
def batch_norm_backward_loops(grad, x, weight, mean, inv_std, batch_stats):
    samples, channels, spatial = x.shape
    count = samples * spatial                            # M: values per channel
    width = channels * spatial
    rows = x.reshape(samples, width)                     # (N, C * S)
    grad_rows = grad.reshape(samples, width)
    first = np.zeros(1, x.dtype)[0]                      # a scalar of x's dtype
    high = np.empty(channels, x.dtype)                   # mean = high + low, as in the forward
    low = np.empty(channels, x.dtype)
    scale = np.empty(channels, x.dtype)                  # inv_std, in x's dtype
    for c in range(channels):
        high[c] = cast_like(mean[c], first)
        low[c] = cast_like(mean[c] - high[c], first)
        scale[c] = cast_like(inv_std[c], first)
    high_row = _along_row(high, spatial)                 # (C * S,) each
    low_row = _along_row(low, spatial)
    scale_row = _along_row(scale, spatial)
    sums_g, sums_g_xhat = _gradient_sums(grad_rows, rows, high_row, low_row, scale_row)   # pass 1
    sum_g = _channel_totals(sums_g, channels, spatial)                 # (C,) float64
    sum_g_xhat = _channel_totals(sums_g_xhat, channels, spatial)       # (C,) float64
    factor = np.empty(channels, x.dtype)                 # weight inv_std, in x's dtype
    mean_g = np.zeros(channels, x.dtype)                 # sum grad / M (0 for constant statistics)
    mean_g_xhat = np.zeros(channels, x.dtype)            # sum grad x_hat / M (likewise)
    for c in range(channels):
        factor[c] = scale[c] * weight[c]
        if batch_stats:
            mean_g[c] = cast_like(sum_g[c] / count, first)
            mean_g_xhat[c] = cast_like(sum_g_xhat[c] / count, first)
    grad_x = _input_gradient_rows(grad_rows, rows, high_row, low_row, scale_row,
                                  _along_row(factor, spatial), _along_row(mean_g, spatial),
                                  _along_row(mean_g_xhat, spatial))
    return (grad_x.reshape(samples, channels, spatial), sum_g_xhat.astype(x.dtype),
            sum_g.astype(x.dtype))


# ---- NumPy twin (vectorised; also the path for other dtypes, with NumPy's promotion) -------------
def batch_norm_forward_numpy(x, weight, bias, eps):
    mean = x.mean(axis=(0, 2))                               # (C,) in x's dtype
    var = x.var(axis=(0, 2))                                 # (C,) biased
    inv_std = 1.0 / np.sqrt(var.astype(np.float64) + eps)    # (C,) float64
    out = batch_norm_normalize_numpy(x, weight, bias, mean.astype(np.float64), inv_std)
    return out, mean.astype(np.float64), var.astype(np.float64), inv_std


def batch_norm_normalize_numpy(x, weight, bias, mean, inv_std):
    x_hat = (x - mean.astype(x.dtype)[:, None]) * inv_std.astype(x.dtype)[:, None]   # (N, C, S)
    return x_hat * weight[:, None] + bias[:, None]


def batch_norm_backward_numpy(grad, x, weight, mean, inv_std, batch_stats):
    count = x.shape[0] * x.shape[2]                          # M (a Python int keeps float32)
    scale = inv_std.astype(x.dtype)[:, None]                 # (C, 1)
    x_hat = (x - mean.astype(x.dtype)[:, None]) * scale      # (N, C, S)
    sum_g = grad.sum(axis=(0, 2))                            # (C,)
    sum_g_xhat = (grad * x_hat).sum(axis=(0, 2))             # (C,)
    if batch_stats:
        centred = grad - sum_g[:, None] / count - x_hat * (sum_g_xhat[:, None] / count)
    else:
        centred = grad
    return (weight[:, None] * scale) * centred, sum_g_xhat, sum_g


# ---- entry points: check, then pick the backend --------------------------------------------
def kernel_takes(*arrays):
    """True when the compiled loops take these arrays: all float32 or all
    float64 (other dtypes, and mixed ones, run the NumPy twin)."""
    return arrays[0].dtype in DTYPES and all(a.dtype == arrays[0].dtype for a in arrays)


def _check(name, x, *vectors, stats=()):
    """The contract's shapes (the op guarantees them; this guards direct
    calls, so no kernel indexes past an array)."""
    if x.ndim != 3:
        raise ValueError(f"{name}: expected x of shape (N, C, S), got {x.shape}")
    channels = x.shape[1]
    for label, array in list(zip(("weight", "bias"), vectors)) + list(stats):
        if array.shape != (channels,):
            raise ValueError(f"{name}: {label} must have shape ({channels},) (x: {x.shape}), "
                             f"got {array.shape}")


def _pick(loops, twin, *arrays):
    return dispatch(loops, twin) if kernel_takes(*arrays) else twin


def batch_norm_forward(x, weight, bias, eps):
    """(out, mean, var, inv_std) with the batch's statistics; see the module docstring."""
    _check("batch_norm_forward", x, weight, bias)
    fn = _pick(batch_norm_forward_loops, batch_norm_forward_numpy, x, weight, bias)
    if fn is batch_norm_forward_numpy:
        return fn(x, weight, bias, float(eps))
    with single_thread_if_small(x.size):
        return fn(kernel_array(x), kernel_array(weight), kernel_array(bias), float(eps))


def batch_norm_normalize(x, weight, bias, mean, inv_std):
    """out with given (C,) float64 statistics; see the module docstring."""
    _check("batch_norm_normalize", x, weight, bias, stats=[("mean", mean), ("inv_std", inv_std)])
    mean, inv_std = mean.astype(np.float64), inv_std.astype(np.float64)
    fn = _pick(batch_norm_normalize_loops, batch_norm_normalize_numpy, x, weight, bias)
    if fn is batch_norm_normalize_numpy:
        return fn(x, weight, bias, mean, inv_std)
    with single_thread_if_small(x.size):
        return fn(kernel_array(x), kernel_array(weight), kernel_array(bias),
                  kernel_array(mean), kernel_array(inv_std))


def batch_norm_backward(grad, x, weight, mean, inv_std, batch_stats):
    """(grad_x, grad_weight, grad_bias); see the module docstring."""
    _check("batch_norm_backward", x, weight, stats=[("mean", mean), ("inv_std", inv_std)])
    if grad.shape != x.shape:
        raise ValueError(f"batch_norm_backward: grad must have x's shape {x.shape}, got {grad.shape}")
    mean, inv_std = mean.astype(np.float64), inv_std.astype(np.float64)
    fn = _pick(batch_norm_backward_loops, batch_norm_backward_numpy, x, weight, grad)
    if fn is batch_norm_backward_numpy:
        return fn(grad, x, weight, mean, inv_std, bool(batch_stats))
    with single_thread_if_small(x.size):
        return fn(kernel_array(grad), kernel_array(x), kernel_array(weight),
                  kernel_array(mean), kernel_array(inv_std), bool(batch_stats))
