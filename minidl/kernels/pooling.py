"""2-D pooling kernels: max_pool2d and avg_pool2d (count_include_pad=True),
forward and backward. Pure ndarrays, no autograd.

Geometry. A window of (kH, kW) slides over each (H, W) plane of an
(N, C, H, W) input with stride (sH, sW), after `padding` (pH, pW) is added on
every side. Output row i, column j covers input rows and columns

    rows  i*sH - pH  ...  i*sH - pH + kH - 1
    cols  j*sW - pW  ...  j*sW - pW + kW - 1

of which only those inside [0, H) x [0, W) hold real values; the rest are
padding (-inf for max, 0 for avg). OH, OW: `geometry.conv_output_size`
(dilation 1). With pH <= kH // 2 (PyTorch's rule, checked by the ops) every
window holds at least one real element, and no window reaches past the
padded input.

Contract, max_pool2d:
    max_pool2d_forward(x, kernel_size, stride, padding) -> (out, argmax)
        x:        (N, C, H, W) float32/float64, C-contiguous, never modified
        kernel_size, stride, padding: pairs of ints, already validated by the op
                  (k >= 1, s >= 1, 0 <= p <= k // 2, output size >= 1)
        out:      (N, C, OH, OW), same dtype: the max over each window, where
                  padding counts as -inf (so it never wins)
        argmax:   (N, C, OH, OW) int64: where the max came from, as a flat index
                  h * W + w into its own (H, W) plane (PyTorch's convention)
    max_pool2d_backward(grad_out, argmax, input_shape) -> grad_x
        grad_x[n, c].flat[argmax[n, c, i, j]] += grad_out[n, c, i, j]
        for every output: windows may overlap (stride < kernel), so one input
        can receive several contributions, and they are all added.

Ties: the gradient of a window goes to ONE element, the first maximum in scan
order (row by row, left to right), as in PyTorch. A NaN beats every number
(the first NaN in scan order wins), so NaN propagates to the output.

Parallel loops run over the N*C planes: each plane is pooled, and its
gradient scattered, by one thread alone, so overlapping windows never race.

Contract, avg_pool2d:
    avg_pool2d_forward(x, kernel_size, stride, padding) -> out
        x:      (N, C, H, W) float32/float64, C-contiguous, never modified
        kernel_size, stride, padding: pairs of ints, already validated by the op
                (k >= 1, s >= 1, 0 <= p <= k // 2, output size >= 1)
        out:    (N, C, OH, OW): sum of the window's real elements / (kH * kW).
                Padding counts as zeros that ARE counted in the divisor
                (PyTorch's default count_include_pad=True). With the floor
                output size and p <= k // 2 no window reaches past the padded
                input, so the divisor is always kH * kW.
    avg_pool2d_backward(grad_out, input_shape, kernel_size, stride, padding) -> grad_x
        every real element of a window receives grad_out / (kH * kW); windows
        may overlap (stride < kernel), and the contributions add up.

Parallel loops run over the N*C planes. The forward reduces each window; the
backward gathers: every input element adds up the gradients of the windows
covering it (first along W, then along H), each plane by one thread.

Every path (compiled loops, the same loops interpreted, the NumPy twin) is
held equal by tests/test_pooling.py. The "numba" backend runs max_pool2d's
forward with 2x2 windows, stride 2 and no padding (the common case) through
`pooling_fast.max_pool2d_2x2_forward`, the same result without data-dependent
branches (its docstring explains how), also held equal to the loops; with
NUMBA_DISABLE_JIT=1 it runs the loops, the code a debugger steps through.
"""
import numba
import numpy as np
from numba import njit, prange
from numpy.lib.stride_tricks import sliding_window_view

from ..threads import single_thread_if_small
from . import pooling_fast
from .backend import current, dispatch, kernel_array
from .geometry import conv_output_size


# ---- loop kernels (compiled by Numba; interpreted by the "python" backend) ---------
@njit(parallel=True, cache=True)
def max_pool2d_forward_loops(x, kh, kw, sh, sw, ph, pw):
    n, c, h, w = x.shape
    oh = conv_output_size(h, kh, sh, ph)                 # output rows
    ow = conv_output_size(w, kw, sw, pw)                 # output columns
    planes = x.reshape(n * c, h * w)                     # (P, H*W), element (r, col) at r*W + col
    out = np.empty((n * c, oh, ow), x.dtype)             # (P, OH, OW)
    argmax = np.empty((n * c, oh, ow), np.int64)         # (P, OH, OW)
    for p in prange(n * c):
        plane = planes[p]
        # NaN test up front (a cheap vectorised count), so that the window loop
        # below stays a plain `>` comparison unless this plane holds a NaN
        nans = 0
        for q in range(h * w):
            nans += plane[q] != plane[q]
        has_nan = nans > 0
        for i in range(oh):
            top = i * sh - ph                            # first window row (may be < 0: padding)
            r0, r1 = max(top, 0), min(top + kh, h)       # window rows inside the plane
            for j in range(ow):
                left = j * sw - pw                       # first window column
                c0, c1 = max(left, 0), min(left + kw, w)
                best_index = r0 * w + c0                 # first real element in scan order
                best = plane[best_index]
                for r in range(r0, r1):
                    for col in range(c0, c1):
                        v = plane[r * w + col]
                        # strictly greater: a tie keeps the earlier element;
                        # the first NaN wins and then stays
                        if v > best or (has_nan and v != v and best == best):
                            best = v
                            best_index = r * w + col
                out[p, i, j] = best
                argmax[p, i, j] = best_index
    return out.reshape(n, c, oh, ow), argmax.reshape(n, c, oh, ow)


@njit(parallel=True, cache=True)
def max_pool2d_backward_loops(grad_out, argmax, h, w, grad_input):
    n, c, oh, ow = grad_out.shape
    g = grad_out.reshape(n * c, oh * ow)                 # (P, OH*OW)
    a = argmax.reshape(n * c, oh * ow)                   # (P, OH*OW), flat indices into H*W
    grad_x = grad_input.reshape(n * c, h * w)            # (P, H*W), a view: writes land in grad_input
    for p in prange(n * c):                              # one thread per plane: no races
        gx = grad_x[p]
        gx[:] = 0.0                                      # zeroed here, so the plane is cache-hot below
        for q in range(oh * ow):
            gx[a[p, q]] += g[p, q]                       # accumulate: windows may overlap


@njit(parallel=True, cache=True)
def avg_pool2d_forward_loops(x, kh, kw, sh, sw, ph, pw):
    n, c, h, w = x.shape
    oh = conv_output_size(h, kh, sh, ph)                 # output rows
    ow = conv_output_size(w, kw, sw, pw)                 # output columns
    planes = x.reshape(n * c, h, w)                      # (P, H, W)
    out = np.empty((n * c, oh, ow), x.dtype)             # (P, OH, OW)
    scale = 1.0 / (kh * kw)                              # padding counted in the divisor
    for p in prange(n * c):
        for i in range(oh):
            top = i * sh - ph                            # first window row (may be < 0)
            r0, r1 = max(top, 0), min(top + kh, h)       # rows inside the plane
            for j in range(ow):
                left = j * sw - pw
                c0, c1 = max(left, 0), min(left + kw, w)
                total = np.float64(0.0)                  # float64 accumulator (also interpreted)
                for r in range(r0, r1):
                    for col in range(c0, c1):
                        total += planes[p, r, col]
                out[p, i, j] = total * scale
    return out.reshape(n, c, oh, ow)


@njit(cache=True)
def _covering_windows(size, out_size, k, s, pad):
    """For each input position r along one axis, the window indices i whose
    span i*s - pad ... i*s - pad + k - 1 contains r:  first[r] <= i < stop[r]."""
    first = np.empty(size, np.int64)
    stop = np.empty(size, np.int64)
    for r in range(size):
        # i*s - pad <= r  and  r <= i*s - pad + k - 1   <=>   (r + pad - k + 1)/s <= i <= (r + pad)/s
        lo = r + pad - k + 1
        first[r] = max(0, (lo + s - 1) // s) if lo > 0 else 0   # ceil division, clipped at 0
        stop[r] = min(out_size, (r + pad) // s + 1)
    return first, stop


@njit(parallel=True, cache=True)
def avg_pool2d_backward_loops(grad_out, h, w, kh, kw, sh, sw, ph, pw, grad_input):
    n, c, oh, ow = grad_out.shape
    g = grad_out.reshape(n * c, oh * ow)                 # (P, OH*OW), output (i, j) at i*OW + j
    grad_x = grad_input.reshape(n * c, h * w)            # (P, H*W), input (r, col) at r*W + col; a view
    row_first, row_stop = _covering_windows(h, oh, kh, sh, ph)
    col_first, col_stop = _covering_windows(w, ow, kw, sw, pw)
    scale = 1.0 / (kh * kw)
    # gather form, one axis at a time: input (r, col) receives
    #   scale * sum over covering rows i, covering columns j of g[i, j]
    # (several windows where they overlap, none in gaps when stride > kernel).
    # Every grad_x element is written by the thread that owns its plane.
    for p in prange(n * c):
        gp, gx = g[p], grad_x[p]
        across = np.empty(oh * w, np.float64)            # (OH, W): sums over covering columns
        for i in range(oh):
            for col in range(w):
                t = np.float64(0.0)
                for j in range(col_first[col], col_stop[col]):
                    t += gp[i * ow + j]
                across[i * w + col] = t
        for r in range(h):                               # then over covering rows
            for col in range(w):
                gx[r * w + col] = 0.0
            for i in range(row_first[r], row_stop[r]):
                for col in range(w):                     # contiguous: vectorises
                    gx[r * w + col] += across[i * w + col] * scale


# ---- NumPy twins (vectorised) ---------------------------------------------------------
def max_pool2d_forward_numpy(x, kh, kw, sh, sw, ph, pw):
    n, c, h, w = x.shape
    oh, ow = conv_output_size(h, kh, sh, ph), conv_output_size(w, kw, sw, pw)
    padded = np.full((n, c, h + 2 * ph, w + 2 * pw), -np.inf, x.dtype)
    padded[:, :, ph:ph + h, pw:pw + w] = x
    # every window as a view: (N, C, OH', OW', kH, kW), then keep every s-th
    windows = sliding_window_view(padded, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw][:, :, :oh, :ow]
    flat = windows.reshape(n, c, oh, ow, kh * kw)        # copies; k = di * kW + dj
    k = np.argmax(flat, axis=-1)                         # first max (or first NaN) in scan order
    out = np.take_along_axis(flat, k[..., None], axis=-1)[..., 0]
    # window-local (di, dj) -> plane position (i*sH - pH + di, j*sW - pW + dj)
    rows = np.arange(oh)[:, None] * sh - ph + k // kw
    cols = np.arange(ow)[None, :] * sw - pw + k % kw
    return out, (rows * w + cols).astype(np.int64)


def max_pool2d_backward_numpy(grad_out, argmax, h, w):
    n, c, oh, ow = grad_out.shape
    plane_start = (np.arange(n * c) * (h * w)).reshape(n, c, 1, 1)
    # bincount adds every weight that lands on the same index: overlaps are summed
    summed = np.bincount((argmax + plane_start).ravel(), weights=grad_out.ravel(),
                         minlength=n * c * h * w)
    return summed.astype(grad_out.dtype).reshape(n, c, h, w)


def _into_output(twin):
    """The twin with the loops' signature: its result copied into the last argument."""
    def run(*args):
        args[-1][...] = twin(*args[:-1])
    return run


def avg_pool2d_forward_numpy(x, kh, kw, sh, sw, ph, pw):
    n, c, h, w = x.shape
    oh, ow = conv_output_size(h, kh, sh, ph), conv_output_size(w, kw, sw, pw)
    padded = np.zeros((n, c, h + 2 * ph, w + 2 * pw), x.dtype)
    padded[:, :, ph:ph + h, pw:pw + w] = x
    windows = sliding_window_view(padded, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw][:, :, :oh, :ow]
    return (windows.sum(axis=(-2, -1)) / (kh * kw)).astype(x.dtype)   # (N, C, OH, OW)


def avg_pool2d_backward_numpy(grad_out, h, w, kh, kw, sh, sw, ph, pw):
    n, c, oh, ow = grad_out.shape
    share = grad_out / (kh * kw)                          # (N, C, OH, OW)
    padded = np.zeros((n, c, h + 2 * ph, w + 2 * pw), grad_out.dtype)
    # offset (di, dj) of every window at once: output (i, j) touches padded
    # position (i*sH + di, j*sW + dj). Within one offset the positions are
    # distinct, so `+=` on the strided slice is safe; offsets add up in turn.
    for di in range(kh):
        for dj in range(kw):
            padded[:, :, di:di + sh * oh:sh, dj:dj + sw * ow:sw] += share
    return padded[:, :, ph:ph + h, pw:pw + w].copy()      # drop the padding


# ---- entry points: pick the backend ---------------------------------------------------
def max_pool2d_forward(x, kernel_size, stride, padding):
    """(out, argmax) of 2-D max pooling; see the module docstring."""
    x = kernel_array(x)
    with single_thread_if_small(x.size):
        if current() == "numba" and kernel_size == stride == (2, 2) and padding == (0, 0) \
                and not numba.config.DISABLE_JIT:        # with the compiler off, step through the loops
            return pooling_fast.max_pool2d_2x2_forward(x)      # the common 2x2 pooling, unrolled
        fn = dispatch(max_pool2d_forward_loops, max_pool2d_forward_numpy)
        return fn(x, kernel_size[0], kernel_size[1], stride[0], stride[1], padding[0], padding[1])


def max_pool2d_backward(grad_out, argmax, input_shape):
    """Gradient w.r.t. the (N, C, H, W) input; see the module docstring. A new
    array allocated here, so it owns its memory (autograd stores it as a leaf's
    gradient without a copy; an array made inside a Numba kernel never owns
    its memory in NumPy's eyes)."""
    fn = dispatch(max_pool2d_backward_loops, _into_output(max_pool2d_backward_numpy))
    grad_input = np.empty(tuple(int(d) for d in input_shape), grad_out.dtype)   # (N, C, H, W)
    with single_thread_if_small(grad_out.size * 4):
        fn(kernel_array(grad_out), kernel_array(argmax), input_shape[2], input_shape[3], grad_input)
    return grad_input


def avg_pool2d_forward(x, kernel_size, stride, padding):
    """Average of each window (padding counted); see the module docstring."""
    fn = dispatch(avg_pool2d_forward_loops, avg_pool2d_forward_numpy)
    with single_thread_if_small(x.size):
        return fn(kernel_array(x), kernel_size[0], kernel_size[1], stride[0], stride[1], padding[0], padding[1])


def avg_pool2d_backward(grad_out, input_shape, kernel_size, stride, padding):
    """Gradient w.r.t. the (N, C, H, W) input; see the module docstring (a new
    array allocated here, as in max_pool2d_backward)."""
    fn = dispatch(avg_pool2d_backward_loops, _into_output(avg_pool2d_backward_numpy))
    grad_input = np.empty(tuple(int(d) for d in input_shape), grad_out.dtype)   # (N, C, H, W)
    with single_thread_if_small(grad_input.size):
        fn(kernel_array(grad_out), input_shape[2], input_shape[3], kernel_size[0], kernel_size[1],
           stride[0], stride[1], padding[0], padding[1], grad_input)
    return grad_input
