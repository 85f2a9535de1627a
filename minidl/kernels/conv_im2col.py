"""im2col and col2im: the two loop kernels every convolution in minidl rests on.

A 2-D convolution is a matrix product once the input patches are laid out as
columns. For one sample, one group of `Cg` input channels, a kernel of
kh x kw taps and an output of ho x wo positions:

    cols[(c*kh + i)*kw + j,  oy*wo + ox] = x[c, oy*sh - ph + i*dh, ox*sw - pw + j*dw]

(0 where the index falls in the zero padding). Then `out = W @ cols` with
W of shape (Cout, Cg*kh*kw). `col2im` is the adjoint (transpose) of `im2col`:
it adds every column entry back onto the pixel it was copied from, which is
exactly what the gradient with respect to the input needs.

Several samples share one column matrix, side by side: sample `s` of the
chunk owns the column block [s*ho*wo, (s+1)*ho*wo). One GEMM then covers the
whole chunk, which keeps the BLAS call large and efficient.

Both kernels are written once with `@njit(cache=True)`. Call `.py_func` for
the interpreted reference (the "python" backend), or set NUMBA_DISABLE_JIT=1
to step through them in a debugger. They are serial on purpose: the GEMMs
between them run on OpenBLAS's two threads, and a Numba thread pool running
alongside fights it for the two cores (PERF.md, pitfall 1); the copies here
are bandwidth-bound and fast on one core.
"""
from numba import njit


@njit(cache=True)
def valid_range(size, offset, stride, n_out):
    """Output positions o in [lo, hi) whose input index o*stride + offset lies
    in [0, size). Outside that range the tap reads zero padding.

    o*stride + offset >= 0      <=>  o >= ceil(-offset / stride)
    o*stride + offset <= size-1 <=>  o <= floor((size - 1 - offset) / stride)
    (// is floor division for negative numbers too, in Python and in Numba.)
    """
    lo = min(n_out, max(0, (-offset + stride - 1) // stride))
    hi = min(n_out, (size - 1 - offset) // stride + 1)
    if hi < lo:                     # no position reads inside the image
        hi = lo
    return lo, hi


@njit(cache=True)
def im2col(x, c0, kh, kw, sh, sw, ph, pw, dh, dw, ho, wo, n0, cols):
    """Copy input patches into columns.

    x:    (N, C, H, W), C-contiguous; only read.
    cols: (Cg*kh*kw, m*ho*wo), C-contiguous; every entry is written.
          Cg = cols.shape[0] // (kh*kw) channels starting at channel c0,
          m = cols.shape[1] // (ho*wo) samples starting at sample n0.
    Writes  cols[(c*kh + i)*kw + j, s*ho*wo + oy*wo + ox]
          = x[n0 + s, c0 + c, oy*sh - ph + i*dh, ox*sw - pw + j*dw]
    and 0 where that row/column index lies in the padding.
    """
    height = x.shape[2]
    width = x.shape[3]
    positions = ho * wo                      # output pixels per sample
    n_samples = cols.shape[1] // positions
    for row in range(cols.shape[0]):
        c = row // (kh * kw)                 # channel within the group
        i = (row // kw) % kh                 # kernel row (tap)
        j = row % kw                         # kernel column (tap)
        x_off = j * dw - pw                  # ix = ox*sw + x_off
        lo, hi = valid_range(width, x_off, sw, wo)
        for s in range(n_samples):
            for oy in range(ho):
                iy = oy * sh - ph + i * dh   # input row read by output row oy
                base = s * positions + oy * wo   # column of (s, oy, ox=0)
                if iy < 0 or iy >= height:   # whole output row reads padding
                    for ox in range(wo):
                        cols[row, base + ox] = 0.0
                    continue
                for ox in range(lo):         # left padding
                    cols[row, base + ox] = 0.0
                for ox in range(lo, hi):     # inside the image
                    cols[row, base + ox] = x[n0 + s, c0 + c, iy, ox * sw + x_off]
                for ox in range(hi, wo):     # right padding
                    cols[row, base + ox] = 0.0


@njit(cache=True)
def col2im(cols, c0, kh, kw, sh, sw, ph, pw, dh, dw, ho, wo, n0, dx):
    """Add columns back onto the pixels they came from (the adjoint of im2col).

    cols: (Cg*kh*kw, m*ho*wo), C-contiguous; only read. Layout as in `im2col`.
    dx:   (N, C, H, W), C-contiguous; ACCUMULATED into (+=) for samples
          n0..n0+m-1 and channels c0..c0+Cg-1 only; the caller zeroes it first.
    For every entry:  dx[n0 + s, c0 + c, oy*sh - ph + i*dh, ox*sw - pw + j*dw]
                      += cols[(c*kh + i)*kw + j, s*ho*wo + oy*wo + ox]
    skipping entries whose pixel lies in the padding. Overlapping windows
    (stride < kernel) add several entries onto one pixel, which is right.
    """
    height = dx.shape[2]
    width = dx.shape[3]
    positions = ho * wo
    n_samples = cols.shape[1] // positions
    n_channels = cols.shape[0] // (kh * kw)
    for plane in range(n_samples * n_channels):   # one (sample, channel) image each
        s = plane // n_channels                   # sample within the chunk
        c = plane % n_channels                    # channel within the group
        for i in range(kh):
            for j in range(kw):
                row = (c * kh + i) * kw + j       # the column row of tap (c, i, j)
                x_off = j * dw - pw               # ix = ox*sw + x_off
                lo, hi = valid_range(width, x_off, sw, wo)
                for oy in range(ho):
                    iy = oy * sh - ph + i * dh
                    if iy < 0 or iy >= height:    # this output row read padding only
                        continue
                    base = s * positions + oy * wo
                    for ox in range(lo, hi):
                        dx[n0 + s, c0 + c, iy, ox * sw + x_off] += cols[row, base + ox]
