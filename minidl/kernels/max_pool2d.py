"""max_pool2d kernels: forward (value and argmax of each window) and backward
(scatter-add of the output gradient through the argmax).

Contract (all backends):
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
"""
import numpy as np
from numba import njit, prange
from numpy.lib.stride_tricks import sliding_window_view

from .backend import dispatch
from .pool_geometry import output_size
from .threads import single_thread_if_small


# ---- loop kernels (compiled by Numba; interpreted by the "python" backend) -----------------------
@njit(parallel=True, cache=True)
def max_pool2d_forward_loops(x, kh, kw, sh, sw, ph, pw):
    n, c, h, w = x.shape
    oh = (h + 2 * ph - kh) // sh + 1
    ow = (w + 2 * pw - kw) // sw + 1
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
def max_pool2d_backward_loops(grad_out, argmax, h, w):
    n, c, oh, ow = grad_out.shape
    g = grad_out.reshape(n * c, oh * ow)                 # (P, OH*OW)
    a = argmax.reshape(n * c, oh * ow)                   # (P, OH*OW), flat indices into H*W
    grad_x = np.empty((n * c, h * w), grad_out.dtype)    # (P, H*W)
    for p in prange(n * c):                              # one thread per plane: no races
        gx = grad_x[p]
        gx[:] = 0.0                                      # zeroed here, so the plane is cache-hot below
        for q in range(oh * ow):
            gx[a[p, q]] += g[p, q]                       # accumulate: windows may overlap
    return grad_x.reshape(n, c, h, w)


# ---- NumPy twin (vectorised) ------------------------------------------------------
def max_pool2d_forward_numpy(x, kh, kw, sh, sw, ph, pw):
    n, c, h, w = x.shape
    oh, ow = output_size(h, kh, sh, ph), output_size(w, kw, sw, pw)
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


# ---- entry points: pick the backend --------------------------------------------
def max_pool2d_forward(x, kernel_size, stride, padding):
    """(out, argmax) of 2-D max pooling; see the module docstring."""
    fn = dispatch(max_pool2d_forward_loops, max_pool2d_forward_numpy)
    with single_thread_if_small(x.size):
        return fn(x, kernel_size[0], kernel_size[1], stride[0], stride[1], padding[0], padding[1])


def max_pool2d_backward(grad_out, argmax, input_shape):
    """Gradient w.r.t. the (N, C, H, W) input; see the module docstring."""
    fn = dispatch(max_pool2d_backward_loops, max_pool2d_backward_numpy)
    with single_thread_if_small(grad_out.size * 4):
        return fn(grad_out, argmax, input_shape[2], input_shape[3])
