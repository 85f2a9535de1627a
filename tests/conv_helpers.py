"""Shared pieces of the convolution tests: hypothesis strategies for valid
configurations, an independent SciPy reference, and a runner that computes
forward and backward through minidl under a chosen kernel backend.
"""
import numpy as np
import scipy.signal
from hypothesis import strategies as st

import minidl as mdl
from minidl import kernels
from minidl.ops.conv import conv2d, conv_transpose2d

# Tolerances per dtype, relative to the size of the terms summed: float64 agrees
# to rounding (~1e-16 per term); float32 accumulates ~1e-7 per term, and the
# backends sum in different orders (BLAS blocking vs einsum).
TOLERANCE = {np.float32: dict(rtol=2e-4, atol=2e-4), np.float64: dict(rtol=1e-10, atol=1e-10)}


# error a transform-domain convolution (Winograd) may make, relative to the
# magnitude of the terms summed into each entry
TRANSFORM_RELATIVE_ERROR = {np.float32: 8e-6, np.float64: 2e-14}


def assert_close_in_magnitude(name, got, want, magnitude, dtype):
    """`got` has `dtype`, `want`'s shape, and lies within
    TRANSFORM_RELATIVE_ERROR[dtype] * (magnitude + 1) of `want` everywhere, where
    `magnitude` is the same sum taken over absolute values."""
    assert got.dtype == dtype and got.shape == want.shape, name
    allowed = TRANSFORM_RELATIVE_ERROR[dtype] * (magnitude + 1.0)
    excess = np.abs(got.astype(np.float64) - want) - allowed
    assert excess.max() <= 0, f"{name}: worst excess {excess.max():.3g} at {np.unravel_index(excess.argmax(), excess.shape)}"


def maybe_transposed(rng, shape, dtype, non_contiguous):
    """A standard-normal array of `shape`; when non_contiguous, a transposed view
    of every other column of a (..., W, 2H) array, so its memory is not
    C-contiguous (unless every axis but one has length 1)."""
    if not non_contiguous:
        return rng.standard_normal(shape).astype(dtype)
    base = rng.standard_normal(shape[:-2] + (shape[-1], 2 * shape[-2])).astype(dtype)
    view = base[..., ::2].swapaxes(-1, -2)
    assert view.shape == tuple(shape)
    assert not view.flags.c_contiguous or sum(d > 1 for d in shape) <= 1
    return view


@st.composite
def conv2d_configs(draw, max_size=7):
    """A valid conv2d configuration: the kernel (dilated) fits the padded input."""
    groups = draw(st.integers(1, 3))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    spans = (dilation[0] * (kh - 1) + 1, dilation[1] * (kw - 1) + 1)
    # input size at least (span - 2*padding) so the kernel fits, and at least 1
    h = draw(st.integers(max(1, spans[0] - 2 * padding[0]), max(1, spans[0] - 2 * padding[0]) + max_size - 3))
    w = draw(st.integers(max(1, spans[1] - 2 * padding[1]), max(1, spans[1] - 2 * padding[1]) + max_size - 3))
    return dict(n=draw(st.integers(1, 3)), c_in=groups * draw(st.integers(1, 2)),
                c_out=groups * draw(st.integers(1, 2)), h=h, w=w, kh=kh, kw=kw,
                stride=stride, padding=padding, dilation=dilation, groups=groups,
                bias=draw(st.booleans()), dtype=draw(st.sampled_from([np.float32, np.float64])),
                non_contiguous=draw(st.booleans()), seed=draw(st.integers(0, 2**16)))


@st.composite
def conv_transpose2d_configs(draw, max_size=5):
    """A valid conv_transpose2d configuration (positive output size, legal output_padding)."""
    groups = draw(st.integers(1, 3))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    output_padding = tuple(draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation))
    h, w = draw(st.integers(1, max_size)), draw(st.integers(1, max_size))
    padding = []
    for size, k, s, d, op in zip((h, w), (kh, kw), stride, dilation, output_padding):
        largest = ((size - 1) * s + d * (k - 1) + op) // 2      # keeps the output size >= 1
        padding.append(draw(st.integers(0, min(2, largest))))
    return dict(n=draw(st.integers(1, 3)), c_in=groups * draw(st.integers(1, 2)),
                c_out=groups * draw(st.integers(1, 2)), h=h, w=w, kh=kh, kw=kw,
                stride=stride, padding=tuple(padding), output_padding=output_padding,
                dilation=dilation, groups=groups, bias=draw(st.booleans()),
                dtype=draw(st.sampled_from([np.float32, np.float64])),
                non_contiguous=draw(st.booleans()), seed=draw(st.integers(0, 2**16)))


def make_arrays(cfg, transpose=False):
    """x, weight, bias (or None) for a configuration; weight in the op's layout."""
    rng = np.random.default_rng(cfg["seed"])
    g, dtype, nc = cfg["groups"], cfg["dtype"], cfg["non_contiguous"]
    x = maybe_transposed(rng, (cfg["n"], cfg["c_in"], cfg["h"], cfg["w"]), dtype, nc)
    if transpose:
        w_shape = (cfg["c_in"], cfg["c_out"] // g, cfg["kh"], cfg["kw"])
    else:
        w_shape = (cfg["c_out"], cfg["c_in"] // g, cfg["kh"], cfg["kw"])
    weight = maybe_transposed(rng, w_shape, dtype, nc)
    bias = rng.standard_normal(cfg["c_out"]).astype(dtype) if cfg["bias"] else None
    return x, weight, bias


def run(op, backend, x, weight, bias, options, grad_seed=1):
    """Forward and backward of `op` under `backend`: (out, dx, dweight, dbias)."""
    fn = conv2d if op == "conv2d" else conv_transpose2d
    tensors = [mdl.Tensor(a, requires_grad=True) for a in (x, weight, bias) if a is not None]
    with kernels.use(backend):
        out = fn(*tensors[:2], tensors[2] if bias is not None else None, **options)
        upstream = np.random.default_rng(grad_seed).standard_normal(out.shape).astype(out.dtype)
        out.backward(upstream)
    grads = [t.grad for t in tensors] + ([None] if bias is None else [])
    return (out.data, *grads)


def scipy_conv2d(x, weight, bias, stride, padding, dilation, groups):
    """conv2d from scipy.signal.correlate, one (sample, output channel, input
    channel) image at a time: an independent reference for the forward pass."""
    n, c_in, h, w = x.shape
    c_out, cg, kh, kw = weight.shape
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    cog = c_out // groups
    x_pad = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    dilated = np.zeros((c_out, cg, dh * (kh - 1) + 1, dw * (kw - 1) + 1), x.dtype)
    dilated[:, :, ::dh, ::dw] = weight                    # dilation = zeros between the taps
    full = None
    for b in range(n):
        for o in range(c_out):
            g = o // cog
            acc = sum(scipy.signal.correlate(x_pad[b, g * cg + c], dilated[o, c], mode="valid")
                      for c in range(cg))
            if full is None:
                full = np.zeros((n, c_out) + acc.shape, np.float64)
            full[b, o] = acc
    out = full[:, :, ::sh, ::sw]                          # stride = keep every s-th position
    if bias is not None:
        out = out + bias.reshape(1, -1, 1, 1)
    return out
