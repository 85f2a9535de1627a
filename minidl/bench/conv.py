"""Benchmark suite for conv2d and conv_transpose2d.

For each shape, two cases: forward only, and forward + backward (gradients
for input, weight and bias). Implementations: minidl with the "numba" and
"numpy" backends, PyTorch's default call (if torch is importable; float32,
2 threads), and the interpreted "python" loops on a tiny shape only.
Ratios are taken against minidl-numba: a ratio above 1 means that
implementation is slower than ours.

Shapes that run the channels-last kernels (strided convolutions, small
stride-1 ones, and conv_transpose2d outside the sub-pixel path whose conv2d
is one of those) get one more row per case,
"matmuls only": the same matrix products those kernels run, with nothing
around them (`matmul_floor.py`), the floor of that design.
"""
import numpy as np

from ..kernels import conv_fast, conv_transpose_sub_pixel, winograd
from ..kernels.geometry import conv_output_size, conv_transpose_output_size
from .harness import Case, has_torch
from .matmul_floor import PRODUCTS, matmuls_only
from .. import kernels
from ..autograd.tensor import Tensor
from ..ops.conv import conv2d, conv_transpose2d

TABLE_NOTE = (
    "Rates count the multiply-adds of a direct convolution. Where minidl runs Winograd "
    "F(2x2, 3x3) (stride-1 3x3 convolutions with at least 16 input and output channels, "
    "minidl/kernels/winograd.py), it does fewer multiplications than that count, so its "
    "rate is an effective rate and can exceed what matrix products reach on the same cores. "
    "\"matmuls only\" rows time just the matrix products minidl's channels-last kernels run for that "
    "shape (same shapes, chunks and threads, minidl/bench/matmul_floor.py): the floor of im2col with "
    "these products, which no faster copying can go below.")

# (op, label, N, Cin, Cout, H, W, k, stride, padding, output_padding)
STANDARD = [
    ("conv2d", "N64 1->32 28x28 k3 p1", 64, 1, 32, 28, 28, 3, 1, 1, 0),
    ("conv2d", "N64 32->64 14x14 k3 p1", 64, 32, 64, 14, 14, 3, 1, 1, 0),
    ("conv2d", "N32 3->64 32x32 k3 p1", 32, 3, 64, 32, 32, 3, 1, 1, 0),
    ("conv2d", "N16 64->128 16x16 k3 s2 p1", 16, 64, 128, 16, 16, 3, 2, 1, 0),
    ("conv_transpose2d", "N64 128->64 7x7->14x14 k4 s2 p1", 64, 128, 64, 7, 7, 4, 2, 1, 0),
]
QUICK = [
    ("conv2d", "N4 3->8 16x16 k3 p1", 4, 3, 8, 16, 16, 3, 1, 1, 0),
    ("conv_transpose2d", "N4 8->8 7x7->14x14 k4 s2 p1", 4, 8, 8, 7, 7, 4, 2, 1, 0),   # channels last: matmuls row
]
TINY = [
    ("conv2d", "N2 2->3 8x8 k3 p1 (tiny)", 2, 2, 3, 8, 8, 3, 1, 1, 0),
    ("conv_transpose2d", "N2 3->2 4x4->8x8 k4 s2 p1 (tiny)", 2, 3, 2, 4, 4, 4, 2, 1, 0),
]


def _inputs(op, n, c_in, c_out, h, w, k, stride, padding, output_padding, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c_in, h, w)).astype(np.float32)            # (N, Cin, H, W)
    if op == "conv2d":
        weight = rng.standard_normal((c_out, c_in, k, k)).astype(np.float32)   # (Cout, Cin, k, k)
    else:
        weight = rng.standard_normal((c_in, c_out, k, k)).astype(np.float32)   # (Cin, Cout, k, k)
    bias = rng.standard_normal(c_out).astype(np.float32)
    options = dict(stride=stride, padding=padding)
    if op == "conv_transpose2d":
        options["output_padding"] = output_padding
    return x, weight, bias, options


def _minidl(op, backend, x, weight, bias, options, backward):
    fn = conv2d if op == "conv2d" else conv_transpose2d
    tensors = [Tensor(a, requires_grad=backward) for a in (x, weight, bias)]
    grad = [None]

    def run():
        with kernels.use(backend):
            out = fn(*tensors, **options)
            if backward:
                if grad[0] is None:
                    grad[0] = np.ones_like(out.data)
                for t in tensors:
                    t.grad = None
                out.backward(grad[0])
        return out
    return run


def _torch(op, x, weight, bias, options, backward):
    import torch
    torch.set_num_threads(2)
    fn = torch.nn.functional.conv2d if op == "conv2d" else torch.nn.functional.conv_transpose2d
    tensors = [torch.from_numpy(a.copy()).requires_grad_(backward) for a in (x, weight, bias)]
    grad = [None]

    def run():
        if not backward:
            with torch.no_grad():
                return fn(*tensors, **options)
        out = fn(*tensors, **options)
        if grad[0] is None:
            grad[0] = torch.ones_like(out)
        for t in tensors:
            t.grad = None
        out.backward(grad[0])
        return out
    return run


def _flops(op, n, c_in, c_out, h, w, k, stride, padding, output_padding):
    """Multiply-adds x 2 of the forward pass (the backward does twice as many)."""
    if op == "conv2d":
        ho, wo = conv_output_size(h, k, stride, padding), conv_output_size(w, k, stride, padding)
        return 2.0 * n * c_out * ho * wo * c_in * k * k
    return 2.0 * n * c_in * h * w * c_out * k * k        # every input pixel meets every tap


def _pair(value):
    return (value, value)


def _products(op, n, c_in, c_out, h, w, k, stride, padding, output_padding):
    """(per, K, Cout, the forward's products) of the channels-last conv2d this
    shape runs (see matmul_floor.py; forward and backward run all PRODUCTS),
    or None when it runs another path."""
    if op == "conv2d":
        ho, wo = conv_output_size(h, k, stride, padding), conv_output_size(w, k, stride, padding)
        if winograd.applies((n, c_in, h, w), (c_out, c_in, k, k), _pair(stride), _pair(padding), (1, 1), 1,
                            (ho, wo)):
            return None
        weight_shape, input_width, per, forward = (c_out, c_in, k, k), w, ho * wo, ("forward",)
    else:                  # conv_transpose2d: a conv2d from its output (c_out channels) to x
        if conv_transpose_sub_pixel.applies((n, c_in, h, w), (c_in, c_out, k, k), _pair(stride), _pair(padding),
                                            _pair(output_padding), (1, 1), 1):
            return None
        wo = w
        input_width = conv_transpose_output_size(w, k, stride, padding, output_padding)
        weight_shape, per, forward = (c_in, c_out, k, k), h * w, ("input_grad",)
    if not conv_fast.takes_channels_last(input_width, weight_shape, _pair(stride), _pair(padding), (1, 1), 1, wo):
        return None
    return per, weight_shape[1] * k * k, weight_shape[0], forward


def cases(quick=False):
    torch_ok = has_torch()
    for spec in (QUICK if quick else STANDARD):
        op, label = spec[0], spec[1]
        x, weight, bias, options = _inputs(op, *spec[2:])
        flops = _flops(op, *spec[2:])
        for backward, suffix, factor in ((False, "fwd", 1), (True, "fwd+bwd", 3)):
            impls = {f"numba {suffix}": _minidl(op, "numba", x, weight, bias, options, backward),
                     f"numpy {suffix}": _minidl(op, "numpy", x, weight, bias, options, backward)}
            if torch_ok:
                impls[f"torch {suffix}"] = _torch(op, x, weight, bias, options, backward)
            products = _products(op, *spec[2:])
            if products is not None:
                per, k, conv_out, forward_products = products
                impls[f"matmuls only {suffix}"] = matmuls_only(spec[2], per, k, conv_out,
                                                               PRODUCTS if backward else forward_products)
            yield Case(op, label, impls, work=factor * flops, baseline=f"numba {suffix}")
    for spec in TINY:                                     # interpreted loops: tiny shapes only
        op, label = spec[0], spec[1]
        x, weight, bias, options = _inputs(op, *spec[2:])
        impls = {f"{b} fwd+bwd": _minidl(op, b, x, weight, bias, options, True)
                 for b in ("numba", "numpy", "python")}
        yield Case(op, label, impls, work=3 * _flops(op, *spec[2:]), baseline="numba fwd+bwd")
