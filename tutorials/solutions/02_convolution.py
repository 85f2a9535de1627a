"""Reference solutions of tutorial 02's checked exercises (`minidl check 02
--file tutorials/solutions/02_convolution.py` passes every check)."""
import numpy as np


# ---- exercise 1 ---------------------------------------------------------------
def conv2d_loops(x, w, stride=1, padding=0, dilation=1):
    n_batch, c_in, h, wd = x.shape
    c_out, _, kh, kw = w.shape
    x_pad = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    ho = (h + 2 * padding - dilation * (kh - 1) - 1) // stride + 1
    wo = (wd + 2 * padding - dilation * (kw - 1) - 1) // stride + 1
    out = np.zeros((n_batch, c_out, ho, wo), x.dtype)
    for n in range(n_batch):
        for o in range(c_out):
            for oy in range(ho):
                for ox in range(wo):
                    total = 0.0
                    for c in range(c_in):
                        for i in range(kh):
                            for j in range(kw):
                                total += w[o, c, i, j] * x_pad[n, c, oy * stride + i * dilation,
                                                               ox * stride + j * dilation]
                    out[n, o, oy, ox] = total
    return out


# ---- exercise 2 ---------------------------------------------------------------
def col2im(cols, input_shape, kernel_size, stride=1, padding=0):
    c_in, h, w = input_shape
    kh, kw = kernel_size
    ho = (h + 2 * padding - kh) // stride + 1
    wo = (w + 2 * padding - kw) // stride + 1
    padded = np.zeros((c_in, h + 2 * padding, w + 2 * padding), cols.dtype)
    taps = cols.reshape(c_in, kh, kw, ho, wo)                   # row (c*kh + i)*kw + j, column oy*wo + ox
    for i in range(kh):
        for j in range(kw):
            padded[:, i:i + stride * ho:stride, j:j + stride * wo:stride] += taps[:, i, j]
    return padded[:, padding:padding + h, padding:padding + w]
