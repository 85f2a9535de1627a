"""Argument checks for conv2d and conv_transpose2d, run in Python before any
kernel: a mistake becomes a ValueError/TypeError that names the op, the
shapes and what was expected, never a Numba crash or a wrong-shaped result.
"""
import numbers

import numpy as np

from ..kernels.geometry import DTYPES, as_pair, conv_output_size, conv_transpose_output_size


def _check_arrays(op, x, weight, bias, weight_layout):
    """Ranks and dtypes shared by both ops."""
    if x.ndim != 4:
        raise ValueError(f"{op}: expected a 4-D input (N, C, H, W), got shape {x.shape}")
    if weight.ndim != 4:
        raise ValueError(f"{op}: expected a 4-D weight {weight_layout}, got shape {weight.shape}")
    for name, array in (("input", x), ("weight", weight), ("bias", bias)):
        if array is not None and array.dtype not in DTYPES:
            raise TypeError(f"{op}: {name} of shape {array.shape} has dtype {array.dtype}; "
                            "expected float32 or float64")
    for name, array in (("weight", weight), ("bias", bias)):
        if array is not None and array.dtype != x.dtype:
            raise TypeError(f"{op}: input has dtype {x.dtype} but {name} has dtype {array.dtype}; "
                            "convert one of them (x.float() / x.double())")
    if min(weight.shape[1:]) < 1 or min(x.shape[1:]) < 1:
        raise ValueError(f"{op}: input of shape {x.shape} and weight of shape {weight.shape} "
                         "must have at least one channel, row and column")


def _check_groups(op, groups):
    if isinstance(groups, (bool, np.bool_)) or not isinstance(groups, numbers.Integral):
        raise TypeError(f"{op}: groups must be an int, got {groups!r}")
    if groups < 1:
        raise ValueError(f"{op}: groups must be >= 1, got {groups}")
    return int(groups)


def _check_bias(op, bias, channels, x_shape, weight_shape):
    if bias is not None and bias.shape != (channels,):
        raise ValueError(f"{op}: bias of shape {bias.shape} does not match the {channels} output "
                         f"channels of input {x_shape} and weight {weight_shape}; expected ({channels},)")


def check_conv2d(x, weight, bias, stride, padding, dilation, groups):
    """Validate conv2d's arguments; return (stride, padding, dilation, groups) as pairs/int."""
    op = "conv2d"
    _check_arrays(op, x, weight, bias, "(Cout, Cin/groups, kH, kW)")
    stride = as_pair(op, "stride", stride, 1)
    padding = as_pair(op, "padding", padding, 0)
    dilation = as_pair(op, "dilation", dilation, 1)
    groups = _check_groups(op, groups)
    c_in, c_out = x.shape[1], weight.shape[0]
    if c_in % groups or c_out % groups:
        raise ValueError(f"{op}: groups={groups} must divide both the input channels of {x.shape} "
                         f"and the output channels of weight {weight.shape}")
    if weight.shape[1] * groups != c_in:
        raise ValueError(f"{op}: input of shape {x.shape} has {c_in} channels, but weight of shape "
                         f"{weight.shape} expects {weight.shape[1] * groups} (= {weight.shape[1]} x groups={groups})")
    _check_bias(op, bias, c_out, x.shape, weight.shape)
    for axis, size, k, p, d in zip("HW", x.shape[2:], weight.shape[2:], padding, dilation):
        if d * (k - 1) + 1 > size + 2 * p:
            raise ValueError(f"{op}: kernel of size {k} (dilation {d}, spanning {d * (k - 1) + 1}) is "
                             f"larger than the padded input along {axis}: {size} + 2*{p} = {size + 2 * p} "
                             f"(input {x.shape}, weight {weight.shape})")
    return stride, padding, dilation, groups


def check_conv_transpose2d(x, weight, bias, stride, padding, output_padding, groups, dilation):
    """Validate conv_transpose2d's arguments; return (stride, padding, output_padding,
    dilation, groups, output (Ho, Wo))."""
    op = "conv_transpose2d"
    _check_arrays(op, x, weight, bias, "(Cin, Cout/groups, kH, kW)")
    stride = as_pair(op, "stride", stride, 1)
    padding = as_pair(op, "padding", padding, 0)
    output_padding = as_pair(op, "output_padding", output_padding, 0)
    dilation = as_pair(op, "dilation", dilation, 1)
    groups = _check_groups(op, groups)
    c_in = x.shape[1]
    if weight.shape[0] != c_in:
        raise ValueError(f"{op}: input of shape {x.shape} has {c_in} channels, but weight of shape "
                         f"{weight.shape} expects {weight.shape[0]} (weight is (Cin, Cout/groups, kH, kW))")
    if c_in % groups:
        raise ValueError(f"{op}: groups={groups} must divide the {c_in} input channels of {x.shape}")
    _check_bias(op, bias, weight.shape[1] * groups, x.shape, weight.shape)
    for op_pad, s, d in zip(output_padding, stride, dilation):
        if op_pad >= s and op_pad >= d:
            raise ValueError(f"{op}: output_padding {output_padding} must be smaller than stride "
                             f"{stride} or dilation {dilation} along each axis")
    out_hw = []
    for axis, size, k, s, p, op_pad, d in zip("HW", x.shape[2:], weight.shape[2:], stride,
                                             padding, output_padding, dilation):
        out = conv_transpose_output_size(size, k, s, p, op_pad, d)
        if out < 1:
            raise ValueError(f"{op}: output size along {axis} would be ({size} - 1)*{s} - 2*{p} + "
                             f"{d}*({k} - 1) + {op_pad} + 1 = {out} < 1 (input {x.shape}, weight {weight.shape}); "
                             "reduce the padding")
        out_hw.append(out)
    return stride, padding, output_padding, dilation, groups, tuple(out_hw)
