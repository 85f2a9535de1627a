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
