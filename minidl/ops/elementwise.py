"""Elementwise math: exp, log, sqrt, abs, clamp, maximum, minimum, cast.

Each op maps every element on its own, so each backward is the derivative of a
function of one variable, multiplied elementwise into the incoming gradient.
Integer inputs to exp/log/sqrt are first turned into float32, as PyTorch does.
"""
import numpy as np

from ..autograd.function import Function
from .broadcast import broadcast_shapes, sum_to


def as_float(a):
    """Integer or bool arrays become float32 (PyTorch's rule for float math)."""
    return a if a.dtype.kind in "fc" else a.astype(np.float32)


class Exp(Function):
    """out = e**a;  dL/da = g * out"""

    def forward(self, a):
        out = np.exp(as_float(a))
        self.save_for_backward(out)
        return out

    def backward(self, grad):
        (out,) = self.saved_tensors
        return grad * out


class Log(Function):
    """out = ln a;  dL/da = g / a"""

    def forward(self, a):
        a = as_float(a)
        self.save_for_backward(a)
        return np.log(a)

    def backward(self, grad):
        (a,) = self.saved_tensors
        return grad / a


class Sqrt(Function):
    """out = sqrt(a);  dL/da = g / (2 out)   (inf at a = 0, like PyTorch)"""

    def forward(self, a):
        out = np.sqrt(as_float(a))
        self.save_for_backward(out)
        return out

    def backward(self, grad):
        (out,) = self.saved_tensors
        with np.errstate(divide="ignore"):
            return grad / (2 * out)


class Abs(Function):
    """out = |a|;  dL/da = g * sign(a)   (0 at a = 0 and at a = NaN, like PyTorch)"""

    def forward(self, a):
        self.save_for_backward(a)
        return np.abs(a)

    def backward(self, grad):
        (a,) = self.saved_tensors
        return grad * np.nan_to_num(np.sign(a), nan=0.0)   # sign(NaN) taken as 0


class Clamp(Function):
    """out = min(max(a, lo), hi);  dL/da = g where lo <= a <= hi, else 0
    (the boundary itself passes the gradient, like PyTorch)."""

    def forward(self, a, min=None, max=None):
        self.save_for_backward(a)
        self.bounds = min, max
        return np.clip(a, min, max)

    def backward(self, grad):
        (a,) = self.saved_tensors
        lo, hi = self.bounds
        inside = np.ones(a.shape, dtype=bool)
        if lo is not None:
            inside &= a >= lo
        if hi is not None:
            inside &= a <= hi
        return np.where(inside, grad, 0)


class Maximum(Function):
    """out = max(a, b) elementwise, broadcast;
    dL/da = g where a > b, g/2 where a == b (ties split evenly), 0 where a < b;
    dL/db likewise. As in PyTorch, where a or b is NaN (so is the result) no
    comparison holds and both get g."""

    def forward(self, a, b):
        if a.shape != b.shape:
            broadcast_shapes(self.name.lower(), a.shape, b.shape)
        self.save_for_backward(a, b)
        return self.pick(a, b)

    pick = staticmethod(np.maximum)

    loses = staticmethod(np.less)                            # loses(a, b): a is not the maximum

    def backward(self, grad):
        a, b = self.saved_tensors
        share = np.where(a == b, grad * 0.5, grad)          # ties split evenly
        grad_a = np.where(self.loses(a, b), 0, share)       # NaN: no comparison holds, a keeps g
        grad_b = np.where(self.loses(b, a), 0, share)
        return sum_to(grad_a, a.shape), sum_to(grad_b, b.shape)


class Minimum(Maximum):
    """out = min(a, b) elementwise, broadcast;
    dL/da = g where a < b, g/2 where a == b, 0 where a > b (NaN: g to both)."""

    pick = staticmethod(np.minimum)
    loses = staticmethod(np.greater)


class Cast(Function):
    """out = a converted to `dtype`;  dL/da = g converted back to a's dtype.
    (A cast to an integer or bool dtype has no gradient: the output cannot
    require grad.)"""

    def forward(self, a, dtype):
        self.input_dtype = a.dtype
        return a.astype(dtype, copy=False)

    def backward(self, grad):
        return grad.astype(self.input_dtype, copy=False)


def _bound(value, name):
    if value is None:
        return None
    if getattr(value, "requires_grad", False):              # its gradient would be silently lost
        raise TypeError(f"clamp: {name} is a tensor that requires grad, but the bounds get no "
                        "gradient; pass a number (or .detach() it), or use mdl.maximum / mdl.minimum")
    if hasattr(value, "data"):                               # a 0-d Tensor
        value = value.data
    try:
        return float(value)                                  # a Python float keeps float32
    except (TypeError, ValueError):
        raise TypeError(f"clamp: {name} must be a number or None, got {type(value).__name__}") from None


def exp(a):
    return Exp.apply(a)


def log(a):
    return Log.apply(a)


def sqrt(a):
    return Sqrt.apply(a)


def abs(a):
    return Abs.apply(a)


def clamp(a, min=None, max=None):
    """Limit every element to [min, max]; either bound may be None."""
    if min is None and max is None:
        raise ValueError("clamp: at least one of min and max must be given")
    return Clamp.apply(a, min=_bound(min, "min"), max=_bound(max, "max"))


clip = clamp


def _lift_pair(a, b):
    """Give a Python-number operand the other tensor's dtype (float32 stays float32)."""
    from ..autograd.tensor import Tensor
    if isinstance(a, Tensor) and not isinstance(b, Tensor):
        return a, a._lift(b)
    if isinstance(b, Tensor) and not isinstance(a, Tensor):
        return b._lift(a), b
    return a, b


def maximum(a, b):
    return Maximum.apply(*_lift_pair(a, b))


def minimum(a, b):
    return Minimum.apply(*_lift_pair(a, b))


def cast(a, dtype):
    """`a` converted to `dtype` (e.g. np.float64); the gradient converts back."""
    try:
        dtype = np.dtype(dtype)
    except (TypeError, ValueError):
        raise TypeError(f"cast: {dtype!r} is not a dtype") from None
    return Cast.apply(a, dtype=dtype)
