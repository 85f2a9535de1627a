"""Arithmetic ops: + - * / neg, ** (pow) and @ (matmul). All broadcast like NumPy.

Each backward is one line of calculus followed by `sum_to`, which adds up the
gradient over the axes that broadcasting stretched.
"""
import numbers

import numpy as np

from ..autograd.function import Function
from .broadcast import broadcast_shapes, sum_to


class Add(Function):
    """out = a + b;  dL/da = g,  dL/db = g"""

    def forward(self, a, b):
        if a.shape != b.shape:                  # the check costs more than a tiny op
            broadcast_shapes("add", a.shape, b.shape)
        self.shapes = a.shape, b.shape
        return a + b

    def backward(self, grad):
        a_shape, b_shape = self.shapes
        return sum_to(grad, a_shape), sum_to(grad, b_shape)


class Sub(Function):
    """out = a - b;  dL/da = g,  dL/db = -g"""

    def forward(self, a, b):
        if a.shape != b.shape:                  # the check costs more than a tiny op
            broadcast_shapes("sub", a.shape, b.shape)
        self.shapes = a.shape, b.shape
        return a - b

    def backward(self, grad):
        a_shape, b_shape = self.shapes
        return sum_to(grad, a_shape), sum_to(-grad, b_shape)


class Mul(Function):
    """out = a * b;  dL/da = g * b,  dL/db = g * a"""

    def forward(self, a, b):
        if a.shape != b.shape:                  # the check costs more than a tiny op
            broadcast_shapes("mul", a.shape, b.shape)
        self.save_for_backward(a, b)
        return a * b

    def backward(self, grad):
        a, b = self.saved_tensors
        return sum_to(grad * b, a.shape), sum_to(grad * a, b.shape)


class Div(Function):
    """out = a / b;  dL/da = g / b,  dL/db = -g * a / b**2"""

    def forward(self, a, b):
        if a.shape != b.shape:                  # the check costs more than a tiny op
            broadcast_shapes("div", a.shape, b.shape)
        self.save_for_backward(a, b)
        return a / b

    def backward(self, grad):
        a, b = self.saved_tensors
        grad_a = grad / b
        return sum_to(grad_a, a.shape), sum_to(-grad_a * a / b, b.shape)


class Neg(Function):
    """out = -a;  dL/da = -g"""

    def forward(self, a):
        return -a

    def backward(self, grad):
        return -grad


def add(a, b):
    return Add.apply(a, b)


def sub(a, b):
    return Sub.apply(a, b)


def mul(a, b):
    return Mul.apply(a, b)


def div(a, b):
    return Div.apply(a, b)


def neg(a):
    return Neg.apply(a)


class Pow(Function):
    """out = a ** b (both tensors);  dL/da = g * b * a**(b-1),  dL/db = g * out * ln(a)

    Like PyTorch, dL/db is taken as 0 where a == 0 and b >= 0 (ln 0 = -inf
    times out = 0 would give NaN, but out is flat in b there), and dL/da as 0
    where b == 0 (out = 1 whatever a is; 0 * 0**-1 would give NaN at a = 0)."""

    def forward(self, a, b):
        if a.shape != b.shape:
            broadcast_shapes("pow", a.shape, b.shape)
        out = a ** b
        self.save_for_backward(a, b, out)
        return out

    def backward(self, grad):
        a, b, out = self.saved_tensors
        need_a, need_b = self.needs_input_grad
        grad_a = grad_b = None
        if need_a:                                  # b = 0: out is 1 whatever a is (0 ** -1 would give NaN)
            with np.errstate(divide="ignore", invalid="ignore"):
                slope = np.where(b == 0, 0, b * a ** (b - 1))
            grad_a = sum_to(grad * slope, a.shape)
        if need_b:
            flat = (a == 0) & (b >= 0)
            with np.errstate(divide="ignore", invalid="ignore"):
                grad_b = sum_to(np.where(flat, 0, grad * out * np.log(a)), b.shape)
        return grad_a, grad_b


class PowScalar(Function):
    """out = a ** p for a Python number p;  dL/da = g * p * a**(p-1)  (0 for p = 0, as in PyTorch)"""

    def forward(self, a, exponent):
        self.exponent = exponent
        self.save_for_backward(a)
        return a ** exponent

    def backward(self, grad):
        (a,) = self.saved_tensors
        p = self.exponent
        if p == 2:                              # the common case, without a power
            return grad * (2 * a)
        if p == 0:                              # out = 1 everywhere (0 ** -1 would give NaN at 0)
            return np.zeros_like(grad)
        return grad * (p * a ** (p - 1))


class MatMul(Function):
    """out = a @ b, batched like NumPy/PyTorch matmul;
    dL/da = g @ b^T,  dL/db = a^T @ g  (^T swaps the last two axes).

    Shapes: (..., n, k) @ (..., k, m) -> (..., n, m), the batch dims (...)
    broadcast. A 1-D left operand (k,) acts as (1, k) and a 1-D right operand
    (k,) as (k, 1); the added axis is dropped from the result, so
    (k,) @ (k,) is a 0-d scalar. Backward works on those 2-D forms, then undoes
    the batch broadcasting with `sum_to` and reshapes back."""

    def forward(self, a, b):
        if a.ndim == 0 or b.ndim == 0:
            raise ValueError(
                f"matmul: both arguments need at least 1 dimension, got shapes {a.shape} and {b.shape}"
            )
        if a.shape[-1] != b.shape[-2 if b.ndim > 1 else 0]:
            raise ValueError(f"matmul: cannot multiply {a.shape} by {b.shape}")
        if a.ndim > 2 or b.ndim > 2:
            broadcast_shapes("matmul (batch dims)", a.shape[:-2], b.shape[:-2])
        self.save_for_backward(a, b)
        return np.matmul(a, b)

    def backward(self, grad):
        a, b = self.saved_tensors
        a2 = a.reshape(1, -1) if a.ndim == 1 else a          # (..., n, k)
        b2 = b.reshape(-1, 1) if b.ndim == 1 else b          # (..., k, m)
        out_shape = np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2]) + (a2.shape[-2], b2.shape[-1])
        g = grad.reshape(out_shape)                          # (..., n, m)
        need_a, need_b = self.needs_input_grad
        grad_a = grad_b = None
        if need_a:
            grad_a = sum_to(np.matmul(g, np.swapaxes(b2, -1, -2)), a2.shape).reshape(a.shape)
        if need_b:
            grad_b = sum_to(np.matmul(np.swapaxes(a2, -1, -2), g), b2.shape).reshape(b.shape)
        return grad_a, grad_b


def pow(a, exponent):
    """a ** exponent; `exponent` is a Tensor or a Python/NumPy number."""
    from ..autograd.tensor import Tensor
    if isinstance(exponent, Tensor):
        return Pow.apply(a, exponent)
    if isinstance(exponent, np.ndarray) and exponent.ndim > 0:
        return Pow.apply(a, Tensor(exponent))
    if not isinstance(exponent, (numbers.Number, np.generic, np.ndarray)):
        raise TypeError(f"pow: exponent must be a number or a Tensor, got {type(exponent).__name__}")
    exponent = exponent.item() if hasattr(exponent, "item") else exponent  # a Python number keeps float32
    return PowScalar.apply(a, exponent=exponent)


def matmul(a, b):
    return MatMul.apply(a, b)
