"""Branch-free im2col / col2im on one zero-padded sample, for the compiled path.

`conv_im2col.im2col` tests every row and column against the padding. Here the
sample is first copied into a zero-bordered buffer `xp` (Cg, H + 2ph, W + 2pw)
once, and then every tap reads inside the buffer, so the inner loops are plain
strided copies (and vectorise when the stride is 1). The result is identical
to `im2col` on the unpadded sample; the tests compare the two backends.

In the padded buffer, output pixel (oy, ox) and tap (i, j) read
    xp[c, oy*sh + i*dh, ox*sw + j*dw]          (no "- padding": the border is in xp)
"""
from numba import njit


@njit(cache=True)
def pad_sample(x, n, c0, ph, pw, xp):
    """xp[c, ph + y, pw + x_] = x[n, c0 + c, y, x_] for every c < xp.shape[0].
    Only the interior of xp is written: its border must already be zero."""
    height, width = x.shape[2], x.shape[3]
    for c in range(xp.shape[0]):
        for y in range(height):
            src = x[n, c0 + c, y]                 # input row y of channel c0 + c
            dst = xp[c, ph + y]                   # the same row inside the border
            for col in range(width):
                dst[pw + col] = src[col]


@njit(cache=True)
def unpad_sample(dxp, ph, pw, n, c0, dx):
    """dx[n, c0 + c, y, x_] = dxp[c, ph + y, pw + x_]: the interior of a padded
    gradient buffer (gradient that fell on the border is dropped, as it should)."""
    height, width = dx.shape[2], dx.shape[3]
    for c in range(dxp.shape[0]):
        for y in range(height):
            src = dxp[c, ph + y]
            dst = dx[n, c0 + c, y]
            for col in range(width):
                dst[col] = src[pw + col]


@njit(cache=True)
def im2col_padded(xp, kh, kw, sh, sw, dh, dw, ho, wo, cols):
    """cols[(c*kh + i)*kw + j, oy*wo + ox] = xp[c, oy*sh + i*dh, ox*sw + j*dw].

    xp:   (Cg, Hp, Wp) padded sample, read only.
    cols: (Cg*kh*kw, ho*wo), C-contiguous; every entry written.
    """
    for row in range(cols.shape[0]):
        c = row // (kh * kw)                      # channel
        i = (row // kw) % kh                      # kernel row
        j = row % kw                              # kernel column
        dst = cols[row]
        for oy in range(ho):
            src = xp[c, oy * sh + i * dh]         # the padded row this tap reads
            base = oy * wo                        # where output row oy starts in cols
            start = j * dw                        # padded column read by ox = 0
            if sw == 1:
                for ox in range(wo):
                    dst[base + ox] = src[start + ox]
            else:
                for ox in range(wo):
                    dst[base + ox] = src[start + ox * sw]


@njit(cache=True)
def col2im_padded(cols, kh, kw, sh, sw, dh, dw, ho, wo, dxp):
    """The adjoint of im2col_padded: dxp[c, oy*sh + i*dh, ox*sw + j*dw] += cols[(c*kh + i)*kw + j, oy*wo + ox].

    cols: (Cg*kh*kw, ho*wo), read only.
    dxp:  (Cg, Hp, Wp) padded gradient buffer, ACCUMULATED into (zero it first).
    """
    for row in range(cols.shape[0]):
        c = row // (kh * kw)
        i = (row // kw) % kh
        j = row % kw
        src = cols[row]
        for oy in range(ho):
            dst = dxp[c, oy * sh + i * dh]
            base = oy * wo
            start = j * dw
            if sw == 1:
                for ox in range(wo):
                    dst[start + ox] += src[base + ox]
            else:
                for ox in range(wo):
                    dst[start + ox * sw] += src[base + ox]


# ---- stride 1: "wide" columns, one contiguous copy per row --------------------
#
# With stride 1, output pixel (oy, ox) and tap (i, j) read the flat index
# (oy + i*dh)*Wp + (ox + j*dw) of the padded channel. Letting ox run over the
# full padded width Wp instead of wo, the positions q = oy*Wp + ox of one row
# of the column matrix read the consecutive flat indices i*dh*Wp + j*dw + q:
# the row is a single contiguous slice. The columns with ox >= wo are junk
# (they wrap into the next image row); the GEMM computes them and `narrow`
# drops them, and `widen` zeroes them in gradients so they add nothing.
# The padded buffer has one spare zero row so that the junk of the last row
# stays inside it.

@njit(cache=True)
def im2col_wide(xp, kh, kw, dh, dw, ho, cols):
    """Stride 1. cols[(c*kh + i)*kw + j, q] = flat(xp[c])[i*dh*Wp + j*dw + q], q < ho*Wp.

    xp:   (Cg, Hp + 1, Wp) padded sample with a spare zero row, read only.
    cols: (Cg*kh*kw, ho*Wp), every entry written (columns q % Wp >= wo are junk).
    """
    wp = xp.shape[2]
    for row in range(cols.shape[0]):
        c = row // (kh * kw)                      # channel
        i = (row // kw) % kh                      # kernel row
        j = row % kw                              # kernel column
        src = xp[c].reshape(-1)                   # the padded channel, flat
        start = i * dh * wp + j * dw              # flat index read by q = 0
        dst = cols[row]
        for q in range(cols.shape[1]):
            dst[q] = src[start + q]


@njit(cache=True)
def col2im_wide(cols, kh, kw, dh, dw, ho, dxp):
    """Adjoint of im2col_wide: flat(dxp[c])[i*dh*Wp + j*dw + q] += cols[(c*kh + i)*kw + j, q].
    dxp: (Cg, Hp + 1, Wp), ACCUMULATED into. Junk columns of cols must be zero."""
    wp = dxp.shape[2]
    for row in range(cols.shape[0]):
        c = row // (kh * kw)
        i = (row // kw) % kh
        j = row % kw
        dst = dxp[c].reshape(-1)
        start = i * dh * wp + j * dw
        src = cols[row]
        for q in range(cols.shape[1]):
            dst[start + q] += src[q]


@njit(cache=True)
def narrow(wide, wo, out):
    """out[o, oy*wo + ox] = wide[o, oy*Wp + ox] for ox < wo: drop the junk columns.
    wide: (M, ho*Wp) read only; out: (M, ho*wo) written."""
    ho = out.shape[1] // wo
    wp = wide.shape[1] // ho
    for o in range(out.shape[0]):
        for oy in range(ho):
            for ox in range(wo):
                out[o, oy * wo + ox] = wide[o, oy * wp + ox]


@njit(cache=True)
def widen(narrow_, wo, wide):
    """wide[o, oy*Wp + ox] = narrow_[o, oy*wo + ox] for ox < wo. The junk
    columns of `wide` are not touched: the caller keeps them zero."""
    ho = narrow_.shape[1] // wo
    wp = wide.shape[1] // ho
    for o in range(narrow_.shape[0]):
        for oy in range(ho):
            for ox in range(wo):
                wide[o, oy * wp + ox] = narrow_[o, oy * wo + ox]
