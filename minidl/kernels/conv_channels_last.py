"""Convolution through channels-last columns: the loops the "numba"
backend runs for conv2d (and so for conv_transpose2d, its adjoint) when the
stride is above 1 (or, at stride 1, when conv_fast.py would not build its
wide columns; see `takes_channels_last`), the dilation is 1 and a group has
at least CHANNELS_LAST_MIN_CHANNELS input channels. The same mathematics as
`conv_fast.py` (read its docstring first: one thread pool with samples split
across it, several samples per matrix product, the bias and its gradient
fused into the passes); what differs is the layout of the column matrix.

conv_fast.py copies a strided column matrix row by row, (Cg*kh*kw, P): each
row holds ho*wo pixels read with the stride, and its adjoint, col2im, adds
them back one pixel at a time through a table of offsets. At the small
images of a GAN (4x4 to 14x14 outputs) those rows are short and every entry
is a separate indexed load or read-modify-write.

Here each sample is first copied, padded, into a channels-last buffer
xp[y, x, c] (rows H + 2ph, columns W + 2pw, Cg channels), and the column
matrix is built transposed, one output pixel per ROW, its entries ordered
tap row i, tap column j, channel c:

    colsT[oy*wo + ox, (i*kw + j)*Cg + c] = xp[oy*sh + i, ox*sw + j, c]

For a fixed tap row i, the entries of every j and c are kw*Cg consecutive
values of xp (the pixels ox*sw .. ox*sw + kw - 1 of row oy*sh + i, all their
channels): so one row of colsT is kh contiguous copies of kw*Cg values (256
for a 4x4 kernel over 64 channels), and col2im is kh contiguous additions of
the same length. Long runs with unit stride compile to SIMD loads and
stores; no table, no short loops.

The weight is reordered the same way once per call, w_cl[g, o, (i*kw + j)*Cg
+ c] = W[g*cog + o, c, i, j] (`reorder_weight`), and the three products become
    out_g^T   = colsT @ w_cl_g^T      (m*P, K) @ (K, cog)
    dW_cl_g   = gy_g @ colsT          (cog, m*P) @ (m*P, K)
    dcolsT    = gy_g^T @ w_cl_g       (m*P, cog) @ (cog, K)
(BLAS reads a transposed operand in place; out_g is computed transposed
because OpenBLAS runs w_cl_g @ colsT^T 5-20% slower at these shapes). The
transposes (a sample's channels into xp, the gradient buffer and the
output back out to NCHW) are one pass over one image each, against kh*kw/(sh*sw) images' worth of column
entries (4 at k4 s2). The reordering of the weight and the sum of the
blocks' weight gradients (back in W's order, `sum_weight_parts`) run inside
the parallel kernels too, split over the threads by output channel: cheaper
than NumPy transposes and a NumPy sum, and no calls of their own.

Kept for the backward. When the weight will need its gradient, the public
conv2d asks the forward to write every sample's columns into one array
`columns` (G, N*P, K) instead of a scratch chunk, and keeps it with w_cl
until the backward. The backward's weight gradient then reads those columns
and the weight already reordered: no padding copy, no im2col and no
reordering pass in the backward. The cost is memory: the whole column matrix
(kh*kw/(sh*sw) times the input, 2.25x at k3 s2) lives from forward to backward,
so it is kept only up to KEEP_MAX_FACTOR times the input (`keeps_columns`).
Without it (a frozen weight, or no_grad) the backward rebuilds the columns
from x chunk by chunk as before.

Shapes below: G groups, cog = Cout/G, Cg input channels per group,
K = kh*kw*Cg, P = ho*wo output pixels per sample.
"""
import numpy as np
from numba import njit, prange

from . import conv_fast    # its helpers, looked up when a kernel compiles (conv_fast imports this file)

# Fewest input channels per group for which the channels-last columns are
# used: with fewer, a tap row's run (kw*Cg values) is too short to gain from
# (a first layer's 1 or 3 channels), and conv_fast.py's strided columns run.
CHANNELS_LAST_MIN_CHANNELS = 8


# The kept column matrix (see "Kept for the backward" above) may be at most this
# many times the size of the input; above it the backward rebuilds the columns.
KEEP_MAX_FACTOR = 8


def takes_channels_last(stride, dilation, channels_per_group, wide_columns):
    """Whether conv_fast.py hands a conv2d with this geometry to this file:
    undilated, at least CHANNELS_LAST_MIN_CHANNELS input channels per group,
    and strided, or of stride 1 but with `wide_columns` False (conv_fast.py
    would not build wide columns: a small output with many output channels,
    such as a CNN's last 3x3 output from a 5x5 input). conv_fast.py's other
    columns copy one pixel at a time through its offset table; here every
    tap row is one run of kw*Cg values, at any stride."""
    if tuple(dilation) != (1, 1) or channels_per_group < CHANNELS_LAST_MIN_CHANNELS:
        return False
    return stride[0] > 1 or stride[1] > 1 or not wide_columns


def keeps_columns(input_shape, groups, output_pixels, k):
    """Whether the forward may keep its column matrix (G, N*P, K) for the
    backward: at most KEEP_MAX_FACTOR times the input (N, C, H, W). Strided
    convolutions stay well under it (2.25x at k3 s2, 4x at k4 s2); a stride-1
    3x3 kernel over a padded image would keep about 9x."""
    _, c, h, w = input_shape
    return groups * output_pixels * k <= KEEP_MAX_FACTOR * c * h * w


# ---- the weight and its gradient, channels last (run inside the parallel kernels) ----
@njit(cache=True)
def reorder_weight(weight, w_cl, first, end):
    """w_cl[g, o, (i*kw + j)*Cg + c] = W[g*cog + o, c, i, j] for output channels
    g*cog + o in first .. end - 1 (the order of a row of colsT).
    weight: (Cout, Cg, kh, kw) read only; w_cl: (G, cog, kh*kw*Cg)."""
    cog = w_cl.shape[1]
    cg, taps = weight.shape[1], weight.shape[2] * weight.shape[3]
    for channel in range(first, end):
        src = weight[channel].reshape(cg, taps)                          # [c, i*kw + j]
        dst = w_cl[channel // cog, channel % cog].reshape(taps, cg)      # [i*kw + j, c]
        for tap in range(taps):
            for c in range(cg):
                dst[tap, c] = src[c, tap]


@njit(cache=True)
def sum_weight_parts(dw_parts, d_weight, first, end):
    """d_weight[g*cog + o, c, i, j] = sum over blocks b of dw_parts[b, g, o, (i*kw + j)*Cg + c]
    for output channels g*cog + o in first .. end - 1: the blocks' partial
    weight gradients added up (in block order) and put back in W's order.
    dw_parts: (B, G, cog, kh*kw*Cg), those channels' rows of block 0 overwritten
    with the sum (added along the rows, then reordered once); d_weight: (Cout, Cg, kh, kw)."""
    cog = dw_parts.shape[2]
    cg, taps = d_weight.shape[1], d_weight.shape[2] * d_weight.shape[3]
    for channel in range(first, end):
        total = dw_parts[0, channel // cog, channel % cog]              # (K,): block 0's row, then the sum
        for b in range(1, dw_parts.shape[0]):
            part = dw_parts[b, channel // cog, channel % cog]
            for q in range(total.shape[0]):
                total[q] += part[q]
        src = total.reshape(taps, cg)                                    # [i*kw + j, c]
        dst = d_weight[channel].reshape(cg, taps)                        # [c, i*kw + j]
        for c in range(cg):
            for tap in range(taps):
                dst[c, tap] = src[tap, c]


# ---- channels-last copies ----------------------------------------------------------
@njit(cache=True)
def pad_sample_channels_last(x, n, c0, ph, pw, xp):
    """xp[ph + y, pw + x_, c] = x[n, c0 + c, y, x_] for every c < xp.shape[2].
    Only the interior of xp is written: its border must already be zero.

    One channel at a time: the channel's plane of x is read front to back
    (x is the caller's array, often not in cache: whole cache lines, in
    order), and the scattered side (every Cg-th entry of xp) stays in the
    small padded buffer, which sits in the core's cache. Going row by row
    through all the channels instead jumps between Cg planes of x at every
    row, and ran slower inside the kernels."""
    height, width, channels = x.shape[2], x.shape[3], xp.shape[2]
    wp = xp.shape[1]                                # padded row length
    flat = xp.reshape(-1)                           # (Hp*Wp*Cg,)
    for c in range(channels):
        plane = x[n, c0 + c]                        # (H, W): channel c0 + c of sample n
        for y in range(height):
            src = plane[y]                          # input row y
            start = ((ph + y) * wp + pw) * channels + c       # pixel (ph + y, pw), channel c
            dst = flat[start:start + (width - 1) * channels + 1]   # ... up to pixel pw + W - 1
            for col in range(width):
                dst[col * channels] = src[col]      # pixel pw + col, channel c


@njit(cache=True)
def unpad_sample_channels_last(dxp, ph, pw, n, c0, bias, dx):
    """dx[n, c0 + c, y, x_] = dxp[ph + y, pw + x_, c] (+ bias[c0 + c]): the interior
    of a channels-last padded gradient buffer, back in NCHW (gradient on the
    border is dropped). bias: (C,), or (0,) for none.
    One channel at a time, for the reason given in pad_sample_channels_last:
    each plane of dx is written front to back."""
    height, width, channels = dx.shape[2], dx.shape[3], dxp.shape[2]
    wp = dxp.shape[1]                               # padded row length
    flat = dxp.reshape(-1)                          # (Hp*Wp*Cg,)
    for c in range(channels):
        value = bias[c0 + c] if bias.shape[0] > 0 else 0.0
        plane = dx[n, c0 + c]                       # (H, W): channel c0 + c of sample n
        for y in range(height):
            dst = plane[y]                          # output row y
            start = ((ph + y) * wp + pw) * channels + c       # pixel (ph + y, pw), channel c
            src = flat[start:start + (width - 1) * channels + 1]   # ... up to pixel pw + W - 1
            for col in range(width):
                dst[col] = src[col * channels] + value


@njit(cache=True)
def im2col_channels_last(xp, kh, kw, sh, sw, ho, wo, cols_t, first_row):
    """cols_t[first_row + oy*wo + ox, (i*kw + j)*Cg + c] = xp[oy*sh + i, ox*sw + j, c].

    xp:     (Hp, Wp, Cg) padded sample, C-contiguous, read only; (ho - 1)*sh + kh <= Hp
            and (wo - 1)*sw + kw <= Wp (the caller's output size fits).
    cols_t: (>= first_row + ho*wo, kh*kw*Cg), C-contiguous; this sample's ho*wo rows written.
    """
    wp, channels = xp.shape[1], xp.shape[2]
    run = kw * channels                             # one tap row: kw pixels, all channels
    flat = xp.reshape(-1)                           # (Hp*Wp*Cg,)
    for oy in range(ho):
        for ox in range(wo):
            dst_row = cols_t[first_row + oy * wo + ox]       # this output pixel's K entries
            for i in range(kh):
                start = ((oy * sh + i) * wp + ox * sw) * channels   # pixel (oy*sh + i, ox*sw), channel 0
                src = flat[start:start + run]
                dst = dst_row[i * run:(i + 1) * run]
                for q in range(run):
                    dst[q] = src[q]


@njit(cache=True)
def col2im_channels_last(cols_t, first_row, kh, kw, sh, sw, ho, wo, dxp):
    """The adjoint of im2col_channels_last:
    dxp[oy*sh + i, ox*sw + j, c] += cols_t[first_row + oy*wo + ox, (i*kw + j)*Cg + c].
    dxp: (Hp, Wp, Cg), C-contiguous, ACCUMULATED into (zero it first).
    Within one run the kw pixels are distinct; overlapping windows add in turn."""
    wp, channels = dxp.shape[1], dxp.shape[2]
    run = kw * channels
    flat = dxp.reshape(-1)
    for oy in range(ho):
        for ox in range(wo):
            src_row = cols_t[first_row + oy * wo + ox]
            for i in range(kh):
                start = ((oy * sh + i) * wp + ox * sw) * channels
                dst = flat[start:start + run]
                src = src_row[i * run:(i + 1) * run]
                for q in range(run):
                    dst[q] += src[q]


# ---- the parallel kernels (bare prange over blocks of samples, as in conv_fast.py) ----
@njit(parallel=True, cache=True)
def forward_kernel(x, weight, w_cl, bias, kh, kw, sh, sw, ph, pw, ho, wo,
                   gy, need_weight, chunk_columns, out, dw_parts, d_weight, db_parts, columns):
    """conv_fast.forward_kernel's contract, with the weight and its gradient channels-last:
    weight:   (Cout, Cg, kh, kw), read only.
    w_cl:     (G, cog, K) scratch: first written with the weight, reordered (reorder_weight).
    out:      (N, G, cog, P), every entry written: W_g @ im2col(x[n], g) (+ bias).
    gy:       (N, G, cog, P), read only, used if need_weight.
    dw_parts: (B, G, cog, K) scratch; if need_weight, block b writes the sum over
              its samples of gy[n, g] @ colsT(x[n], g) (channels-last order) ...
    d_weight: (Cout, Cg, kh, kw); ... and then the blocks' sum is written here, in W's order.
    db_parts: (B, C) float64 zeros or (B, 0): block b adds the sums of x's channels.
    columns:  (G, N*P, K) or (0, 0, 0): if it has rows, every sample's columns are
              written there (sample n, group g: rows n*P .. (n+1)*P - 1 of columns[g]),
              to be kept for the backward, instead of into a scratch chunk.
    Three parallel loops, each split over the B blocks: reorder the weight,
    the blocks of samples, add up the weight gradient (output channels split).
    """
    n_blocks, c_out = dw_parts.shape[0], weight.shape[0]
    for b in prange(n_blocks):                    # output channels b*Cout//B .. of w_cl
        reorder_weight(weight, w_cl, b * c_out // n_blocks, (b + 1) * c_out // n_blocks)
    for b in prange(n_blocks):
        forward_block(np.int64(b), x, w_cl, bias, kh, kw, sh, sw, ph, pw, ho, wo,
                      gy, need_weight, chunk_columns, out, dw_parts, db_parts, columns)
    if need_weight:
        for b in prange(n_blocks):                # output channels b*Cout//B .. of d_weight
            sum_weight_parts(dw_parts, d_weight, b * c_out // n_blocks, (b + 1) * c_out // n_blocks)


@njit(cache=True)
def forward_block(b, x, w_cl, bias, kh, kw, sh, sw, ph, pw, ho, wo,
                  gy, need_weight, chunk_columns, out, dw_parts, db_parts, columns):
    """forward_kernel's work for block b: samples b*N//B .. (b+1)*N//B - 1, in
    chunks whose rows of colsT sit one sample after the other (in `columns`,
    when it has rows, else in a scratch chunk)."""
    n, height, width = x.shape[0], x.shape[2], x.shape[3]
    groups, cog, k = w_cl.shape[0], w_cl.shape[1], w_cl.shape[2]
    n_blocks = dw_parts.shape[0]
    first, end = b * n // n_blocks, (b + 1) * n // n_blocks   # this block's samples
    cg = k // (kh * kw)
    per = ho * wo                                          # rows of colsT per sample
    count, chunk = conv_fast.chunk_plan(first, end, per, chunk_columns)   # chunks of chunk or rest samples
    rest = conv_fast.smaller_chunk(first, end, count, chunk)
    w_cols = per if need_weight else 0
    keep = columns.shape[1] > 0                            # the columns go to the caller's array
    scratch = 0 if keep else 1
    cols_full = np.empty((chunk * per * scratch, k), x.dtype)
    cols_rest = np.empty((rest * per * scratch, k), x.dtype)
    res_full, res_rest = np.empty((chunk * per, cog), x.dtype), np.empty((rest * per, cog), x.dtype)
    gy_full, gy_rest = np.empty((cog, chunk * w_cols), x.dtype), np.empty((cog, rest * w_cols), x.dtype)
    product = np.empty((cog, k), x.dtype)                 # one chunk's weight gradient
    xp = np.zeros((height + 2 * ph, width + 2 * pw, cg), x.dtype)   # padded sample; border stays 0
    if need_weight and first == end:                      # no samples: a zero part (else the first chunk writes it)
        dw_parts[b] = 0.0
    for j in range(count):                                # chunk j: samples c0 .. c0 + m - 1
        c0 = conv_fast.chunk_start(first, end, count, j)
        m = conv_fast.chunk_start(first, end, count, j + 1) - c0
        cols_t = cols_full if m == chunk else cols_rest   # (m*P, K)
        result = res_full if m == chunk else res_rest     # (m*P, cog), the output transposed
        gyc = gy_full if m == chunk else gy_rest          # (cog, m*P) if need_weight
        for g in range(groups):
            if keep:                                      # samples c0 .. c0 + m - 1 of group g: (m*P, K)
                cols_t = columns[g, c0 * per:(c0 + m) * per]
            for t in range(m):                            # sample c0 + t -> rows t*P ..
                pad_sample_channels_last(x, c0 + t, g * cg, ph, pw, xp)
                if db_parts.shape[1] > 0:                 # channel sums, while x[c0 + t] is in cache
                    for c in range(cg):
                        db_parts[b, g * cg + c] += conv_fast.row_sum(x[c0 + t, g * cg + c].reshape(-1))
                im2col_channels_last(xp, kh, kw, sh, sw, ho, wo, cols_t, t * per)
                if need_weight:
                    for o in range(cog):                  # gy[c0 + t, g] -> columns t*P .. of gyc
                        src = gy[c0 + t, g, o]
                        dst = gyc[o, t * per:(t + 1) * per]
                        for q in range(per):
                            dst[q] = src[q]
            np.dot(cols_t, w_cl[g].T, result)             # (m*P, K) @ (K, cog)
            for t in range(m):
                block = result[t * per:(t + 1) * per]     # (P, cog): sample c0 + t
                for o in range(cog):                      # -> out[c0 + t, g, o], plus the bias
                    dst = out[c0 + t, g, o]
                    value = bias[g * cog + o] if bias.shape[0] > 0 else 0.0
                    for q in range(per):
                        dst[q] = block[q, o] + value
            if need_weight:                               # (cog, m*P) @ (m*P, K)
                if c0 == first:                           # the block's first chunk: straight into its part
                    np.dot(gyc, cols_t, dw_parts[b, g])
                else:
                    np.dot(gyc, cols_t, product)
                    conv_fast.add_into(dw_parts[b, g], product)


@njit(parallel=True, cache=True)
def backward_kernel(x, weight, w_cl, gy, kh, kw, sh, sw, ph, pw, ho, wo,
                    need_input, need_weight, chunk_columns, bias, dx, dw_parts, d_weight, db_parts,
                    columns):
    """conv_fast.backward_kernel's contract, with the weight and its gradient channels-last:
    weight:   (Cout, Cg, kh, kw), read only.   gy: (N, G, cog, P), read only.
    w_cl:     (G, cog, K) scratch: first written with the weight, reordered (reorder_weight).
    dx:       (N, C, H, W); if need_input, every entry written (+ bias (C,) or none (0,)).
    dw_parts: (B, G, cog, K) scratch; if need_weight, block b writes its samples' sum of gy @ colsT ...
    d_weight: (Cout, Cg, kh, kw); ... and then the blocks' sum is written here, in W's order.
    db_parts: (B, Cout) float64 zeros or (B, 0): block b adds the sums of gy's channels.
    columns:  (G, N*P, K) kept by forward_kernel, or (0, 0, 0). If it has rows,
              w_cl already holds the reordered weight (the forward's) and the
              weight gradient reads the kept columns: no reordering, no padding
              copy, no im2col; x is not read. Read only.
    Three parallel loops, as in forward_kernel (two with kept columns).
    """
    n_blocks, c_out = dw_parts.shape[0], weight.shape[0]
    if columns.shape[1] == 0:
        for b in prange(n_blocks):                # output channels b*Cout//B .. of w_cl
            reorder_weight(weight, w_cl, b * c_out // n_blocks, (b + 1) * c_out // n_blocks)
    for b in prange(n_blocks):
        backward_block(np.int64(b), x, w_cl, gy, kh, kw, sh, sw, ph, pw, ho, wo,
                       need_input, need_weight, chunk_columns, bias, dx, dw_parts, db_parts, columns)
    if need_weight:
        for b in prange(n_blocks):                # output channels b*Cout//B .. of d_weight
            sum_weight_parts(dw_parts, d_weight, b * c_out // n_blocks, (b + 1) * c_out // n_blocks)


@njit(cache=True)
def backward_block(b, x, w_cl, gy, kh, kw, sh, sw, ph, pw, ho, wo,
                   need_input, need_weight, chunk_columns, bias, dx, dw_parts, db_parts, columns):
    """backward_kernel's work for block b, in chunks of samples as in forward_block."""
    n = gy.shape[0]
    groups, cog, k = w_cl.shape[0], w_cl.shape[1], w_cl.shape[2]
    n_blocks = dw_parts.shape[0]
    first, end = b * n // n_blocks, (b + 1) * n // n_blocks
    cg = k // (kh * kw)
    kept = columns.shape[1] > 0                           # the forward's columns, in place of im2col
    height = x.shape[2] if need_weight else dx.shape[2]
    width = x.shape[3] if need_weight else dx.shape[3]
    per = ho * wo
    count, chunk = conv_fast.chunk_plan(first, end, per, chunk_columns)   # chunks of chunk or rest samples
    rest = conv_fast.smaller_chunk(first, end, count, chunk)
    cols_full, cols_rest = np.empty((chunk * per, k), gy.dtype), np.empty((rest * per, k), gy.dtype)
    gy_full, gy_rest = np.empty((cog, chunk * per), gy.dtype), np.empty((cog, rest * per), gy.dtype)
    product = np.empty((cog, k), gy.dtype)
    xp = np.zeros((0 if kept else height + 2 * ph, width + 2 * pw, cg), gy.dtype)   # padded sample; border stays 0
    dxp = np.empty((height + 2 * ph, width + 2 * pw, cg), gy.dtype)  # its gradient
    if need_weight and first == end:                      # no samples: a zero part (else the first chunk writes it)
        dw_parts[b] = 0.0
    for j in range(count):                                # chunk j: samples c0 .. c0 + m - 1
        c0 = conv_fast.chunk_start(first, end, count, j)
        m = conv_fast.chunk_start(first, end, count, j + 1) - c0
        cols_t = cols_full if m == chunk else cols_rest   # columns, then their gradient (m*P, K)
        gyc = gy_full if m == chunk else gy_rest          # gy of the chunk side by side (cog, m*P)
        for g in range(groups):
            for t in range(m):
                for o in range(cog):
                    src = gy[c0 + t, g, o]
                    dst = gyc[o, t * per:(t + 1) * per]
                    for q in range(per):
                        dst[q] = src[q]
                    if db_parts.shape[1] > 0:             # bias gradient, while the row is in cache
                        db_parts[b, g * cog + o] += conv_fast.row_sum(src)
            if need_weight:
                source = cols_t                           # this chunk's columns (m*P, K)
                if kept:
                    source = columns[g, c0 * per:(c0 + m) * per]
                else:
                    for t in range(m):
                        pad_sample_channels_last(x, c0 + t, g * cg, ph, pw, xp)
                        im2col_channels_last(xp, kh, kw, sh, sw, ho, wo, cols_t, t * per)
                if c0 == first:                           # (cog, m*P) @ (m*P, K); the block's first chunk
                    np.dot(gyc, source, dw_parts[b, g])   # straight into its part
                else:
                    np.dot(gyc, source, product)
                    conv_fast.add_into(dw_parts[b, g], product)
            if need_input:
                np.dot(gyc.T, w_cl[g], cols_t)            # (m*P, cog) @ (cog, K)
                for t in range(m):
                    dxp[:] = 0.0                          # col2im adds into it
                    col2im_channels_last(cols_t, t * per, kh, kw, sh, sw, ho, wo, dxp)
                    unpad_sample_channels_last(dxp, ph, pw, c0 + t, g * cg, bias, dx)
