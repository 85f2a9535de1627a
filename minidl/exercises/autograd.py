"""Checks for tutorial 01 (autograd): the student's `Value` gets tanh and
powers; `numerical_gradient` does central differences over an array."""
import math

import numpy as np

from .runner import Exercise


def _value_tanh_and_pow(student):
    import minidl as mdl

    Value = student.Value
    for x0 in (-1.3, -0.2, 0.4, 0.9, 2.1):
        x = Value(x0)
        out = x.tanh() ** 3                                   # f(x) = tanh(x)**3
        out.backward()
        reference = mdl.tensor(np.array(x0), requires_grad=True)
        expected = reference.tanh() ** 3
        expected.backward()
        assert math.isclose(out.data, expected.item(), rel_tol=1e-9, abs_tol=1e-12), (
            f"tanh(x)**3 at x = {x0}: your forward gives {out.data}, expected {expected.item()}")
        assert math.isclose(x.grad, float(reference.grad), rel_tol=1e-7, abs_tol=1e-10), (
            f"d/dx tanh(x)**3 at x = {x0}: your backward gives {x.grad}, expected {float(reference.grad)}")
    for x0, k in ((1.7, 2.5), (0.6, -1.0), (2.0, 0)):
        x = Value(x0)
        out = x ** k
        out.backward()
        assert math.isclose(out.data, x0 ** k, rel_tol=1e-12), f"x**{k} at x = {x0}: got {out.data}"
        assert math.isclose(x.grad, k * x0 ** (k - 1), rel_tol=1e-9, abs_tol=1e-12), (
            f"d/dx x**{k} at x = {x0}: your backward gives {x.grad}, expected {k * x0 ** (k - 1)}")
    x = Value(0.3)
    out = x ** 2 + x.tanh()                                   # x used twice: gradients must add up
    out.backward()
    expected = 2 * 0.3 + (1 - math.tanh(0.3) ** 2)
    assert math.isclose(x.grad, expected, rel_tol=1e-9), (
        f"x**2 + tanh(x) at x = 0.3: x.grad is {x.grad}, expected {expected} (do your backwards add with +=?)")


def _numerical_gradient(student):
    rng = np.random.default_rng(5)
    x = rng.uniform(-2, 2, (3, 4))
    before = x.copy()

    def f(a):                                                 # df/da = cos(a) a + sin(a) + sum(a)
        return float(np.sum(np.sin(a) * a) + 0.5 * np.sum(a) ** 2)

    gradient = np.asarray(student.numerical_gradient(f, x))
    assert np.array_equal(x, before), "numerical_gradient changed its input x; perturb a copy (or restore it)"
    assert gradient.shape == x.shape, f"expected a gradient of shape {x.shape}, got {gradient.shape}"
    expected = np.cos(x) * x + np.sin(x) + x.sum()
    error = np.abs(gradient - expected).max()
    assert error < 1e-6, (f"largest difference from the exact gradient {error:.2e} (should be below 1e-6); "
                          "is every element put back after it was perturbed?")
    w = rng.standard_normal(5)
    gradient = np.asarray(student.numerical_gradient(lambda a: float(np.sum(a ** 3)), w, eps=1e-4))
    truncation = np.abs(gradient - 3 * w ** 2).max()         # central differences: error eps**2, not eps
    assert truncation < 1e-6, (f"with eps = 1e-4 on sum(w**3) the error is {truncation:.1e}: is it a central "
                               "difference (f(x+eps) - f(x-eps)) / (2 eps), and does it use the eps given?")


EXERCISES = [
    Exercise(1, "Value.tanh and Value.__pow__", _value_tanh_and_pow,
             "tanh's derivative is 1 - tanh(a)**2 = 1 - out.data**2; (a**k)' = k a**(k-1). Add to "
             "self.grad with +=, multiplied by out.grad."),
    Exercise(6, "numerical_gradient by central differences", _numerical_gradient,
             "loop over np.ndindex(x.shape); for each index add and subtract eps on a copy of x, "
             "and take (f(plus) - f(minus)) / (2 * eps)."),
]
