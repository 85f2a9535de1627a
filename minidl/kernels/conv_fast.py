"""The optimised convolution loops: what the "numba" backend runs. The
readable loops they are held equal to (tests/test_conv_fast.py, float32 and
float64, several threads, non-contiguous inputs) are `im2col` and `col2im` in
`conv.py`, run there with one big matrix product per group.

Both compute out = W_g @ im2col(x) per group, and the gradients
dW_g = gy_g @ im2col(x)^T and dx = col2im(W_g^T @ gy_g). What differs:

1. One thread pool, samples split across it. The readable path builds the
   column matrix of the whole batch and multiplies it with NumPy, whose BLAS
   runs its own threads. Here a `prange` over blocks of samples (about one
   block per Numba thread) builds the column matrix of a few samples (K x
   P per sample, see 7) and multiplies it with a single-threaded BLAS call
   (`np.dot` inside @njit calls SciPy's BLAS; `minidl.threads` holds that BLAS
   to one thread meanwhile). Two thread pools spinning on the same cores slow
   each other down several times; one pool does not. The weight gradient is
   summed per block (`dw_parts[b]`) and the blocks are added up afterwards, so
   threads never write the same memory. Calls with less than
   PARALLEL_MIN_WORK multiply-adds run on one thread: waking the pool would
   cost more than it saves.
2. Pad first, then copy without branches. The readable `im2col` tests every
   input row and column against the padding. Here each sample is first copied
   into a zero-bordered buffer xp once (`pad_sample`), so every tap reads
   inside the buffer:
       xp[c, oy*sh + i*dh, ox*sw + j*dw]          (no "- padding": the border is in xp)
   and the inner loops are plain copies. The buffer's rows are only
   Wp = max(W + pw, wo) long, not W + 2pw: read flat, a row's right padding
   is the next row's left padding (pixel (y, W + e) of the padded image, e <
   pw, is flat index (y + 1)*Wp + e - pw, a zero of the left border), and
   the last rows' right padding and reads run into spare zero rows at the
   bottom (`padded_rows`). The copies below all index a channel flat.
3. Stride 1: "wide" columns. With stride 1, output pixel (oy, ox) and tap
   (i, j) read the flat index (oy + i*dh)*Wp + (ox + j*dw) of the padded
   channel. Letting ox run over the full row length Wp instead of wo, one
   row of the column matrix reads consecutive flat indices
   i*dh*Wp + j*dw + q: a single contiguous copy (`im2col_wide`). The columns
   with ox >= wo are junk (Wp - wo of them per row: one for a 3x3 kernel
   with padding 1, thanks to the shared padding column of 2); the GEMM
   computes them and `narrow` drops them, and `widen` writes gradients with
   those columns zero so they add nothing. Where the junk would cost the
   products more than the faster copies save (small outputs without
   padding, two junk columns per row), stride 1 takes the strided columns
   of 8 instead (`wide_columns`).
4. Fused extras: the bias is added while each output block is in cache
   (conv2d's forward; conv_transpose2d's forward, in `unpad_sample`), the
   bias gradient is summed while the output gradient is read anyway
   (`row_sum`, in float64, one partial sum per block), and
   conv_transpose2d's backward gets dx and dW from one pass over the same
   columns (`forward_kernel` with `need_weight`). Each saves a separate
   pass over a whole (N, C, H, W) array.
5. Output written sample by sample in NCHW order, while the chunk's product
   is still in cache: no reshuffling pass over the whole batch, and no
   column matrix of the whole batch in memory.
6. Copy loops that the compiler turns into SIMD code. Numba accepts negative
   indices (a[-1] is the last element), so `dst[q] = src[start + q]` costs a
   sign test per element whenever the compiler cannot prove start + q >= 0,
   and that test keeps the loop scalar, several times slower. Every copy
   loop below therefore first slices out the stretch it touches and then
   indexes it with the plain loop counter (`src = row[start:start + n]`,
   `dst[q] = src[q]`), which compiles to vector loads and stores.
7. Several samples per matrix product. A product over one small image (a
   7x7 output has 49 columns; a strided 8x8 one, 64) runs BLAS far below its
   speed, and the weight gradient's products are then sums over only 49
   pixels. So each block works in chunks of samples whose columns sit side
   by side in one matrix (sample t of the chunk owns columns t*per ..
   (t+1)*per - 1, per = columns of one sample), about CHUNK_COLUMNS columns
   per chunk, the block cut into chunks as even as they can be (`chunk_plan`:
   no product on a last sliver of one or two samples): one product per
   chunk and group for the output, one for dW
   (its sum now runs over the whole chunk inside BLAS) and one for dx.
   `narrow` and `widen` move one sample's stretch out of and into such a
   matrix.
8. Strided columns through a table of offsets. With stride > 1 the columns
   cannot be wide, and a row of the column matrix is ho short runs of wo
   pixels (7 or 8 at the standard shapes), each read with stride sw: loops
   that short spend more time starting and finishing than copying, because
   their length and stride are only known at run time. But the pattern
   (output pixel -> flat offset oy*sh*Wp + ox*sw in the padded channel) is
   the same for every row: `tap_offsets` computes it once per call, and
   `im2col_padded` / `col2im_padded` run one loop of ho*wo steps per row
   through it (about twice as fast at those shapes). Undilated convolutions
   with at least 8 input channels per group go further when they would take
   these strided columns (any stride above 1, and stride 1 where the
   columns are not wide): `conv_channels_last.py` builds their columns from
   a channels-last copy of each sample, each kernel row's taps one
   contiguous run (`takes_channels_last`).
9. The weight gradient is computed transposed, dW_g^T = cols @ gy_g^T
   (K, cog), summed so over the chunks and blocks, and transposed back once
   at the end: OpenBLAS runs that product 6-13% faster than gy_g @ cols^T at
   the standard shapes (the column matrix is then read along its rows).

Shapes below: G groups, cog = Cout/G output channels per group,
K = Cg*kh*kw rows of a column matrix, P = ho*wo output pixels per sample.
"""
import numba
import numpy as np
from numba import njit, prange

from ..threads import numba_threads, single_threaded_blas
from . import conv_channels_last
from .backend import kernel_array
from .geometry import conv_output_size

# Below this many multiply-adds a call runs on one thread: waking the pool
# costs more than it saves (and much more on a busy machine).
PARALLEL_MIN_WORK = 1 << 20

# About how many columns (output pixels of several samples) one matrix product
# gets: a product over one small image (7x7 = 49 columns) runs BLAS far below
# its speed, one over ~10 such images near it (optimisation 7 above).
# benchmarks/results/chunks.md (`minidl bench chunks`) sweeps it: at 1024 the
# conv_transpose2d from 7x7 ran about 1.5x slower (its chunk's columns no
# longer fit the core's cache); no other size was faster on every shape.
CHUNK_COLUMNS = 512


# ---- padded and wide column copies (used by the kernels below) --------------------
@njit(cache=True)
def padded_rows(height, ph, kw, dw, wp):
    """Rows of a padded buffer whose rows are wp long (2 above): the padded
    image's H + 2ph rows, then spare zero rows for what the last rows read
    beyond them, flat: up to (kw - 1)*dw entries (the right end of the last
    kernel row's window, wide or strided) plus one row of wide junk."""
    return height + 2 * ph + 1 + ((kw - 1) * dw) // wp


@njit(cache=True)
def pad_sample(x, n, c0, ph, pw, xp):
    """xp[c, ph + y, pw + x_] = x[n, c0 + c, y, x_] for every c < xp.shape[0].
    Only the interior of xp is written: its border must already be zero."""
    height, width = x.shape[2], x.shape[3]
    for c in range(xp.shape[0]):
        for y in range(height):
            src = x[n, c0 + c, y]                 # input row y of channel c0 + c
            dst = xp[c, ph + y, pw:pw + width]    # the same row inside the border
            for col in range(width):
                dst[col] = src[col]


@njit(cache=True)
def unpad_sample(dxp, ph, pw, n, c0, bias, dx):
    """dx[n, c0 + c, y, x_] = dxp[c, ph + y, pw + x_] (+ bias[c0 + c]): the interior
    of a padded gradient buffer (gradient that fell on the border is dropped, as
    it should). bias: (C,) added on the way (conv_transpose2d's forward), or (0,)."""
    height, width = dx.shape[2], dx.shape[3]
    for c in range(dxp.shape[0]):
        value = bias[c0 + c] if bias.shape[0] > 0 else 0.0   # this channel's bias
        for y in range(height):
            src = dxp[c, ph + y, pw:pw + width]   # the interior of padded row ph + y
            dst = dx[n, c0 + c, y]
            for col in range(width):
                dst[col] = src[col] + value


@njit(cache=True)
def tap_offsets(ho, wo, sh, sw, wp):
    """offsets[oy*wo + ox] = oy*sh*Wp + ox*sw, (ho*wo,) unsigned: how far, in a
    padded channel read flat (row length Wp), the pixel that output (oy, ox)
    reads through a tap lies from the pixel output (0, 0) reads through the
    same tap. The same for every tap, so it is computed once per call.
    (Unsigned: Numba indexes with it without the negative-index test, see 6.)"""
    offsets = np.empty(ho * wo, np.uintp)
    for oy in range(ho):
        for ox in range(wo):
            offsets[oy * wo + ox] = oy * sh * wp + ox * sw   # row oy*sh, column ox*sw of the tap's window
    return offsets


@njit(cache=True)
def im2col_padded(xp, kh, kw, dh, dw, offsets, cols, offset):
    """cols[(c*kh + i)*kw + j, offset + oy*wo + ox] = xp[c, oy*sh + i*dh, ox*sw + j*dw].

    xp:      (Cg, rows, Wp) padded sample (2 above), C-contiguous, read only.
    offsets: tap_offsets(ho, wo, sh, sw, Wp), (ho*wo,).
    cols:    (Cg*kh*kw, >= offset + ho*wo), C-contiguous; this sample's ho*wo
             columns, starting at column `offset`, are written.
    One loop of ho*wo steps per row, through the offsets (optimisation 8),
    instead of ho short loops of wo.
    """
    hp, wp = xp.shape[1], xp.shape[2]
    per = offsets.shape[0]                        # ho*wo columns of this sample
    flat = xp.reshape(-1)                         # (Cg*Hp*Wp,)
    for row in range(cols.shape[0]):
        c = row // (kh * kw)                      # channel
        i = (row // kw) % kh                      # kernel row
        j = row % kw                              # kernel column
        src = flat[c * hp * wp + i * dh * wp + j * dw:]   # from the pixel output (0, 0) reads through tap (c, i, j)
        dst = cols[row, offset:offset + per]      # this sample's stretch of the row
        for q in range(per):
            dst[q] = src[offsets[q]]


@njit(cache=True)
def col2im_padded(cols, offset, kh, kw, dh, dw, offsets, dxp):
    """The adjoint of im2col_padded: dxp[c, oy*sh + i*dh, ox*sw + j*dw] += cols[(c*kh + i)*kw + j, offset + oy*wo + ox].

    cols:    (Cg*kh*kw, >= offset + ho*wo), read only.
    offsets: tap_offsets(ho, wo, sh, sw, Wp), (ho*wo,).
    dxp:     (Cg, rows, Wp) padded gradient buffer, C-contiguous, ACCUMULATED into (zero it first).
    Within one row the offsets are distinct, so each entry lands on its own pixel.
    """
    hp, wp = dxp.shape[1], dxp.shape[2]
    per = offsets.shape[0]
    flat = dxp.reshape(-1)
    for row in range(cols.shape[0]):
        c = row // (kh * kw)
        i = (row // kw) % kh
        j = row % kw
        dst = flat[c * hp * wp + i * dh * wp + j * dw:]   # from the pixel output (0, 0)'s entry of tap (c, i, j) goes to
        src = cols[row, offset:offset + per]      # this sample's stretch of the row
        for q in range(per):
            dst[offsets[q]] += src[q]


# stride 1: "wide" columns, one contiguous copy per row (optimisation 3 above)

@njit(cache=True)
def im2col_wide(xp, kh, kw, dh, dw, ho, cols, offset):
    """Stride 1. cols[(c*kh + i)*kw + j, offset + q] = flat(xp[c])[i*dh*Wp + j*dw + q], q < ho*Wp.

    xp:   (Cg, rows, Wp) padded sample (2 above), read only.
    cols: (Cg*kh*kw, >= offset + ho*Wp); this sample's ho*Wp columns from
          `offset` are written (those with q % Wp >= wo are junk).
    """
    wp = xp.shape[2]
    per = ho * wp                                 # columns of one sample
    for row in range(cols.shape[0]):
        c = row // (kh * kw)                      # channel
        i = (row // kw) % kh                      # kernel row
        j = row % kw                              # kernel column
        start = i * dh * wp + j * dw              # flat index read by q = 0
        src = xp[c].reshape(-1)[start:start + per]   # the padded channel, flat, from there
        dst = cols[row, offset:offset + per]
        for q in range(per):
            dst[q] = src[q]


@njit(cache=True)
def col2im_wide(cols, offset, kh, kw, dh, dw, ho, dxp):
    """Adjoint of im2col_wide: flat(dxp[c])[i*dh*Wp + j*dw + q] += cols[(c*kh + i)*kw + j, offset + q].
    dxp: (Cg, rows, Wp), ACCUMULATED into. Junk columns of cols must be zero."""
    wp = dxp.shape[2]
    per = ho * wp
    for row in range(cols.shape[0]):
        c = row // (kh * kw)
        i = (row // kw) % kh
        j = row % kw
        start = i * dh * wp + j * dw
        dst = dxp[c].reshape(-1)[start:start + per]
        src = cols[row, offset:offset + per]
        for q in range(per):
            dst[q] += src[q]


@njit(cache=True)
def wide_columns(sh, sw, wp, wo, cog):
    """Whether to build wide columns (3 above) rather than strided ones
    through the offset table (8 above). Only stride 1 can be wide. Wide
    columns are copied about four times faster, but every output row carries
    wp - wo junk columns that all three products (forward, dW, dx) compute
    for nothing, at about 2*cog multiply-adds each. Copies cost about as much
    per column entry as cog/8 multiply-adds of a product, so wide wins while
    the junk share (wp - wo)/wo times cog stays under about 8: a 3x3 kernel
    with padding 1 (one junk column per row) nearly always, a 3x3 kernel
    without padding (two per row) on wide images only, e.g. not on 11x11 or
    3x3 outputs with 64 output channels."""
    return sh == 1 and sw == 1 and (wp - wo) * cog <= 8 * wo


@njit(cache=True)
def narrow(wide, offset, wp, wo, out):
    """out[o, oy*wo + ox] = wide[o, offset + oy*wp + ox] for ox < wo: one
    sample's output out of a chunk's product, without the junk columns (with
    wp == wo there are none, and this is a plain copy).
    wide: (M, >= offset + ho*wp) read only; out: (M, ho*wo) written."""
    ho = out.shape[1] // wo
    for o in range(out.shape[0]):
        for oy in range(ho):
            src = wide[o, offset + oy * wp:offset + oy * wp + wo]   # output row oy without its junk tail
            dst = out[o, oy * wo:oy * wo + wo]
            for ox in range(wo):
                dst[ox] = src[ox]


@njit(cache=True)
def widen(narrow_, wo, wide, offset, wp):
    """wide[o, offset + oy*wp + ox] = narrow_[o, oy*wo + ox] for ox < wo: the
    inverse of `narrow`. The junk columns of `wide` are not touched: the
    caller keeps them zero."""
    ho = narrow_.shape[1] // wo
    for o in range(narrow_.shape[0]):
        for oy in range(ho):
            src = narrow_[o, oy * wo:oy * wo + wo]
            dst = wide[o, offset + oy * wp:offset + oy * wp + wo]   # output row oy; its junk tail untouched
            for ox in range(wo):
                dst[ox] = src[ox]


@njit(cache=True)
def add_into(total, part):
    """total += part for two (M, K) arrays, as a loop: Numba compiles a slice
    assignment from an array with a formatted shape-mismatch error, which
    alone costs seconds of first-use compile time."""
    for i in range(total.shape[0]):
        for j in range(total.shape[1]):
            total[i, j] += part[i, j]


@njit(cache=True, fastmath={"reassoc"})
def row_sum(row):
    """The sum of a 1-D array, accumulated in float64. `reassoc` lets the
    compiler split the sum over SIMD lanes (a different order of additions,
    exact up to float64 rounding); a plain loop would add one at a time."""
    total = np.float64(0.0)
    for q in range(row.shape[0]):
        total += row[q]
    return total


# ---- the parallel kernels ----------------------------------------------------------
# Each parallel kernel is a bare `prange` over blocks of samples calling a serial
# function for one block: Numba's parallel compiler then analyses one call
# instead of the whole body, which keeps the first-use compile short. The block
# index is cast to int64 so the block function compiles once (the parallel
# loop's own index is unsigned).

@njit(parallel=True, cache=True)
def forward_kernel(x, w_mat, bias, kh, kw, sh, sw, ph, pw, dh, dw, ho, wo,
                   gy, need_weight, chunk_columns, out, dw_parts, db_parts):
    """out[n, g] = W_g @ im2col(x[n], group g) for every sample n and group g,
    and optionally, from the same columns, a weight gradient.

    x:        (N, C, H, W) C-contiguous, read only.
    w_mat:    (G, cog, K) C-contiguous, read only (the weight, reshaped).
    bias:     (Cout,) added to every output pixel of its channel, or (0,) for none.
    out:      (N, G, cog, P) C-contiguous; every entry written.
    gy:       (N, G, cog, P), read only, used if need_weight (else any 4-D array).
    chunk_columns: about how many columns one matrix product gets (samples
              are multiplied together in chunks of that many columns, at least one sample).
    dw_parts: (B, G, K, cog), B = number of sample blocks run in parallel (about
              one per thread); if need_weight, block b writes the transposed
              dw_parts[b, g] = sum over its samples of im2col(x[n], g) @ gy[n, g]^T.
    db_parts: (B, C) float64 zeros, or (B, 0); if C > 0, block b adds to
              db_parts[b, c] the sum of x[n, c] over its samples n (float64).
    (conv_transpose2d's backward needs exactly this: conv2d of its output
    gradient for dx, the weight gradient from the same columns, and its bias
    gradient, the sums of that output gradient's channels.)
    With stride 1 the columns are "wide" (optimisation 3 above): ho*Wp per sample.
    """
    for b in prange(dw_parts.shape[0]):
        forward_block(np.int64(b), x, w_mat, bias, kh, kw, sh, sw, ph, pw, dh, dw, ho, wo,
                      gy, need_weight, chunk_columns, out, dw_parts, db_parts)


@njit(cache=True)
def chunk_plan(first, end, per, chunk_columns):
    """How a block cuts its samples first .. end - 1 into chunks: returns
    (count, larger): `count` chunks of `larger` or `larger - 1` samples,
    chunk j from sample chunk_start(first, end, count, j) up to the next
    chunk's start. As few chunks as hold about chunk_columns columns each
    (per columns a sample; at least one sample a chunk), as even as they can
    be: 32 samples at most 10 to a chunk are 8 + 8 + 8 + 8, not 10 + 10 +
    10 + 2, so no product runs on a sliver. (0, 0) for no samples."""
    n = end - first
    if n <= 0:
        return 0, 0
    most = max(1, chunk_columns // per)                  # samples one chunk may hold
    count = (n + most - 1) // most                       # the fewest chunks that hold them all
    return count, (n + count - 1) // count               # the larger chunks' size


@njit(cache=True)
def chunk_start(first, end, count, j):
    """First sample of chunk j of chunk_plan's `count` chunks (j = count gives end)."""
    return first + j * (end - first) // count


@njit(cache=True)
def smaller_chunk(first, end, count, larger):
    """Samples in chunk_plan's smaller chunks: larger - 1, or 0 if every chunk has `larger`."""
    return larger - 1 if count > 0 and (end - first) % count else 0


@njit(cache=True)
def forward_block(b, x, w_mat, bias, kh, kw, sh, sw, ph, pw, dh, dw, ho, wo,
                  gy, need_weight, chunk_columns, out, dw_parts, db_parts):
    """forward_kernel's work for block b: samples b*N//B .. (b+1)*N//B - 1, in
    chunks of `chunk` samples whose columns sit side by side (sample t of a
    chunk owns columns t*per .. (t+1)*per - 1), one matrix product per chunk."""
    n, height, width = x.shape[0], x.shape[2], x.shape[3]
    groups, cog, k = w_mat.shape[0], w_mat.shape[1], w_mat.shape[2]
    n_blocks = dw_parts.shape[0]
    first, end = b * n // n_blocks, (b + 1) * n // n_blocks   # this block's samples
    cg = k // (kh * kw)                                   # input channels per group
    wp = max(width + pw, wo)                              # padded row length (2 above)
    wide = wide_columns(sh, sw, wp, wo, cog)              # stride 1, little junk: contiguous column rows
    row_step = wp if wide else wo                         # columns per output row in cols
    per = ho * row_step                                   # columns per sample
    count, chunk = chunk_plan(first, end, per, chunk_columns)   # chunks of chunk or rest samples
    rest = smaller_chunk(first, end, count, chunk)
    w_cols = per if need_weight else 0
    # buffers for the larger chunks, and the same for the smaller ones (junk columns of gy_* stay 0)
    cols_full, cols_rest = np.empty((k, chunk * per), x.dtype), np.empty((k, rest * per), x.dtype)
    res_full, res_rest = np.empty((cog, chunk * per), x.dtype), np.empty((cog, rest * per), x.dtype)
    gy_full, gy_rest = np.zeros((cog, chunk * w_cols), x.dtype), np.zeros((cog, rest * w_cols), x.dtype)
    product = np.empty((k, cog), x.dtype)                # one chunk's weight gradient, transposed (9 above)
    xp = np.zeros((cg, padded_rows(height, ph, kw, dw, wp), wp), x.dtype)   # padded sample; border stays 0
    offsets = tap_offsets(ho, wo, sh, sw, wp)             # strided columns: where each output pixel reads
    if need_weight:
        dw_parts[b] = 0.0
    for j in range(count):                                # chunk j: samples c0 .. c0 + m - 1
        c0 = chunk_start(first, end, count, j)
        m = chunk_start(first, end, count, j + 1) - c0
        cols = cols_full if m == chunk else cols_rest     # (K, m*per)
        result = res_full if m == chunk else res_rest     # (cog, m*per)
        gyc = gy_full if m == chunk else gy_rest          # (cog, m*per) if need_weight
        for g in range(groups):
            for t in range(m):                            # sample c0 + t -> columns t*per ..
                pad_sample(x, c0 + t, g * cg, ph, pw, xp)
                if db_parts.shape[1] > 0:                 # channel sums, while x[c0 + t] is in cache
                    for c in range(cg):
                        db_parts[b, g * cg + c] += row_sum(x[c0 + t, g * cg + c].reshape(-1))
                if wide:
                    im2col_wide(xp, kh, kw, dh, dw, ho, cols, t * per)
                else:
                    im2col_padded(xp, kh, kw, dh, dw, offsets, cols, t * per)
                if need_weight:
                    widen(gy[c0 + t, g], wo, gyc, t * per, row_step)
            np.dot(w_mat[g], cols, result)                # (cog, K) @ (K, m*per)
            for t in range(m):
                narrow(result, t * per, row_step, wo, out[c0 + t, g])   # -> (cog, P)
                if bias.shape[0] > 0:                     # while out[c0 + t, g] is still in cache
                    for o in range(cog):
                        row = out[c0 + t, g, o]           # output channel g*cog + o of the sample
                        value = bias[g * cog + o]
                        for q in range(row.shape[0]):
                            row[q] += value
            if need_weight:
                np.dot(cols, gyc.T, product)              # (K, m*per) @ (m*per, cog) = dW_g^T
                add_into(dw_parts[b, g], product)


@njit(parallel=True, cache=True)
def backward_kernel(x, w_mat, gy, kh, kw, sh, sw, ph, pw, dh, dw, ho, wo,
                    need_input, need_weight, chunk_columns, bias, dx, dw_parts, db_parts):
    """Gradients of forward_kernel, per block of samples.

    x:        (N, C, H, W), read only; used only if need_weight (else any 4-D array).
    w_mat:    (G, cog, K), read only.   gy: (N, G, cog, P), read only (dL/dout).
    chunk_columns: as in forward_kernel.
    dx:       (N, C, H, W); if need_input, every entry written:
              dx[n] = sum over g of col2im(W_g^T @ gy[n, g]) (+ bias, see below).
    bias:     (C,) added to every pixel of dx's channel c (conv_transpose2d's
              forward is this dx), or (0,) for none.
    dw_parts: (B, G, K, cog) with B = number of blocks; if need_weight, block b
              writes the transposed dw_parts[b, g] = sum over its samples of
              im2col(x[n], g) @ gy[n, g]^T (9 above).
              The caller adds the blocks up (one partial sum per thread: no races).
    db_parts: (B, Cout) float64 zeros, or (B, 0); if Cout > 0, block b adds to
              db_parts[b, g*cog + o] the sum of gy[n, g, o] over its samples n
              (conv2d's bias gradient, while gy is read anyway).
    """
    for b in prange(dw_parts.shape[0]):
        backward_block(np.int64(b), x, w_mat, gy, kh, kw, sh, sw, ph, pw, dh, dw, ho, wo,
                       need_input, need_weight, chunk_columns, bias, dx, dw_parts, db_parts)


@njit(cache=True)
def backward_block(b, x, w_mat, gy, kh, kw, sh, sw, ph, pw, dh, dw, ho, wo,
                   need_input, need_weight, chunk_columns, bias, dx, dw_parts, db_parts):
    """backward_kernel's work for block b, in chunks of samples as in forward_block."""
    n = gy.shape[0]
    groups, cog, k = w_mat.shape[0], w_mat.shape[1], w_mat.shape[2]
    n_blocks = dw_parts.shape[0]
    first, end = b * n // n_blocks, (b + 1) * n // n_blocks   # this block's samples
    cg = k // (kh * kw)                                   # input channels per group
    height = x.shape[2] if need_weight else dx.shape[2]
    width = x.shape[3] if need_weight else dx.shape[3]
    wp = max(width + pw, wo)                              # padded row length (2 above)
    wide = wide_columns(sh, sw, wp, wo, cog)              # stride 1, little junk: contiguous column rows
    row_step = wp if wide else wo                         # columns per output row in cols
    per = ho * row_step                                   # columns per sample
    count, chunk = chunk_plan(first, end, per, chunk_columns)   # chunks of chunk or rest samples
    rest = smaller_chunk(first, end, count, chunk)
    cols_full, cols_rest = np.empty((k, chunk * per), gy.dtype), np.empty((k, rest * per), gy.dtype)
    gy_full, gy_rest = np.zeros((cog, chunk * per), gy.dtype), np.zeros((cog, rest * per), gy.dtype)
    product = np.empty((k, cog), gy.dtype)                # one chunk's weight gradient, transposed (9 above)
    rows = padded_rows(height, ph, kw, dw, wp)
    xp = np.zeros((cg, rows, wp), gy.dtype)               # padded sample; border stays 0
    dxp = np.empty((cg, rows, wp), gy.dtype)              # its gradient
    offsets = tap_offsets(ho, wo, sh, sw, wp)             # strided columns: where each output pixel reads
    if need_weight:
        dw_parts[b] = 0.0
    for j in range(count):                                # chunk j: samples c0 .. c0 + m - 1
        c0 = chunk_start(first, end, count, j)
        m = chunk_start(first, end, count, j + 1) - c0
        cols = cols_full if m == chunk else cols_rest     # columns, then column gradient (K, m*per)
        gyc = gy_full if m == chunk else gy_rest          # gy of the chunk, side by side; junk columns 0
        for g in range(groups):
            for t in range(m):
                widen(gy[c0 + t, g], wo, gyc, t * per, row_step)   # (cog, P) -> columns t*per ..
                if db_parts.shape[1] > 0:                 # bias gradient, while gy[c0 + t, g] is in cache
                    for o in range(cog):
                        db_parts[b, g * cog + o] += row_sum(gy[c0 + t, g, o])
            if need_weight:
                for t in range(m):
                    pad_sample(x, c0 + t, g * cg, ph, pw, xp)
                    if wide:
                        im2col_wide(xp, kh, kw, dh, dw, ho, cols, t * per)
                    else:
                        im2col_padded(xp, kh, kw, dh, dw, offsets, cols, t * per)
                np.dot(cols, gyc.T, product)              # (K, m*per) @ (m*per, cog) = dW_g^T
                add_into(dw_parts[b, g], product)
            if need_input:
                np.dot(w_mat[g].T, gyc, cols)             # (K, cog) @ (cog, m*per); junk columns 0
                for t in range(m):
                    dxp[:] = 0.0                          # col2im adds into it
                    if wide:
                        col2im_wide(cols, t * per, kh, kw, dh, dw, ho, dxp)
                    else:
                        col2im_padded(cols, t * per, kh, kw, dh, dw, offsets, dxp)
                    unpad_sample(dxp, ph, pw, c0 + t, g * cg, bias, dx)


# ---- entry points (called by conv.py on the "numba" backend) -----------------------
def _check_kept(columns, w_cl, columns_shape, weight_shape, dtype):
    """Refuse kept arrays that do not belong to this call (before a kernel reads them)."""
    for name, array, shape in (("columns", columns, columns_shape), ("weight", w_cl, weight_shape)):
        if array.shape != shape or array.dtype != dtype or not array.flags.c_contiguous:
            raise ValueError(f"conv2d backward: the kept channels-last {name} are {array.dtype} "
                             f"{array.shape}, expected C-contiguous {np.dtype(dtype)} {shape}")


def sample_blocks(n, work):
    """How many blocks of samples to run in parallel: one per thread, or one
    block when the call is too small to gain from threads."""
    return 1 if work < PARALLEL_MIN_WORK else max(1, min(n, numba.get_num_threads()))


def _weight_gradient(dw_parts, shape):
    """The weight gradient from the blocks' transposed partial sums (B, G, K, cog):
    summed over blocks, transposed to (G, cog, K), as a new array of `shape`."""
    return np.ascontiguousarray(dw_parts.sum(axis=0).transpose(0, 2, 1)).reshape(shape)


def takes_channels_last(input_width, weight_shape, stride, padding, dilation, groups, wo):
    """Whether this conv2d runs conv_channels_last.py's columns rather than the
    ones below (the forward and the backward ask alike, so the backward finds
    the columns a forward kept). weight_shape: (Cout, Cg, kh, kw); wo: output width."""
    c_out, cg = weight_shape[:2]
    wp = max(input_width + padding[1], wo)                 # padded row length (2 above)
    wide = wide_columns(stride[0], stride[1], wp, wo, c_out // groups)
    return conv_channels_last.takes_channels_last(stride, dilation, cg, wide)


def _check_output_size(op, input_hw, weight, stride, padding, dilation, output_hw):
    """The kernels index the padded input by the output size: an output larger
    than this input and geometry give would read and write out of bounds.
    (A smaller one is fine: conv_transpose2d's output_padding leaves input
    rows and columns that no output pixel reads.)"""
    kh, kw = weight.shape[2:]
    largest = (conv_output_size(input_hw[0], kh, stride[0], padding[0], dilation[0]),
               conv_output_size(input_hw[1], kw, stride[1], padding[1], dilation[1]))
    if output_hw[0] > largest[0] or output_hw[1] > largest[1]:
        raise ValueError(f"{op}: output size {tuple(output_hw)} does not fit input size {tuple(input_hw)} "
                         f"with kernel {(kh, kw)}, stride {stride}, padding {padding}, dilation {dilation} "
                         f"(expected at most {largest})")


def conv2d_forward(x, weight, stride, padding, dilation, groups, ho, wo, grad_for_weight=None, bias=None,
                   need_input_sums=False, keep_columns=False):
    """(N, Cout, ho, wo) = conv2d(x, weight) (+ bias, if given); x, weight C-contiguous, same float dtype.
    With grad_for_weight (N, Cout, ho, wo) given, return (out, dW) where dW is
    conv2d's weight gradient for input x and output gradient grad_for_weight;
    with need_input_sums also, (out, dW, sums) where sums (C,) = x summed over
    (N, H, W) (conv_transpose2d's bias gradient, x being its output gradient).
    With keep_columns (and no grad_for_weight), return (out, kept): on the
    channels-last path kept = (columns (G, N*P, K), reordered weight (G, cog, K)),
    which conv2d_backward reads instead of rebuilding them; else kept = ()."""
    _check_output_size("conv2d", x.shape[2:], weight, stride, padding, dilation, (ho, wo))
    n = x.shape[0]
    c_out, cg, kh, kw = weight.shape
    cog, k = c_out // groups, cg * kh * kw
    w_mat = weight.reshape(groups, cog, k)                             # (G, cog, K)
    result = np.empty((n, c_out, ho, wo), x.dtype)                      # what is returned: owns its memory
    out = result.reshape(n, groups, cog, ho * wo)                      # (N, G, cog, P), a view the kernel writes
    need_weight = grad_for_weight is not None
    gy = grad_for_weight.reshape(out.shape) if need_weight else out    # (N, G, cog, P)
    blocks = sample_blocks(n, out.size * k * (2 if need_weight else 1))
    channels_last = takes_channels_last(x.shape[3], weight.shape, stride, padding, dilation, groups, wo)
    kept = ()
    with numba_threads(blocks), single_threaded_blas():
        # the kernel reads the block count from dw_parts (empty rows when unused)
        part_shape = (groups, cog, k) if channels_last else (groups, k, cog)
        dw_parts = np.empty((blocks,) + (part_shape if need_weight else (0, 0, 0)), x.dtype)
        db_parts = np.zeros((blocks, x.shape[1] if need_input_sums else 0))   # float64 partial sums
        bias = np.zeros(0, x.dtype) if bias is None else kernel_array(bias)
        if channels_last:          # strided, enough channels: conv_channels_last.py's columns
            # (it reorders the weight into w_cl and writes the summed weight gradient itself)
            d_weight = np.empty(weight.shape if need_weight else (0, 0, 0, 0), x.dtype)
            w_cl = np.empty((groups, cog, k), x.dtype)                                 # (G, cog, K)
            keep = (keep_columns and not need_weight
                    and conv_channels_last.keeps_columns(x.shape, groups, ho * wo, k))
            columns = np.empty((groups, n * ho * wo, k) if keep else (0, 0, 0), x.dtype)   # (G, N*P, K)
            conv_channels_last.forward_kernel(
                x, weight, w_cl, bias, kh, kw, *stride, *padding,
                ho, wo, gy, need_weight, CHUNK_COLUMNS, out, dw_parts, d_weight, db_parts, columns)
            if keep:
                kept = (columns, w_cl)
        else:
            forward_kernel(x, w_mat, bias, kh, kw, *stride, *padding, *dilation, ho, wo,
                           gy, need_weight, CHUNK_COLUMNS, out, dw_parts, db_parts)
    if not need_weight:
        return (result, kept) if keep_columns else result
    if not channels_last:
        d_weight = _weight_gradient(dw_parts, weight.shape)   # the blocks' partial sums, added up
    if need_input_sums:
        return result, d_weight, db_parts.sum(axis=0).astype(x.dtype)
    return result, d_weight


def conv2d_backward(grad_out, x, weight, stride, padding, dilation, groups,
                    input_shape, need_input, need_weight, need_bias=False, add_to_input=None, kept=()):
    """(dL/dx or None, dL/dW or None) of conv2d_forward; inputs C-contiguous.
    With need_bias, (dL/dx, dL/dW, dL/dbias) (bias gradient (Cout,) summed in
    float64 while grad_out is read). add_to_input (C,): added to every pixel
    of dL/dx's channel (conv_transpose2d's bias: its forward is this dL/dx).
    kept: what conv2d_forward(..., keep_columns=True) returned for this x and
    weight (read, not changed), or () to rebuild the columns from x."""
    n, _, ho, wo = grad_out.shape
    _check_output_size("conv2d backward", input_shape[2:], weight, stride, padding, dilation, (ho, wo))
    c_out, cg, kh, kw = weight.shape
    cog, k = c_out // groups, cg * kh * kw
    w_mat = weight.reshape(groups, cog, k)                             # (G, cog, K)
    gy = grad_out.reshape(n, groups, cog, ho * wo)                     # (N, G, cog, P)
    dx = np.empty(input_shape if need_input else (0, 0, 0, 0), grad_out.dtype)
    source = x if need_weight else dx                                  # any 4-D array of the dtype
    blocks = sample_blocks(n, grad_out.size * k)
    channels_last = takes_channels_last(input_shape[3], weight.shape, stride, padding, dilation, groups, wo)
    with numba_threads(blocks), single_threaded_blas():
        # the kernel reads the block count from dw_parts (empty rows when unused)
        part_shape = (groups, cog, k) if channels_last else (groups, k, cog)
        dw_parts = np.empty((blocks,) + (part_shape if need_weight else (0, 0, 0)), grad_out.dtype)
        db_parts = np.zeros((blocks, c_out if need_bias else 0))           # float64 partial sums
        bias = np.zeros(0, grad_out.dtype) if add_to_input is None else kernel_array(add_to_input)
        if channels_last:          # strided, enough channels: conv_channels_last.py's columns
            # (it reorders the weight into a scratch array and writes the summed weight gradient itself)
            d_weight = np.empty(weight.shape if need_weight else (0, 0, 0, 0), grad_out.dtype)
            if kept:               # the forward's columns and reordered weight
                columns, w_cl = kept
                _check_kept(columns, w_cl, (groups, n * ho * wo, k), (groups, cog, k), grad_out.dtype)
            else:
                columns = np.empty((0, 0, 0), grad_out.dtype)
                w_cl = np.empty((groups, cog, k), grad_out.dtype)                      # (G, cog, K)
            conv_channels_last.backward_kernel(
                source, weight, w_cl, gy, kh, kw, *stride, *padding, ho, wo, need_input, need_weight,
                CHUNK_COLUMNS, bias, dx, dw_parts, d_weight, db_parts, columns)
        else:
            backward_kernel(source, w_mat, gy, kh, kw, *stride, *padding, *dilation, ho, wo,
                            need_input, need_weight, CHUNK_COLUMNS, bias, dx, dw_parts, db_parts)
    if not need_weight:
        d_weight = None
    elif not channels_last:
        d_weight = _weight_gradient(dw_parts, weight.shape)   # the blocks' partial sums, added up
    if need_bias:
        return (dx if need_input else None), d_weight, db_parts.sum(axis=0).astype(grad_out.dtype)
    return (dx if need_input else None), d_weight
