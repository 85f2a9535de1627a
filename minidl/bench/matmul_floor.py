"""The matrix products of a channels-last convolution, alone: how long minidl's
"numba" convolution would take if everything around its BLAS calls (the
padding copies, im2col and col2im, the transposes to and from NCHW, the
bias and the sums of the weight gradient's parts) cost nothing.

The conv suite times this next to the real kernels for the shapes that run
`minidl/kernels/conv_channels_last.py` (strided convolutions, small stride-1
ones, and the conv_transpose2d whose conv2d is one of those). Its row in
benchmarks/results/conv.md is the floor of that design: no change to the
copies can make the kernel faster than its own products. If PyTorch's time
is below that row too, only fewer multiplications (another algorithm) or a
faster matrix product would close the gap.

What runs is exactly what the kernels run, with the same shapes, order of
operands, chunks of samples and threads: a `prange` over one block of
samples per thread, each block in even chunks of about `CHUNK_COLUMNS`
output pixels (`conv_fast.chunk_plan`), one single-threaded BLAS call per product
and chunk, on buffers filled once with random numbers. For a conv2d with
P output pixels per sample, K = Cin*kh*kw and Cout output channels
(`conv_channels_last.py`'s names), the three products are

    "forward"      out^T  = colsT @ w_cl^T    (m*P, K) @ (K, Cout)
    "weight_grad"  dW_cl  = gy @ colsT        (Cout, m*P) @ (m*P, K)
    "input_grad"   dcolsT = gy^T @ w_cl       (m*P, Cout) @ (Cout, K)

conv2d's forward is "forward"; its backward, "weight_grad" and
"input_grad". conv_transpose2d is the adjoint: its forward is the conv2d's
"input_grad" (the conv2d maps conv_transpose2d's output back to its input),
its backward the conv2d's "forward" and "weight_grad".
"""
import numpy as np
from numba import njit, prange

from ..kernels import conv_fast
from ..threads import numba_threads, single_threaded_blas

PRODUCTS = ("forward", "weight_grad", "input_grad")


@njit(parallel=True, cache=True)
def products_kernel(n, per, chunk_columns, forward, weight_grad, input_grad,
                    cols_t, w_cl, gy_full, gy_rest, result, dw):
    """The chosen products over n samples of `per` output pixels each.
    (chunk = the most samples a chunk of any block holds)

    cols_t:  (B, chunk*per, K) one block's column matrix (read by "forward" and
             "weight_grad", written by "input_grad": its first m*per rows).
    w_cl:    (Cout, K) the weight, channels-last (read).
    gy_full, gy_rest: (B, Cout*chunk*per) each: block b's output gradient of a
             full chunk of m samples is gy_full[b, :Cout*m*per] read as (Cout, m*per),
             that of a smaller chunk (chunk - 1 samples) the same stretch of gy_rest (read).
    result:  (B, chunk*per, Cout), written by "forward" (first m*per rows).
    dw:      (B, Cout, K), written by "weight_grad".
    B = number of blocks, one per thread; block b owns samples b*n//B .. (b+1)*n//B - 1.
    """
    for b in prange(cols_t.shape[0]):
        products_block(np.int64(b), n, per, chunk_columns, forward, weight_grad, input_grad,
                       cols_t, w_cl, gy_full, gy_rest, result, dw)


@njit(cache=True)
def products_block(b, n, per, chunk_columns, forward, weight_grad, input_grad,
                   cols_t, w_cl, gy_full, gy_rest, result, dw):
    """products_kernel's work for block b, chunk by chunk as the kernels split it."""
    n_blocks = cols_t.shape[0]
    first, end = b * n // n_blocks, (b + 1) * n // n_blocks      # this block's samples
    count, chunk = conv_fast.chunk_plan(first, end, per, chunk_columns)   # chunks of chunk or chunk - 1
    c_out = w_cl.shape[0]
    for j in range(count):                                        # chunk j: samples c0 .. c0 + m - 1
        c0 = conv_fast.chunk_start(first, end, count, j)
        m = conv_fast.chunk_start(first, end, count, j + 1) - c0
        rows = m * per                                            # output pixels of the chunk
        cols = cols_t[b, :rows]                                   # (m*P, K), C-contiguous
        flat = gy_full[b] if m == chunk else gy_rest[b]
        gy = flat[:c_out * rows].reshape(c_out, rows)             # (Cout, m*P), C-contiguous
        if forward:
            np.dot(cols, w_cl.T, result[b, :rows])                # (m*P, K) @ (K, Cout)
        if weight_grad:
            np.dot(gy, cols, dw[b])                               # (Cout, m*P) @ (m*P, K)
        if input_grad:
            np.dot(gy.T, w_cl, cols)                              # (m*P, Cout) @ (Cout, K)


def matmuls_only(n, per, k, c_out, products, dtype=np.float32, seed=0):
    """A zero-argument callable that runs the `products` (names from PRODUCTS)
    of a channels-last conv2d over n samples with `per` output pixels each,
    K = k rows of a column and c_out output channels, exactly as the "numba"
    kernels chunk and thread them (see the module docstring)."""
    unknown = set(products) - set(PRODUCTS)
    if unknown:
        raise ValueError(f"matmuls_only: unknown products {sorted(unknown)}; choose from {PRODUCTS}")
    flags = [name in products for name in PRODUCTS]
    blocks = conv_fast.sample_blocks(n, n * per * k * c_out)
    rng = np.random.default_rng(seed)
    chunk_columns = conv_fast.CHUNK_COLUMNS               # as the kernels read it now
    # the most samples one chunk can hold (the larger chunks of the largest block)
    chunk = max(1, conv_fast.chunk_plan(0, -(-n // blocks), per, chunk_columns)[1])

    def filled(*shape):
        return rng.standard_normal(shape).astype(dtype)
    cols_t, w_cl = filled(blocks, chunk * per, k), filled(c_out, k)             # (B, chunk*P, K), (Cout, K)
    gy_full, gy_rest = filled(blocks, c_out * chunk * per), filled(blocks, c_out * chunk * per)
    result, dw = np.empty((blocks, chunk * per, c_out), dtype), np.empty((blocks, c_out, k), dtype)

    def run():
        with numba_threads(blocks), single_threaded_blas():
            products_kernel(n, per, chunk_columns, *flags, cols_t, w_cl, gy_full, gy_rest, result, dw)
        return result, dw, cols_t
    run.buffers = dict(cols_t=cols_t, w_cl=w_cl, gy_full=gy_full, gy_rest=gy_rest, chunk=chunk)
    return run
