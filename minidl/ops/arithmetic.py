"""Arithmetic ops: + - * / neg. All broadcast like NumPy.

Each backward is one line of calculus followed by `sum_to`, which adds up the
gradient over the axes that broadcasting stretched.
"""
from ..autograd.function import Function
from .broadcast import broadcast_shapes, sum_to


class Add(Function):
    """out = a + b;  dL/da = g,  dL/db = g"""

    def forward(self, a, b):
        broadcast_shapes("add", a.shape, b.shape)
        self.shapes = a.shape, b.shape
        return a + b

    def backward(self, grad):
        a_shape, b_shape = self.shapes
        return sum_to(grad, a_shape), sum_to(grad, b_shape)


class Sub(Function):
    """out = a - b;  dL/da = g,  dL/db = -g"""

    def forward(self, a, b):
        broadcast_shapes("sub", a.shape, b.shape)
        self.shapes = a.shape, b.shape
        return a - b

    def backward(self, grad):
        a_shape, b_shape = self.shapes
        return sum_to(grad, a_shape), sum_to(-grad, b_shape)


class Mul(Function):
    """out = a * b;  dL/da = g * b,  dL/db = g * a"""

    def forward(self, a, b):
        broadcast_shapes("mul", a.shape, b.shape)
        self.save_for_backward(a, b)
        return a * b

    def backward(self, grad):
        a, b = self.saved_tensors
        return sum_to(grad * b, a.shape), sum_to(grad * a, b.shape)


class Div(Function):
    """out = a / b;  dL/da = g / b,  dL/db = -g * a / b**2"""

    def forward(self, a, b):
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
