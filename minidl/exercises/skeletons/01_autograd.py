"""Exercises 1 and 6 of tutorial 01 (autograd). Fill in the functions that
raise NotImplementedError, then run `minidl check 01` from the folder that
holds `exercises/` (or `minidl check 01 --file THIS_FILE`)."""
import math

import numpy as np


class Value:
    """The tiny scalar engine of tutorial 01, section 2."""

    def __init__(self, data, parents=(), op=""):
        self.data, self.grad = float(data), 0.0
        self.parents, self.op = parents, op
        self._backward = lambda: None          # pushes self.grad to the parents

    def __add__(self, other):
        out = Value(self.data + other.data, (self, other), "+")

        def _backward():
            self.grad += out.grad
            other.grad += out.grad
        out._backward = _backward
        return out

    def __mul__(self, other):
        out = Value(self.data * other.data, (self, other), "*")

        def _backward():
            self.grad += other.data * out.grad
            other.grad += self.data * out.grad
        out._backward = _backward
        return out

    def exp(self):
        out = Value(math.exp(self.data), (self,), "exp")

        def _backward():
            self.grad += out.data * out.grad
        out._backward = _backward
        return out

    def log(self):
        out = Value(math.log(self.data), (self,), "log")

        def _backward():
            self.grad += out.grad / self.data
        out._backward = _backward
        return out

    # ---- exercise 1 -----------------------------------------------------------
    def tanh(self):
        """out = tanh(self), with its backward."""
        raise NotImplementedError("exercise 1: Value.tanh")

    def __pow__(self, k):
        """out = self ** k for a number k (not a Value), with its backward."""
        raise NotImplementedError("exercise 1: Value.__pow__")

    def backward(self):
        order, visited, stack = [], set(), [(self, False)]
        while stack:
            node, parents_done = stack.pop()
            if parents_done:
                order.append(node)
            elif id(node) not in visited:
                visited.add(id(node))
                stack.append((node, True))
                stack.extend((p, False) for p in node.parents)
        self.grad = 1.0
        for node in reversed(order):
            node._backward()


# ---- exercise 6 ---------------------------------------------------------------
def numerical_gradient(f, x, eps=1e-6):
    """Central-difference gradient of a scalar function f at the array x:
    an array of x's shape whose entry i is (f(x + eps e_i) - f(x - eps e_i)) / (2 eps).
    Must leave x unchanged."""
    raise NotImplementedError("exercise 6: numerical_gradient")
