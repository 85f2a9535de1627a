"""The vectorised NumPy twin of the convolution kernels: what a student writes
with `sliding_window_view` and a matrix product, and no loops over pixels.

Same contract as `minidl.kernels.conv` (which dispatches here under the
"numpy" backend): NCHW input, weight (Cout, Cin/groups, kH, kW), stride,
padding, dilation as pairs, `groups` dividing both channel counts. Inputs are
only read; every result is a new array.
"""
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def output_size(size, kernel, stride, padding, dilation):
    """Output length of a convolution along one axis (PyTorch's formula)."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def _windows(x, kh, kw, stride, padding, dilation, ho, wo):
    """A read-only view (N, C, ho, wo, kh, kw): windows[n, c, oy, ox, i, j] =
    padded_x[n, c, oy*sh + i*dh, ox*sw + j*dw]. Padding makes one copy of x."""
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    padded = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))          # (N, C, H+2ph, W+2pw)
    span_h, span_w = dh * (kh - 1) + 1, dw * (kw - 1) + 1             # kernel footprint
    view = sliding_window_view(padded, (span_h, span_w), axis=(2, 3))  # (N, C, H', W', span_h, span_w)
    return view[:, :, ::sh, ::sw, ::dh, ::dw][:, :, :ho, :wo]           # (N, C, ho, wo, kh, kw)


def _columns(windows, channels):
    """im2col for one group: (N*ho*wo, Cg*kh*kw), rows are output pixels."""
    n, _, ho, wo, kh, kw = windows.shape
    group = windows[:, channels]                                       # (N, Cg, ho, wo, kh, kw)
    return group.transpose(0, 2, 3, 1, 4, 5).reshape(n * ho * wo, -1)   # copy: (N*ho*wo, Cg*kh*kw)


def conv2d_forward(x, weight, stride, padding, dilation, groups, output_hw=None):
    """out[n, o, oy, ox] = sum_{c,i,j} w[o, c, i, j] * x_pad[n, g*Cg + c, oy*sh + i*dh, ox*sw + j*dw]
    where g = o // (Cout/groups). Returns a new (N, Cout, Ho, Wo) array."""
    n, c_in, h, w = x.shape
    c_out, cg, kh, kw = weight.shape
    ho, wo = output_hw or (output_size(h, kh, stride[0], padding[0], dilation[0]),
                           output_size(w, kw, stride[1], padding[1], dilation[1]))
    cog = c_out // groups
    windows = _windows(x, kh, kw, stride, padding, dilation, ho, wo)
    outputs = []
    for g in range(groups):
        cols = _columns(windows, slice(g * cg, (g + 1) * cg))         # (N*ho*wo, K)
        w_g = weight[g * cog:(g + 1) * cog].reshape(cog, -1)           # (cog, K)
        outputs.append((cols @ w_g.T).reshape(n, ho, wo, cog))         # (N, ho, wo, cog)
    return np.ascontiguousarray(np.concatenate(outputs, axis=3).transpose(0, 3, 1, 2))  # (N, Cout, ho, wo)


def conv2d_backward(grad_out, x, weight, stride, padding, dilation, groups,
                    input_shape, need_input=True, need_weight=True):
    """Gradients of conv2d_forward: (dL/dx of shape input_shape or None,
    dL/dweight or None). `x` may be None when only dL/dx is wanted.

    dW_g = gy_g^T @ cols_g  (sum over every output pixel of every sample)
    dX   = col2im(gy_g @ W_g): each kernel tap (i, j) adds its slice of the
           column gradient onto a strided slice of the padded input gradient.
    """
    n, c_in, h, w = input_shape
    c_out, cg, kh, kw = weight.shape
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    ho, wo = grad_out.shape[2:]
    cog = c_out // groups
    gy = grad_out.transpose(0, 2, 3, 1).reshape(n * ho * wo, c_out)    # (N*ho*wo, Cout)
    windows = _windows(x, kh, kw, stride, padding, dilation, ho, wo) if need_weight else None
    d_weight = np.empty_like(weight) if need_weight else None
    d_padded = np.zeros((n, c_in, h + 2 * ph, w + 2 * pw), grad_out.dtype) if need_input else None
    for g in range(groups):
        gy_g = gy[:, g * cog:(g + 1) * cog]                            # (N*ho*wo, cog)
        w_g = weight[g * cog:(g + 1) * cog].reshape(cog, -1)           # (cog, K)
        if need_weight:
            cols = _columns(windows, slice(g * cg, (g + 1) * cg))     # (N*ho*wo, K)
            d_weight[g * cog:(g + 1) * cog] = (gy_g.T @ cols).reshape(cog, cg, kh, kw)
        if need_input:
            d_cols = (gy_g @ w_g).reshape(n, ho, wo, cg, kh, kw)       # (N, ho, wo, Cg, kh, kw)
            for i in range(kh):
                for j in range(kw):
                    # tap (i, j) of output (oy, ox) read padded pixel (oy*sh + i*dh, ox*sw + j*dw)
                    rows = slice(i * dh, i * dh + sh * (ho - 1) + 1, sh)
                    cols_ = slice(j * dw, j * dw + sw * (wo - 1) + 1, sw)
                    d_padded[:, g * cg:(g + 1) * cg, rows, cols_] += d_cols[..., i, j].transpose(0, 3, 1, 2)
    d_input = None
    if need_input:
        d_input = np.ascontiguousarray(d_padded[:, :, ph:ph + h, pw:pw + w])  # drop the padding
    return d_input, d_weight
