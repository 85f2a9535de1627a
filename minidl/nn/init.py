"""Weight initialisation, in place on a Tensor's `.data`, as in `torch.nn.init`.

All draws come from `minidl.random.generator()`, so `mdl.manual_seed` fixes them.

fan_in and fan_out: for a Linear weight (out, in), fan_in = in and fan_out = out.
For a conv weight (Cout, Cin, kH, kW) each output sees Cin*kH*kW inputs, so
fan_in = Cin*kH*kW and fan_out = Cout*kH*kW. The rule used for any layout is
fan_in = shape[1] * receptive field, fan_out = shape[0] * receptive field, where
the receptive field is the product of shape[2:].

Kaiming (He) init keeps the variance of activations about constant through
ReLU-like layers: std = gain / sqrt(fan), gain = sqrt(2 / (1 + a^2)). Its
uniform version draws from U(-bound, bound) with bound = std * sqrt(3), since a
uniform variable on [-b, b] has standard deviation b / sqrt(3).
Xavier (Glorot) init averages the two fans: std = gain * sqrt(2 / (fan_in + fan_out)).
"""
import math

import numpy as np

from .. import random


def calculate_fan_in_and_fan_out(tensor):
    """(fan_in, fan_out) of a weight laid out (out, in, *kernel)."""
    shape = tensor.shape
    if len(shape) < 2:
        raise ValueError(f"calculate_fan_in_and_fan_out: needs a weight with at least 2 "
                         f"dimensions, got shape {shape}")
    receptive_field = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return shape[1] * receptive_field, shape[0] * receptive_field


def calculate_gain(nonlinearity, param=None):
    """The factor by which a nonlinearity changes the standard deviation (PyTorch's table)."""
    if nonlinearity in ("linear", "conv1d", "conv2d", "conv_transpose2d", "sigmoid"):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else float(param)
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"calculate_gain: unsupported nonlinearity '{nonlinearity}'")


def _fill(tensor, values):
    tensor.data[...] = values            # keeps the tensor's dtype and its identity
    return tensor


def uniform_(tensor, a=0.0, b=1.0):
    """Fill with draws from U(a, b)."""
    if not a <= b:
        raise ValueError(f"uniform_: need a <= b, got a={a}, b={b}")
    return _fill(tensor, random.generator().uniform(a, b, size=tensor.shape))


def normal_(tensor, mean=0.0, std=1.0):
    """Fill with draws from N(mean, std^2)."""
    if std < 0:
        raise ValueError(f"normal_: std must be >= 0, got {std}")
    return _fill(tensor, random.generator().normal(mean, std, size=tensor.shape))


def trunc_normal_(tensor, mean=0.0, std=1.0, a=-2.0, b=2.0):
    """Fill with N(mean, std^2) draws redrawn until they fall in [a, b] (absolute bounds)."""
    if not a < b:
        raise ValueError(f"trunc_normal_: need a < b, got a={a}, b={b}")
    generator = random.generator()
    values = generator.normal(mean, std, size=tensor.shape)
    outside = (values < a) | (values > b)
    while outside.any():                                  # rejection sampling
        values[outside] = generator.normal(mean, std, size=int(outside.sum()))
        outside = (values < a) | (values > b)
    return _fill(tensor, values)


def constant_(tensor, value):
    return _fill(tensor, value)


def zeros_(tensor):
    return _fill(tensor, 0)


def ones_(tensor):
    return _fill(tensor, 1)


def _fan(tensor, mode):
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    if mode == "fan_in":
        return fan_in
    if mode == "fan_out":
        return fan_out
    raise ValueError(f"kaiming init: mode must be 'fan_in' or 'fan_out', got '{mode}'")


def kaiming_uniform_(tensor, a=0.0, mode="fan_in", nonlinearity="leaky_relu"):
    """U(-bound, bound), bound = gain * sqrt(3 / fan). With a=sqrt(5) (what Linear and
    Conv2d use) the bound is exactly 1 / sqrt(fan_in)."""
    std = calculate_gain(nonlinearity, a) / math.sqrt(_fan(tensor, mode))
    bound = math.sqrt(3.0) * std
    return uniform_(tensor, -bound, bound)


def kaiming_normal_(tensor, a=0.0, mode="fan_in", nonlinearity="leaky_relu"):
    """N(0, std^2), std = gain / sqrt(fan)."""
    std = calculate_gain(nonlinearity, a) / math.sqrt(_fan(tensor, mode))
    return normal_(tensor, 0.0, std)


def xavier_uniform_(tensor, gain=1.0):
    """U(-bound, bound), bound = gain * sqrt(6 / (fan_in + fan_out))."""
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -bound, bound)


def xavier_normal_(tensor, gain=1.0):
    """N(0, std^2), std = gain * sqrt(2 / (fan_in + fan_out))."""
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)))
