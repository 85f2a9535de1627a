"""Convolution kernels: conv2d forward and backward by im2col + a matrix
product, and conv_transpose2d as conv2d's adjoint. Pure ndarrays, no autograd.

Contract (checked by `minidl.ops.conv` before anything here runs):
- x: (N, Cin, H, W), weight: (Cout, Cin/groups, kH, kW), both float32 or both
  float64, C-contiguous; stride, padding, dilation are pairs of ints; groups
  divides Cin and Cout; the (dilated) kernel fits the padded input.
- Inputs are only read. Every returned array is new.
- Output size: `geometry.conv_output_size` along each axis.

The idea. For one sample and one group of Cg input channels, lay every input
patch out as a column,

    cols[(c*kh + i)*kw + j,  oy*wo + ox] = x[c, oy*sh - ph + i*dh, ox*sw - pw + j*dw]

(0 where the index falls in the zero padding); then the convolution is one
matrix product, out_g = W_g @ cols with W_g of shape (Cout/groups, Cg*kh*kw).
`col2im`, the adjoint (transpose) of `im2col`, adds every column entry back
onto the pixel it was copied from: exactly what the input gradient needs,
dx = col2im(W_g^T @ gy_g); and dW_g = gy_g @ cols^T.

Which loops run (`minidl.kernels.use`):
- "python": the readable loops below, `im2col` and `col2im`, interpreted,
            with one NumPy matrix product per group over the whole batch.
- "numba":  `conv_fast.py`: the same mathematics, optimised (one thread pool
            with samples split across it, branch-free copies from a padded
            sample, contiguous "wide" columns for stride 1); its docstring
            explains each step. tests/test_conv_fast.py holds it equal to the
            readable loops here. 3x3 stride-1 convolutions with enough
            channels run `winograd.py` instead (Winograd F(2x2, 3x3): 16
            multiplications per 2x2 output tile instead of 36), held equal
            to the readable loops by tests/test_winograd.py. conv_transpose2d
            with 4x4 kernels, stride 2, padding 1 and enough channels runs
            `conv_transpose_sub_pixel.py` (split by output parity into four
            stride-1 2x2 convolutions, each by Winograd F(2x2, 2x2): 9
            multiplications for every 16), held equal to the readable loops
            by tests/test_conv_transpose_sub_pixel.py.
- "numpy":  the vectorised twin below (sliding_window_view + matmul).

conv_transpose2d(x, W) is the adjoint of conv2d(., W): its forward is
conv2d's input gradient, and its backward needs conv2d's forward (for dx)
and conv2d's weight gradient with the roles of input and output swapped (dW).
"""
import numpy as np
from numba import njit
from numpy.lib.stride_tricks import sliding_window_view

from . import conv_fast, conv_transpose_sub_pixel, winograd
from .backend import current, interpreted, kernel_array
from .geometry import conv_output_size, conv_transpose_output_size


def _output_hw(h, w, kh, kw, stride, padding, dilation):
    """(Ho, Wo) of conv2d."""
    return (conv_output_size(h, kh, stride[0], padding[0], dilation[0]),
            conv_output_size(w, kw, stride[1], padding[1], dilation[1]))


# ---- loop kernels (the readable reference; interpreted by the "python" backend) ----
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
    Several samples share one column matrix, side by side: sample s owns the
    column block [s*ho*wo, (s+1)*ho*wo), so one matrix product covers them all.
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


# ---- NumPy twin (vectorised: sliding_window_view and matmul, no loops over pixels) ----
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


def conv2d_forward_numpy(x, weight, stride, padding, dilation, groups, output_hw=None):
    """out[n, o, oy, ox] = sum_{c,i,j} w[o, c, i, j] * x_pad[n, g*Cg + c, oy*sh + i*dh, ox*sw + j*dw]
    where g = o // (Cout/groups). Returns a new (N, Cout, Ho, Wo) array."""
    n, c_in, h, w = x.shape
    c_out, cg, kh, kw = weight.shape
    ho, wo = output_hw or _output_hw(h, w, kh, kw, stride, padding, dilation)
    cog = c_out // groups
    windows = _windows(x, kh, kw, stride, padding, dilation, ho, wo)
    outputs = []
    for g in range(groups):
        cols = _columns(windows, slice(g * cg, (g + 1) * cg))         # (N*ho*wo, K)
        w_g = weight[g * cog:(g + 1) * cog].reshape(cog, -1)           # (cog, K)
        outputs.append((cols @ w_g.T).reshape(n, ho, wo, cog))         # (N, ho, wo, cog)
    return np.ascontiguousarray(np.concatenate(outputs, axis=3).transpose(0, 3, 1, 2))  # (N, Cout, ho, wo)


def conv2d_backward_numpy(grad_out, x, weight, stride, padding, dilation, groups,
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

# ---- entry points: pick the backend -------------------------------------------------
def _forward_loops(x, weight, stride, padding, dilation, groups, output_hw):
    """conv2d forward with the readable loops: per group, the columns of the
    whole batch (K, N*P) and one matrix product (cog, K) @ (K, N*P)."""
    n, c_in, h, w = x.shape
    c_out, cg, kh, kw = weight.shape
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    ho, wo = output_hw or _output_hw(h, w, kh, kw, stride, padding, dilation)
    positions, k, cog = ho * wo, cg * kh * kw, c_out // groups
    w_mat = weight.reshape(groups, cog, k)                               # (G, cog, K)
    out = np.empty((n, c_out, positions), x.dtype)                       # (N, Cout, P)
    cols = np.empty((k, n * positions), x.dtype)                         # (K, N*P)
    im2col_loops = interpreted(im2col)
    for g in range(groups):
        im2col_loops(x, g * cg, kh, kw, sh, sw, ph, pw, dh, dw, ho, wo, 0, cols)
        product = w_mat[g] @ cols                                        # (cog, N*P)
        # product[o, s*P + p] belongs to out[s, g*cog + o, p]
        out[:, g * cog:(g + 1) * cog] = product.reshape(cog, n, positions).transpose(1, 0, 2)
    return out.reshape(n, c_out, ho, wo)


def _backward_loops(grad_out, x, weight, stride, padding, dilation, groups,
                    input_shape, need_input, need_weight):
    """conv2d backward with the readable loops: dW_g = gy_g @ cols_g^T and
    dX = col2im(W_g^T @ gy_g), gy_g the (cog, N*P) output gradient of group g."""
    n = input_shape[0]
    c_out, cg, kh, kw = weight.shape
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    ho, wo = grad_out.shape[2:]
    positions, k, cog = ho * wo, cg * kh * kw, c_out // groups
    gy = grad_out.reshape(n, c_out, positions).transpose(1, 0, 2).reshape(c_out, n * positions)  # (Cout, N*P)
    w_mat = weight.reshape(groups, cog, k)                               # (G, cog, K)
    d_input = np.zeros(input_shape, grad_out.dtype) if need_input else None   # col2im adds into it
    d_weight = np.empty((groups, cog, k), grad_out.dtype) if need_weight else None
    cols = np.empty((k, n * positions), grad_out.dtype)                  # (K, N*P)
    im2col_loops, col2im_loops = interpreted(im2col), interpreted(col2im)
    for g in range(groups):
        gy_g = gy[g * cog:(g + 1) * cog]                                 # (cog, N*P)
        if need_weight:
            im2col_loops(x, g * cg, kh, kw, sh, sw, ph, pw, dh, dw, ho, wo, 0, cols)
            d_weight[g] = gy_g @ cols.T                                  # (cog, K)
        if need_input:
            np.matmul(w_mat[g].T, gy_g, out=cols)                        # column gradient (K, N*P)
            col2im_loops(cols, g * cg, kh, kw, sh, sw, ph, pw, dh, dw, ho, wo, 0, d_input)
    if need_weight:
        d_weight = d_weight.reshape(weight.shape)
    return d_input, d_weight


def conv2d_forward(x, weight, stride, padding, dilation, groups, output_hw=None, bias=None,
                   keep_columns=False):
    """out[n, o, oy, ox] = sum_{c,i,j} W[o, c, i, j] * x_pad[n, g*Cg + c, oy*sh + i*dh, ox*sw + j*dw] (+ bias[o]),
    g = o // (Cout/groups). Returns a new (N, Cout, Ho, Wo) array; `output_hw`
    overrides (Ho, Wo) (used by conv_transpose2d when output_padding >= stride).
    With keep_columns, returns (out, kept): arrays the backward may reuse
    (the "numba" backend's channels-last columns, conv_channels_last.py), or ()."""
    x, weight = kernel_array(x), kernel_array(weight)
    if current() == "numba":
        ho, wo = output_hw or _output_hw(*x.shape[2:], *weight.shape[2:], stride, padding, dilation)
        # ---- Winograd F(2x2, 3x3) for the 3x3 stride-1 convolutions where it wins (winograd.py)
        if winograd.applies(x.shape, weight.shape, stride, padding, dilation, groups, (ho, wo)):
            out = winograd.conv2d_forward(x, weight, padding, bias=bias)
            return (out, ()) if keep_columns else out
        # ----
        return conv_fast.conv2d_forward(x, weight, stride, padding, dilation, groups, ho, wo, bias=bias,
                                        keep_columns=keep_columns)
    fn = conv2d_forward_numpy if current() == "numpy" else _forward_loops
    out = fn(x, weight, stride, padding, dilation, groups, output_hw)
    if bias is not None:
        add_bias(out, bias)
    return (out, ()) if keep_columns else out


def conv2d_backward(grad_out, x, weight, stride, padding, dilation, groups,
                    input_shape=None, need_input=True, need_weight=True, need_bias=False, kept=()):
    """(dL/dx, dL/dW) of conv2d_forward given dL/dout (N, Cout, Ho, Wo); either
    is None when not needed. With need_bias, (dL/dx, dL/dW, dL/dbias). `x`
    may be None if need_weight is False, then `input_shape` gives dx's shape.
    kept: what conv2d_forward(..., keep_columns=True) returned with the output
    (the "numba" backend reads it; the others rebuild what they need)."""
    input_shape = tuple(input_shape if input_shape is not None else x.shape)
    grad_out, weight = kernel_array(grad_out), kernel_array(weight)
    x = kernel_array(x) if need_weight else None
    if current() == "numba":       # the bias gradient is summed while the kernel reads grad_out
        # ---- Winograd F(2x2, 3x3) for the 3x3 stride-1 convolutions where it wins (winograd.py)
        if winograd.applies(input_shape, weight.shape, stride, padding, dilation, groups, grad_out.shape[2:]):
            return winograd.conv2d_backward(grad_out, x, weight, padding, input_shape,
                                            need_input, need_weight, need_bias=need_bias)
        # ----
        return conv_fast.conv2d_backward(grad_out, x, weight, stride, padding, dilation, groups,
                                         input_shape, need_input, need_weight, need_bias=need_bias,
                                         kept=kept)
    fn = conv2d_backward_numpy if current() == "numpy" else _backward_loops
    grads = fn(grad_out, x, weight, stride, padding, dilation, groups,
               input_shape, need_input, need_weight)
    return grads + (bias_grad(grad_out),) if need_bias else grads


def add_bias(out, bias):
    """out[:, o] += bias[o], in place on a new (N, C, H, W) array we own."""
    n, c = out.shape[:2]
    out.reshape(n, c, -1)[...] += bias.reshape(1, c, 1)    # long contiguous inner loop


def bias_grad(grad_out):
    """dL/dbias = sum of dL/dout over (N, H, W): (N, C, H, W) -> (C,)."""
    n, c = grad_out.shape[:2]
    return np.ascontiguousarray(grad_out).reshape(n, c, -1).sum(axis=2).sum(axis=0)


def conv_transpose2d_forward(x, weight, stride, padding, output_padding, dilation, groups, bias=None):
    """x: (N, Cin, H, W), weight: (Cin, Cout/groups, kH, kW) -> (N, Cout, Ho, Wo) (+ bias (Cout,)).
    The input gradient of a conv2d whose input is (N, Cout, Ho, Wo) and whose
    weight is `weight` read as (Cout_conv=Cin, Cin_conv/groups=Cout/groups, kH, kW)."""
    n, c_in, h, w = x.shape
    kh, kw = weight.shape[2:]
    ho, wo = (conv_transpose_output_size(size, k, s, p, op, d) for size, k, s, p, op, d in
              zip((h, w), (kh, kw), stride, padding, output_padding, dilation))
    out_shape = (n, weight.shape[1] * groups, ho, wo)
    if current() == "numba":       # the bias is added while each sample's result is copied out
        # ---- the sub-pixel Winograd split for 4x4 kernels, stride 2, padding 1 (conv_transpose_sub_pixel.py)
        if conv_transpose_sub_pixel.applies(x.shape, weight.shape, stride, padding, output_padding,
                                            dilation, groups):
            bias = None if bias is None else kernel_array(np.asarray(bias, dtype=x.dtype))
            return conv_transpose_sub_pixel.conv_transpose2d_forward(kernel_array(x), kernel_array(weight),
                                                                     output_padding, bias=bias)
        # ----
        d_input, _ = conv_fast.conv2d_backward(kernel_array(x), None, kernel_array(weight), stride, padding,
                                               dilation, groups, out_shape, need_input=True, need_weight=False,
                                               add_to_input=bias)
        return d_input
    d_input, _ = conv2d_backward(x, None, weight, stride, padding, dilation, groups,
                                 input_shape=out_shape, need_input=True, need_weight=False)
    if bias is not None:
        add_bias(d_input, bias)
    return d_input


def conv_transpose2d_backward(grad_out, x, weight, stride, padding, dilation, groups,
                              need_input=True, need_weight=True, need_bias=False):
    """(dL/dx, dL/dW) of conv_transpose2d_forward given dL/dout (N, Cout, Ho, Wo);
    with need_bias, (dL/dx, dL/dW, dL/dbias).
    dx = conv2d(grad_out, W) (the adjoint of the adjoint); dW = conv2d's weight
    gradient with conv input grad_out and conv output gradient x; dbias = the
    sums of grad_out's channels."""
    d_input = d_weight = None
    if current() == "numba":
        # ---- the sub-pixel Winograd split for 4x4 kernels, stride 2, padding 1 (conv_transpose_sub_pixel.py)
        output_padding = (grad_out.shape[2] - 2 * x.shape[2], grad_out.shape[3] - 2 * x.shape[3])
        if conv_transpose_sub_pixel.applies(x.shape, weight.shape, stride, padding, output_padding,
                                            dilation, groups):
            return conv_transpose_sub_pixel.conv_transpose2d_backward(
                kernel_array(grad_out), kernel_array(x), kernel_array(weight), need_input, need_weight,
                need_bias=need_bias)
        # ----
    if need_input and need_weight and current() == "numba":    # one pass over grad_out for all three
        return conv_fast.conv2d_forward(kernel_array(grad_out), kernel_array(weight),
                                        stride, padding, dilation, groups, *x.shape[2:],
                                        grad_for_weight=kernel_array(x), need_input_sums=need_bias)
    if need_input:
        d_input = conv2d_forward(grad_out, weight, stride, padding, dilation, groups,
                                 output_hw=x.shape[2:])
    if need_weight:
        _, d_weight = conv2d_backward(x, grad_out, weight, stride, padding, dilation, groups,
                                      need_input=False, need_weight=True)
    return (d_input, d_weight, bias_grad(grad_out)) if need_bias else (d_input, d_weight)
