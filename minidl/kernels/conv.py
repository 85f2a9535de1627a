"""Convolution kernels: conv2d forward and backward by im2col + GEMM, and
conv_transpose2d as conv2d's adjoint. Pure ndarrays, no autograd.

Contract (checked by `minidl.ops.conv` before anything here runs):
- x: (N, Cin, H, W), weight: (Cout, Cin/groups, kH, kW), both float32 or both
  float64; stride, padding, dilation are pairs of ints; groups divides Cin, Cout.
- Inputs are only read. Every returned array is new; scratch space (the column
  matrices) lives in a small reusable workspace, never in the caller's arrays.

Backends (`minidl.kernels.use`):
- "numba":  `conv_numba.py`: a parallel loop over samples; per sample and group,
            a compiled im2col on a zero-padded copy of the sample (`conv_padded.py`:
            branch-free, and for stride 1 one contiguous copy per row), then a
            single-threaded GEMM inside @njit; backward: dW from the columns,
            dX = col2im(W^T @ gy).
- "python": the reference loops of `conv_im2col.py` (which test each index
            against the padding instead of padding first) interpreted through
            `.py_func`, over chunks of samples with one NumPy GEMM per chunk and
            group (below): slow, the readable reference for tiny shapes. The
            backend tests compare it with the compiled path, so two different
            loop formulations check each other.
- "numpy":  the vectorised twin in `conv_numpy.py` (sliding_window_view).

conv_transpose2d(x, W) is the adjoint of conv2d(., W): its forward is
conv2d's input gradient, and its backward needs conv2d's forward (for dx)
and conv2d's weight gradient with the roles of input and output swapped (dW).
"""
import numpy as np

from . import conv_numba, conv_numpy
from .backend import current, interpreted
from .conv_im2col import col2im, im2col
from .conv_numpy import output_size

# Largest column matrix, in elements, built at once (8 MiB of float32): big
# enough for efficient GEMMs, small enough to stay in cache-friendly territory
# and to bound memory for large batches (the batch is processed in chunks).
COLUMN_BUDGET = 1 << 21

_workspace = {}


def _scratch(tag, shape, dtype):
    """A reusable C-contiguous scratch array (contents undefined). Reusing it
    avoids faulting fresh pages on every call (PERF.md, pitfall 2)."""
    size = int(np.prod(shape))
    key = (tag, np.dtype(dtype).str)
    buffer = _workspace.get(key)
    if buffer is None or buffer.size < size:
        buffer = np.empty(size, dtype)
        _workspace[key] = buffer
    return buffer[:size].reshape(shape)


def _chunk(n, k, positions):
    """How many samples go into one column matrix of k rows x (m * positions)."""
    return max(1, min(n, COLUMN_BUDGET // max(1, k * positions)))


def _forward_im2col(x, weight, stride, padding, dilation, groups, output_hw, im2col_fn):
    """conv2d forward by im2col + GEMM over chunks of samples (the "python" backend,
    with `im2col_fn = im2col.py_func`); see the module docstring."""
    n, c_in, h, w = x.shape
    c_out, cg, kh, kw = weight.shape
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    ho, wo = output_hw or (output_size(h, kh, sh, ph, dh), output_size(w, kw, sw, pw, dw))
    positions, k, cog = ho * wo, cg * kh * kw, c_out // groups
    x = np.ascontiguousarray(x)
    w_mat = np.ascontiguousarray(weight).reshape(groups, cog, k)         # (G, cog, K)
    out = np.empty((n, c_out, positions), x.dtype)                       # (N, Cout, ho*wo)
    m_max = _chunk(n, k, positions)
    for n0 in range(0, n, m_max):
        m = min(m_max, n - n0)
        cols = _scratch("cols", (k, m * positions), x.dtype)             # (K, m*ho*wo)
        product = _scratch("product", (cog, m * positions), x.dtype)     # (cog, m*ho*wo)
        for g in range(groups):
            im2col_fn(x, g * cg, kh, kw, sh, sw, ph, pw, dh, dw, ho, wo, n0, cols)
            np.matmul(w_mat[g], cols, out=product)
            # product[o, s*P + p] belongs to out[n0 + s, g*cog + o, p]
            out[n0:n0 + m, g * cog:(g + 1) * cog] = product.reshape(cog, m, positions).transpose(1, 0, 2)
    return out.reshape(n, c_out, ho, wo)


def _backward_im2col(grad_out, x, weight, stride, padding, dilation, groups,
                     input_shape, need_input, need_weight, im2col_fn, col2im_fn):
    """conv2d backward: dW_g = sum over chunks of gy_g @ cols_g^T, dX = col2im(W_g^T @ gy_g)."""
    n, c_in, h, w = input_shape
    c_out, cg, kh, kw = weight.shape
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    ho, wo = grad_out.shape[2:]
    positions, k, cog = ho * wo, cg * kh * kw, c_out // groups
    dtype = grad_out.dtype
    gy = np.ascontiguousarray(grad_out).reshape(n, c_out, positions)     # (N, Cout, P)
    w_mat = np.ascontiguousarray(weight).reshape(groups, cog, k)         # (G, cog, K)
    if need_weight:
        x = np.ascontiguousarray(x)
    d_input = np.zeros(input_shape, dtype) if need_input else None       # col2im adds into it
    d_weight = np.zeros((groups, cog, k), dtype) if need_weight else None
    m_max = _chunk(n, k, positions)
    for n0 in range(0, n, m_max):
        m = min(m_max, n - n0)
        gy_t = _scratch("gy_t", (c_out, m * positions), dtype)           # (Cout, m*P)
        gy_t.reshape(c_out, m, positions)[...] = gy[n0:n0 + m].transpose(1, 0, 2)
        cols = _scratch("cols", (k, m * positions), dtype)               # (K, m*P)
        for g in range(groups):
            gy_g = gy_t[g * cog:(g + 1) * cog]                           # (cog, m*P), contiguous rows
            if need_weight:
                im2col_fn(x, g * cg, kh, kw, sh, sw, ph, pw, dh, dw, ho, wo, n0, cols)
                d_weight[g] += gy_g @ cols.T                             # (cog, K)
            if need_input:
                np.matmul(w_mat[g].T, gy_g, out=cols)                    # column gradient (K, m*P)
                col2im_fn(cols, g * cg, kh, kw, sh, sw, ph, pw, dh, dw, ho, wo, n0, d_input)
    if need_weight:
        d_weight = d_weight.reshape(weight.shape)
    return d_input, d_weight


def _numba_forward(x, weight, stride, padding, dilation, groups, output_hw, bias=None):
    n, c_in, h, w = x.shape
    kh, kw = weight.shape[2:]
    ho, wo = output_hw or (output_size(h, kh, stride[0], padding[0], dilation[0]),
                           output_size(w, kw, stride[1], padding[1], dilation[1]))
    return conv_numba.conv2d_forward(np.ascontiguousarray(x), np.ascontiguousarray(weight),
                                     stride, padding, dilation, groups, ho, wo, bias=bias)


def _python_forward(*args):
    return _forward_im2col(*args, interpreted(im2col))


def _numba_backward(grad_out, x, weight, stride, padding, dilation, groups,
                    input_shape, need_input, need_weight):
    x = np.ascontiguousarray(x) if need_weight else None
    return conv_numba.conv2d_backward(np.ascontiguousarray(grad_out), x, np.ascontiguousarray(weight),
                                      stride, padding, dilation, groups, input_shape,
                                      need_input, need_weight)


def _python_backward(*args):
    return _backward_im2col(*args, interpreted(im2col), interpreted(col2im))


def conv2d_forward(x, weight, stride, padding, dilation, groups, output_hw=None, bias=None):
    """out[n, o, oy, ox] = sum_{c,i,j} W[o, c, i, j] * x_pad[n, g*Cg + c, oy*sh + i*dh, ox*sw + j*dw] (+ bias[o]),
    g = o // (Cout/groups). Returns a new (N, Cout, Ho, Wo) array; `output_hw`
    overrides (Ho, Wo) (used by conv_transpose2d when output_padding >= stride).
    The numba kernel adds the bias while each output block is in cache."""
    if current() == "numba":
        return _numba_forward(x, weight, stride, padding, dilation, groups, output_hw, bias)
    fn = conv_numpy.conv2d_forward if current() == "numpy" else _python_forward
    out = fn(x, weight, stride, padding, dilation, groups, output_hw)
    if bias is not None:
        add_bias(out, bias)
    return out


def add_bias(out, bias):
    """out[:, o] += bias[o], in place on a new (N, C, H, W) array we own."""
    n, c = out.shape[:2]
    out.reshape(n, c, -1)[...] += bias.reshape(1, c, 1)    # long contiguous inner loop


def bias_grad(grad_out):
    """dL/dbias = sum of dL/dout over (N, H, W): (N, C, H, W) -> (C,)."""
    n, c = grad_out.shape[:2]
    return np.ascontiguousarray(grad_out).reshape(n, c, -1).sum(axis=2).sum(axis=0)


def conv2d_backward(grad_out, x, weight, stride, padding, dilation, groups,
                    input_shape=None, need_input=True, need_weight=True):
    """(dL/dx, dL/dW) of conv2d_forward given dL/dout (N, Cout, Ho, Wo); either
    is None when not needed. `x` may be None if need_weight is False, then
    `input_shape` gives dx's shape."""
    input_shape = tuple(input_shape if input_shape is not None else x.shape)
    fn = {"numba": _numba_backward, "numpy": conv_numpy.conv2d_backward,
          "python": _python_backward}[current()]
    return fn(grad_out, x, weight, stride, padding, dilation, groups,
              input_shape, need_input, need_weight)


def conv_transpose2d_output_hw(h, w, weight_shape, stride, padding, output_padding, dilation):
    """(Ho, Wo) of conv_transpose2d: (H - 1)*s - 2p + d*(k - 1) + output_padding + 1."""
    kh, kw = weight_shape[2:]
    return tuple((size - 1) * s - 2 * p + d * (k - 1) + op + 1 for size, k, s, p, op, d in
                 zip((h, w), (kh, kw), stride, padding, output_padding, dilation))


def conv_transpose2d_forward(x, weight, stride, padding, output_padding, dilation, groups):
    """x: (N, Cin, H, W), weight: (Cin, Cout/groups, kH, kW) -> (N, Cout, Ho, Wo).
    The input gradient of a conv2d whose input is (N, Cout, Ho, Wo) and whose
    weight is `weight` read as (Cout_conv=Cin, Cin_conv/groups=Cout/groups, kH, kW)."""
    n, c_in, h, w = x.shape
    ho, wo = conv_transpose2d_output_hw(h, w, weight.shape, stride, padding, output_padding, dilation)
    out_shape = (n, weight.shape[1] * groups, ho, wo)
    d_input, _ = conv2d_backward(x, None, weight, stride, padding, dilation, groups,
                                 input_shape=out_shape, need_input=True, need_weight=False)
    return d_input


def conv_transpose2d_backward(grad_out, x, weight, stride, padding, dilation, groups,
                              need_input=True, need_weight=True):
    """(dL/dx, dL/dW) of conv_transpose2d_forward given dL/dout (N, Cout, Ho, Wo).
    dx = conv2d(grad_out, W) (the adjoint of the adjoint); dW = conv2d's weight
    gradient with conv input grad_out and conv output gradient x."""
    d_input = d_weight = None
    if need_input and need_weight and current() == "numba":    # one im2col of grad_out for both
        return conv_numba.conv2d_forward(np.ascontiguousarray(grad_out), np.ascontiguousarray(weight),
                                         stride, padding, dilation, groups, *x.shape[2:],
                                         grad_for_weight=np.ascontiguousarray(x))
    if need_input:
        d_input = conv2d_forward(grad_out, weight, stride, padding, dilation, groups,
                                 output_hw=x.shape[2:])
    if need_weight:
        _, d_weight = conv2d_backward(x, grad_out, weight, stride, padding, dilation, groups,
                                      need_input=False, need_weight=True)
    return d_input, d_weight
