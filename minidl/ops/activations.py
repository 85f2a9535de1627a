"""Activation functions: relu, leaky_relu, gelu, sigmoid, tanh (elementwise)."""
import math

import numpy as np

from ..autograd.function import Function
from ..kernels.erf import erf
from ..kernels.gelu import gelu_backward, gelu_forward
from ..kernels.relu import relu_backward, relu_forward
from ..kernels.geometry import DTYPES
from .elementwise import as_float

_SQRT_HALF = math.sqrt(0.5)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


def _all_bits_where_not(at_most_zero, bits):
    """An integer array of dtype `bits`: every bit set where `at_most_zero` is
    False, no bit set where it is True. ANDed with a float array's bits it
    keeps the value (inf, NaN and -0.0 included) or gives exactly +0.0,
    which is np.where(~at_most_zero, values, 0) in one pass without np.where's
    slow per-element selection."""
    keep = at_most_zero.view(np.int8).astype(bits)         # 1 where a <= 0, 0 elsewhere
    keep -= 1                                              # 0 where a <= 0, -1 (all bits) elsewhere
    return keep


def _slope_factors(a, slope):
    """A new array shaped like `a`, of a's float dtype: 1 where a > 0, `slope`
    elsewhere (NaN included). a * factors is np.where(a > 0, a, a * slope)
    exactly (a * 1 is a), and so is g * factors for the gradient, in one
    multiply each, done in place on the returned array.

    The factors are written as integers holding their bits: (a > 0) is 0 or
    1, times (bits of 1 XOR bits of slope) gives 0 or that XOR, and XOR with
    the bits of slope leaves the bits of 1 or of slope. Each step is a fast
    integer pass; np.where and take are several times slower per element."""
    bits = np.dtype(f"i{a.itemsize}")                      # an integer as wide as the float
    one_bits = np.array(1, a.dtype).view(bits)
    slope_bits = np.array(slope, a.dtype).view(bits)
    factors = np.empty(a.shape, a.dtype)                   # the result owns its memory
    as_bits = factors.view(bits)
    positive = np.greater(a, 0, out=np.empty(a.shape, bool))   # an array also for 0-d a
    as_bits[...] = positive.view(np.int8)                  # 1 where a > 0, 0 elsewhere (NaN too)
    as_bits *= one_bits ^ slope_bits                       # XOR of the two bit patterns, or 0
    as_bits ^= slope_bits                                  # bits of 1 where a > 0, of slope elsewhere
    return factors


class ReLU(Function):
    """out = max(a, 0);  dL/da = g where out > 0 or a is NaN, else 0 (0 at a = 0).
    Like PyTorch, NaN goes through (relu(NaN) = NaN, so a NaN is never hidden).

    float32 and float64 run minidl/kernels/relu.py: one pass each way, with a
    one-byte mask kept from forward (True where a > 0 or NaN). Other floats
    (float16) AND the value's bits with a mask of all bits or none."""

    def forward(self, a):
        if a.dtype.kind != "f":
            self.save_for_backward(a > 0)
            return np.where(a > 0, a, 0).astype(a.dtype, copy=False)
        if a.dtype in DTYPES:
            out, keep = relu_forward(a.reshape(-1))              # (n,) each: one fused pass
            self.save_for_backward(keep.reshape(a.shape))
            return out.reshape(a.shape)
        bits = np.dtype(f"i{a.itemsize}")                  # an integer as wide as the float
        keep = _all_bits_where_not(a <= 0, bits)           # NaN <= 0 is False: NaN is kept
        self.save_for_backward(keep)
        return np.bitwise_and(a.view(bits), keep).view(a.dtype)   # a, or +0.0 where a <= 0

    def backward(self, grad):
        (keep,) = self.saved_tensors
        if keep.dtype == bool:
            if grad.dtype in DTYPES and grad.shape == keep.shape:
                return relu_backward(grad.reshape(-1), keep.reshape(-1)).reshape(grad.shape)
            return np.where(keep, grad, 0).astype(grad.dtype, copy=False)
        if grad.dtype.kind != "f" or grad.itemsize != keep.itemsize:
            return np.where(keep != 0, grad, 0).astype(grad.dtype, copy=False)
        return np.bitwise_and(grad.view(keep.dtype), keep).view(grad.dtype)   # g, or +0.0


class LeakyReLU(Function):
    """out = a if a > 0 else s a;  dL/da = g if a > 0 else s g  (s = negative_slope)

    For floats with 0 < s < inf, forward is max(s a, a) (min for s > 1): the
    larger of the two is a where a > 0 and s a elsewhere, in two passes and
    one new array (they tie only at a = 0, where both are the same zero, or
    at s = 1). Other slopes, and backward, multiply by the factors (1 where
    a > 0, s elsewhere), built in the array that becomes the result. A NaN
    input takes the s side (NaN > 0 is false), as in PyTorch. Products that
    are NaN by IEEE rules (0 * inf when s = 0) give NaN without a warning,
    as PyTorch gives them."""

    def forward(self, a, negative_slope):
        self.slope = negative_slope
        if a.dtype.kind != "f":
            positive = a > 0
            self.save_for_backward(positive)
            return np.where(positive, a, a * negative_slope)
        self.save_for_backward(a)
        if 0 < negative_slope < math.inf:
            out = np.multiply(a, negative_slope, out=np.empty(a.shape, a.dtype))   # s a (also for 0-d a)
            larger = np.maximum if negative_slope <= 1 else np.minimum
            return larger(out, a, out=out)                 # a where a > 0, s a elsewhere (NaN stays NaN)
        out = _slope_factors(a, negative_slope)            # 1 where a > 0, s elsewhere
        with np.errstate(invalid="ignore"):                # 0 * inf is NaN, as in PyTorch
            out *= a
        return out

    def backward(self, grad):
        (saved,) = self.saved_tensors                      # a (floats) or a > 0 (integers)
        if saved.dtype == bool:
            return np.where(saved, grad, grad * self.slope)
        if grad.dtype != saved.dtype:                      # mixed dtypes: NumPy's promotion decides
            return np.where(saved > 0, grad, grad * self.slope)
        out = _slope_factors(saved, self.slope)            # 1 where a > 0, s elsewhere
        with np.errstate(invalid="ignore"):                # inf * 0 is NaN, as in PyTorch
            out *= grad
        return out


class GELU(Function):
    """out = a Phi(a), Phi(a) = (1 + erf(a / sqrt 2)) / 2, the normal CDF;
    dL/da = g (Phi(a) + a phi(a)),  phi(a) = exp(-a**2 / 2) / sqrt(2 pi).

    The exact form runs minidl/kernels/gelu.py (one fused pass each way, for
    float32 and float64); the tanh form is a NumPy chain.

    approximate="tanh": Phi(a) ~ (1 + tanh(u)) / 2, u = sqrt(2/pi) (a + 0.044715 a**3);
    dL/da = g ((1 + t) / 2 + a (1 - t**2) / 2 * du/da), t = tanh(u)."""

    def forward(self, a, approximate):
        a = as_float(a)
        self.approximate = approximate
        if approximate == "tanh":
            t = np.tanh(_SQRT_2_OVER_PI * (a + 0.044715 * a ** 3))
            self.save_for_backward(a, t)
            return 0.5 * a * (1 + t)
        if a.dtype not in DTYPES:                            # float16, complex: NumPy's erf chain
            cdf = erf(a * _SQRT_HALF)
            cdf += 1
            cdf *= 0.5                                       # Phi(a), reused by backward
            self.save_for_backward(a, cdf)
            return a * cdf
        out, cdf = gelu_forward(a.reshape(-1))               # (n,) each: a Phi(a) and Phi(a), one fused pass
        self.save_for_backward(a, cdf.reshape(a.shape))
        return out.reshape(a.shape)

    def backward(self, grad):
        a, saved = self.saved_tensors                        # saved: t (tanh form) or Phi(a)
        if self.approximate == "tanh":
            du = _SQRT_2_OVER_PI * (1 + 3 * 0.044715 * a * a)
            return grad * (0.5 * (1 + saved) + 0.5 * a * (1 - saved * saved) * du)
        if grad.dtype != a.dtype:                            # mixed dtypes: NumPy's promotion decides
            return grad * (saved + a * (_INV_SQRT_2PI * np.exp(-0.5 * a * a)))
        if a.dtype in DTYPES:                                # the fused kernel: one pass
            grad_x = gelu_backward(grad.reshape(-1), a.reshape(-1), saved.reshape(-1))   # (n,)
            return grad_x.reshape(a.shape)
        out = np.multiply(a, a, out=np.empty_like(a))         # one new array (also for 0-d), worked on in place:
        out *= -0.5
        np.exp(out, out=out)
        out *= _INV_SQRT_2PI                                 # phi(a)
        out *= a
        out += saved                                         # Phi(a) + a phi(a)
        out *= grad                                          # dL/da
        return out


class Sigmoid(Function):
    """out = 1 / (1 + e**-a);  dL/da = g out (1 - out)

    Computed as e / (1 + e) with e = exp(-|a|) <= 1 on the negative side, so
    exp never overflows (no warnings at |a| = 1000)."""

    def forward(self, a):
        a = as_float(a)
        e = np.exp(-np.abs(a))                               # in (0, 1]
        out = np.where(a >= 0, 1, e) / (1 + e)
        self.save_for_backward(out)
        return out

    def backward(self, grad):
        (out,) = self.saved_tensors
        return grad * out * (1 - out)


class Tanh(Function):
    """out = tanh(a);  dL/da = g (1 - out**2)"""

    def forward(self, a):
        out = np.tanh(as_float(a))
        self.save_for_backward(out)
        return out

    def backward(self, grad):
        (out,) = self.saved_tensors
        return grad * (1 - out * out)


def relu(input):
    return ReLU.apply(input)


def leaky_relu(input, negative_slope=0.01):
    return LeakyReLU.apply(input, negative_slope=float(negative_slope))


def gelu(input, approximate="none"):
    """GELU, exact (erf) by default like PyTorch; approximate="tanh" for the tanh form."""
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return GELU.apply(input, approximate=approximate)


def sigmoid(input):
    return Sigmoid.apply(input)


def tanh(input):
    return Tanh.apply(input)
