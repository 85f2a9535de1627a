"""Resizing images: `F.interpolate` with PyTorch's coordinate rules (nearest, (bi)linear).

    F.interpolate(x, scale_factor=2)                       # (N, C, H, W) -> (N, C, 2H, 2W), nearest
    F.interpolate(x, size=(5, 7), mode="bilinear")         # align_corners=False, as PyTorch

Both modes are separable: the output is a 1-D resize of every row, then of
every column. A 1-D resize from `n_in` to `n_out` points is described by two
"taps" per output point o: input indices (i0[o], i1[o]) and weights
(w0[o], w1[o]), so that

    out[o] = w0[o] * in[i0[o]] + w1[o] * in[i1[o]]       (nearest: one tap, weight 1)

which is a linear map: out = A in, with A (n_out, n_in) holding those two
weights per row. Hence forward is a gather along each axis and
dL/din = A^T dL/dout along each axis (every output point gives its gradient
back to the input points it read, weighted the same way).

Where an output point o reads from (PyTorch's rules; `scale` = n_in / n_out
for a given `size`, or 1 / scale_factor for a given `scale_factor`):
- nearest:                       i0 = min(floor(o * scale), n_in - 1), computed in float32
- linear, align_corners=False:   src = max((o + 0.5) * scale - 0.5, 0)  (pixel centres line up)
- linear, align_corners=True:    src = o * (n_in - 1) / (n_out - 1)      (corner pixels line up)
  then i0 = floor(src), i1 = min(i0 + 1, n_in - 1), w1 = src - i0, w0 = 1 - w1.
- PyTorch's shortcuts, kept so that results match it exactly: an axis whose
  length does not change is copied unchanged, whatever the scale factor (in
  every mode but 1-D nearest, which applies e.g. 1 / 1.05 to it); in 2-D
  nearest, an axis whose length exactly doubles reads i0 = o // 2, whatever
  the scale factor (2.1 on 2 pixels gives 4 outputs reading 0, 0, 1, 1).

Plain NumPy: each resize is a few gathers and one small matrix product per
axis in backward, cheap next to the convolutions around it in a network.
"""
import math
from numbers import Real

import numpy as np

from ..autograd.function import Function

MODES = {"nearest": (3, 4), "linear": (3,), "bilinear": (4,)}   # mode -> input ranks it takes


def output_size(n_in, scale_factor):
    """PyTorch's output length for a scale factor: floor(n_in * scale_factor)."""
    return int(math.floor(float(n_in) * float(scale_factor)))


def taps(n_in, n_out, mode, align_corners, scale_factor=None, images=True):
    """(i0, i1, w0, w1): the two input points each of the n_out output points
    reads, and their weights (float64); see the module docstring. `images`:
    the input is 2-D (H, W), where nearest takes PyTorch's two shortcuts."""
    o = np.arange(n_out)                                            # output positions
    if n_out == n_in and (mode != "nearest" or images):             # length unchanged: a copy
        return o, o, np.ones(n_out), np.zeros(n_out)
    if mode == "nearest" and images and n_out == 2 * n_in:          # exactly doubled
        return o // 2, o // 2, np.ones(n_out), np.zeros(n_out)
    if mode == "nearest":
        scale = np.float32(n_in / n_out if scale_factor is None else 1.0 / scale_factor)
        i0 = np.minimum(np.floor(o.astype(np.float32) * scale).astype(np.int64), n_in - 1)
        return i0, i0, np.ones(n_out), np.zeros(n_out)
    if align_corners:
        scale = (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
        source = o * scale                                          # corners on corners
    else:
        scale = n_in / n_out if scale_factor is None else 1.0 / scale_factor
        source = np.maximum((o + 0.5) * scale - 0.5, 0.0)           # centres on centres
    i0 = np.minimum(np.floor(source).astype(np.int64), n_in - 1)    # left neighbour
    i1 = np.minimum(i0 + 1, n_in - 1)                               # right neighbour (clamped)
    w1 = source - i0                                                # how far towards i1
    return i0, i1, 1.0 - w1, w1


def resize_matrix(n_in, axis_taps):
    """The (n_out, n_in) matrix A of one axis' resize: out = A @ in."""
    i0, i1, w0, w1 = axis_taps
    A = np.zeros((len(i0), n_in))
    np.add.at(A, (np.arange(len(i0)), i0), w0)
    np.add.at(A, (np.arange(len(i1)), i1), w1)
    return A


class Interpolate(Function):
    """out = resize along each spatial axis (a gather with weights);
    dL/dx = A^T dL/dout along each spatial axis."""

    def forward(self, x, sizes, mode, align_corners, scale_factors):
        self.in_sizes = x.shape[2:]
        self.axis_taps = [taps(n_in, n_out, mode, align_corners, s, images=x.ndim == 4)
                          for n_in, n_out, s in zip(x.shape[2:], sizes, scale_factors)]
        out = x
        for axis, (i0, i1, w0, w1) in enumerate(self.axis_taps, start=2):
            if mode == "nearest":
                out = np.take(out, i0, axis=axis)                   # copy the nearest point
                continue
            shape = [1] * out.ndim
            shape[axis] = -1                                        # weights along this axis
            out = (np.take(out, i0, axis=axis) * w0.astype(x.dtype).reshape(shape)
                   + np.take(out, i1, axis=axis) * w1.astype(x.dtype).reshape(shape))
        return out                                                  # (N, C, *sizes)

    def backward(self, grad):                                       # (N, C, *sizes)
        for axis, (n_in, axis_taps) in enumerate(zip(self.in_sizes, self.axis_taps), start=2):
            A = resize_matrix(n_in, axis_taps).astype(grad.dtype)   # (n_out, n_in)
            moved = np.moveaxis(grad, axis, -1)                     # (..., n_out)
            grad = np.moveaxis(moved @ A, -1, axis)                 # (..., n_in): A^T per line
        return grad                                                 # (N, C, *in_sizes)


def _per_axis(value, spatial, name):
    """A number or a sequence of `spatial` numbers -> a tuple of `spatial` numbers."""
    if isinstance(value, (tuple, list)):
        if len(value) != spatial:
            raise ValueError(f"interpolate: {name} {tuple(value)} must have one entry per spatial "
                             f"dimension ({spatial})")
        return tuple(value)
    return (value,) * spatial


def interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None,
                recompute_scale_factor=None):
    """Resize (N, C, L) or (N, C, H, W) to `size`, or by `scale_factor`
    (output length floor(n * scale_factor)), with PyTorch's semantics.

    mode: "nearest" (3-D or 4-D input), "linear" (3-D), "bilinear" (4-D).
    align_corners: only for linear/bilinear; None means False.
    recompute_scale_factor=True maps coordinates with n_in / n_out instead of
    1 / scale_factor (as PyTorch).
    """
    shape = tuple(input.shape)
    if mode not in MODES:
        raise ValueError(f"interpolate: unknown mode {mode!r}; choose from {', '.join(MODES)}")
    if len(shape) not in MODES[mode]:
        wanted = " or ".join(f"{n}-D" for n in MODES[mode])
        raise ValueError(f"interpolate: mode {mode!r} takes {wanted} input "
                         f"((N, C, L) or (N, C, H, W)), got shape {shape}")
    if input.dtype.kind != "f" and not (mode == "nearest" and input.dtype.kind in "iub"):
        raise TypeError(f"interpolate: mode {mode!r} needs a floating-point input, got {input.dtype}")
    if mode == "nearest" and align_corners is not None:
        raise ValueError("interpolate: align_corners can only be set with mode 'linear' or 'bilinear'")
    if (size is None) == (scale_factor is None):
        raise ValueError("interpolate: give exactly one of size and scale_factor")
    if size is not None and recompute_scale_factor:
        raise ValueError("interpolate: recompute_scale_factor only applies to a scale_factor, "
                         "not to an explicit size")
    spatial = len(shape) - 2
    if min(shape[2:]) < 1:
        raise ValueError(f"interpolate: input of shape {shape} has an empty spatial dimension")
    if size is not None:
        sizes = _per_axis(size, spatial, "size")
        if not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s >= 1 for s in sizes):
            raise ValueError(f"interpolate: size must hold positive integers, got {size!r}")
        sizes, factors = tuple(int(s) for s in sizes), (None,) * spatial
    else:
        factors = _per_axis(scale_factor, spatial, "scale_factor")
        if not all(isinstance(f, Real) and not isinstance(f, bool) and math.isfinite(f) and f > 0
                   for f in factors):
            raise ValueError(f"interpolate: scale_factor must be positive and finite, got {scale_factor!r}")
        sizes = tuple(output_size(n, f) for n, f in zip(shape[2:], factors))
        if min(sizes) < 1:
            raise ValueError(f"interpolate: scale_factor {scale_factor!r} shrinks input {shape} to "
                             f"an empty output {sizes}")
        factors = (None,) * spatial if recompute_scale_factor else tuple(float(f) for f in factors)
    return Interpolate.apply(input, sizes=sizes, mode=mode, align_corners=bool(align_corners),
                             scale_factors=factors)
