"""Convolution layers: `Conv2d` and `ConvTranspose2d`, thin owners of a weight
and a bias around `F.conv2d` / `F.conv_transpose2d`.

Weight layouts (PyTorch's):
    Conv2d           weight (out_channels, in_channels // groups, kH, kW)
    ConvTranspose2d  weight (in_channels, out_channels // groups, kH, kW)

Default initialisation is PyTorch's: kaiming_uniform_(a=sqrt(5)) on the weight,
which is U(-1/sqrt(fan_in), 1/sqrt(fan_in)), and the same range for the bias.
fan_in is read off the weight as shape[1] * kH * kW for both layouts, as
PyTorch does: for Conv2d that is the number of inputs one output sees
(in_channels/groups * kH * kW); for ConvTranspose2d it is out_channels/groups * kH * kW.
"""
import math

import numpy as np

from .. import functional as F
from ..kernels.geometry import as_pair
from . import init
from .module import Module
from .parameter import Parameter


class _ConvNd(Module):
    """What Conv2d and ConvTranspose2d share: checking the settings, the
    parameters, their initialisation and the repr."""

    transposed = False

    def __init__(self, in_channels, out_channels, kernel_size, stride, padding, dilation,
                 groups, bias, output_padding=0, dtype=None):
        super().__init__()
        layer = type(self).__name__
        if in_channels < 1 or out_channels < 1:
            raise ValueError(f"{layer}: in_channels and out_channels must be positive, "
                             f"got {in_channels} and {out_channels}")
        if groups < 1 or in_channels % groups or out_channels % groups:
            raise ValueError(f"{layer}: in_channels ({in_channels}) and out_channels "
                             f"({out_channels}) must both be divisible by groups ({groups})")
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size = as_pair(layer, "kernel_size", kernel_size)
        self.stride = as_pair(layer, "stride", stride)
        self.dilation = as_pair(layer, "dilation", dilation)
        self.output_padding = as_pair(layer, "output_padding", output_padding)
        self.groups = int(groups)
        if isinstance(padding, str):
            padding = self._padding_from_string(padding)
        self.padding = as_pair(layer, "padding", padding)
        if min(self.kernel_size) < 1 or min(self.stride) < 1 or min(self.dilation) < 1 \
                or min(self.padding) < 0:
            raise ValueError(f"{layer}: kernel_size, stride and dilation must be >= 1 and padding "
                             f">= 0, got kernel_size={self.kernel_size}, stride={self.stride}, "
                             f"dilation={self.dilation}, padding={self.padding}")
        dtype = np.dtype(np.float32 if dtype is None else dtype)
        if self.transposed:
            shape = (self.in_channels, self.out_channels // self.groups) + self.kernel_size
        else:
            shape = (self.out_channels, self.in_channels // self.groups) + self.kernel_size
        self.weight = Parameter(np.empty(shape, dtype=dtype))
        if bias:
            self.bias = Parameter(np.empty(self.out_channels, dtype=dtype))     # (Cout,)
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def _padding_from_string(self, padding):
        layer = type(self).__name__
        if padding == "valid":
            return 0
        if padding == "same" and not self.transposed:
            if self.stride != (1, 1):
                raise ValueError(f"{layer}: padding='same' needs stride 1, got stride={self.stride}")
            total = [d * (k - 1) for d, k in zip(self.dilation, self.kernel_size)]
            if any(t % 2 for t in total):
                raise ValueError(f"{layer}: padding='same' needs an odd effective kernel size "
                                 f"here (kernel_size={self.kernel_size}, dilation={self.dilation})")
            return tuple(t // 2 for t in total)
        raise ValueError(f"{layer}: padding must be an int, a pair, 'valid'"
                         f"{'' if self.transposed else ' or same'}, got {padding!r}")

    def reset_parameters(self):
        """PyTorch's default: weight and bias from U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = init.calculate_fan_in_and_fan_out(self.weight)
            bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
            init.uniform_(self.bias, -bound, bound)

    def _check_input(self, x):
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"{type(self).__name__}: expected input of shape (N, "
                             f"{self.in_channels}, H, W), got shape {tuple(x.shape)}")

    def extra_repr(self):
        text = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}")
        if self.padding != (0, 0):
            text += f", padding={self.padding}"
        if self.dilation != (1, 1):
            text += f", dilation={self.dilation}"
        if self.output_padding != (0, 0):
            text += f", output_padding={self.output_padding}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        if self.bias is None:
            text += ", bias=False"
        return text


class Conv2d(_ConvNd):
    """Conv2d(in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
    groups=1, bias=True): (N, Cin, H, W) -> (N, Cout, H', W') with
    H' = (H + 2 * padding - dilation * (kH - 1) - 1) // stride + 1 (same for W).
    padding may also be 'valid' (0) or 'same' (stride 1, output size = input size)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, dtype=dtype)

    def forward(self, x):                                       # (N, Cin, H, W)
        self._check_input(x)
        return F.conv2d(x, self.weight, self.bias, stride=self.stride, padding=self.padding,
                        dilation=self.dilation, groups=self.groups)       # (N, Cout, H', W')


class ConvTranspose2d(_ConvNd):
    """ConvTranspose2d(in_channels, out_channels, kernel_size, stride=1, padding=0,
    output_padding=0, groups=1, bias=True, dilation=1): the gradient of a Conv2d
    with respect to its input, used to upsample. (N, Cin, H, W) -> (N, Cout, H', W') with
    H' = (H - 1) * stride - 2 * padding + dilation * (kH - 1) + output_padding + 1."""

    transposed = True

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 output_padding=0, groups=1, bias=True, dilation=1, dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, output_padding=output_padding, dtype=dtype)
        too_big = [o >= max(s, d) for o, s, d in zip(self.output_padding, self.stride, self.dilation)]
        if any(too_big):
            raise ValueError(f"ConvTranspose2d: output_padding {self.output_padding} must be smaller "
                             f"than stride {self.stride} or dilation {self.dilation}")

    def forward(self, x):                                       # (N, Cin, H, W)
        self._check_input(x)
        return F.conv_transpose2d(x, self.weight, self.bias, stride=self.stride,
                                  padding=self.padding, output_padding=self.output_padding,
                                  groups=self.groups, dilation=self.dilation)   # (N, Cout, H', W')
