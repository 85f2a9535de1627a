"""gradcheck itself: it must catch wrong gradients, and it needs float64."""
import numpy as np
import pytest

import minidl as mdl
from minidl.autograd.function import Function
from minidl.gradcheck import GradcheckError, gradcheck


class ScaleWithWrongBackward(Function):
    """out = a * b, but dL/db is wrong at one index (`bad_index`), on purpose."""

    def forward(self, a, b, bad_index):
        self.save_for_backward(a, b)
        self.bad_index = bad_index
        return a * b

    def backward(self, grad):
        a, b = self.saved_tensors
        grad_b = grad * a
        if self.bad_index is not None:
            grad_b = grad_b.copy()
            grad_b[self.bad_index] *= 1.01               # a 1% error at one element
        return grad * b, grad_b


def test_gradcheck_catches_a_wrong_backward_and_names_input_and_index():
    rng = np.random.default_rng(0)
    a, b = rng.uniform(1, 2, (3, 4)), rng.uniform(1, 2, (3, 4))
    assert gradcheck(lambda x, y: ScaleWithWrongBackward.apply(x, y, bad_index=None), [a, b])
    with pytest.raises(GradcheckError, match=r"input 1 \(shape \(3, 4\)\) at index \(2, 1\): analytic"):
        gradcheck(lambda x, y: ScaleWithWrongBackward.apply(x, y, bad_index=(2, 1)), [a, b])


def test_gradcheck_random_directions_for_large_inputs():
    rng = np.random.default_rng(1)
    a, b = rng.uniform(1, 2, (40, 30)), rng.uniform(1, 2, (40, 30))     # 1200 > full_jacobian_max
    assert gradcheck(lambda x, y: ScaleWithWrongBackward.apply(x, y, bad_index=None), [a, b])
    # a wrong gradient in a whole row shows in a random direction's projection
    with pytest.raises(GradcheckError, match=r"input 1 \(shape \(40, 30\)\) at random direction \d+"):
        gradcheck(lambda x, y: ScaleWithWrongBackward.apply(x, y, bad_index=(slice(0, 20),)), [a, b],
                  rtol=1e-4, atol=1e-7)


def _central_difference_check(fn, x, dtype, eps=1e-6, atol=1e-5, rtol=1e-3):
    """gradcheck's comparison, done by hand in `dtype`: return the largest
    (|analytic - numeric| - tolerance) over all indices (> 0 means it fails)."""
    x = np.asarray(x, dtype=dtype)
    leaf = mdl.tensor(x, requires_grad=True)
    fn(leaf).sum().backward()
    worst = -np.inf
    for index in np.ndindex(*x.shape):
        delta = np.zeros_like(x)
        delta[index] = eps
        up = float(fn(mdl.tensor(x + delta)).sum().data)
        down = float(fn(mdl.tensor(x - delta)).sum().data)
        numeric = (up - down) / (2 * eps)
        analytic = float(leaf.grad[index])
        worst = max(worst, abs(analytic - numeric) - (atol + rtol * abs(numeric)))
    return worst


def test_float64_is_needed_the_same_check_in_float32_fails():
    def fn(x):
        return (x * x).exp() * 3.0

    x = np.linspace(0.3, 1.2, 6)
    assert gradcheck(fn, [x])                                         # float64: passes
    assert _central_difference_check(fn, x, np.float64) < 0           # the hand check agrees
    assert _central_difference_check(fn, x, np.float32) > 0           # float32: rounding swamps it


def test_gradcheck_rejects_an_output_that_lost_float64():
    with pytest.raises(TypeError, match="dtype float32"):
        gradcheck(lambda x: x.float() * 2.0, [np.ones(3)])


class SquareWithZeroBackward(Function):
    """out = a^2 with a backward that returns 0: gradcheck must report the numeric derivative."""

    def forward(self, a):
        return a * a

    def backward(self, grad):
        return np.zeros_like(grad)


def test_the_numeric_derivative_is_a_central_difference():
    """For out = a^2 a central difference is exact up to rounding, (a+e)^2 - (a-e)^2 = 4 a e;
    a one-sided one would be off by e = 1e-6. The error message's numeric value must be
    the weight times 2 a (gradcheck's weights are standard normal draws seeded by `seed`)."""
    import re

    a = np.array([3.0])
    with pytest.raises(GradcheckError) as info:
        gradcheck(lambda x: SquareWithZeroBackward.apply(x), [a], seed=0)
    numeric = float(re.search(r"numeric (\S+),", str(info.value)).group(1))
    weight = np.random.default_rng(0).standard_normal((1,))[0]
    assert numeric == pytest.approx(weight * 2 * 3.0, rel=1e-8)


def test_float32_arrays_and_tensors_are_checked_in_float64():
    """A float32 input is cast to float64 first (in float32 the differences would be noise)."""
    rng = np.random.default_rng(1)
    a = rng.uniform(1, 2, (3, 4)).astype(np.float32)
    assert gradcheck(lambda x: (x * x).sum(), [a])
    assert gradcheck(lambda x: (x * x).sum(), [mdl.tensor(a, requires_grad=True)])
    with pytest.raises(GradcheckError):
        gradcheck(lambda x: SquareWithZeroBackward.apply(x), [a])


class FirstTimesTwoDroppingTheSecond(Function):
    """out = 2a + b, whose backward returns None for b: a missing gradient, on purpose."""

    def forward(self, a, b):
        return 2 * a + b

    def backward(self, grad):
        return 2 * grad, None


def test_an_input_that_gets_no_gradient_counts_as_a_zero_gradient():
    """An input the output does not depend on passes (its gradient is 0 both
    ways); one it does depend on but whose backward gave nothing fails, at that
    input, as a zero analytic gradient would."""
    rng = np.random.default_rng(2)
    a, b = rng.uniform(1, 2, (2, 3)), rng.uniform(1, 2, (2, 3))
    assert gradcheck(lambda x, unused: x * 3.0, [a, b])
    with pytest.raises(GradcheckError, match=r"input 1 \(shape \(2, 3\)\) at index \(0, 0\): analytic 0"):
        gradcheck(lambda x, y: FirstTimesTwoDroppingTheSecond.apply(x, y), [a, b])
