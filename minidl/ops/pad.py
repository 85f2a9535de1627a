"""Constant padding with PyTorch's pad tuple: pad = (left, right) for the last
dim, then (left, right) for the one before, and so on.

    F.pad(x, (1, 1, 2, 0))    # (N, C, H, W) -> (N, C, H + 2, W + 2)

out = a surrounded by `value`;  dL/da = the middle of g (the padding got no input).
"""
import numpy as np

from ..autograd.function import Function


class Pad(Function):
    """out = a with `widths` (per axis (before, after)) of `value` around it;
    dL/da = g[inner region]"""

    def forward(self, a, widths, value):
        self.inner = tuple(slice(before, before + n) for (before, _), n in zip(widths, a.shape))
        if a.ndim == 0:                         # nothing to pad around a scalar
            return a.copy()
        return np.pad(a, widths, mode="constant", constant_values=value)

    def backward(self, grad):
        return grad[self.inner]


def pad(input, pad, mode="constant", value=0.0):
    """Pad with a constant; `pad` lists (before, after) pairs starting from the last dim."""
    if mode != "constant":
        raise ValueError(f"pad: only mode='constant' is implemented, got {mode!r}")
    pad = tuple(int(p) for p in pad)
    if len(pad) % 2 or len(pad) // 2 > input.ndim:
        raise ValueError(f"pad: the pad tuple {pad} must have an even length of at most "
                         f"2 * ndim = {2 * input.ndim} for a tensor of shape {input.shape}")
    if any(p < 0 for p in pad):
        raise ValueError(f"pad: negative padding (cropping) is not supported, got {pad}")
    widths = [(0, 0)] * input.ndim
    for i in range(len(pad) // 2):
        widths[input.ndim - 1 - i] = (pad[2 * i], pad[2 * i + 1])      # last dim first
    return Pad.apply(input, widths=tuple(widths), value=value)
