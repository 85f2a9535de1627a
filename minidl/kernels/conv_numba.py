"""The compiled fast path of conv2d: one thread pool, samples split across it.

Each Numba thread takes a contiguous block of samples and, for each sample
and group, builds that sample's column matrix (K x P, small enough to stay
in cache) with a branch-free im2col on a zero-padded copy of the sample
(`conv_padded.py`; with stride 1, "wide" columns where each row is one
contiguous copy and a few junk columns are computed and dropped), then multiplies it with a single-threaded BLAS call
(`np.dot` inside @njit calls SciPy's BLAS). Only Numba's pool is busy:
OpenBLAS's own threads are held to one while these kernels run, because two
pools spinning on two cores slow each other down several times (PERF.md,
pitfall 1). The output is written in place, sample by sample, in NCHW order,
so no reshuffling pass is needed.

Shapes below: G groups, cog = Cout/G output channels per group,
K = Cg*kh*kw rows of a column matrix, P = ho*wo output pixels per sample.
"""
import contextlib

import numba
import numpy as np
from numba import njit, prange

from .blas_threads import single_threaded_blas
from .conv_padded import (col2im_padded, col2im_wide, im2col_padded, im2col_wide, narrow,
                          pad_sample, unpad_sample, widen)


@njit(parallel=True, cache=True)
def forward_kernel(x, w_mat, bias, kh, kw, sh, sw, ph, pw, dh, dw, ho, wo,
                   gy, need_weight, out, dw_parts):
    """out[n, g] = W_g @ im2col(x[n], group g) for every sample n and group g,
    and optionally, from the same columns, a weight gradient.

    x:        (N, C, H, W) C-contiguous, read only.
    w_mat:    (G, cog, K) C-contiguous, read only (the weight, reshaped).
    bias:     (Cout,) added to every output pixel of its channel, or (0,) for none.
    out:      (N, G, cog, P) C-contiguous; every entry written.
    gy:       (N, G, cog, P), read only, used if need_weight (else any 4-D array).
    dw_parts: (B, G, cog, K), B = number of sample blocks run in parallel (about
              one per thread); if need_weight, block b writes
              dw_parts[b, g] = sum over its samples of gy[n, g] @ im2col(x[n], g)^T.
    (conv_transpose2d's backward needs exactly this pair: conv2d of its output
    gradient for dx, and the weight gradient from the same columns.)
    With stride 1 the columns are "wide" (see conv_padded.py): ho*Wp per sample.
    """
    n, height, width = x.shape[0], x.shape[2], x.shape[3]
    groups, cog, k = w_mat.shape[0], w_mat.shape[1], w_mat.shape[2]
    n_blocks = dw_parts.shape[0]
    cg = k // (kh * kw)                                   # input channels per group
    wide = sh == 1 and sw == 1                            # stride 1: contiguous column rows
    wp = width + 2 * pw                                   # padded width
    n_cols = ho * wp if wide else ho * wo                 # columns per sample
    for b in prange(n_blocks):
        cols = np.empty((k, n_cols), x.dtype)             # this thread's column matrix
        result = np.empty((cog, n_cols if wide else 0), x.dtype)          # wide GEMM result
        gyw = np.zeros((cog, n_cols if wide and need_weight else 0), x.dtype)  # junk columns stay 0
        product = np.empty((cog, k), x.dtype)             # one sample's weight gradient
        xp = np.zeros((cg, height + 2 * ph + 1, wp), x.dtype)   # padded sample (+1 spare row); border stays 0
        if need_weight:
            dw_parts[b] = 0.0
        for s in range(b * n // n_blocks, (b + 1) * n // n_blocks):   # this block's samples
            for g in range(groups):
                pad_sample(x, s, g * cg, ph, pw, xp)
                if wide:
                    im2col_wide(xp, kh, kw, dh, dw, ho, cols)
                    np.dot(w_mat[g], cols, result)        # (cog, K) @ (K, ho*Wp)
                    narrow(result, wo, out[s, g])         # -> (cog, P)
                else:
                    im2col_padded(xp, kh, kw, sh, sw, dh, dw, ho, wo, cols)
                    np.dot(w_mat[g], cols, out[s, g])     # (cog, K) @ (K, P) -> (cog, P)
                if bias.shape[0] > 0:                     # while out[s, g] is still in cache
                    for o in range(cog):
                        out[s, g, o] += bias[g * cog + o]
                if need_weight:
                    if wide:
                        widen(gy[s, g], wo, gyw)
                        np.dot(gyw, cols.T, product)      # (cog, ho*Wp) @ (ho*Wp, K)
                    else:
                        np.dot(gy[s, g], cols.T, product)  # (cog, P) @ (P, K) -> (cog, K)
                    dw_parts[b, g] += product


@njit(parallel=True, cache=True)
def backward_kernel(x, w_mat, gy, kh, kw, sh, sw, ph, pw, dh, dw, ho, wo,
                    need_input, need_weight, dx, dw_parts):
    """Gradients of forward_kernel, per block of samples.

    x:        (N, C, H, W), read only; used only if need_weight (else any 4-D array).
    w_mat:    (G, cog, K), read only.   gy: (N, G, cog, P), read only (dL/dout).
    dx:       (N, C, H, W); if need_input, every entry written:
              dx[n] = sum over g of col2im(W_g^T @ gy[n, g]).
    dw_parts: (B, G, cog, K) with B = number of blocks; if need_weight, block b
              writes dw_parts[b, g] = sum over its samples of gy[n, g] @ im2col(x[n], g)^T.
              The caller adds the blocks up (one partial sum per thread: no races).
    """
    n = gy.shape[0]
    groups, cog, k = w_mat.shape[0], w_mat.shape[1], w_mat.shape[2]
    n_blocks = dw_parts.shape[0]
    cg = k // (kh * kw)                                   # input channels per group
    height = x.shape[2] if need_weight else dx.shape[2]
    width = x.shape[3] if need_weight else dx.shape[3]
    wide = sh == 1 and sw == 1                            # stride 1: contiguous column rows
    wp = width + 2 * pw
    n_cols = ho * wp if wide else ho * wo
    for b in prange(n_blocks):
        cols = np.empty((k, n_cols), gy.dtype)            # columns, then column gradient
        gyw = np.zeros((cog, n_cols if wide else 0), gy.dtype)   # widened gy; junk columns stay 0
        product = np.empty((cog, k), gy.dtype)            # one sample's weight gradient
        xp = np.zeros((cg, height + 2 * ph + 1, wp), gy.dtype)   # padded sample; border stays 0
        dxp = np.empty((cg, height + 2 * ph + 1, wp), gy.dtype)  # its gradient
        if need_weight:
            dw_parts[b] = 0.0
        for s in range(b * n // n_blocks, (b + 1) * n // n_blocks):   # this block's samples
            for g in range(groups):
                if wide:
                    widen(gy[s, g], wo, gyw)              # (cog, P) -> (cog, ho*Wp)
                if need_weight:
                    pad_sample(x, s, g * cg, ph, pw, xp)
                    if wide:
                        im2col_wide(xp, kh, kw, dh, dw, ho, cols)
                        np.dot(gyw, cols.T, product)      # (cog, ho*Wp) @ (ho*Wp, K)
                    else:
                        im2col_padded(xp, kh, kw, sh, sw, dh, dw, ho, wo, cols)
                        np.dot(gy[s, g], cols.T, product)  # (cog, P) @ (P, K) -> (cog, K)
                    dw_parts[b, g] += product
                if need_input:
                    dxp[:] = 0.0                          # col2im adds into it
                    if wide:
                        np.dot(w_mat[g].T, gyw, cols)     # (K, cog) @ (cog, ho*Wp); junk columns 0
                        col2im_wide(cols, kh, kw, dh, dw, ho, dxp)
                    else:
                        np.dot(w_mat[g].T, gy[s, g], cols)    # (K, cog) @ (cog, P) -> (K, P)
                        col2im_padded(cols, kh, kw, sh, sw, dh, dw, ho, wo, dxp)
                    unpad_sample(dxp, ph, pw, s, g * cg, dx)


# Below this many multiply-adds a call runs on one thread: waking the pool
# costs more than it saves (and much more on a busy machine).
PARALLEL_MIN_WORK = 1 << 20


@contextlib.contextmanager
def thread_blocks(n, work):
    """Yield how many sample blocks to run in parallel (one per thread used),
    with Numba's pool and SciPy's BLAS set up for that; restore both after."""
    available = numba.get_num_threads()
    blocks = 1 if work < PARALLEL_MIN_WORK else max(1, min(n, available))
    numba.set_num_threads(blocks)
    try:
        with single_threaded_blas():
            yield blocks
    finally:
        numba.set_num_threads(available)


def conv2d_forward(x, weight, stride, padding, dilation, groups, ho, wo, grad_for_weight=None, bias=None):
    """(N, Cout, ho, wo) = conv2d(x, weight) (+ bias, if given); x, weight C-contiguous, same float dtype.
    With grad_for_weight (N, Cout, ho, wo) given, return (out, dW) where dW is
    conv2d's weight gradient for input x and output gradient grad_for_weight."""
    n = x.shape[0]
    c_out, cg, kh, kw = weight.shape
    cog, k = c_out // groups, cg * kh * kw
    w_mat = weight.reshape(groups, cog, k)                             # (G, cog, K)
    out = np.empty((n, groups, cog, ho * wo), x.dtype)                 # (N, G, cog, P)
    need_weight = grad_for_weight is not None
    gy = grad_for_weight.reshape(out.shape) if need_weight else out    # (N, G, cog, P)
    with thread_blocks(n, out.size * k * (2 if need_weight else 1)) as blocks:
        # the kernel reads the block count from dw_parts (empty rows when unused)
        dw_parts = np.empty((blocks,) + ((groups, cog, k) if need_weight else (0, 0, 0)), x.dtype)
        bias = np.zeros(0, x.dtype) if bias is None else np.ascontiguousarray(bias)
        forward_kernel(x, w_mat, bias, kh, kw, *stride, *padding, *dilation, ho, wo,
                       gy, need_weight, out, dw_parts)
    out = out.reshape(n, c_out, ho, wo)
    if need_weight:
        return out, dw_parts.sum(axis=0).reshape(weight.shape)
    return out


def conv2d_backward(grad_out, x, weight, stride, padding, dilation, groups,
                    input_shape, need_input, need_weight):
    """(dL/dx or None, dL/dW or None) of conv2d_forward; inputs C-contiguous."""
    n, _, ho, wo = grad_out.shape
    c_out, cg, kh, kw = weight.shape
    cog, k = c_out // groups, cg * kh * kw
    w_mat = weight.reshape(groups, cog, k)                             # (G, cog, K)
    gy = grad_out.reshape(n, groups, cog, ho * wo)                     # (N, G, cog, P)
    dx = np.empty(input_shape if need_input else (0, 0, 0, 0), grad_out.dtype)
    source = x if need_weight else dx                                  # any 4-D array of the dtype
    with thread_blocks(n, grad_out.size * k) as blocks:
        # the kernel reads the block count from dw_parts (empty rows when unused)
        dw_parts = np.empty((blocks,) + ((groups, cog, k) if need_weight else (0, 0, 0)), grad_out.dtype)
        backward_kernel(source, w_mat, gy, kh, kw, *stride, *padding, *dilation, ho, wo,
                        need_input, need_weight, dx, dw_parts)
    d_weight = dw_parts.sum(axis=0).reshape(weight.shape) if need_weight else None
    return (dx if need_input else None), d_weight
