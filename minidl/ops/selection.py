"""Choosing between values by a boolean mask: where and masked_fill.

where(condition, a, b) takes a where condition is True, b elsewhere (all three
broadcast); masked_fill(x, mask, value) puts `value` where mask is True.
The gradient follows the choice: it flows to whichever input was picked.
"""
import numpy as np

from ..autograd.function import Function
from .broadcast import broadcast_shapes, sum_to


class Where(Function):
    """out = a where c else b;  dL/da = g where c else 0,  dL/db = g where not c else 0"""

    def forward(self, condition, a, b):
        self.save_for_backward(condition)
        self.shapes = a.shape, b.shape
        return np.where(condition, a, b)

    def backward(self, grad):
        (condition,) = self.saved_tensors
        a_shape, b_shape = self.shapes
        _, need_a, need_b = self.needs_input_grad
        grad_a = sum_to(np.where(condition, grad, 0), a_shape) if need_a else None
        grad_b = sum_to(np.where(condition, 0, grad), b_shape) if need_b else None
        return None, grad_a, grad_b


class MaskedFill(Function):
    """out = value where mask else a;  dL/da = g where not mask else 0,
    dL/dvalue = sum of g where mask (value: a 0-d array)"""

    def forward(self, a, mask, value):
        self.save_for_backward(mask)
        self.value_dtype = value.dtype
        return np.where(mask, value.astype(a.dtype), a)

    def backward(self, grad):
        (mask,) = self.saved_tensors
        grad_value = None
        if self.needs_input_grad[2]:                     # the value sits at every masked place
            grad_value = np.asarray(np.sum(grad, where=np.broadcast_to(mask, grad.shape)),
                                    dtype=self.value_dtype)
        return np.where(mask, 0, grad), None, grad_value


def _bool_mask(op_name, mask):
    from ..autograd.tensor import as_tensor
    mask = as_tensor(mask)
    if mask.dtype != np.bool_:
        raise TypeError(f"{op_name}: the mask/condition must be a bool tensor, got dtype {mask.dtype}")
    return mask


def where(condition, input, other):
    """`input` where `condition` is True, else `other`; numbers take the other's dtype."""
    from ..autograd.tensor import Tensor, as_tensor
    condition = _bool_mask("where", condition)
    if isinstance(input, Tensor) and not isinstance(other, Tensor):
        other = input._lift(other)
    elif isinstance(other, Tensor) and not isinstance(input, Tensor):
        input = other._lift(input)
    input, other = as_tensor(input), as_tensor(other)
    broadcast_shapes("where", condition.shape, input.shape, other.shape)
    return Where.apply(condition, input, other)


def masked_fill(input, mask, value):
    """`input` with `value` wherever `mask` is True (mask broadcasts to input's shape)."""
    from ..autograd.tensor import Tensor, as_tensor
    input, mask = as_tensor(input), _bool_mask("masked_fill", mask)
    if not isinstance(value, Tensor):                    # a number: no gradient
        value = Tensor(np.asarray(value))
    if value.ndim != 0:
        raise ValueError(f"masked_fill: value must be a number or a 0-d tensor, got shape {value.shape}")
    if broadcast_shapes("masked_fill", mask.shape, input.shape) != input.shape:
        raise ValueError(f"masked_fill: mask of shape {mask.shape} does not broadcast to "
                         f"the input's shape {input.shape}")
    return MaskedFill.apply(input, mask, value)       # a 0-d tensor value gets its gradient too
