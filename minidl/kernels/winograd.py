"""Winograd convolution F(2x2, 3x3): what the "numba" backend runs for conv2d
with a 3x3 kernel, stride 1, dilation 1, groups 1 and enough channels
(`applies`). It computes exactly what `conv.py`'s readable loops compute
(tests/test_winograd.py holds the two equal), with fewer multiplications.

Contract (the entry points `conv2d_forward` / `conv2d_backward`):
- x: (N, Cin, H, W), weight: (Cout, Cin, 3, 3), grad_out: (N, Cout, Ho, Wo),
  one float dtype (float32 or float64), C-contiguous; padding (ph, pw) >= 0;
  Ho = H + 2ph - 2 >= 1, Wo = W + 2pw - 2 >= 1.
- Inputs are only read; every returned array is new.

The idea, in one dimension first. Two outputs of a 3-tap correlation,
    y0 = d0 g0 + d1 g1 + d2 g2
    y1 = d1 g0 + d2 g1 + d3 g2,
cost 6 multiplications done directly. Winograd's minimal filtering
algorithm F(2, 3) gets them with 4:
    m0 = (d0 - d2) g0              m1 = (d1 + d2) (g0 + g1 + g2)/2
    m3 = (d1 - d3) g2              m2 = (d2 - d1) (g0 - g1 + g2)/2
    y0 = m0 + m1 + m2              y1 = m1 - m2 - m3
(expand them to check). In matrix form, with the data d (4,) and filter g (3,),
    y = A^T [(G g) * (B^T d)]       (* elementwise, 4 products)
          [1  0 -1  0]              [ 1    0    0 ]
    B^T = [0  1  1  0]         G =  [1/2  1/2  1/2]     A^T = [1 1  1  0]
          [0 -1  1  0]              [1/2 -1/2  1/2]           [0 1 -1 -1]
          [0  1  0 -1]              [ 0    0    1 ]
Nesting it along rows and columns gives F(2x2, 3x3): a 2x2 tile of outputs
from the 4x4 input tile d that covers it (tiles step by 2, so neighbouring
input tiles overlap by 2 pixels) and the 3x3 filter g:
    Y = A^T [ (G g G^T) * (B^T d B) ] A      (4x4 elementwise: 16 products)
instead of 2*2*9 = 36 products. The additions in the transforms are cheap
and the filter transform U = G g G^T is done once per call.

For Cin input and Cout output channels the sum over input channels happens
in the transformed domain, where it is a matrix product. Write
xi = 4a + b for the 16 positions (a, b) of a 4x4 tile and t for a tile
(sample, tile row, tile column); then
    U[xi, o, c] = (G w[o, c] G^T)[a, b]                     (16, Cout, Cin)
    V[xi, c, t] = (B^T d_t[c] B)[a, b]                      (16, Cin, T)
    M[xi]       = U[xi] @ V[xi]      for each xi: 16 GEMMs    (16, Cout, T)
    out tile t of channel o = A^T M[:, o, t] A               (read as 4x4)
so the multiplications become 16 matrix products of (Cout x Cin) @ (Cin x T),
16/36 of im2col's (Cout x 9Cin) @ (9Cin x P) when the tiles cover the output
exactly (even Ho and Wo; an odd side computes one row or column of tiles
that is half thrown away).

Gradients. Every step above is linear, so the backward pass runs each
step's transpose in reverse order (the exact adjoint of the forward):
    dM[xi, o, t] = (A dY_t[o] A^T)[a, b]        dY_t: the 2x2 tile of grad_out (zero past Ho, Wo)
    dV[xi]       = U[xi]^T @ dM[xi]             16 GEMMs (Cin x Cout) @ (Cout x T)
    dx          += B dV[:, c, t] B^T  onto the 4x4 input window of tile t
                   (windows overlap, so the adds accumulate; padding is dropped)
    dU[xi]       = dM[xi] @ V[xi]^T             16 GEMMs (Cout x T) @ (T x Cin)
    dW[o, c]     = G^T dU[:, o, c] G            (read as 4x4 -> 3x3)
dM is computed once and serves both gradients. The bias gradient (the sums
of grad_out's channels) is summed, in float64, while grad_out is read.

How it runs (as in `conv_fast.py`): a `prange` over blocks of samples, one
block per thread; each block works in chunks of samples whose tiles sit side
by side as the columns of V and M (about CHUNK_TILES columns: enough for
BLAS to run near its speed, few enough that V and M stay in cache), and
calls a single-threaded BLAS for the products (`np.dot` inside @njit calls
SciPy's BLAS; `minidl.threads` holds it to one thread meanwhile). Each
sample is first copied into a zero-bordered buffer (`pad_sample`), big
enough for every tile's 4x4 window, so the transforms read without
branches. The weight gradient is summed per block and the blocks added up
afterwards (no two threads write the same memory).

Accuracy: the transforms add and subtract up to 4x4 values and halve, so
the rounding error is somewhat larger than a direct convolution's (in
float32 about 1e-6 to 1e-5 relative to the magnitudes summed), never an
approximation of the mathematics.
"""
import numpy as np
from numba import njit, prange

from ..threads import numba_threads, single_threaded_blas
from .conv_fast import pad_sample, sample_blocks

# The shapes where Winograd is taken (`applies`): both channel counts at
# least MIN_CHANNELS and outputs of at least MIN_OUTPUT_PIXELS pixels. With
# fewer channels the 16 products are too thin for BLAS to run fast, and on
# small outputs the half-used border tiles and the transforms cost more than
# the multiplications saved. Winograd runs the N64 32->64 14x14 row of
# benchmarks/results/conv.md and the cnn's second convolution (32->64, an
# 11x11 output) in cnn_step.md; not the cnn's third (64->64, a 3x3 output).
MIN_CHANNELS = 16
MIN_OUTPUT_PIXELS = 64

# About how many tiles (columns of V and M) one chunk of samples gets.
# benchmarks/results/chunks.md (`minidl bench chunks`) sweeps it: 128 ran
# fastest on both shapes there, 512 about 1.2-1.4x slower (V and M outgrow the
# core's cache).
CHUNK_TILES = 128

# The transform matrices of F(2x2, 3x3) (see the module docstring).
B_T = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], np.float64)
G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]], np.float64)
A_T = np.array([[1, 1, 1, 0], [0, 1, -1, -1]], np.float64)


def applies(input_shape, weight_shape, stride, padding, dilation, groups, output_hw):
    """True when conv2d with these arguments runs here (on the "numba" backend):
    a 3x3 kernel, stride 1, dilation 1, one group, enough channels and output
    pixels, and the usual output size (conv_transpose2d may ask for another)."""
    c_out, c_in, kh, kw = weight_shape
    if not (kh == 3 and kw == 3 and tuple(stride) == (1, 1) and tuple(dilation) == (1, 1) and groups == 1):
        return False
    ho, wo = input_shape[2] + 2 * padding[0] - 2, input_shape[3] + 2 * padding[1] - 2
    return (tuple(output_hw) == (ho, wo) and c_in >= MIN_CHANNELS and c_out >= MIN_CHANNELS
            and ho * wo >= MIN_OUTPUT_PIXELS)


# ---- the four transforms along one axis (nested for 4x4 tiles below) ---------------
@njit(cache=True, inline="always")
def data_1d(d0, d1, d2, d3):
    """B^T d: four values of the input tile -> four of the transformed tile."""
    return d0 - d2, d1 + d2, d2 - d1, d1 - d3


@njit(cache=True, inline="always")
def data_1d_adjoint(v0, v1, v2, v3):
    """B v, the transpose of data_1d."""
    return v0, v1 - v2 + v3, v1 + v2 - v0, -v3


@njit(cache=True, inline="always")
def output_1d(m0, m1, m2, m3):
    """A^T m: four transformed values -> the two outputs."""
    return m0 + m1 + m2, m1 - m2 - m3


@njit(cache=True, inline="always")
def output_1d_adjoint(e0, e1):
    """A e, the transpose of output_1d: two output gradients -> four."""
    return e0, e0 + e1, e0 - e1, -e1


# ---- tile transforms over one sample ------------------------------------------------
@njit(cache=True)
def input_transform(xp, tiles_h, tiles_w, v, col0):
    """v[4a + b, c, col0 + ty*tiles_w + tx] = (B^T d B)[a, b] with d = xp[c, 2ty:2ty+4, 2tx:2tx+4].

    xp: (Cin, >= 2*tiles_h + 2, >= 2*tiles_w + 2) padded sample, read only.
    v:  (16, Cin, >= col0 + tiles_h*tiles_w); this sample's columns are written.
    """
    for c in range(xp.shape[0]):
        for ty in range(tiles_h):
            rows = xp[c, 2 * ty:2 * ty + 4]                  # (4, Wp): the input rows tile row ty reads
            dst = v[:, c, col0 + ty * tiles_w:col0 + (ty + 1) * tiles_w]   # (16, tiles_w): its columns
            for tx in range(tiles_w):
                j = 2 * tx                                   # first input column of tile tx
                # B^T d: each of the 4 columns s of d transformed (s0[a] = (B^T d)[a, 0], ...)
                s0 = data_1d(rows[0, j], rows[1, j], rows[2, j], rows[3, j])
                s1 = data_1d(rows[0, j + 1], rows[1, j + 1], rows[2, j + 1], rows[3, j + 1])
                s2 = data_1d(rows[0, j + 2], rows[1, j + 2], rows[2, j + 2], rows[3, j + 2])
                s3 = data_1d(rows[0, j + 3], rows[1, j + 3], rows[2, j + 3], rows[3, j + 3])
                # (B^T d) B: row a of B^T d transformed gives positions 4a .. 4a + 3
                for a in range(4):
                    e = data_1d(s0[a], s1[a], s2[a], s3[a])
                    dst[4 * a, tx] = e[0]
                    dst[4 * a + 1, tx] = e[1]
                    dst[4 * a + 2, tx] = e[2]
                    dst[4 * a + 3, tx] = e[3]


@njit(cache=True)
def input_transform_adjoint(dv, col0, tiles_h, tiles_w, dxp):
    """The transpose of input_transform: dxp[c, 2ty:2ty+4, 2tx:2tx+4] += B dV B^T,
    dV[a, b] = dv[4a + b, c, col0 + ty*tiles_w + tx].

    dv:  (16, Cin, >= col0 + tiles_h*tiles_w), read only.
    dxp: (Cin, >= 2*tiles_h + 2, >= 2*tiles_w + 2), ACCUMULATED into (zero it first);
         neighbouring windows overlap by 2 rows or columns and both add there.
    """
    for c in range(dxp.shape[0]):
        for ty in range(tiles_h):
            rows = dxp[c, 2 * ty:2 * ty + 4]                 # (4, Wp): the rows tile row ty read
            src = dv[:, c, col0 + ty * tiles_w:col0 + (ty + 1) * tiles_w]   # (16, tiles_w)
            for tx in range(tiles_w):
                j = 2 * tx                                   # first column of tile tx's window
                # B dV: each column b of dV (positions b, 4 + b, 8 + b, 12 + b) transformed
                s0 = data_1d_adjoint(src[0, tx], src[4, tx], src[8, tx], src[12, tx])
                s1 = data_1d_adjoint(src[1, tx], src[5, tx], src[9, tx], src[13, tx])
                s2 = data_1d_adjoint(src[2, tx], src[6, tx], src[10, tx], src[14, tx])
                s3 = data_1d_adjoint(src[3, tx], src[7, tx], src[11, tx], src[15, tx])
                # (B dV) B^T: row r of B dV transformed is row r of the window's gradient
                for r in range(4):
                    e = data_1d_adjoint(s0[r], s1[r], s2[r], s3[r])
                    rows[r, j] += e[0]
                    rows[r, j + 1] += e[1]
                    rows[r, j + 2] += e[2]
                    rows[r, j + 3] += e[3]


@njit(cache=True)
def output_transform(m, col0, tiles_h, tiles_w, bias, y):
    """y[o, 2ty:2ty+2, 2tx:2tx+2] = A^T M A + bias[o], M[a, b] = m[4a + b, o, col0 + ty*tiles_w + tx].

    m:    (16, Cout, >= col0 + tiles_h*tiles_w), read only.
    bias: (Cout,) (zeros for none).
    y:    (Cout, 2*tiles_h, 2*tiles_w); every entry written.
    """
    for o in range(y.shape[0]):
        value = bias[o]
        for ty in range(tiles_h):
            src = m[:, o, col0 + ty * tiles_w:col0 + (ty + 1) * tiles_w]   # (16, tiles_w)
            dst = y[o, 2 * ty:2 * ty + 2]                    # (2, 2*tiles_w): output rows 2ty, 2ty + 1
            for tx in range(tiles_w):
                # A^T M: each column b of M transformed (two values: output rows 0 and 1)
                s0 = output_1d(src[0, tx], src[4, tx], src[8, tx], src[12, tx])
                s1 = output_1d(src[1, tx], src[5, tx], src[9, tx], src[13, tx])
                s2 = output_1d(src[2, tx], src[6, tx], src[10, tx], src[14, tx])
                s3 = output_1d(src[3, tx], src[7, tx], src[11, tx], src[15, tx])
                # (A^T M) A: each of the two rows transformed -> output columns 2tx, 2tx + 1
                top = output_1d(s0[0], s1[0], s2[0], s3[0])
                bottom = output_1d(s0[1], s1[1], s2[1], s3[1])
                dst[0, 2 * tx] = top[0] + value
                dst[0, 2 * tx + 1] = top[1] + value
                dst[1, 2 * tx] = bottom[0] + value
                dst[1, 2 * tx + 1] = bottom[1] + value


@njit(cache=True)
def output_transform_adjoint(gy, tiles_h, tiles_w, dm, col0):
    """The transpose of output_transform (without the bias):
    dm[4a + b, o, col0 + ty*tiles_w + tx] = (A dY A^T)[a, b], dY = gy[o, 2ty:2ty+2, 2tx:2tx+2].

    gy: (Cout, 2*tiles_h, 2*tiles_w), read only.
    dm: (16, Cout, >= col0 + tiles_h*tiles_w); this sample's columns are written.
    """
    for o in range(gy.shape[0]):
        for ty in range(tiles_h):
            rows = gy[o, 2 * ty:2 * ty + 2]                  # (2, 2*tiles_w): output rows 2ty, 2ty + 1
            dst = dm[:, o, col0 + ty * tiles_w:col0 + (ty + 1) * tiles_w]   # (16, tiles_w)
            for tx in range(tiles_w):
                j = 2 * tx                                   # first output column of tile tx
                # A dY: each of the two columns of dY transformed (4 values: rows a)
                s0 = output_1d_adjoint(rows[0, j], rows[1, j])
                s1 = output_1d_adjoint(rows[0, j + 1], rows[1, j + 1])
                # (A dY) A^T: row a transformed -> positions 4a .. 4a + 3
                for a in range(4):
                    e = output_1d_adjoint(s0[a], s1[a])
                    dst[4 * a, tx] = e[0]
                    dst[4 * a + 1, tx] = e[1]
                    dst[4 * a + 2, tx] = e[2]
                    dst[4 * a + 3, tx] = e[3]


# ---- the parallel kernels: a bare prange over blocks of samples --------------------
@njit(parallel=True, cache=True)
def forward_kernel(x, u, bias, ph, pw, chunk_tiles, n_blocks, out):
    """out = conv2d(x, w) + bias, with u = the transformed weight.

    x:    (N, Cin, H, W), read only.     u: (16, Cout, Cin), read only.
    bias: (Cout,) (zeros for none).      out: (N, Cout, Ho, Wo); every entry written.
    """
    for b in prange(n_blocks):
        forward_block(np.int64(b), n_blocks, x, u, bias, ph, pw, chunk_tiles, out)


@njit(cache=True)
def forward_block(b, n_blocks, x, u, bias, ph, pw, chunk_tiles, out):
    """forward_kernel's work for samples b*N//B .. (b+1)*N//B - 1, in chunks."""
    n, c_in = x.shape[0], x.shape[1]
    c_out, ho, wo = out.shape[1], out.shape[2], out.shape[3]
    tiles_h, tiles_w = (ho + 1) // 2, (wo + 1) // 2     # 2x2 output tiles covering the output
    per = tiles_h * tiles_w                              # tiles (columns) of one sample
    first, end = b * n // n_blocks, (b + 1) * n // n_blocks
    chunk = max(1, min(end - first, chunk_tiles // per))   # samples per chunk
    rest = (end - first) % chunk                           # samples in a last, shorter chunk
    v_full, v_rest = np.empty((16, c_in, chunk * per), x.dtype), np.empty((16, c_in, rest * per), x.dtype)
    m_full, m_rest = np.empty((16, c_out, chunk * per), x.dtype), np.empty((16, c_out, rest * per), x.dtype)
    xp = np.zeros((c_in, 2 * tiles_h + 2, 2 * tiles_w + 2), x.dtype)   # padded sample; border stays 0
    exact = ho % 2 == 0 and wo % 2 == 0                  # tiles cover the output exactly: write out directly
    y = np.empty((c_out, 2 * tiles_h, 2 * tiles_w) if not exact else (0, 0, 0), x.dtype)
    for s0 in range(first, end, chunk):                  # chunk of samples s0 .. s0 + count - 1
        count = min(chunk, end - s0)
        v = v_full if count == chunk else v_rest         # (16, Cin, count*per)
        m = m_full if count == chunk else m_rest         # (16, Cout, count*per)
        for t in range(count):                           # sample s0 + t owns columns t*per ..
            pad_sample(x, s0 + t, 0, ph, pw, xp)
            input_transform(xp, tiles_h, tiles_w, v, t * per)
        for xi in range(16):
            np.dot(u[xi], v[xi], m[xi])                  # (Cout, Cin) @ (Cin, count*per)
        for t in range(count):
            if exact:
                output_transform(m, t * per, tiles_h, tiles_w, bias, out[s0 + t])
            else:                                        # whole tiles into y, then its (Ho, Wo) corner out
                output_transform(m, t * per, tiles_h, tiles_w, bias, y)
                for o in range(c_out):
                    for row in range(ho):
                        src = y[o, row, :wo]
                        dst = out[s0 + t, o, row]
                        for col in range(wo):
                            dst[col] = src[col]


@njit(parallel=True, cache=True)
def backward_kernel(x, u, gy, ph, pw, need_input, need_weight, chunk_tiles, dx, du_parts, db_parts):
    """Gradients of forward_kernel, per block of samples (B = du_parts.shape[0] blocks).

    x:        (N, Cin, H, W), read only; used only if need_weight (else any 4-D array).
    u:        (16, Cout, Cin), read only.      gy: (N, Cout, Ho, Wo), read only (dL/dout).
    dx:       (N, Cin, H, W); if need_input, every entry written.
    du_parts: (B, 16, Cout, Cin); if need_weight, block b writes the sum over its
              samples of dM[xi] @ V[xi]^T (the caller adds the blocks up).
    db_parts: (B, Cout) float64 zeros, or (B, 0); if Cout > 0, block b adds the
              sums of gy[n, o] over its samples n.
    """
    for b in prange(du_parts.shape[0]):
        backward_block(np.int64(b), x, u, gy, ph, pw, need_input, need_weight, chunk_tiles,
                       dx, du_parts, db_parts)


@njit(cache=True)
def backward_block(b, x, u, gy, ph, pw, need_input, need_weight, chunk_tiles, dx, du_parts, db_parts):
    """backward_kernel's work for samples b*N//B .. (b+1)*N//B - 1, in chunks."""
    n, c_out, ho, wo = gy.shape
    c_in = u.shape[2]
    height = x.shape[2] if need_weight else dx.shape[2]
    width = x.shape[3] if need_weight else dx.shape[3]
    n_blocks = du_parts.shape[0]
    tiles_h, tiles_w = (ho + 1) // 2, (wo + 1) // 2
    per = tiles_h * tiles_w
    first, end = b * n // n_blocks, (b + 1) * n // n_blocks
    chunk = max(1, min(end - first, chunk_tiles // per))
    rest = (end - first) % chunk
    v_full, v_rest = np.empty((16, c_in, chunk * per), gy.dtype), np.empty((16, c_in, rest * per), gy.dtype)
    m_full, m_rest = np.empty((16, c_out, chunk * per), gy.dtype), np.empty((16, c_out, rest * per), gy.dtype)
    xp = np.zeros((c_in, 2 * tiles_h + 2, 2 * tiles_w + 2), gy.dtype)   # padded sample; border stays 0
    dxp = np.empty((c_in, 2 * tiles_h + 2, 2 * tiles_w + 2), gy.dtype)  # its gradient
    exact = ho % 2 == 0 and wo % 2 == 0                  # tiles cover grad_out exactly: read it directly
    gz = np.zeros((c_out, 2 * tiles_h, 2 * tiles_w) if not exact else (0, 0, 0), gy.dtype)  # zero past Ho, Wo
    product = np.empty((c_out, c_in), gy.dtype)          # one chunk's dU[xi]
    if need_weight:
        du_parts[b] = 0.0
    for s0 in range(first, end, chunk):
        count = min(chunk, end - s0)
        v = v_full if count == chunk else v_rest         # V, then dV (16, Cin, count*per)
        m = m_full if count == chunk else m_rest         # dM (16, Cout, count*per)
        for t in range(count):
            sample = gy[s0 + t]                          # (Cout, Ho, Wo)
            if db_parts.shape[1] > 0:                    # bias gradient, while the sample is in cache
                for o in range(c_out):
                    flat = sample[o].reshape(-1)
                    total = np.float64(0.0)
                    for q in range(flat.shape[0]):
                        total += flat[q]
                    db_parts[b, o] += total
            if exact:
                output_transform_adjoint(sample, tiles_h, tiles_w, m, t * per)
            else:                                        # grad_out inside zero-bordered whole tiles
                for o in range(c_out):
                    for row in range(ho):
                        src = sample[o, row]
                        dst = gz[o, row, :wo]
                        for col in range(wo):
                            dst[col] = src[col]
                output_transform_adjoint(gz, tiles_h, tiles_w, m, t * per)
        if need_weight:
            for t in range(count):
                pad_sample(x, s0 + t, 0, ph, pw, xp)
                input_transform(xp, tiles_h, tiles_w, v, t * per)
            for xi in range(16):
                np.dot(m[xi], v[xi].T, product)          # (Cout, T) @ (T, Cin)
                total = du_parts[b, xi]
                for o in range(c_out):
                    for c in range(c_in):
                        total[o, c] += product[o, c]
        if need_input:
            for xi in range(16):
                np.dot(u[xi].T, m[xi], v[xi])            # (Cin, Cout) @ (Cout, T) = dV[xi]
            for t in range(count):
                dxp[:] = 0.0                             # the windows add into it
                input_transform_adjoint(v, t * per, tiles_h, tiles_w, dxp)
                for c in range(c_in):                    # the interior is dx; the border was padding
                    for row in range(height):
                        src = dxp[c, ph + row, pw:pw + width]
                        dst = dx[s0 + t, c, row]
                        for col in range(width):
                            dst[col] = src[col]


# ---- entry points (called by conv.py on the "numba" backend when `applies`) --------
# kron(G, G)[4a + b, 3i + j] = G[a, i] G[b, j]: G w G^T of a flattened 3x3 filter is one
# row of 16 = kron(G, G) @ w.reshape(9), so every filter is transformed by one product.
G_G = np.kron(G, G)                                          # (16, 9)


def weight_transform(weight):
    """U[4a + b, o, c] = (G w[o, c] G^T)[a, b]: (Cout, Cin, 3, 3) -> (16, Cout, Cin), new, C-contiguous."""
    c_out, c_in = weight.shape[:2]
    u = G_G @ weight.reshape(c_out * c_in, 9).T              # (16, Cout*Cin), in float64
    return np.ascontiguousarray(u.reshape(16, c_out, c_in), dtype=weight.dtype)


def weight_gradient(du, dtype):
    """dW[o, c] = G^T dU[:, o, c] G (dU[:, o, c] read as 4x4): (16, Cout, Cin) -> (Cout, Cin, 3, 3), new.
    (The transpose of weight_transform: dW[o, c, i, j] = sum over xi of dU[xi, o, c] kron(G, G)[xi, 3i + j].)"""
    c_out, c_in = du.shape[1:]
    dw = du.reshape(16, c_out * c_in).T @ G_G                # (Cout*Cin, 9), in float64
    return np.ascontiguousarray(dw.reshape(c_out, c_in, 3, 3), dtype=dtype)


def conv2d_forward(x, weight, padding, bias=None):
    """(N, Cout, Ho, Wo) = conv2d(x, weight, stride 1, padding) (+ bias (Cout,)), a new array."""
    n, _, height, width = x.shape
    c_out = weight.shape[0]
    ph, pw = padding
    ho, wo = height + 2 * ph - 2, width + 2 * pw - 2
    bias = np.zeros(c_out, x.dtype) if bias is None else np.ascontiguousarray(bias, dtype=x.dtype)
    out = np.empty((n, c_out, ho, wo), x.dtype)
    blocks = sample_blocks(n, out.size * weight[0].size)
    # the filter transform is a BLAS product too: inside the block, so no BLAS threads
    # wake to spin beside the kernel's pool (the same for its adjoint after the kernel)
    with numba_threads(blocks), single_threaded_blas():
        u = weight_transform(weight)                                  # (16, Cout, Cin)
        forward_kernel(x, u, bias, ph, pw, CHUNK_TILES, blocks, out)
    return out


def conv2d_backward(grad_out, x, weight, padding, input_shape, need_input, need_weight, need_bias=False):
    """(dL/dx or None, dL/dW or None) of conv2d_forward, and dL/dbias (Cout,) too with need_bias.
    x is read only if need_weight (it may then be None otherwise)."""
    n, c_out = grad_out.shape[:2]
    c_in = weight.shape[1]
    dx = np.empty(input_shape if need_input else (0, 0, 0, 0), grad_out.dtype)
    source = x if need_weight else dx                                 # any 4-D array of the dtype
    blocks = sample_blocks(n, grad_out.size * weight[0].size)
    # the filter transform is a BLAS product too: inside the block, so no BLAS threads
    # wake to spin beside the kernel's pool (the same for its adjoint after the kernel)
    with numba_threads(blocks), single_threaded_blas():
        u = weight_transform(weight)                                  # (16, Cout, Cin)
        du_parts = np.empty((blocks,) + ((16, c_out, c_in) if need_weight else (0, 0, 0)), grad_out.dtype)
        db_parts = np.zeros((blocks, c_out if need_bias else 0))      # float64 partial sums
        backward_kernel(source, u, grad_out, padding[0], padding[1], need_input, need_weight,
                        CHUNK_TILES, dx, du_parts, db_parts)
        d_weight = weight_gradient(du_parts.sum(axis=0), grad_out.dtype) if need_weight else None
    d_input = dx if need_input else None
    if need_bias:
        return d_input, d_weight, db_parts.sum(axis=0).astype(grad_out.dtype)
    return d_input, d_weight
