"""Sub-pixel Winograd conv_transpose2d: what the "numba" backend runs for
conv_transpose2d with a 4x4 kernel, stride 2, padding 1, dilation 1, groups 1
and enough channels and pixels (`applies`), the upsampling layer of DCGAN-style generators.
It computes exactly what `conv.py`'s readable loops compute (im2col/col2im;
tests/test_conv_transpose_sub_pixel.py holds the two equal), with 9
multiplications for every 16 a direct computation does.

Contract (the entry points `conv_transpose2d_forward` / `conv_transpose2d_backward`):
- x: (N, Cin, H, W), weight: (Cin, Cout, 4, 4) (conv_transpose2d's layout),
  grad_out: (N, Cout, Ho, Wo) with Ho = 2H + output_padding[0] and
  Wo = 2W + output_padding[1], output_padding 0 or 1; one float dtype
  (float32 or float64), C-contiguous.
- Inputs are only read; every returned array is new.

Step 1, the sub-pixel split, in one dimension. With stride 2 and padding 1,
input pixel iy scatters into output rows Y = 2*iy - 1 + i through tap i
(i = 0..3). Read the other way round: output row Y gathers every (iy, i)
with 2*iy + i = Y + 1. Write Y = 2q + p (p = Y % 2, the row's parity); then
i must have the parity of Y + 1, and
    p = 0 (even rows):  out[2q]     = x[q - 1] w[3] + x[q] w[1]
    p = 1 (odd rows):   out[2q + 1] = x[q] w[2] + x[q + 1] w[0]
Each parity is a plain stride-1 correlation of x with a 2-tap filter (the
taps of that parity), with no zero rows inserted and nothing scattered. In
two dimensions there are 4 parities (oy % 2, ox % 2), each a stride-1
correlation with a 2x2 sub-kernel: the transposed convolution becomes four
ordinary convolutions whose outputs interleave ("sub-pixel").

Step 2, Winograd F(2, 2) on each parity. Two outputs of a 2-tap correlation,
    y0 = d0 g0 + d1 g1,   y1 = d1 g0 + d2 g1,
cost 4 multiplications directly and 3 this way:
    m0 = (d0 - d1) g0,   m1 = d1 (g0 + g1),   m2 = (d2 - d1) g1
    y0 = m0 + m1,        y1 = m1 + m2.
One tile covers output rows 4*ty .. 4*ty + 3 (q = 2ty and 2ty + 1, both
parities) and reads the 4 input rows d0..d3 = x[2ty - 1 .. 2ty + 2] (row -1
and rows past H are the zero padding). Parity 0 uses d0, d1, d2 with
g = (w[3], w[1]); parity 1 uses d1, d2, d3 with g = (w[2], w[0]). Both need
d2 - d1 (parity 1's first difference is d1 - d2 = -(d2 - d1); its sign goes
into the filter), so the four rows give five transformed data values
    z = Z d = (d0 - d1, d1, d2 - d1, d2, d3 - d2)
and six products ("slots" s = 0..5), each z value times a filter value:
    slot s:        0      1           2      3       4           5
    data z[a]:     z0     z1          z2     z2      z3          z4
    filter:        w3     w3 + w1     w1     -w2     w2 + w0     w0
    (the filter column is the slot matrix SLOT_FILTER applied to w)
The four outputs of the tile, in row order 4ty + r (r = 2k + p, k = which q):
    r = 0: m0 + m1    r = 1: m3 + m4    r = 2: m1 + m2    r = 3: m4 + m5
6 products for 4 outputs instead of 8. Nested along rows and columns (a 4x4
input window per tile, tiles stepping by 2 input pixels and 4 output pixels),
36 products give a 4x4 output tile instead of 64: 9/16.

For Cin input and Cout output channels the sum over input channels happens in
the transformed domain, where it is a matrix product. With 5 x 5 = 25 data
positions (a, b) and 6 x 6 = 36 slot pairs (s, s'):
    V[5a + b][t, c]    = (Z d_t[c] Z^T)[a, b]                     25 x (T, Cin)
    U[block, o, c]     = sum_ij SLOT_FILTER[s, i] SLOT_FILTER[s', j] w[c, o, i, j]   (36, Cout, Cin)
    M[block]           = V[5 a(s) + a(s')] @ U[block]^T            36 x (T, Cout)
    out tile t of o    = the 2-D output sums of M[:][t, o]
Slot pairs sharing a data position are numbered next to each other (`BLOCK`),
so each data position is ONE matrix product with a stack of 1, 2 or 4 filter
blocks: (T, Cin) @ (Cin, k*Cout), 25 products in all.

Gradients: every step is linear, so the backward pass runs each step's
transpose in reverse order, as winograd.py does for conv2d:
    dM[block, o, t]  = the transposed output sums of the 4x4 tile of grad_out (zero past Ho, Wo)
    dV[position]     = dM[blocks] @ U[blocks]            (T, k*Cout) @ (k*Cout, Cin)
    dx              += Z^T dV Z onto the tile's 4x4 input window (windows overlap; padding dropped)
    dU[blocks]       = dM[blocks]^T @ V[position]        (k*Cout, T) @ (T, Cin)
    dW[c, o, i, j]   = sum over blocks of SLOT_FILTER[s, i] SLOT_FILTER[s', j] dU[block, o, c]
This is conv_transpose2d's input gradient (the stride-2 conv2d of grad_out,
which splits by the same parities) and weight gradient, exactly. The bias
gradient (the sums of grad_out's channels) is summed in float64 while
grad_out is read.

How it runs (as winograd.py): a `prange` over blocks of samples, one per
thread; each block works in chunks of samples whose tiles are the rows of V
and M (about CHUNK_TILES rows), calling a single-threaded BLAS for the
products. Inside a chunk everything is channels last: each sample is copied
into a zero-bordered (rows, columns, Cin) buffer big enough for every tile's
window, so the transforms read without branches, and each transformed value
is a contiguous row of channels, computed by a short loop the compiler turns
into SIMD code. The output tiles are written channels last into a buffer and
copied out to (Cout, Ho, Wo), bias added, keeping only the pixels that exist.
V's 25 matrices and M's 25 groups lie one after another in two flat buffers,
each started at an odd number of cache lines after the previous one
(`buffer_layout`): at sizes that are multiples of 4 KiB they would all map to
the same L1 cache set and the transforms, which touch all of them for every
tile, ran several times slower.

Accuracy: the transforms only add and subtract (no halving), so the rounding
error is close to a direct convolution's; never an approximation.
"""
import numpy as np
from numba import njit, prange

from ..threads import numba_threads, single_threaded_blas
from .conv_fast import sample_blocks

# The shapes where this path is taken (`applies`), chosen by timing it side by
# side with conv_fast.py's im2col path (each in fresh processes, float32,
# forward and forward + backward): at least MIN_CHANNELS input and output
# channels, an input of at least MIN_INPUT_PIXELS pixels, and 4x4 output tiles
# that are mostly used: at least MIN_USED of the pixels the whole tiles compute
# must lie inside the output. An odd input side wastes a row or column of
# half-used tiles (a 7x7 input computes 16x16 outputs for a 14x14 output, 77%
# used); then the multiplications saved no longer pay for the transforms and
# the smaller products, and im2col was faster (N64 128->64 from 7x7: this path
# was slower; from 8x8, 14x14 and 15x15 it was faster). With 16 channels, or
# a 4x4 input, the products are too thin and im2col was faster too.
MIN_CHANNELS = 32
MIN_INPUT_PIXELS = 64
MIN_USED = 0.85

# About how many tiles (columns of V and M) one chunk of samples gets.
CHUNK_TILES = 128

# Z: four input values d0..d3 of a window -> the five transformed values z.
Z = np.array([[1, -1, 0, 0], [0, 1, 0, 0], [0, -1, 1, 0], [0, 0, 1, 0], [0, 0, -1, 1]], np.float64)
# SLOT_FILTER[s, i]: how slot s's filter value is made from the 4 taps w[0..3].
SLOT_FILTER = np.array([[0, 0, 0, 1], [0, 1, 0, 1], [0, 1, 0, 0],
                        [0, 0, -1, 0], [1, 0, 1, 0], [1, 0, 0, 0]], np.float64)
# SLOT_DATA[s]: which z value slot s multiplies.
SLOT_DATA = np.array([0, 1, 2, 2, 3, 4])
# OUTPUT[r, s]: output r of a tile (row 4ty + r) is the sum of the slots marked 1.
OUTPUT = np.array([[1, 1, 0, 0, 0, 0], [0, 0, 0, 1, 1, 0],
                   [0, 1, 1, 0, 0, 0], [0, 0, 0, 0, 1, 1]], np.float64)


def _numbering():
    """BLOCK[s, s'] = the block (0..35) of slot pair (s, s'); FIRST_BLOCK[5a + b] and
    BLOCK_COUNT[5a + b] = the consecutive blocks using data position (a, b)."""
    block = np.zeros((6, 6), np.int64)
    first, count = np.zeros(25, np.int64), np.zeros(25, np.int64)
    slots = [np.flatnonzero(SLOT_DATA == a) for a in range(5)]    # slots reading z[a]
    number = 0
    for a in range(5):
        for b in range(5):
            first[5 * a + b] = number
            for s in slots[a]:
                for s_ in slots[b]:
                    block[s, s_] = number
                    number += 1
            count[5 * a + b] = number - first[5 * a + b]
    return block, first, count


BLOCK, FIRST_BLOCK, BLOCK_COUNT = _numbering()
# FILTERS[BLOCK[s, s'], 4i + j] = SLOT_FILTER[s, i] SLOT_FILTER[s', j]: every filter's
# 36 transformed values are one product FILTERS @ w[c, o].reshape(16).
FILTERS = np.zeros((36, 16))
for _s in range(6):
    for _s_ in range(6):
        FILTERS[BLOCK[_s, _s_]] = np.kron(SLOT_FILTER[_s], SLOT_FILTER[_s_])
del _s, _s_


def applies(input_shape, weight_shape, stride, padding, output_padding, dilation, groups):
    """True when conv_transpose2d with these arguments runs here (on the "numba"
    backend): a 4x4 kernel, stride 2, padding 1, output_padding 0 or 1,
    dilation 1, one group, enough channels and input pixels, and tiles that
    are mostly used (see MIN_USED)."""
    c_in, c_out, kh, kw = weight_shape
    if not (kh == 4 and kw == 4 and tuple(stride) == (2, 2) and tuple(padding) == (1, 1)
            and tuple(dilation) == (1, 1) and groups == 1):
        return False
    if not all(op in (0, 1) for op in output_padding):
        return False
    height, width = input_shape[2], input_shape[3]
    ho, wo = 2 * height + output_padding[0], 2 * width + output_padding[1]   # the output size
    covered = 16 * ((ho + 3) // 4) * ((wo + 3) // 4)    # output pixels the whole 4x4 tiles compute
    return (c_in >= MIN_CHANNELS and c_out >= MIN_CHANNELS and height * width >= MIN_INPUT_PIXELS
            and ho * wo >= MIN_USED * covered)


# ---- the transforms along one axis (nested for 4x4 windows and tiles below) ---------
@njit(cache=True, inline="always")
def data_1d(d0, d1, d2, d3):
    """Z d: four input values -> the five transformed values."""
    return d0 - d1, d1, d2 - d1, d2, d3 - d2


@njit(cache=True, inline="always")
def data_1d_adjoint(z0, z1, z2, z3, z4):
    """Z^T z, the transpose of data_1d."""
    return z0, z1 - z0 - z2, z2 + z3 - z4, z4


@njit(cache=True, inline="always")
def output_1d(m0, m1, m2, m3, m4, m5):
    """OUTPUT m: six slot products -> the tile's four outputs (rows r = 0..3)."""
    return m0 + m1, m3 + m4, m1 + m2, m4 + m5


@njit(cache=True, inline="always")
def output_1d_adjoint(e0, e1, e2, e3):
    """OUTPUT^T e, the transpose of output_1d: four output gradients -> six."""
    return e0, e0 + e2, e2, e1, e1 + e3, e3


# ---- tile transforms over one sample, channels last --------------------------------------
# Each transform runs one short loop over the channels per transformed value: such a
# loop reads one or three contiguous rows and writes one, which the compiler turns into
# SIMD code (one loop computing all 25 or 36 values at once touches too many arrays
# for it to prove they do not overlap, and stays scalar).
@njit(cache=True, inline="always")
def copy_row(dst, p):
    """dst[c] = p[c] for every channel c."""
    for c in range(dst.shape[0]):
        dst[c] = p[c]


@njit(cache=True, inline="always")
def add_row(dst, p, q):
    """dst[c] = p[c] + q[c]."""
    for c in range(dst.shape[0]):
        dst[c] = p[c] + q[c]


@njit(cache=True, inline="always")
def subtract_row(dst, p, q):
    """dst[c] = p[c] - q[c]."""
    for c in range(dst.shape[0]):
        dst[c] = p[c] - q[c]


@njit(cache=True, inline="always")
def data_1d_rows(dst, d0, d1, d2, d3):
    """data_1d over rows of channels: dst[0..4] = Z (d0, d1, d2, d3)."""
    subtract_row(dst[0], d0, d1)                         # z0 = d0 - d1
    copy_row(dst[1], d1)                                 # z1 = d1
    subtract_row(dst[2], d2, d1)                         # z2 = d2 - d1
    copy_row(dst[3], d2)                                 # z3 = d2
    subtract_row(dst[4], d3, d2)                         # z4 = d3 - d2


@njit(cache=True)
def input_transform(xp, tiles_h, tiles_w, v, v_stride, col0, scratch):
    """v[p*v_stride + (col0 + ty*tiles_w + tx)*Cin + c] = (Z d Z^T)[a, b] for position p = 5a + b,
    with d = xp[2ty:2ty+4, 2tx:2tx+4, c]: V[p] is a (columns, Cin) matrix, one row per tile.

    xp:      (>= 2*tiles_h + 2, >= 2*tiles_w + 2, Cin) padded sample, channels last, read only.
    v:       flat, 25 positions (see `buffer_layout`); this sample's rows are written.
    scratch: (>= 6, >= 6, Cin), overwritten.
    """
    c_in = xp.shape[2]
    for ty in range(tiles_h):
        for tx in range(tiles_w):
            i, j = 2 * ty, 2 * tx                        # the window's top-left pixel in xp
            row = (col0 + ty * tiles_w + tx) * c_in      # where tile (ty, tx)'s row starts in each V[p]
            # Z d: each window column jj transformed: scratch[jj, a] = (Z d)[a, jj]
            for jj in range(4):
                data_1d_rows(scratch[jj], xp[i, j + jj], xp[i + 1, j + jj], xp[i + 2, j + jj], xp[i + 3, j + jj])
            # (Z d) Z^T: row a of Z d transformed gives positions 5a .. 5a + 4
            for a in range(5):
                at = 5 * a * v_stride + row              # position 5a's row for this tile
                subtract_row(v[at:at + c_in], scratch[0, a], scratch[1, a])
                at += v_stride
                copy_row(v[at:at + c_in], scratch[1, a])
                at += v_stride
                subtract_row(v[at:at + c_in], scratch[2, a], scratch[1, a])
                at += v_stride
                copy_row(v[at:at + c_in], scratch[2, a])
                at += v_stride
                subtract_row(v[at:at + c_in], scratch[3, a], scratch[2, a])


@njit(cache=True, inline="always")
def data_1d_adjoint_rows(dst, z0, z1, z2, z3, z4):
    """data_1d_adjoint over rows: dst[0..3] = Z^T (z0, .., z4)."""
    c_in = dst.shape[1]
    copy_row(dst[0], z0)                                 # z0
    for c in range(c_in):
        dst[1, c] = z1[c] - z0[c] - z2[c]                # z1 - z0 - z2
    for c in range(c_in):
        dst[2, c] = z2[c] + z3[c] - z4[c]                # z2 + z3 - z4
    copy_row(dst[3], z4)                                 # z4


@njit(cache=True)
def input_transform_adjoint(dv, v_stride, col0, tiles_h, tiles_w, dxp, scratch):
    """The transpose of input_transform: dxp[2ty:2ty+4, 2tx:2tx+4, c] += Z^T dV Z,
    dV[a, b] = dv[(5a + b)*v_stride + (col0 + ty*tiles_w + tx)*Cin + c].

    dv:      flat, 25 positions of (columns, Cin), read only.
    dxp:     (>= 2*tiles_h + 2, >= 2*tiles_w + 2, Cin), ACCUMULATED into (zero it first);
             neighbouring windows overlap by 2 rows or columns and both add there.
    scratch: (>= 6, >= 6, Cin), overwritten.
    """
    c_in = dxp.shape[2]
    for ty in range(tiles_h):
        for tx in range(tiles_w):
            i, j = 2 * ty, 2 * tx                        # the window's top-left pixel in dxp
            row = (col0 + ty * tiles_w + tx) * c_in      # tile (ty, tx)'s row in each dV[p]
            # Z^T dV: each column b of dV (positions b, 5 + b, .., 20 + b): scratch[b, r] = (Z^T dV)[r, b]
            for b in range(5):
                at = b * v_stride + row                  # position b's row for this tile
                step = 5 * v_stride                      # from position 5a + b to 5(a + 1) + b
                data_1d_adjoint_rows(scratch[b], dv[at:at + c_in], dv[at + step:at + step + c_in],
                                     dv[at + 2 * step:at + 2 * step + c_in],
                                     dv[at + 3 * step:at + 3 * step + c_in],
                                     dv[at + 4 * step:at + 4 * step + c_in])
            # (Z^T dV) Z: row r transformed is row r of the window's gradient, added on
            for r in range(4):
                z0, z1, z2, z3, z4 = scratch[0, r], scratch[1, r], scratch[2, r], scratch[3, r], scratch[4, r]
                window = dxp[i + r, j:j + 4]             # (4, Cin): the window's row r
                for c in range(c_in):
                    window[0, c] += z0[c]
                for c in range(c_in):
                    window[1, c] += z1[c] - z0[c] - z2[c]
                for c in range(c_in):
                    window[2, c] += z2[c] + z3[c] - z4[c]
                for c in range(c_in):
                    window[3, c] += z4[c]


@njit(cache=True, inline="always")
def output_1d_rows(dst, m0, m1, m2, m3, m4, m5):
    """output_1d over rows: dst[0..3] = OUTPUT (m0, .., m5)."""
    add_row(dst[0], m0, m1)                              # r = 0: m0 + m1
    add_row(dst[1], m3, m4)                              # r = 1: m3 + m4
    add_row(dst[2], m1, m2)                              # r = 2: m1 + m2
    add_row(dst[3], m4, m5)                              # r = 3: m4 + m5


@njit(cache=True)
def slot_addresses(slot_base, slot_row, column, addresses):
    """addresses[6s + s'] = where slot pair (s, s')'s product for tile `column` and channel 0
    lives in the flat M buffer (its channels follow contiguously)."""
    for s in range(6):
        for s_ in range(6):
            addresses[6 * s + s_] = slot_base[s, s_] + column * slot_row[s, s_]


@njit(cache=True)
def output_transform(m, slot_base, slot_row, col0, tiles_h, tiles_w, y, scratch):
    """y[4ty + r, 4tx + r', o] = sum_{s,s'} OUTPUT[r, s] OUTPUT[r', s'] M[s, s'],
    M[s, s'] = m[slot_base[s, s'] + (col0 + ty*tiles_w + tx)*slot_row[s, s'] + o].

    m:          flat product buffer, read only (see `buffer_layout`).
    slot_base, slot_row: (6, 6), where slot pair (s, s')'s (columns, Cout) block starts and
                how long its rows are (blocks sharing a data position are side by side).
    y:          (4*tiles_h, 4*tiles_w, Cout), channels last; every entry written.
    scratch:    (>= 6, >= 6, Cout), overwritten.
    """
    c_out = y.shape[2]
    at = np.empty(36, np.int64)                          # the 36 slot addresses of one tile
    for ty in range(tiles_h):
        for tx in range(tiles_w):
            slot_addresses(slot_base, slot_row, col0 + ty * tiles_w + tx, at)
            # OUTPUT M: each column s' of M transformed: scratch[s', r] = (OUTPUT M)[r, s']
            for s_ in range(6):
                output_1d_rows(scratch[s_], m[at[s_]:at[s_] + c_out], m[at[6 + s_]:at[6 + s_] + c_out],
                               m[at[12 + s_]:at[12 + s_] + c_out], m[at[18 + s_]:at[18 + s_] + c_out],
                               m[at[24 + s_]:at[24 + s_] + c_out], m[at[30 + s_]:at[30 + s_] + c_out])
            # (OUTPUT M) OUTPUT^T: row r transformed -> output pixels (4ty + r, 4tx .. 4tx + 3)
            for r in range(4):
                output_1d_rows(y[4 * ty + r, 4 * tx:4 * tx + 4], scratch[0, r], scratch[1, r], scratch[2, r],
                               scratch[3, r], scratch[4, r], scratch[5, r])


@njit(cache=True, inline="always")
def output_1d_adjoint_rows(dst, e0, e1, e2, e3):
    """output_1d_adjoint over rows: dst[0..5] = OUTPUT^T (e0, .., e3)."""
    copy_row(dst[0], e0)                                 # m0 = e0
    add_row(dst[1], e0, e2)                              # m1 = e0 + e2
    copy_row(dst[2], e2)                                 # m2 = e2
    copy_row(dst[3], e1)                                 # m3 = e1
    add_row(dst[4], e1, e3)                              # m4 = e1 + e3
    copy_row(dst[5], e3)                                 # m5 = e3


@njit(cache=True)
def output_transform_adjoint(gy, slot_base, slot_row, col0, tiles_h, tiles_w, dm, scratch):
    """The transpose of output_transform:
    dm[slot_base[s, s'] + (col0 + ty*tiles_w + tx)*slot_row[s, s'] + o]
        = sum_{r,r'} OUTPUT[r, s] OUTPUT[r', s'] gy[4ty + r, 4tx + r', o].

    gy:      (4*tiles_h, 4*tiles_w, Cout), channels last, read only.
    dm:      flat product buffer; this sample's rows of every block are written.
    scratch: (>= 6, >= 6, Cout), overwritten.
    """
    c_out = gy.shape[2]
    at = np.empty(36, np.int64)
    for ty in range(tiles_h):
        for tx in range(tiles_w):
            slot_addresses(slot_base, slot_row, col0 + ty * tiles_w + tx, at)
            i, j = 4 * ty, 4 * tx                        # the tile's top-left output pixel
            # OUTPUT^T dY: each column jj of dY transformed: scratch[jj, s] = (OUTPUT^T dY)[s, jj]
            for jj in range(4):
                output_1d_adjoint_rows(scratch[jj], gy[i, j + jj], gy[i + 1, j + jj], gy[i + 2, j + jj],
                                       gy[i + 3, j + jj])
            # (OUTPUT^T dY) OUTPUT: row s transformed -> slot pairs (s, 0..5)
            for s in range(6):
                e0, e1, e2, e3 = scratch[0, s], scratch[1, s], scratch[2, s], scratch[3, s]
                copy_row(dm[at[6 * s]:at[6 * s] + c_out], e0)
                add_row(dm[at[6 * s + 1]:at[6 * s + 1] + c_out], e0, e2)
                copy_row(dm[at[6 * s + 2]:at[6 * s + 2] + c_out], e2)
                copy_row(dm[at[6 * s + 3]:at[6 * s + 3] + c_out], e1)
                add_row(dm[at[6 * s + 4]:at[6 * s + 4] + c_out], e1, e3)
                copy_row(dm[at[6 * s + 5]:at[6 * s + 5] + c_out], e3)


@njit(cache=True)
def padded_length(length, itemsize):
    """`length` elements rounded up to whole 64-byte cache lines, and to an odd number
    of them: buffers placed one after another at such lengths start in different
    sets of the L1 cache, so the transforms, which touch all of them at once, do
    not evict their own lines (sizes that are multiples of 4 KiB all map to one set)."""
    per_line = max(1, 64 // itemsize)                  # elements in one cache line
    lines = (length + per_line - 1) // per_line
    if lines % 2 == 0:
        lines += 1
    return lines * per_line


@njit(cache=True)
def buffer_layout(c_in, c_out, columns, block, first_block, block_count, itemsize):
    """Where each data position and product block of one chunk of `columns` tiles lives
    in the flat buffers. V[p] = v[p*v_stride : p*v_stride + columns*Cin], a C-contiguous
    (columns, Cin) matrix. The blocks of data position p are side by side in ONE
    C-contiguous (columns, k*Cout) matrix starting at group_offset[p] (k = block_count[p]),
    so one product fills them all: block first_block[p] + kk is its columns kk*Cout ..
    (kk+1)*Cout - 1. slot_base[s, s'] / slot_row[s, s'] locate slot pair (s, s')'s block:
    entry (column, o) is at slot_base + column*slot_row + o.
    Returns (v_stride, v_length, group_offset, slot_base, slot_row, m_length)."""
    v_stride = padded_length(columns * c_in, itemsize)
    group_offset = np.zeros(25, np.int64)
    block_base = np.zeros(36, np.int64)
    block_row = np.zeros(36, np.int64)
    end = 0
    for p in range(25):
        group_offset[p] = end
        k = block_count[p]
        for kk in range(k):                              # block first_block[p] + kk
            block_base[first_block[p] + kk] = end + kk * c_out
            block_row[first_block[p] + kk] = k * c_out
        end += padded_length(columns * k * c_out, itemsize)
    slot_base = np.empty((6, 6), np.int64)
    slot_row = np.empty((6, 6), np.int64)
    for s in range(6):
        for s_ in range(6):
            slot_base[s, s_] = block_base[block[s, s_]]
            slot_row[s, s_] = block_row[block[s, s_]]
    return v_stride, 25 * v_stride, group_offset, slot_base, slot_row, end


@njit(cache=True)
def pad_sample_channels_last(x, n, xp):
    """xp[1 + y, 1 + x_, c] = x[n, c, y, x_]: sample n inside a zero border (row and
    column 0 are input row and column -1). Only the interior is written."""
    for y in range(x.shape[2]):
        dst = xp[1 + y]                                  # (Wp, Cin): padded row 1 + y, in L1
        for c in range(x.shape[1]):
            src = x[n, c, y]                             # input row y of channel c
            for col in range(x.shape[3]):
                dst[1 + col, c] = src[col]


# ---- the parallel kernels: a bare prange over blocks of samples ----------------------
@njit(parallel=True, cache=True)
def forward_kernel(x, u, bias, block, first_block, block_count, chunk_tiles, n_blocks, out):
    """out = conv_transpose2d(x, w, stride 2, padding 1) + bias, with u = the transformed weight.

    x:    (N, Cin, H, W), read only.       u: (36, Cout, Cin), read only.
    bias: (Cout,) (zeros for none).        block, first_block, block_count: BLOCK, FIRST_BLOCK, BLOCK_COUNT.
    out:  (N, Cout, Ho, Wo), Ho in (2H, 2H + 1), Wo in (2W, 2W + 1); every entry written.
    """
    for b in prange(n_blocks):
        forward_block(np.int64(b), n_blocks, x, u, bias, block, first_block, block_count, chunk_tiles, out)


@njit(cache=True)
def forward_block(b, n_blocks, x, u, bias, block, first_block, block_count, chunk_tiles, out):
    """forward_kernel's work for samples b*N//B .. (b+1)*N//B - 1, in chunks."""
    n, c_in = x.shape[0], x.shape[1]
    c_out, ho, wo = out.shape[1], out.shape[2], out.shape[3]
    tiles_h, tiles_w = (ho + 3) // 4, (wo + 3) // 4     # 4x4 output tiles covering the output
    per = tiles_h * tiles_w                              # tiles (rows of V and M) of one sample
    first, end = b * n // n_blocks, (b + 1) * n // n_blocks
    chunk = max(1, min(end - first, chunk_tiles // per))   # samples per chunk
    largest = buffer_layout(c_in, c_out, chunk * per, block, first_block, block_count, x.itemsize)
    v = np.empty(largest[1], x.dtype)                    # V: 25 (columns, Cin) matrices
    m = np.empty(largest[5], x.dtype)                    # M: 25 groups of (columns, k*Cout)
    # the padded sample, channels last; row/column 0 and those past H, W up to the
    # last tile's window (2*tiles_h + 1, 2*tiles_w + 1) are the zero padding
    xp = np.zeros((2 * tiles_h + 2, 2 * tiles_w + 2, c_in), x.dtype)
    y = np.empty((4 * tiles_h, 4 * tiles_w, c_out), x.dtype)   # one sample's whole tiles, channels last
    scratch_in = np.empty((6, 6, c_in), x.dtype)            # the transforms' intermediate rows
    scratch_out = np.empty((6, 6, c_out), x.dtype)
    for s0 in range(first, end, chunk):                  # chunk of samples s0 .. s0 + count - 1
        count = min(chunk, end - s0)
        columns = count * per                            # sample s0 + t owns rows t*per .. (t+1)*per - 1
        v_stride, _, group_offset, slot_base, slot_row, _ = buffer_layout(
            c_in, c_out, columns, block, first_block, block_count, x.itemsize)
        for t in range(count):
            pad_sample_channels_last(x, s0 + t, xp)
            input_transform(xp, tiles_h, tiles_w, v, v_stride, t * per, scratch_in)
        for position in range(25):                       # data position (a, b) = divmod(position, 5)
            b0, k = first_block[position], block_count[position]    # its blocks b0 .. b0 + k - 1
            filters = u[b0:b0 + k].reshape(k * c_out, c_in)         # (k*Cout, Cin): stacked filter blocks
            start = position * v_stride
            data = v[start:start + columns * c_in].reshape(columns, c_in)              # (T, Cin)
            start = group_offset[position]
            products = m[start:start + columns * k * c_out].reshape(columns, k * c_out)  # (T, k*Cout)
            np.dot(data, filters.T, products)            # (T, Cin) @ (Cin, k*Cout)
        for t in range(count):
            output_transform(m, slot_base, slot_row, t * per, tiles_h, tiles_w, y, scratch_out)
            for row in range(ho):                        # the (Ho, Wo) corner of y, channels first, + bias
                src = y[row]                             # (4*tiles_w, Cout): one output row, in L1
                for o in range(c_out):
                    dst = out[s0 + t, o, row]
                    value = bias[o]
                    for col in range(wo):
                        dst[col] = src[col, o] + value


@njit(parallel=True, cache=True)
def backward_kernel(x, u, gy, block, first_block, block_count, need_input, need_weight, chunk_tiles,
                    dx, du_parts, db_parts):
    """Gradients of forward_kernel, per block of samples (B = du_parts.shape[0] blocks).

    x:        (N, Cin, H, W), read only; used only if need_weight (else any 4-D array).
    u:        (36, Cout, Cin), read only.     gy: (N, Cout, Ho, Wo), read only (dL/dout).
    dx:       (N, Cin, H, W); if need_input, every entry written.
    du_parts: (B, 36, Cout, Cin); if need_weight, block b writes the sum over its
              samples of dM[blocks]^T @ V[position] (the caller adds the blocks up).
    db_parts: (B, Cout) float64 zeros, or (B, 0); if Cout > 0, block b adds the
              sums of gy[n, o] over its samples n.
    """
    for b in prange(du_parts.shape[0]):
        backward_block(np.int64(b), x, u, gy, block, first_block, block_count, need_input, need_weight,
                       chunk_tiles, dx, du_parts, db_parts)


@njit(cache=True)
def backward_block(b, x, u, gy, block, first_block, block_count, need_input, need_weight, chunk_tiles,
                   dx, du_parts, db_parts):
    """backward_kernel's work for samples b*N//B .. (b+1)*N//B - 1, in chunks."""
    n, c_out, ho, wo = gy.shape
    c_in = u.shape[2]
    height = x.shape[2] if need_weight else dx.shape[2]
    width = x.shape[3] if need_weight else dx.shape[3]
    n_blocks = du_parts.shape[0]
    tiles_h, tiles_w = (ho + 3) // 4, (wo + 3) // 4
    per = tiles_h * tiles_w
    first, end = b * n // n_blocks, (b + 1) * n // n_blocks
    chunk = max(1, min(end - first, chunk_tiles // per))
    largest = buffer_layout(c_in, c_out, chunk * per, block, first_block, block_count, gy.itemsize)
    v = np.empty(largest[1], gy.dtype)                   # V, then dV: 25 (columns, Cin) matrices
    m = np.empty(largest[5], gy.dtype)                   # dM: 25 groups of (columns, k*Cout)
    xp = np.zeros((2 * tiles_h + 2, 2 * tiles_w + 2, c_in), gy.dtype)   # padded sample; border stays 0
    dxp = np.empty((2 * tiles_h + 2, 2 * tiles_w + 2, c_in), gy.dtype)  # its gradient
    gz = np.zeros((4 * tiles_h, 4 * tiles_w, c_out), gy.dtype)   # grad_out, channels last, zero past Ho, Wo
    product = np.empty((4 * c_out, c_in), gy.dtype)      # one chunk's dU for one data position
    scratch_in = np.empty((6, 6, c_in), gy.dtype)            # the transforms' intermediate rows
    scratch_out = np.empty((6, 6, c_out), gy.dtype)
    if need_weight:
        du_parts[b] = 0.0
    for s0 in range(first, end, chunk):
        count = min(chunk, end - s0)
        columns = count * per                            # sample s0 + t owns rows t*per .. (t+1)*per - 1
        v_stride, _, group_offset, slot_base, slot_row, _ = buffer_layout(
            c_in, c_out, columns, block, first_block, block_count, gy.itemsize)
        for t in range(count):
            sample = gy[s0 + t]                          # (Cout, Ho, Wo)
            for row in range(ho):                        # copied channels last; bias gradient on the way
                dst = gz[row]                            # (4*tiles_w, Cout): one row of grad_out, in L1
                for o in range(c_out):
                    src = sample[o, row]
                    total = np.float64(0.0)
                    for col in range(wo):
                        dst[col, o] = src[col]
                        total += src[col]
                    if db_parts.shape[1] > 0:
                        db_parts[b, o] += total
            output_transform_adjoint(gz, slot_base, slot_row, t * per, tiles_h, tiles_w, m, scratch_out)
        if need_weight:
            for t in range(count):
                pad_sample_channels_last(x, s0 + t, xp)
                input_transform(xp, tiles_h, tiles_w, v, v_stride, t * per, scratch_in)
            for position in range(25):
                b0, k = first_block[position], block_count[position]   # blocks b0 .. b0 + k - 1
                start = group_offset[position]
                gradients = m[start:start + columns * k * c_out].reshape(columns, k * c_out)  # (T, k*Cout)
                start = position * v_stride
                data = v[start:start + columns * c_in].reshape(columns, c_in)             # (T, Cin)
                part = product[:k * c_out]                               # (k*Cout, Cin)
                np.dot(gradients.T, data, part)          # (k*Cout, T) @ (T, Cin)
                total = du_parts[b, b0:b0 + k].reshape(k * c_out, c_in)
                for r in range(k * c_out):
                    for c in range(c_in):
                        total[r, c] += part[r, c]
        if need_input:
            for position in range(25):
                b0, k = first_block[position], block_count[position]
                filters = u[b0:b0 + k].reshape(k * c_out, c_in)          # (k*Cout, Cin)
                start = group_offset[position]
                gradients = m[start:start + columns * k * c_out].reshape(columns, k * c_out)  # (T, k*Cout)
                start = position * v_stride
                d_data = v[start:start + columns * c_in].reshape(columns, c_in)           # (T, Cin)
                np.dot(gradients, filters, d_data)       # (T, k*Cout) @ (k*Cout, Cin) = dV[position]
            for t in range(count):
                dxp[:] = 0.0                             # the windows add into it
                input_transform_adjoint(v, v_stride, t * per, tiles_h, tiles_w, dxp, scratch_in)
                for row in range(height):                # the interior is dx; the border was padding
                    src = dxp[1 + row]                   # (Wp, Cin): padded row 1 + row, in L1
                    for c in range(c_in):
                        dst = dx[s0 + t, c, row]
                        for col in range(width):
                            dst[col] = src[1 + col, c]


# ---- entry points (called by conv.py on the "numba" backend when `applies`) ----------
def weight_transform(weight):
    """U[block, o, c] = FILTERS[block] . w[c, o] (read as 16): (Cin, Cout, 4, 4) -> (36, Cout, Cin),
    new, C-contiguous."""
    c_in, c_out = weight.shape[:2]
    taps = weight.transpose(1, 0, 2, 3).reshape(c_out * c_in, 16)     # (Cout*Cin, 16): row o*Cin + c
    u = FILTERS @ taps.T                                              # (36, Cout*Cin), in float64
    return np.ascontiguousarray(u.reshape(36, c_out, c_in), dtype=weight.dtype)


def weight_gradient(du, dtype):
    """dW[c, o, i, j] = sum over blocks of dU[block, o, c] FILTERS[block, 4i + j], the transpose
    of weight_transform: (36, Cout, Cin) -> (Cin, Cout, 4, 4), new."""
    c_out, c_in = du.shape[1:]
    dw = du.reshape(36, c_out * c_in).T @ FILTERS                     # (Cout*Cin, 16), in float64
    return np.ascontiguousarray(dw.reshape(c_out, c_in, 4, 4).transpose(1, 0, 2, 3), dtype=dtype)


def conv_transpose2d_forward(x, weight, output_padding, bias=None):
    """(N, Cout, 2H + op_h, 2W + op_w) = conv_transpose2d(x, weight, stride 2, padding 1,
    output_padding) (+ bias (Cout,)), a new array."""
    n, _, height, width = x.shape
    c_out = weight.shape[1]
    ho, wo = 2 * height + output_padding[0], 2 * width + output_padding[1]
    bias = np.zeros(c_out, x.dtype) if bias is None else np.ascontiguousarray(bias, dtype=x.dtype)
    out = np.empty((n, c_out, ho, wo), x.dtype)
    blocks = sample_blocks(n, x.size * weight[0].size)               # multiply-adds of the direct sum
    # the filter transform is a BLAS product too: inside the block, so no BLAS threads
    # wake to spin beside the kernel's pool (the same for its adjoint after the kernel)
    with numba_threads(blocks), single_threaded_blas():
        u = weight_transform(weight)                                  # (36, Cout, Cin)
        forward_kernel(x, u, bias, BLOCK, FIRST_BLOCK, BLOCK_COUNT, CHUNK_TILES, blocks, out)
    return out


def conv_transpose2d_backward(grad_out, x, weight, need_input, need_weight, need_bias=False):
    """(dL/dx or None, dL/dW or None) of conv_transpose2d_forward, and dL/dbias (Cout,) too
    with need_bias. x: (N, Cin, H, W) is read only if need_weight; its shape is always used."""
    n, c_out = grad_out.shape[:2]
    c_in = weight.shape[0]
    dx = np.empty(x.shape if need_input else (0, 0, 0, 0), grad_out.dtype)
    source = x if need_weight else dx                                 # any 4-D array of the dtype
    blocks = sample_blocks(n, x.size * weight[0].size)
    # the filter transform is a BLAS product too: inside the block, so no BLAS threads
    # wake to spin beside the kernel's pool (the same for its adjoint after the kernel)
    with numba_threads(blocks), single_threaded_blas():
        u = weight_transform(weight)                                  # (36, Cout, Cin)
        du_parts = np.empty((blocks,) + ((36, c_out, c_in) if need_weight else (0, 0, 0)), grad_out.dtype)
        db_parts = np.zeros((blocks, c_out if need_bias else 0))      # float64 partial sums
        backward_kernel(source, u, grad_out, BLOCK, FIRST_BLOCK, BLOCK_COUNT, need_input, need_weight,
                        CHUNK_TILES, dx, du_parts, db_parts)
        d_weight = weight_gradient(du_parts.sum(axis=0), grad_out.dtype) if need_weight else None
    d_input = dx if need_input else None
    if need_bias:
        return d_input, d_weight, db_parts.sum(axis=0).astype(grad_out.dtype)
    return d_input, d_weight
