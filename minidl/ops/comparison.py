"""Comparisons: eq, ne, lt, le, gt, ge. Elementwise, broadcast; the result is a
bool tensor, which never requires grad (there is no gradient of a comparison:
`Function.apply` does not record ops whose output is not floating point)."""
import numpy as np

from ..autograd.function import Function
from .broadcast import broadcast_shapes


class Compare(Function):
    """out = ufunc(a, b) as bools; no backward."""

    ufunc = None

    def forward(self, a, b):
        if a.shape != b.shape:
            broadcast_shapes(self.name.lower(), a.shape, b.shape)
        return self.ufunc(a, b)


class Eq(Compare):
    ufunc = staticmethod(np.equal)


class Ne(Compare):
    ufunc = staticmethod(np.not_equal)


class Lt(Compare):
    ufunc = staticmethod(np.less)


class Le(Compare):
    ufunc = staticmethod(np.less_equal)


class Gt(Compare):
    ufunc = staticmethod(np.greater)


class Ge(Compare):
    ufunc = staticmethod(np.greater_equal)


def eq(a, b):
    return Eq.apply(a, b)


def ne(a, b):
    return Ne.apply(a, b)


def lt(a, b):
    return Lt.apply(a, b)


def le(a, b):
    return Le.apply(a, b)


def gt(a, b):
    return Gt.apply(a, b)


def ge(a, b):
    return Ge.apply(a, b)
