"""Reductions: sum, mean, var, max, min, logsumexp over all dims, one dim or a
tuple of dims, with or without `keepdim`. As in PyTorch, an empty tuple of
dims (`dim=()`) reduces over every dim, like `dim=None`.

Every backward first puts the reduced axes back as size-1 axes (`_keep`), so
that the gradient broadcasts against the input.

Where several elements tie for the maximum, the gradient goes where PyTorch
sends it: `max(x, dim)` and `min(x, dim)` send it to ONE element per reduced
group, the first maximal one (the argmax); `amax`/`amin`, and `max`/`min`
over all dims (dim=None), split it evenly among the ties. With distinct
values the two agree. max/min return the values only, not PyTorch's
(values, indices) pair: use `argmax` for the indices.

A NaN is the maximum (and the minimum) of any group that holds one, and the
gradient follows PyTorch there too: `max(x, dim)` sends it to the first NaN,
`max`/`min` over all dims split it among the NaNs, and `amax`/`amin` give
the whole group NaN (no element equals a NaN maximum, so there are no ties
to split among).
"""
import numpy as np

from ..autograd.function import Function
from .dims import normalize_dims


def _keep(grad, axes, keepdim):
    """`grad` with the reduced `axes` present again as size-1 axes."""
    return grad if keepdim else np.expand_dims(grad, axes)


def _accumulator(a):
    """The dtype float32 sums run in: float64. Over the last axis of a
    contiguous array NumPy adds pairwise, but over any other axis it adds one
    row after another, so a float32 sum of 10**6 rows would carry an error
    of order 10**6 * 6e-8 of its magnitude in the worst case; summed in float64 and
    rounded once it is good to float32's own precision. None (NumPy's own
    accumulation) for other dtypes."""
    return np.float64 if a.dtype == np.float32 else None


def _count(shape, axes):
    n = 1
    for axis in axes:
        n *= shape[axis]
    return n


class Sum(Function):
    """out = sum of a over axes;  dL/da = g, broadcast back over the axes"""

    def forward(self, a, axes, keepdim):
        self.axes, self.keepdim, self.shape = axes, keepdim, a.shape
        out = np.sum(a, axis=axes, keepdims=keepdim, dtype=_accumulator(a))
        return out.astype(a.dtype, copy=False) if a.dtype == np.float32 else out

    def backward(self, grad):
        return np.broadcast_to(_keep(grad, self.axes, self.keepdim), self.shape).copy()


class Mean(Function):
    """out = sum of a over axes / N;  dL/da = g / N, broadcast back"""

    def forward(self, a, axes, keepdim):
        self.axes, self.keepdim, self.shape = axes, keepdim, a.shape
        out = np.mean(a, axis=axes, keepdims=keepdim, dtype=_accumulator(a))
        return out.astype(a.dtype, copy=False) if a.dtype == np.float32 else out

    def backward(self, grad):
        n = _count(self.shape, self.axes)
        return np.broadcast_to(_keep(grad, self.axes, self.keepdim) / n, self.shape).copy()


class Var(Function):
    """out = sum (a - mean)**2 / (N - c), c = 1 if unbiased else 0;
    dL/da = g * 2 (a - mean) / (N - c)"""

    def forward(self, a, axes, unbiased, keepdim):
        self.axes, self.keepdim = axes, keepdim
        self.divisor = _count(a.shape, axes) - (1 if unbiased else 0)
        # float32 sums run in float64 (as in the kernels): over a non-last axis NumPy adds
        # one row after another, and 10**6 float32 rows lost ~1e-4 of the variance
        total = _accumulator(a)
        mean = np.mean(a, axis=axes, keepdims=True, dtype=total)
        centred = a - (mean if total is None else mean.astype(np.float32))
        self.save_for_backward(centred)
        divisor = self.divisor if self.divisor > 0 else 0   # no element, unbiased: 0 / 0, not 0 / -1
        with np.errstate(divide="ignore", invalid="ignore"):    # one element, unbiased: NaN like PyTorch
            out = np.sum(centred * centred, axis=axes, keepdims=keepdim, dtype=total) / divisor
        return out if total is None else out.astype(np.float32)

    def backward(self, grad):
        (centred,) = self.saved_tensors
        scale = 2 / self.divisor if self.divisor else float("nan")
        return _keep(grad, self.axes, self.keepdim) * centred * scale


class Max(Function):
    """out = max of a over axes;  dL/da = g at the first maximal element of each
    group (the argmax), 0 elsewhere; with split_ties, g / (number of maximal
    elements) at each of them.

    Where a group's maximum is NaN (it holds a NaN), PyTorch's conventions,
    followed here: the argmax is the first NaN; max/min over every dim split
    the gradient among the NaNs (`nan_ties`); amax/amin give NaN to every
    element of the group (no element equals a NaN maximum: g / 0 ties)."""

    reduce = staticmethod(np.max)
    arg = staticmethod(np.argmax)

    def forward(self, a, axes, keepdim, split_ties, nan_ties=False):
        self.axes, self.keepdim, self.split_ties, self.nan_ties = axes, keepdim, split_ties, nan_ties
        out = self.reduce(a, axis=axes, keepdims=True)
        self.save_for_backward(a, out)
        return out if keepdim else np.squeeze(out, axis=axes)

    def backward(self, grad):
        a, out = self.saved_tensors
        g = _keep(grad, self.axes, self.keepdim)                # reduced axes back as size 1
        if self.split_ties:
            ties = a == out                                      # every maximal element
            if self.nan_ties:
                ties |= np.isnan(a) & np.isnan(out)              # a NaN maximum: the NaNs
            count = np.sum(ties, axis=self.axes, keepdims=True)
            with np.errstate(invalid="ignore"):                  # count 0 only for a NaN maximum without
                share = np.where(ties, g, 0) / count             # nan_ties: 0 / 0, NaN over the group
            return share.astype(grad.dtype, copy=False)
        axes = self.axes
        kept = [d for d in range(a.ndim) if d not in axes]
        # move the reduced axes to the end and merge them into one: (kept..., K)
        grouped = np.transpose(a, kept + list(axes)).reshape([a.shape[d] for d in kept] + [-1])
        winner = self.arg(grouped, axis=-1)                    # (kept...)
        one_hot = np.arange(grouped.shape[-1]) == winner[..., None]      # (kept..., K)
        g = np.reshape(grad, winner.shape + (1,))              # (kept..., 1)
        spread = np.where(one_hot, g, 0).astype(grad.dtype, copy=False)  # (kept..., K)
        spread = spread.reshape([a.shape[d] for d in kept] + [a.shape[d] for d in axes])
        return np.transpose(spread, np.argsort(kept + list(axes)))


class Min(Max):
    """out = min of a over axes;  dL/da = g at the first minimal element (argmin)"""

    reduce = staticmethod(np.min)
    arg = staticmethod(np.argmin)


class LogSumExp(Function):
    """out = log sum exp(a) over axes, computed as m + log sum exp(a - m) with
    m = max a (so exp never overflows);  dL/da = g * exp(a - out) (the softmax)"""

    def forward(self, a, axes, keepdim):
        self.axes, self.keepdim = axes, keepdim
        m = np.max(a, axis=axes, keepdims=True, initial=-np.inf)   # -inf for an empty group
        m = np.where(np.isfinite(m), m, 0)                  # all -inf (or inf) groups, empty ones
        with np.errstate(divide="ignore"):                    # log 0 = -inf for an all -inf or empty group
            out = np.log(np.sum(np.exp(a - m), axis=axes, keepdims=True)) + m
        self.save_for_backward(a, out)
        return out if keepdim else np.squeeze(out, axis=axes)

    def backward(self, grad):
        a, out = self.saved_tensors
        return _keep(grad, self.axes, self.keepdim) * np.exp(a - out)


def _reduce(function, op_name, input, dim, keepdim, **options):
    from ..autograd.tensor import as_tensor
    input = as_tensor(input)
    axes = normalize_dims(op_name, dim, input.ndim, input.shape)
    return function.apply(input, axes=axes, keepdim=bool(keepdim), **options)


def sum(input, dim=None, keepdim=False):
    return _reduce(Sum, "sum", input, dim, keepdim)


def mean(input, dim=None, keepdim=False):
    from ..autograd.tensor import as_tensor
    input = as_tensor(input)
    if input.dtype.kind not in "fc":
        raise TypeError(f"mean: needs a floating-point tensor, got dtype {input.dtype} "
                        "(use .float() first)")
    return _reduce(Mean, "mean", input, dim, keepdim)


def var(input, dim=None, unbiased=True, keepdim=False):
    """Variance; unbiased=True divides by N - 1 (PyTorch's default), else by N."""
    return _reduce(Var, "var", input, dim, keepdim, unbiased=bool(unbiased))


def _check_nonempty(op_name, input, dim):
    from ..autograd.tensor import as_tensor
    input = as_tensor(input)
    axes = normalize_dims(op_name, dim, input.ndim, input.shape)
    if any(input.shape[a] == 0 for a in axes):
        raise ValueError(f"{op_name}: cannot reduce an empty dimension of a tensor of shape {input.shape}")
    return input


def max(input, dim=None, keepdim=False):
    """Largest value over `dim`; the gradient goes to the argmax, or is split
    among ties when dim is None (see module docstring)."""
    return _reduce(Max, "max", _check_nonempty("max", input, dim), dim, keepdim,
                   split_ties=dim is None, nan_ties=True)


def min(input, dim=None, keepdim=False):
    """Smallest value over `dim`; the gradient goes to the argmin, or is split
    among ties when dim is None."""
    return _reduce(Min, "min", _check_nonempty("min", input, dim), dim, keepdim,
                   split_ties=dim is None, nan_ties=True)


def amax(input, dim=None, keepdim=False):
    """Largest value over `dim`; the gradient is split evenly among ties (NaN
    over a group whose maximum is NaN, as in PyTorch)."""
    return _reduce(Max, "amax", _check_nonempty("amax", input, dim), dim, keepdim, split_ties=True)


def amin(input, dim=None, keepdim=False):
    """Smallest value over `dim`; the gradient is split evenly among ties (NaN
    over a group whose minimum is NaN, as in PyTorch)."""
    return _reduce(Min, "amin", _check_nonempty("amin", input, dim), dim, keepdim, split_ties=True)


def logsumexp(input, dim=None, keepdim=False):
    return _reduce(LogSumExp, "logsumexp", input, dim, keepdim)
