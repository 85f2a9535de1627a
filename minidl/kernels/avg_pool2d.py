"""avg_pool2d kernels (count_include_pad=True): forward and backward.

Contract (all backends):
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
"""
import numpy as np
from numba import njit, prange
from numpy.lib.stride_tricks import sliding_window_view

from .backend import dispatch
from .pool_geometry import output_size
from .threads import single_thread_if_small


# ---- loop kernels (compiled by Numba; interpreted by the "python" backend) -----------------------
@njit(parallel=True, cache=True)
def avg_pool2d_forward_loops(x, kh, kw, sh, sw, ph, pw):
    n, c, h, w = x.shape
    oh = (h + 2 * ph - kh) // sh + 1
    ow = (w + 2 * pw - kw) // sw + 1
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
                total = 0.0                              # float64 accumulator
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
def avg_pool2d_backward_loops(grad_out, h, w, kh, kw, sh, sw, ph, pw):
    n, c, oh, ow = grad_out.shape
    g = grad_out.reshape(n * c, oh * ow)                 # (P, OH*OW), output (i, j) at i*OW + j
    grad_x = np.empty((n * c, h * w), grad_out.dtype)    # (P, H*W), input (r, col) at r*W + col
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
                t = 0.0
                for j in range(col_first[col], col_stop[col]):
                    t += gp[i * ow + j]
                across[i * w + col] = t
        for r in range(h):                               # then over covering rows
            for col in range(w):
                gx[r * w + col] = 0.0
            for i in range(row_first[r], row_stop[r]):
                for col in range(w):                     # contiguous: vectorises
                    gx[r * w + col] += across[i * w + col] * scale
    return grad_x.reshape(n, c, h, w)


# ---- NumPy twin (vectorised) ------------------------------------------------------
def avg_pool2d_forward_numpy(x, kh, kw, sh, sw, ph, pw):
    n, c, h, w = x.shape
    oh, ow = output_size(h, kh, sh, ph), output_size(w, kw, sw, pw)
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


# ---- entry points: pick the backend --------------------------------------------
def avg_pool2d_forward(x, kernel_size, stride, padding):
    """Average of each window (padding counted); see the module docstring."""
    fn = dispatch(avg_pool2d_forward_loops, avg_pool2d_forward_numpy)
    with single_thread_if_small(x.size):
        return fn(x, kernel_size[0], kernel_size[1], stride[0], stride[1], padding[0], padding[1])


def avg_pool2d_backward(grad_out, input_shape, kernel_size, stride, padding):
    """Gradient w.r.t. the (N, C, H, W) input; see the module docstring."""
    fn = dispatch(avg_pool2d_backward_loops, avg_pool2d_backward_numpy)
    with single_thread_if_small(int(input_shape[0]) * input_shape[1] * input_shape[2] * input_shape[3]):
        return fn(grad_out, input_shape[2], input_shape[3], kernel_size[0], kernel_size[1],
                  stride[0], stride[1], padding[0], padding[1])
